"""One model's AWS Lambda package: the handler's code, its champion as files, and its requirements.

The zip holds, at its root (Lambda's ``/var/task``):

- ``features/`` and ``serving/`` (without ``serving/deploy``, which is build-time code that
  imports MLflow) and ``conf/*.yaml``, which ``load_settings`` reads from next to ``features``;
- ``model/``: the champion resolved through the registry (``models:/NAME@champion``) exported
  as xgboost's native ``model.ubj`` with ``metadata.json`` (``serving.model_files``, the format
  the handler loads) and the model's declaration ``NAME.yaml``;
- the pinned runtime requirements (``serving.deploy.requirements``);
- beside every ``.py``, its ``__pycache__/NAME.cpython-311.pyc`` (``serving.deploy.bytecode``):
  ``/var/task`` is read-only, so without it every cold start compiles every module again.

The champion is checked against its declaration before anything is written, as the function
would check it at cold start, so a mismatch fails here rather than in AWS. Lambda refuses a
zip over 50 MB for direct upload and anything over 250 MB unzipped; the builder refuses them
first (bytecode included) and says what to trim.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from features.config import Settings, repo_root
from features.errors import PlayerPulseError
from features.model_config import load_model_config, model_config_path
from serving.deploy.bytecode import bytecode_plan, compile_entries
from serving.deploy.requirements import SKIPPED_SUFFIXES, RequirementsLayer, requirements_layer


@dataclass(frozen=True)
class SizeLimits:
    zipped_bytes: int = 50 * 1024 * 1024
    """Lambda's limit for a zip uploaded directly with the API (``ZipFile``)."""
    unzipped_bytes: int = 250 * 1024 * 1024
    """Lambda's limit for the unzipped function (code and layers together)."""


LAMBDA_LIMITS = SizeLimits()

CODE_PACKAGES = ("features", "serving")
EXCLUDED_CODE = ("serving/deploy",)
"""Build-time code that the handler never imports (and that would pull MLflow in)."""
HANDLER = "serving.model_function.handler"
MODEL_ENV = "PLAYERPULSE_MODEL"


@dataclass(frozen=True)
class PackageReport:
    model: str
    version: int
    path: Path
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    requirements: RequirementsLayer
    limits: SizeLimits = LAMBDA_LIMITS
    bytecode: str = ""
    """What the package's own code ships as bytecode, or why none (the layer says its own)."""

    def summary(self) -> str:
        cache = "reused from cache" if self.requirements.reused else "installed"
        return (
            f"{self.path}: {self.model} v{self.version}, {self.files} files, "
            f"{mib(self.zipped_bytes)} zipped (Lambda's limit {mib(self.limits.zipped_bytes)}), "
            f"{mib(self.unzipped_bytes)} unzipped (limit {mib(self.limits.unzipped_bytes)}); "
            f"requirements {cache} ({self.requirements.folder}); {bytecode_summary(self.bytecode, self.requirements)}"
        )


def bytecode_summary(code: str, layer: RequirementsLayer) -> str:
    """One clause for a summary: the code's and the requirements' bytecode (or why there is none)."""
    if code == layer.bytecode:
        return code
    return f"code: {code}; requirements: {layer.bytecode}"


class WrittenPackage(NamedTuple):
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    bytecode: str
    """``BytecodePlan.note`` for the code entries: how many modules got bytecode, or why none."""


def _trim(layer: RequirementsLayer) -> str:
    return (
        f"remove requirements the handler does not import from serving/deploy/{layer.requirements_name} "
        "(or prune more of them in serving/deploy/requirements.py)"
    )


def mib(n: int) -> str:
    """Bytes as the MiB figure every size message prints."""
    return f"{n / 2**20:.1f} MiB"


def lambda_cache_dir(settings: Settings) -> Path:
    return Path(settings.workdir) / "lambda"


def default_package_path(settings: Settings, model: str) -> Path:
    """Where ``playerpulse models package NAME`` writes, and ``models deploy NAME`` reads, by default."""
    return lambda_cache_dir(settings) / "packages" / f"{model}.zip"


def _files(root: Path, base: Path, excluded: tuple[str, ...] = ()) -> Iterator[tuple[Path, str]]:
    """``(file, name in zip)`` under ``root`` with names relative to ``base``, in a stable order."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(base).as_posix()
        if not path.is_file() or path.name.startswith(".") or path.suffix in SKIPPED_SUFFIXES:
            continue
        if "__pycache__" in path.parts or any(rel == e or rel.startswith(e + "/") for e in excluded):
            continue
        yield path, rel


def _export_champion(settings: Settings, model: str, folder: Path) -> int:
    """Resolve ``models:/MODEL@champion``, check it against its declaration, write ``model/``."""
    from serving.model_files import check_features, save_champion
    from serving.models import ChampionCache

    cfg = load_model_config(settings, model)
    champion = ChampionCache(settings).get(model)
    check_features(champion, cfg)
    save_champion(champion, folder)
    (folder / f"{model}.yaml").write_bytes(model_config_path(settings, model).read_bytes())
    return champion.version


def code_entries(root: Path) -> list[tuple[Path, str]]:
    """The handler code every function ships: ``features/``, ``serving/`` (not its build-time
    ``deploy/``) and ``conf/*.yaml``, named as they sit in ``/var/task``."""
    entries: list[tuple[Path, str]] = []
    for pkg in CODE_PACKAGES:
        entries += _files(root / pkg, root, EXCLUDED_CODE)
    entries += [(p, f"conf/{p.name}") for p in sorted((root / "conf").glob("*.yaml"))]
    return entries


def write_package(
    what: str, out: Path, layer: RequirementsLayer, entries: list[tuple[Path, str]], limits: SizeLimits
) -> WrittenPackage:
    """Zip ``layer``, ``entries`` and the entries' bytecode into ``out`` within ``limits``.

    The bytecode is compiled into a scratch folder (when this interpreter is the runtime's
    Python; otherwise the package has none and the note says why) and counts toward both
    limits. Over the unzipped limit nothing is written; over the zipped limit the half-made zip
    is removed. Either way the error names ``what`` and what to trim. ``out`` appears only whole.
    """
    plan = bytecode_plan()
    with tempfile.TemporaryDirectory(prefix="pp-bytecode-") as scratch:
        compiled = compile_entries(entries, Path(scratch)) if plan.enabled else []
        written = _write_zip(what, out, layer, entries + compiled, limits)
    return WrittenPackage(*written, plan.note(len(compiled)))


def _write_zip(
    what: str, out: Path, layer: RequirementsLayer, entries: list[tuple[Path, str]], limits: SizeLimits
) -> tuple[int, int, int]:
    unzipped = layer.unzipped_bytes + sum(p.stat().st_size for p, _ in entries)
    if unzipped > limits.unzipped_bytes:
        raise PlayerPulseError(
            f"the package for {what} would be {mib(unzipped)} unzipped, over Lambda's "
            f"{mib(limits.unzipped_bytes)} limit: {_trim(layer)}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".zip.partial")
    shutil.copyfile(layer.archive, partial)
    with zipfile.ZipFile(partial, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path, name in entries:
            zf.write(path, name)
        files = len(zf.infolist())
    zipped = partial.stat().st_size
    if zipped > limits.zipped_bytes:
        partial.unlink()
        raise PlayerPulseError(
            f"the package for {what} is {mib(zipped)} zipped, over Lambda's "
            f"{mib(limits.zipped_bytes)} direct-upload limit: {_trim(layer)}"
        )
    os.replace(partial, out)
    return zipped, unzipped, files


def package_model(
    settings: Settings, model: str, out_dir: Path | None = None, limits: SizeLimits = LAMBDA_LIMITS
) -> PackageReport:
    """Build ``MODEL.zip`` in ``out_dir`` (default: the work folder's ``lambda/packages``)."""
    out = (out_dir / f"{model}.zip") if out_dir is not None else default_package_path(settings, model)
    with tempfile.TemporaryDirectory(prefix=f"pp-package-{model}-") as tmp:
        staging = Path(tmp)
        version = _export_champion(settings, model, staging / "model")  # fails fast: no champion, no pip
        layer = requirements_layer(lambda_cache_dir(settings))
        entries = code_entries(repo_root()) + list(_files(staging / "model", staging))
        written = write_package(f"'{model}'", out, layer, entries, limits)
    return PackageReport(model, version, out, *written[:3], layer, limits, bytecode=written.bytecode)
