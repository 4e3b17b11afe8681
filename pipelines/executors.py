"""What executors in processes of their own need from a session this process builds.

With ``local[N]`` every task runs inside the driver's JVM and its Python workers inherit the
driver's environment, so a job can lean on driver-local state without noticing. With
``local-cluster[W,C,MB]`` (W worker processes on this machine, the closest thing to a cluster
without one) or a standalone ``spark://`` master, executors are separate JVMs and need:

- **Spark itself.** A ``local-cluster`` worker launches each executor from ``$SPARK_HOME``
  (``jars/`` for the class path) and keeps its logs under ``$SPARK_HOME/work``. With a
  pip-installed pyspark that home is the package folder inside the virtualenv, so every run
  would leave executor logs in the installed package (or fail on a read-only one): the session
  gets a home of its own under ``{workdir}/spark/home``, links to pyspark's ``bin``, ``jars`` and
  ``conf``, so the logs stay in the work folder (``{workdir}/spark/home/work/app-…/N/stderr``).
- **The project's Python code.** Python workers import ``pipelines.stream_source`` (the stream
  reader's ``read``) and the UDFs' modules; an executor must import the code this driver runs,
  not whatever version happens to be installed where it runs. ``code_archive`` zips the
  packages the driver imported from and the session ships it (``SparkContext.addPyFile``), so
  workers put it on ``sys.path`` ahead of site-packages.
- **The Python interpreter.** Workers run ``PYSPARK_PYTHON`` (the session factory defaults it to
  this interpreter); executors on other machines need the same path there.
- **JVM jars.** ``spark.jars`` (Delta, S3A) is served by the driver and fetched by every executor.

On a cluster (``spark.master: null``) the cluster provides all of this (its Spark, the wheel or
venv archive, its jars), so nothing here applies.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from pathlib import Path

from features.config import Settings, conf_dir

CODE_PACKAGES = ("features", "pipelines", "training", "serving", "playerpulse")
"""The project's import packages; executors need them all (a UDF may import any)."""

_LOCAL = re.compile(r"^local(\[[^\]]*\])?$")
_LOCAL_CLUSTER = re.compile(r"^local-cluster\[\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\]$")


def has_remote_executors(master: str | None) -> bool:
    """Whether a master this process builds runs tasks outside the driver's own JVM."""
    return master is not None and not _LOCAL.match(master.strip())


def is_local_cluster(master: str | None) -> bool:
    return master is not None and bool(_LOCAL_CLUSTER.match(master.strip()))


def pyspark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def local_cluster_home(settings: Settings) -> Path:
    """A Spark home under the work folder whose ``bin``, ``jars`` and ``conf`` are pyspark's."""
    home = Path(settings.workdir).resolve() / "spark" / "home"
    home.mkdir(parents=True, exist_ok=True)
    source = pyspark_home()
    for name in ("bin", "jars", "conf"):
        link, target = home / name, source / name
        if not target.exists():
            continue
        if link.is_symlink() and Path(os.readlink(link)) == target:
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
    return home


def executor_java_options() -> str:
    """Executors log through the project's log4j settings (WARN), as the driver does; Spark's
    default is INFO for every task, megabytes of log per job on a small lake."""
    return f"-Dlog4j2.configurationFile={conf_dir() / 'log4j2.properties'}"


def _package_dirs() -> list[Path]:
    import importlib

    return [Path(importlib.import_module(name).__file__ or "").resolve().parent for name in CODE_PACKAGES]


def code_archive(settings: Settings) -> Path:
    """A zip of the project's packages as this driver imports them, named by its content's
    digest (so a changed file gives a new name and executors never reuse a stale copy)."""
    files: list[tuple[str, Path]] = []
    for folder in _package_dirs():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".typed") and "__pycache__" not in path.parts:
                files.append((f"{folder.name}/{path.relative_to(folder).as_posix()}", path))
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    out = Path(settings.workdir).resolve() / "spark" / "pyfiles" / f"playerpulse-{digest.hexdigest()[:16]}.zip"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".zip.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, path in files:
                archive.write(path, name)
        partial.replace(out)
    return out
