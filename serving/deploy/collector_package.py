"""The collector's AWS Lambda package: the same code tree as a model's, its own requirements.

The SAM template's collector function (handler ``serving.lambda_handler.handler``) points at
``dist/lambda/collector.zip``; ``playerpulse collector package --out dist/lambda`` builds it.
It holds the code every function ships (``features/``, ``serving/`` without ``serving/deploy``,
``conf/*.yaml``; see ``serving.deploy.package``) and ``requirements-collector.txt`` installed
for the python3.11 runtime, each ``.py`` with its bytecode (``serving.deploy.bytecode``). No
model is in it, and neither numpy nor xgboost: the collector decodes, validates and puts
records, so its zip is a few MiB and its cold start short. The
pinned layer is cached under the work folder like a model's (a different digest, so the two
never mix), and the same Lambda size limits are enforced before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from features.config import Settings, repo_root
from serving.deploy import naming
from serving.deploy.package import (
    LAMBDA_LIMITS,
    SizeLimits,
    bytecode_summary,
    code_entries,
    lambda_cache_dir,
    mib,
    write_package,
)
from serving.deploy.requirements import RequirementsLayer, requirements_layer

COLLECTOR_REQUIREMENTS = Path(__file__).with_name("requirements-collector.txt")
COLLECTOR_HANDLER = "serving.lambda_handler.handler"
"""The handler the rendered stack names for the collector function."""
COLLECTOR_ZIP = "collector.zip"
"""The file name the stack's ``CodeUri`` expects under ``dist/lambda/``."""


@dataclass(frozen=True)
class CollectorPackageReport:
    path: Path
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    requirements: RequirementsLayer
    limits: SizeLimits = LAMBDA_LIMITS
    bytecode: str = ""
    """What the collector's own code ships as bytecode, or why none (the layer says its own)."""

    def summary(self) -> str:
        cache = "reused from cache" if self.requirements.reused else "installed"
        return (
            f"{self.path}: {naming.COLLECTOR} ({COLLECTOR_HANDLER}), {self.files} files, "
            f"{mib(self.zipped_bytes)} zipped (Lambda's limit {mib(self.limits.zipped_bytes)}), "
            f"{mib(self.unzipped_bytes)} unzipped (limit {mib(self.limits.unzipped_bytes)}); "
            f"requirements {cache} ({self.requirements.folder}); {bytecode_summary(self.bytecode, self.requirements)}"
        )


def default_collector_path(settings: Settings) -> Path:
    """Where ``playerpulse collector package`` writes without ``--out``: next to the model zips."""
    return lambda_cache_dir(settings) / "packages" / COLLECTOR_ZIP


def package_collector(
    settings: Settings, out_dir: Path | None = None, limits: SizeLimits = LAMBDA_LIMITS
) -> CollectorPackageReport:
    """Build ``collector.zip`` in ``out_dir`` (default: the work folder's ``lambda/packages``)."""
    out = (out_dir / COLLECTOR_ZIP) if out_dir is not None else default_collector_path(settings)
    layer = requirements_layer(lambda_cache_dir(settings), COLLECTOR_REQUIREMENTS)
    written = write_package("the collector", out, layer, code_entries(repo_root()), limits)
    return CollectorPackageReport(out, *written[:3], layer, limits, bytecode=written.bytecode)
