"""The requirements layer of a Lambda package: pinned wheels for the Lambda runtime, installed once.

``pip install --target`` of ``requirements-lambda.txt`` for the python3.11 runtime's platform
takes half a minute and deflating it another twenty seconds; the result depends only on that
list, the platform and the pruning rules, so it is kept (installed and as a zip) under the work
folder in a folder named by their digest, and every later package starts from a copy of that zip.
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

REQUIREMENTS_FILE = Path(__file__).with_name("requirements-lambda.txt")
PLATFORM = "manylinux2014_x86_64"
"""Amazon Linux 2 (glibc 2.26) under the python3.11 runtime: manylinux_2_28 wheels would not load."""
PYTHON_VERSION = "3.11"
RUNTIME = "python3.11"
ARCHITECTURE = "x86_64"

PRUNED: dict[str, str] = {
    **{
        f"scipy/{sub}": "xgboost imports only scipy.sparse (with scipy.linalg, scipy.special and scipy._lib)"
        for sub in (
            "cluster",
            "datasets",
            "differentiate",
            "fft",
            "fftpack",
            "integrate",
            "interpolate",
            "io",
            "misc",
            "ndimage",
            "odr",
            "optimize",
            "signal",
            "spatial",
            "stats",
        )
    },
    "scipy/**/tests": "scipy's own test suites",
}
"""Folders removed from the installed requirements, with the reason. Without them the package
is ~45 MB zipped instead of ~56 MB, under Lambda's 50 MB direct-upload limit. numpy's ``tests``
folders stay: ``numpy.testing`` imports from one of them."""

SKIPPED_SUFFIXES = (".pyc", ".pyi", ".pxd", ".h")
"""Files never shipped: bytecode compiled for this machine, type stubs, Cython and C headers."""


@dataclass(frozen=True)
class RequirementsLayer:
    folder: Path
    digest: str
    reused: bool
    """True when the folder came from the cache rather than a fresh pip install."""
    source: Path = REQUIREMENTS_FILE
    """The pinned list it was installed from."""

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


def layer_files(folder: Path) -> list[tuple[Path, str]]:
    """``(file, name in zip)`` of everything shipped from ``folder``, in a stable order."""
    out = []
    for path in sorted(folder.rglob("*")):
        shipped = not path.name.startswith(".") and path.suffix not in SKIPPED_SUFFIXES
        if shipped and path.is_file() and "__pycache__" not in path.parts:
            out.append((path, path.relative_to(folder).as_posix()))
    return out


def _archive(folder: Path) -> None:
    with zipfile.ZipFile(folder / LAYER_ZIP, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path, name in layer_files(folder):
            zf.write(path, name)


def requirements_digest(requirements: Path = REQUIREMENTS_FILE) -> str:
    """What the layer's contents depend on: the pinned list, the target platform and the pruning."""
    spec = {
        "requirements": requirements.read_text(),
        "platform": PLATFORM,
        "python": PYTHON_VERSION,
        "pruned": sorted(PRUNED),
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
            if path.is_dir():
                shutil.rmtree(path)
    for path in list(folder.rglob("__pycache__")):
        shutil.rmtree(path, ignore_errors=True)


def requirements_layer(cache_root: Path, requirements: Path = REQUIREMENTS_FILE) -> RequirementsLayer:
    """The installed, pruned requirements for the Lambda runtime, from ``cache_root`` if built before."""
    digest = requirements_digest(requirements)
    folder = cache_root / f"requirements-{digest}"
    if (folder / ".complete").is_file() and (folder / LAYER_ZIP).is_file():
        return RequirementsLayer(folder, digest, reused=True, source=requirements)
    cache_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".requirements-{digest}-", dir=cache_root))
    try:
        _pip_install(requirements, scratch)
        _prune(scratch)
        _archive(scratch)
        (scratch / ".complete").write_text(requirements.read_text())
        if folder.exists():  # an incomplete leftover of an interrupted run
            shutil.rmtree(folder)
        scratch.rename(folder)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return RequirementsLayer(folder, digest, reused=False, source=requirements)
