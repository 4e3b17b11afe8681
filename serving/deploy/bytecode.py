"""Compiled bytecode for a Lambda package, so a cold start does not compile every module again.

Lambda's ``/var/task`` is read-only: without ``__pycache__`` in the zip, every cold start
compiles every imported module from source and throws the result away (the model function's
imports took ~4 s of its cold start that way). So each ``.py`` ships with its
``__pycache__/NAME.cpython-311.pyc``, compiled with ``PycInvalidationMode.UNCHECKED_HASH``:
the pyc records its source's hash instead of its mtime (a zip's mtimes cannot invalidate it)
and the importer never re-reads the source to check it. That is safe because a package is
built whole and never edited in place: source and bytecode come from the same build.

Bytecode is only valid for the interpreter version that wrote it (the magic number and the
``cpython-311`` tag), so it is compiled only when the packaging interpreter is the Lambda
runtime's Python; any other packages without bytecode and says why.
"""

from __future__ import annotations

import py_compile
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from serving.deploy.runtime import CACHE_TAG, PYTHON_VERSION, RUNTIME

INVALIDATION = py_compile.PycInvalidationMode.UNCHECKED_HASH
TASK_ROOT = PurePosixPath("/var/task")
"""Where Lambda unpacks the zip; the file names recorded in the bytecode (for tracebacks)."""


@dataclass(frozen=True)
class BytecodePlan:
    """Whether this interpreter can compile bytecode the Lambda runtime will use, and if not, why."""

    skip_reason: str | None

    @property
    def enabled(self) -> bool:
        return self.skip_reason is None

    def note(self, compiled: int) -> str:
        """The line a package summary prints about its bytecode."""
        if self.skip_reason is not None:
            return f"no bytecode: {self.skip_reason}"
        return f"bytecode for {compiled} modules ({CACHE_TAG}, unchecked hash)"


def bytecode_plan(version: tuple[int, int] | None = None, cache_tag: str | None = None) -> BytecodePlan:
    """Compile only when this interpreter writes the bytecode the runtime reads (``version`` and
    ``cache_tag`` default to this interpreter's)."""
    major, minor = version if version is not None else sys.version_info[:2]
    tag = cache_tag if cache_tag is not None else sys.implementation.cache_tag
    if f"{major}.{minor}" != PYTHON_VERSION or tag != CACHE_TAG:
        return BytecodePlan(
            f"packaging with Python {major}.{minor} ({tag}), but the {RUNTIME} runtime only reads "
            f"{CACHE_TAG} bytecode, so every cold start will compile from source; "
            f"package with a Python {PYTHON_VERSION} interpreter to ship bytecode"
        )
    return BytecodePlan(None)


def bytecode_name(name: str) -> str:
    """The zip name of ``name``'s bytecode: ``a/b.py`` → ``a/__pycache__/b.cpython-311.pyc``."""
    path = PurePosixPath(name)
    return str(path.parent / "__pycache__" / f"{path.stem}.{CACHE_TAG}.pyc")


class UncompilableSource(Exception):
    """A ``.py`` that is not valid Python 3.11 (it could not be imported in Lambda either)."""


def compile_module(source: Path, name: str, target: Path) -> None:
    """Write ``source``'s unchecked-hash bytecode to ``target``, recording ``/var/task/NAME`` as
    its file name. Raises ``UncompilableSource`` when the file is not valid Python."""
    try:
        py_compile.compile(
            str(source),
            cfile=str(target),
            dfile=str(TASK_ROOT / name),
            doraise=True,
            invalidation_mode=INVALIDATION,
        )
    except py_compile.PyCompileError as exc:
        raise UncompilableSource(f"{name}: {exc.msg.strip().splitlines()[-1]}") from exc


def compile_entries(entries: list[tuple[Path, str]], staging: Path) -> list[tuple[Path, str]]:
    """Bytecode for every ``.py`` among ``entries`` (``(file, name in zip)``), written under
    ``staging`` (never beside the sources: the repository's own ``__pycache__`` stays untouched),
    as ``(file, name in zip)`` entries to add to the package."""
    out: list[tuple[Path, str]] = []
    for source, name in entries:
        if not name.endswith(".py"):
            continue
        cached = bytecode_name(name)
        target = staging / cached
        compile_module(source, name, target)
        out.append((target, cached))
    return out


def compile_tree(folder: Path) -> tuple[int, list[str]]:
    """Compile every ``.py`` under ``folder`` in place, beside its source: ``(compiled, failed)``,
    where ``failed`` names the files that are not valid Python 3.11 (shipped as they are: an
    import of them fails in Lambda just as it would without bytecode)."""
    compiled, failed = 0, []
    for source in sorted(folder.rglob("*.py")):
        name = source.relative_to(folder).as_posix()
        if "__pycache__" in source.parts or not source.is_file():
            continue
        try:
            compile_module(source, name, folder / bytecode_name(name))
            compiled += 1
        except UncompilableSource as exc:
            failed.append(str(exc))
    return compiled, failed
