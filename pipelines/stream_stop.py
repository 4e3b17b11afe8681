"""Stopping a ``foreachBatch`` query between micro-batches, never in the middle of one.

Why not just ``query.stop()``: it interrupts the query's stream thread, and with PySpark's
pinned threads (the default) that thread is the one running the JVM calls the Python
``foreachBatch`` body makes (``collect`` and the like). The call fails with a
``Py4JJavaError`` whose text carries the whole Java stack (≈ 9 KB); Py4J hands the Python
traceback back to the JVM as the message of a ``Py4JException``, and Spark decides whether that
exception was its own stop by matching the message against
``StreamExecution.PROXY_ERROR`` = ``"py4j.protocol.Py4JJavaError: An error occurred while
calling((.|\\r\\n|\\r|\\n)*)(java.lang.InterruptedException|…)"`` (spark-sql 4.2,
``StreamExecution.scala`` ``isInterruptionException``). Java's regex engine recurses once per
character on that ``(.|…)*``, so a message past a few thousand characters throws
``StackOverflowError`` in the stream thread, which dies printing a 1,000-frame Java trace.

So a stop here (``stop_query``) first closes the query's ``BatchGate``: it waits, for a bounded
time, for the micro-batch in flight to finish, and any later micro-batch does no work and
waits in the JVM for the stop's interrupt (``park_until_stopped``). Should the interrupt still
land in a running batch (the wait ran out, or someone called ``query.stop()`` directly), the
body re-raises it with the Java stack trimmed (``trimmed_interruption``): a few hundred
characters Spark recognises as its own stop, no overflow. An interrupted or parked batch is not
committed, so the next start runs it again; the profiles fold counts nothing twice.
"""

from __future__ import annotations

import signal
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from features.errors import PlayerPulseError

if TYPE_CHECKING:
    from py4j.protocol import Py4JJavaError
    from pyspark.sql.streaming import StreamingQuery

STOP_WAIT_S = 60.0
"""How long a stop waits for the micro-batch in flight before interrupting it."""

PARK_LIMIT_S = 300.0
"""How long a micro-batch planned after a stop waits for that stop's interrupt before failing."""

INTERRUPTIONS = (
    "java.lang.InterruptedException",
    "java.io.InterruptedIOException",
    "java.nio.channels.ClosedByInterruptException",
)
"""The Java exceptions Spark takes for its own stop (``StreamExecution.IO_EXCEPTION_NAMES``)."""


class StopNeverCame(PlayerPulseError):
    """A micro-batch was held back for a stop that did not arrive in time."""


class BatchGate:
    """Whether a micro-batch body is running, and whether a stop wants no new one to start.

    The ``foreachBatch`` body calls ``enter`` before its work and ``leave`` after; a stop calls
    ``close``, which returns once no body is running (or the wait ran out).
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = False
        self._closed = False

    def enter(self) -> bool:
        """Mark a body running; ``False`` (and nothing marked) once the gate is closed."""
        with self._changed:
            if self._closed:
                return False
            self._running = True
            return True

    def leave(self) -> None:
        with self._changed:
            self._running = False
            self._changed.notify_all()

    def close(self, wait_s: float) -> bool:
        """Let no new body start; ``True`` when none is running within ``wait_s`` seconds."""
        with self._changed:
            self._closed = True
            return self._changed.wait_for(lambda: not self._running, timeout=wait_s)


_GATES: weakref.WeakKeyDictionary[Any, BatchGate] = weakref.WeakKeyDictionary()


def register_gate(query: StreamingQuery, gate: BatchGate) -> None:
    """Remember which gate ``stop_query`` must close for ``query``."""
    _GATES[query] = gate


def stop_query(query: StreamingQuery, wait_s: float = STOP_WAIT_S) -> bool:
    """Stop ``query`` between micro-batches (see the module doc); ``True`` when it was a clean
    stop, ``False`` when a batch was still running after ``wait_s`` and was interrupted."""
    gate = _GATES.pop(query, None)
    finished = gate.close(wait_s) if gate is not None else False
    query.stop()
    return finished


def java_chain(err: Py4JJavaError) -> list[Any]:
    """The Java exception behind ``err`` and its causes, outermost first."""
    chain = [err.java_exception]
    while len(chain) < 16 and (cause := chain[-1].getCause()) is not None:
        chain.append(cause)
    return chain


def is_interruption(err: BaseException) -> bool:
    """Whether ``err`` is a JVM call that an interrupt of its thread (a query stop) ended."""
    from py4j.protocol import Py4JJavaError

    if not isinstance(err, Py4JJavaError):
        return False
    return any(e.getClass().getName() in INTERRUPTIONS for e in java_chain(err))


def trimmed_interruption(err: Py4JJavaError) -> Py4JJavaError:
    """``err`` with the Java stacks of its exception chain emptied, and no Python frames of its
    own: its text is then a few lines, short enough for Spark's stop check to read."""
    from pyspark import SparkContext

    no_frames = SparkContext._gateway.new_array(SparkContext._jvm.java.lang.StackTraceElement, 0)
    for exception in java_chain(err):
        exception.setStackTrace(no_frames)
    return err.with_traceback(None)


def park_until_stopped(jvm: Any, limit_s: float = PARK_LIMIT_S) -> None:
    """Hold a micro-batch planned after a stop: sleep in the JVM (on the stream thread, with
    pinned threads) until the stop's interrupt ends the sleep, then raise that interruption
    trimmed; raise ``StopNeverCame`` if no interrupt came within ``limit_s``. Returning instead
    would commit the batch with none of its events folded."""
    from py4j.protocol import Py4JJavaError

    deadline = time.monotonic() + limit_s
    try:
        while time.monotonic() < deadline:
            jvm.java.lang.Thread.sleep(200)
    except Py4JJavaError as err:
        if is_interruption(err):
            raise trimmed_interruption(err) from None
        raise
    raise StopNeverCame(f"a micro-batch waited {limit_s:.0f} s for a stop that never came")


@contextmanager
def stop_signals() -> Iterator[threading.Event]:
    """An event that Ctrl-C (SIGINT) or SIGTERM sets, instead of their usual effect.

    PySpark's own SIGINT handler first cancels every running Spark job, which fails the
    micro-batch in flight before the caller can stop the query between batches; and a
    ``KeyboardInterrupt`` raised inside a Py4J call is logged by Py4J as an error. Off the main
    thread (where signals cannot be handled) the event is simply never set.
    """
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def request(signum: int, frame: Any) -> None:
        requested.set()

    previous = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
