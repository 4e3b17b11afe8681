"""Great Expectations on a training set before any training, from the model's ``expectations``.

The suite is built from ``conf/models/NAME.yaml`` (``features.model_config.TrainingSetExpectations``):
the key columns and the label never null, the label share (or, for a regression, the label's
range) within declared bounds, declared features never null and within their ranges. It runs on
the rows training is about to fit (a pandas frame: training reads the set into memory anyway,
and a pandas batch costs milliseconds where a Spark one costs a job per expectation). Each
expectation carries a description naming the ``expectations`` key it came from, so a refusal
points at the line of the declaration. The full GX result is returned as JSON for the training
run to attach; the caller decides to stop.

GX is imported only when a suite runs (~3 s), with an ephemeral context and progress bars off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from features.model_config import ModelConfig
from training.dataset import KEY_COLUMNS, LABEL

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class DataCheck:
    """One declared expectation before it becomes a GX object: kept plain so it is testable."""

    gx_type: str
    """The GX expectation class name (``ExpectColumnValuesToNotBeNull``)."""
    kwargs: dict[str, Any]
    description: str
    """``expectations.KEY: what it means``: the line of the declaration a failure names."""


@dataclass(frozen=True)
class DataValidation:
    success: bool
    evaluated: int
    failed: tuple[str, ...]
    """Descriptions of the failed expectations, each with what GX observed."""
    result: dict[str, Any] = field(repr=False)
    """GX's full result as JSON, for the run's artifacts."""


def declared_checks(cfg: ModelConfig) -> list[DataCheck]:
    """The suite for ``cfg``'s training set, in the order it is reported."""
    e = cfg.expectations
    checks = [
        DataCheck(
            "ExpectColumnValuesToNotBeNull",
            {"column": c},
            f"required: {c} must never be null (a training-set key or the label)",
        )
        for c in (*KEY_COLUMNS, LABEL)
    ]
    checks += [
        DataCheck("ExpectColumnValuesToNotBeNull", {"column": c}, f"expectations.not_null: {c} must never be null")
        for c in e.not_null
    ]
    if e.label_share is not None:
        checks.append(
            DataCheck(
                "ExpectColumnMeanToBeBetween",
                {"column": LABEL, "min_value": e.label_share.low, "max_value": e.label_share.high},
                f"expectations.label_share: the share of rows labelled 1 must lie in "
                f"[{e.label_share.low}, {e.label_share.high}]",
            )
        )
    if e.label_range is not None:
        checks.append(
            DataCheck(
                "ExpectColumnValuesToBeBetween",
                {"column": LABEL, "min_value": e.label_range.low, "max_value": e.label_range.high},
                f"expectations.label_range: every label must lie in [{e.label_range.low}, {e.label_range.high}]",
            )
        )
    checks += [
        DataCheck(
            "ExpectColumnValuesToBeBetween",
            {"column": name, "min_value": b.low, "max_value": b.high},
            f"expectations.ranges.{name}: values must lie in [{b.low}, {b.high}]",
        )
        for name, b in e.ranges.items()
    ]
    return checks


def _describe(result: dict[str, Any]) -> str:
    config = result["expectation_config"]
    text = config.get("description") or config["type"]
    info = result.get("exception_info") or {}
    if info.get("raised_exception"):
        return f"{text}: could not run: {info.get('exception_message')}"
    observed = result.get("result") or {}
    if observed.get("unexpected_count") is not None:
        return f"{text} ({observed['unexpected_count']} rows break it)"
    if observed.get("observed_value") is not None:
        return f"{text} (observed {observed['observed_value']:.4g})"
    return text


def validate_training_rows(rows: pd.DataFrame, cfg: ModelConfig) -> DataValidation:
    """Run ``cfg``'s suite on ``rows``; never raises on a failed expectation."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    name = f"training_{cfg.name}"
    suite = context.suites.add(gx.ExpectationSuite(name=f"{name}.suite"))
    for check in declared_checks(cfg):
        suite.add_expectation(getattr(gxe, check.gx_type)(**check.kwargs, description=check.description))
    batch = (
        context.data_sources.add_pandas(name=name)
        .add_dataframe_asset(name=name)
        .add_batch_definition_whole_dataframe(name="whole dataframe")
    )
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    result = definition.run(batch_parameters={"dataframe": rows}).to_json_dict()
    failed = tuple(_describe(r) for r in result["results"] if not r["success"])
    return DataValidation(bool(result["success"]), len(result["results"]), failed, result)
