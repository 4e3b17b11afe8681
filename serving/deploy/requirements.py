"""The requirements layer of a Lambda package: pinned wheels for the Lambda runtime, installed once.

``pip install --target`` of ``requirements-lambda.txt`` for the python3.11 runtime's platform
takes half a minute and deflating it another twenty seconds; the result depends only on that
list, the platform and the pruning rules, so it is kept (installed, compiled to bytecode for the
runtime's Python, ``serving.deploy.bytecode``, and as a zip) under the work folder in a folder
named by their digest, and every later package starts from a copy of that zip.
A half-finished install never becomes the cache: pip writes into a scratch folder that is
renamed into place only when it completed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from features.errors import PlayerPulseError
from serving.deploy.bytecode import BytecodePlan, bytecode_plan, compile_tree
from serving.deploy.runtime import CACHE_TAG, PLATFORM, PYTHON_VERSION

REQUIREMENTS_FILE = Path(__file__).with_name("requirements-lambda.txt")
LAYER_FORMAT = 3
"""Bumped whenever what a cached layer holds changes, so older caches are rebuilt (2: bytecode,
3: no numpy or scipy)."""

PRUNED: dict[str, str] = {
    f"xgboost/{sub}": "xgboost's Python layer is never imported (the handler calls its C API, serving.native_booster)"
    for sub in ("dask", "spark", "testing")
}
"""Folders removed from the installed requirements, with the reason (glob patterns under the
install folder). The model function's package used to prune scipy and numpy here to stay under
Lambda's 50 MB; it ships neither since it scores through libxgboost directly."""

KEPT_IN_PRUNED: dict[str, tuple[str, ...]] = {}
"""Files kept inside a pruned folder (none today)."""

SKIPPED_SUFFIXES = (".pyc", ".pyi", ".pxd", ".h")
"""Files never shipped from a source tree: bytecode compiled for this machine, type stubs, Cython
and C headers. The layer's own ``__pycache__/*.cpython-311.pyc``, compiled when it is built, ship."""


@dataclass(frozen=True)
class RequirementsLayer:
    folder: Path
    digest: str
    reused: bool
    """True when the folder came from the cache rather than a fresh pip install."""
    source: Path = REQUIREMENTS_FILE
    """The pinned list it was installed from."""
    bytecode: str = ""
    """What the layer ships as bytecode, or why none (``BytecodePlan.note``)."""

    @property
    def requirements_name(self) -> str:
        return self.source.name

    @property
    def archive(self) -> Path:
        """The folder already deflated (``LAYER_ZIP``): a package starts as a copy of it."""
        return self.folder / LAYER_ZIP

    @property
    def unzipped_bytes(self) -> int:
        with zipfile.ZipFile(self.archive) as zf:
            return sum(i.file_size for i in zf.infolist())


LAYER_ZIP = ".layer.zip"
"""Compressing ~150 MB of wheels takes ~20 s; it is done once, when the layer is installed."""
BYTECODE_NOTE = ".bytecode"
"""The layer's ``BytecodePlan.note``, kept so a reused layer reports it too."""


def _shipped(path: Path) -> bool:
    if not path.is_file() or path.name.startswith("."):
        return False
    if "__pycache__" in path.parts:  # only the runtime's bytecode, which the layer compiled itself
        return path.parent.name == "__pycache__" and path.name.endswith(f".{CACHE_TAG}.pyc")
    return path.suffix not in SKIPPED_SUFFIXES


def layer_files(folder: Path) -> list[tuple[Path, str]]:
    """``(file, name in zip)`` of everything shipped from ``folder``, in a stable order."""
    return [(path, path.relative_to(folder).as_posix()) for path in sorted(folder.rglob("*")) if _shipped(path)]


def _archive(folder: Path) -> None:
    with zipfile.ZipFile(folder / LAYER_ZIP, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path, name in layer_files(folder):
            zf.write(path, name)


def requirements_digest(requirements: Path = REQUIREMENTS_FILE, plan: BytecodePlan | None = None) -> str:
    """What the layer's contents depend on: the pinned list, the target platform, the pruning and
    whether this interpreter compiles bytecode for the runtime (``plan``, default: this one's)."""
    plan = plan if plan is not None else bytecode_plan()
    spec = {
        "requirements": requirements.read_text(),
        "platform": PLATFORM,
        "python": PYTHON_VERSION,
        "pruned": sorted(PRUNED),
        "kept": sorted(KEPT_IN_PRUNED.items()),
        "format": LAYER_FORMAT,
        "bytecode": f"{CACHE_TAG}-unchecked-hash" if plan.enabled else None,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _pip_install(requirements: Path, target: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-warn-conflicts",
        "--no-compile",
        "--no-deps",
        "--target",
        str(target),
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "-r",
        str(requirements),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise PlayerPulseError(
            f"pip could not install the Lambda requirements ({requirements}) for {PLATFORM}, "
            f"Python {PYTHON_VERSION}:\n{tail}\n"
            "check that PyPI (or your index) is reachable and that every pinned version has a wheel for that platform"
        )


def _prune(folder: Path) -> None:
    for pattern in PRUNED:
        for path in list(folder.glob(pattern)):
            kept = KEPT_IN_PRUNED.get(path.relative_to(folder).as_posix(), ())
            if path.is_dir() and kept:
                for child in list(path.iterdir()):
                    if child.name in kept:
                        continue
                    if child.is_dir():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
            elif path.is_dir():
                shutil.rmtree(path)
    for path in list(folder.rglob("__pycache__")):
        shutil.rmtree(path, ignore_errors=True)


def requirements_layer(cache_root: Path, requirements: Path = REQUIREMENTS_FILE) -> RequirementsLayer:
    """The installed, pruned requirements for the Lambda runtime, with their bytecode when this
    interpreter can compile it for the runtime, from ``cache_root`` if built before."""
    plan = bytecode_plan()
    digest = requirements_digest(requirements, plan)
    folder = cache_root / f"requirements-{digest}"
    if (folder / ".complete").is_file() and (folder / LAYER_ZIP).is_file():
        note = (folder / BYTECODE_NOTE).read_text() if (folder / BYTECODE_NOTE).is_file() else plan.note(0)
        return RequirementsLayer(folder, digest, reused=True, source=requirements, bytecode=note)
    cache_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".requirements-{digest}-", dir=cache_root))
    try:
        _pip_install(requirements, scratch)
        _prune(scratch)
        note = plan.note(0)
        if plan.enabled:
            compiled, failed = compile_tree(scratch)
            note = plan.note(compiled) + (f"; not valid Python {PYTHON_VERSION}: {', '.join(failed)}" if failed else "")
        (scratch / BYTECODE_NOTE).write_text(note)
        _archive(scratch)
        (scratch / ".complete").write_text(requirements.read_text())
        if folder.exists():  # an incomplete leftover of an interrupted run
            shutil.rmtree(folder)
        scratch.rename(folder)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return RequirementsLayer(folder, digest, reused=False, source=requirements, bytecode=note)
