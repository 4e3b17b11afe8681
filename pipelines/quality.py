"""Great Expectations over what silver is about to commit, built from ``features.expectations``.

Silver splits every micro-batch with the Spark form of the declared row expectations
(``pipelines.expressions.quarantine_reason``); GX then validates the rows it is about to MERGE
against the same declaration, plus the table-level ones (one row per ``(game_id, event_id)``).
GX gives a verdict per expectation, not per row, so it is the independent check and the record
of each commit rather than the splitter: if it fails, the Spark twin and the declaration have
drifted apart, and the batch is not committed. Each result is kept as JSON under
``reports_dir/quality/`` for whoever has to look into it.

Great Expectations is imported only when a validator is built (the import takes ~3 s), once per
silver run; it runs with an ephemeral context (nothing written besides our reports) and its
progress bars off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.config import Settings
from features.expectations import (
    DEFAULT_LATE_AFTER_DAYS,
    TABLE,
    ArrivedInTime,
    Between,
    InSet,
    MatchesRegex,
    NotNull,
    RowExpectation,
    UniqueTogether,
    row_expectations,
)
from pipelines.lake_files import is_remote, write_text

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

SILVER_TABLE = "silver.player_events"


@dataclass(frozen=True)
class QualityReport:
    """Outcome of one suite run: what failed, and where the full GX result was written."""

    table: str
    success: bool
    evaluated: int
    failed: tuple[str, ...]
    path: Path | str
    """The GX result JSON: a local ``Path``, or the ``s3a://`` URI of a report in the lake."""


def gx_expectation(expectation: RowExpectation | ArrivedInTime | UniqueTogether) -> Any:
    """The GX object for one declared expectation, described by the reason silver quarantines with."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    if isinstance(expectation, ArrivedInTime):
        # no row may be received later than the horizon; a row condition, not a SQL query, because
        # GX's query expectations register a temp view in another session than foreachBatch's
        return gxe.ExpectColumnValuesToBeNull(
            column="event_id",
            row_condition=f"unix_millis(received_at) - unix_millis(event_time) > {expectation.late_after_ms}",
            condition_parser="spark",
            description=expectation.reason,
        )
    if isinstance(expectation, UniqueTogether):
        return gxe.ExpectCompoundColumnsToBeUnique(
            column_list=list(expectation.columns), description=expectation.reason
        )
    common: dict[str, Any] = {"column": expectation.column, "description": expectation.reason}
    if expectation.event_type is not None:
        common["row_condition"] = Column("event_type") == expectation.event_type
    if isinstance(expectation, NotNull):
        return gxe.ExpectColumnValuesToNotBeNull(**common)
    if isinstance(expectation, Between):
        return gxe.ExpectColumnValuesToBeBetween(min_value=expectation.low, max_value=expectation.high, **common)
    if isinstance(expectation, InSet):
        return gxe.ExpectColumnValuesToBeInSet(value_set=list(expectation.values), **common)
    if isinstance(expectation, MatchesRegex):
        return gxe.ExpectColumnValuesToMatchRegex(regex=expectation.pattern, **common)
    raise TypeError(f"no GX form for {type(expectation).__name__}: add one to pipelines.quality.gx_expectation")


def silver_expectations(late_after_days: float = DEFAULT_LATE_AFTER_DAYS) -> list[Any]:
    """The silver suite: every declared row expectation and the table-level ones, as GX objects."""
    return [gx_expectation(e) for e in (*row_expectations(late_after_days), *TABLE)]


def _describe(result: dict[str, Any]) -> str:
    config = result["expectation_config"]
    check = config.get("description") or config["type"]
    info = result.get("exception_info") or {}
    infos = [info] if "exception_message" in info else [v for v in info.values() if isinstance(v, dict)]
    error = next((i["exception_message"] for i in infos if i.get("raised_exception")), None)
    if error:
        return f"{check}: could not run: {error}"
    found = (result.get("result") or {}).get("unexpected_count")
    if found is None:
        found = (result.get("result") or {}).get("observed_value")
    return check + (f" ({found} unexpected)" if found is not None else "")


class Validator:
    """One GX context, suite and batch definition, built once and run on many DataFrames.

    Building it imports GX (~3 s), so a job builds one per run and validates every micro-batch
    with it.
    """

    def __init__(self, table: str, expectations: list[Any], reports_dir: Path | str, settings: Settings | None = None):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.table = table
        self.reports_dir = str(reports_dir).rstrip("/")
        self.settings = settings
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        suite = context.suites.add(gx.ExpectationSuite(name=f"{table}.suite"))
        for expectation in expectations:
            suite.add_expectation(expectation)
        batch = (
            context.data_sources.add_spark(name=table)
            .add_dataframe_asset(name=table)
            .add_batch_definition_whole_dataframe(name="whole dataframe")
        )
        self._definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=table, data=batch, suite=suite)
        )

    def validate(self, df: DataFrame, label: str = "") -> QualityReport:
        """Run the suite on ``df`` and write the GX result JSON; does not raise on failure.

        The suite first runs for its verdict alone (``BOOLEAN_ONLY``): GX then computes one
        unexpected count per expectation and none of the sample rows and value lists that its
        default ``SUMMARY`` collects with further Spark jobs each. Only a failing suite, which
        stops the commit and which somebody will read, is run again in ``SUMMARY`` for its report.
        """
        params = {"dataframe": df}
        result = self._definition.run(batch_parameters=params, result_format="BOOLEAN_ONLY").to_json_dict()
        if not result["success"]:
            result = self._definition.run(batch_parameters=params, result_format="SUMMARY").to_json_dict()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        location = f"{self.reports_dir}/quality/{self.table}_{label + '_' if label else ''}{stamp}.json"
        text = json.dumps(result, indent=2, sort_keys=True, default=str)
        path: Path | str
        if is_remote(location):
            if self.settings is None:
                raise ValueError(f"writing reports to {location} needs the settings naming its endpoint")
            path = write_text(self.settings, location, text)
        else:
            path = Path(location)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        failed = tuple(_describe(r) for r in result["results"] if not r["success"])
        return QualityReport(self.table, bool(result["success"]), len(result["results"]), failed, path)


def silver_validator(
    reports_dir: Path | str, late_after_days: float = DEFAULT_LATE_AFTER_DAYS, settings: Settings | None = None
) -> Validator:
    """The validator of rows about to be committed to silver.player_events; its reports go to
    ``reports_dir`` (a folder, or the lake's ``s3a://`` reports location with ``settings``)."""
    return Validator(SILVER_TABLE, silver_expectations(late_after_days), reports_dir, settings)
