"""Group commit: one durable stream write for every request that is waiting at that moment.

An fsynced commit costs milliseconds whatever its size, so committing each request alone caps
throughput and makes writers queue on the file lock. One writer task instead takes all pending
requests, writes them in one ``Stream.put`` (in a thread, off the event loop) and then wakes
every waiter: each request is acknowledged only after its records are durable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from features.errors import StreamUnavailable
from features.streams import Stream, StreamRecord


class GroupCommitWriter:
    def __init__(self, stream: Stream, max_wait_ms: float = 0.0, on_commit=None):
        self.stream = stream
        self.max_wait = max_wait_ms / 1000
        self.on_commit = on_commit
        self._pending: list[tuple[Sequence[StreamRecord], asyncio.Future[None]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for _, fut in self._pending:
            if not fut.done():
                fut.set_exception(StreamUnavailable("the collector is shutting down; retry"))
        self._pending.clear()

    async def write(self, records: Sequence[StreamRecord]) -> None:
        """Return once ``records`` are durable on the stream; raise ``StreamUnavailable`` if not."""
        if not records:
            return
        self.start()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((records, fut))
        assert self._wake is not None
        self._wake.set()
        await fut

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            if self.max_wait:
                await asyncio.sleep(self.max_wait)
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            records = [r for recs, _ in batch for r in recs]
            try:
                await asyncio.to_thread(self.stream.put, records)
            except Exception as exc:  # every waiter must hear about it; none may hang
                err = exc if isinstance(exc, StreamUnavailable) else StreamUnavailable(str(exc))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(err)
                continue
            if self.on_commit is not None:
                self.on_commit(records)
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)
