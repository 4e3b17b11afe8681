"""Great Expectations checks of silver.player_events: the contract gold and training rely on.

The suite restates, independently of silver's own code, what downstream jobs assume: one row
per ``event_id``, known event types and platforms, the keys and times present, property values
in their ranges. A failure stops the pipeline before gold reads bad data, and the full GX
result is kept as JSON under ``reports_dir/quality/`` for whoever has to look into it.

Great Expectations is imported only when a validation runs (the import takes ~3 s) and runs
with an ephemeral context (nothing written besides our report) and its progress bars off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.config import Settings
from features.contract import EVENT_TYPES, PLATFORMS
from features.errors import DataQualityError
from pipelines.lake import read_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SILVER_TABLE = "silver.player_events"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
NOT_NULL = ("event_id", "event_type", "player_id", "game_id", "event_time", "received_at", "event_date")
# (column, low, high) for property columns where present (nulls are not checked).
RANGES: tuple[tuple[str, float, float], ...] = (
    ("price_usd", 0.0, 1000.0),
    ("won", 0.0, 1.0),
)


@dataclass(frozen=True)
class QualityReport:
    """Outcome of one suite run: what failed, and where the full GX result was written."""

    table: str
    success: bool
    evaluated: int
    failed: tuple[str, ...]
    path: Path


def silver_expectations() -> list[Any]:
    """The silver suite's expectations (GX objects; building them imports GX)."""
    import great_expectations.expectations as gxe

    out: list[Any] = [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in NOT_NULL]
    out += [
        gxe.ExpectColumnValuesToBeUnique(column="event_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="event_id", regex=UUID_PATTERN),
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=list(EVENT_TYPES)),
        gxe.ExpectColumnValuesToBeInSet(column="platform", value_set=list(PLATFORMS)),
    ]
    out += [gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi) for c, lo, hi in RANGES]
    return out


def _describe(result: dict[str, Any]) -> str:
    config = result["expectation_config"]
    kwargs = {k: v for k, v in config["kwargs"].items() if k not in ("batch_id", "value_set")}
    check = f"{config['type']}({', '.join(f'{k}={v}' for k, v in sorted(kwargs.items()))})"
    error = (result.get("exception_info") or {}).get("exception_message")
    if error:
        return f"{check}: could not run: {error}"
    found = (result.get("result") or {}).get("unexpected_count")
    return check + (f": {found} unexpected" if found is not None else "")


def validate_dataframe(df: DataFrame, table: str, expectations: list[Any], reports_dir: Path) -> QualityReport:
    """Run ``expectations`` on ``df`` and write the GX result JSON; does not raise on failure."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = context.suites.add(gx.ExpectationSuite(name=f"{table}.suite"))
    for expectation in expectations:
        suite.add_expectation(expectation)
    batch = (
        context.data_sources.add_spark(name=table)
        .add_dataframe_asset(name=table)
        .add_batch_definition_whole_dataframe(name="whole table")
    )
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=table, data=batch, suite=suite))
    try:
        result = definition.run(batch_parameters={"dataframe": df}).to_json_dict()
    finally:
        df.unpersist()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = reports_dir / "quality" / f"{table}_{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
    failed = tuple(_describe(r) for r in result["results"] if not r["success"])
    return QualityReport(table, bool(result["success"]), len(result["results"]), failed, path)


def validate_silver(spark: SparkSession, settings: Settings) -> QualityReport:
    """Validate the whole of silver.player_events; raise ``DataQualityError`` if any check fails."""
    silver = read_table(spark, settings, SILVER_TABLE, produced_by="silver")
    report = validate_dataframe(silver, SILVER_TABLE, silver_expectations(), settings.reports_dir)
    if not report.success:
        raise DataQualityError(
            f"{SILVER_TABLE} failed {len(report.failed)} of {report.evaluated} quality checks: "
            + "; ".join(report.failed)
            + f" (full result: {report.path})"
        )
    return report
