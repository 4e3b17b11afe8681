"""``playerpulse report latency|model NAME [--since …] [--out FILE] [--check]`` (registered in ``cli.py``).

Each report reads its Delta tables (``gold.latency``; ``gold.predictions``, ``silver.player_events``
for the labels and the model's training set at the version its champion was trained on, found
through the champion's MLflow run), writes one self-contained HTML file and prints where. With ``--check`` every
alert threshold (``alerts`` in the configuration) the report's figures break is printed as one
line on stderr and the command exits 1: a scheduler pages on the exit code, a person reads
the lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from features.config import Settings, load_settings
from features.errors import ConfigError, TableNotFound, TrainingFailed
from playerpulse.model_report import ModelContext
from playerpulse.report_html import Report

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

report_app = typer.Typer(help="HTML reports on latency and model health; --check for alerts.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

_RELATIVE = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}

Since = Annotated[
    str | None,
    typer.Option(help="Only data from this time on: an ISO date or time (UTC), or an age such as 90m, 6h, 7d."),
]
Out = Annotated[Path | None, typer.Option(help="HTML file to write (default: {workdir}/reports/<report>.html).")]
Check = Annotated[bool, typer.Option("--check", help="Exit 1 with one line per breached alert threshold.")]
Env = Annotated[str | None, typer.Option("--env", help="Configuration to use: conf/<env>.yaml.")]
Workdir = Annotated[Path | None, typer.Option("--workdir", help="Folder for all embedded state.")]


def parse_since(since: str | None, now: datetime | None = None) -> datetime | None:
    """``--since`` as an aware UTC time; ``ConfigError`` naming the option when unreadable."""
    if since is None:
        return None
    m = _RELATIVE.match(since.strip())
    if m:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        parsed = datetime.fromisoformat(since.strip())
    except ValueError:
        raise ConfigError(
            f"--since '{since}' is neither an ISO date/time (2026-12-01, 2026-12-01T10:00) nor an age (90m, 6h, 7d)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _window(since: datetime | None) -> str:
    return f"since {since:%Y-%m-%d %H:%M} UTC" if since else "all time"


def _naive_utc(since: datetime) -> datetime:
    return since.astimezone(UTC).replace(tzinfo=None)


def load_latency(spark: SparkSession, settings: Settings, since: datetime | None = None) -> pd.DataFrame:
    from pyspark.sql import functions as F

    from pipelines.lake import read_table

    rows = read_table(spark, settings, "gold.latency", "monitoring")
    if since is not None:
        rows = rows.where(F.col("at") >= F.lit(_naive_utc(since)))
    return rows.select("at", "source", "batch", "hop", "ms").toPandas()


@dataclass
class ModelInputs:
    predictions: pd.DataFrame
    """``gold.predictions`` rows of the model, with ``label`` where their label window has ended."""
    training: pd.DataFrame
    """Feature columns of ``gold.training_NAME``, at the version the champion was trained on."""
    features: list[str]
    context: ModelContext


def _champion(settings: Settings, name: str) -> tuple[int | None, float | None, int | None, str | None]:
    """``(version, test AUC, training_table_version, note)`` of the champion's MLflow run; a
    note instead where MLflow has no champion or cannot be read."""
    from training.registry import CHAMPION, tracking_client, version_by_alias

    uri = settings.mlflow.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None, None, None, f"no MLflow tracking store at {uri} yet"
    try:
        client = tracking_client(settings)
        mv = version_by_alias(client, name, CHAMPION)
        if mv is None:
            return None, None, None, f"model '{name}' has no champion in MLflow"
        run = client.get_run(mv.run_id) if mv.run_id else None
    except Exception as exc:  # the report still shows what the lake holds
        return None, None, None, f"MLflow could not be read ({type(exc).__name__}: {exc})"
    metrics, tags = (run.data.metrics, run.data.tags) if run else ({}, {})
    recorded = tags.get("training_table_version") or mv.tags.get("training_table_version")
    auc = metrics.get("test_auc")
    return (
        int(mv.version),
        None if auc is None else float(auc),
        None if recorded is None else int(recorded),
        None,
    )


def training_of_champion(
    spark: SparkSession, settings: Settings, table: str, champion: int | None, recorded: int | None, why: str | None
) -> tuple[DataFrame, int, str]:
    """``table`` at the version the champion's run read (time travel), else its latest version,
    with a note saying which and why."""
    from pipelines.lake import read_table, table_version
    from pipelines.session import table_path
    from training.dataset import read_pinned

    latest_df = read_table(spark, settings, table, f"train {table.removeprefix('gold.training_')}")
    latest = table_version(spark, table_path(settings, table))
    if recorded is not None:
        try:
            df, version = read_pinned(spark, settings, table, recorded)
            note = f"PSI compares with {table} version {version}, the data champion v{champion} was trained on."
            return df, version, note
        except TrainingFailed:  # vacuumed (retention) or a table recreated since
            note = (
                f"{table} version {recorded}, the data champion v{champion} was trained on, cannot be read "
                f"(VACUUM removed its files, or the table no longer has that version): PSI compares with its "
                f"latest version {latest} instead."
            )
            return latest_df, latest, note
    reason = why or f"champion v{champion}'s run records no training_table_version"
    return latest_df, latest, f"PSI compares with the latest version {latest} of {table} ({reason})."


def load_model(
    spark: SparkSession, settings: Settings, name: str, since: datetime | None = None, training_rows: int = 100_000
) -> ModelInputs:
    """Model ``name``'s logged predictions (labelled where their label window has ended), its
    champion's training data and what the report compares with (``ModelContext``)."""
    from pyspark.sql import functions as F

    from features.model_config import load_model_config
    from pipelines.lake import read_table
    from pipelines.monitoring import label_predictions
    from pipelines.silver import EVENTS_TABLE

    cfg = load_model_config(settings, name)
    predictions = read_table(spark, settings, "gold.predictions", "monitoring").where(F.col("model") == name)
    if since is not None:
        predictions = predictions.where(F.col("served_at") >= F.lit(_naive_utc(since)))
    labels_until, label_note = None, None
    if not cfg.label.is_classification:
        label_note = f"Live AUC is for classifiers; '{name}' has a {cfg.label.kind} label."
    else:
        try:
            events = read_table(spark, settings, EVENTS_TABLE, "silver")
        except TableNotFound as exc:
            label_note = f"No labels: {exc}."
        else:
            predictions, labels_until = label_predictions(predictions, events, cfg.label)
    version, test_auc, recorded, why = _champion(settings, name)
    training, training_version, training_note = training_of_champion(
        spark, settings, f"gold.training_{name}", version, recorded, why
    )
    features = [f for f in cfg.feature_names if f in training.columns]
    context = ModelContext(
        champion_version=version,
        champion_test_auc=test_auc,
        training_version=training_version,
        training_note=training_note,
        labels_until=labels_until,
        label_note=label_note,
    )
    return ModelInputs(
        predictions.toPandas(),
        training.select(*features).limit(training_rows).toPandas(),
        list(cfg.feature_names),
        context,
    )


def latency_page(spark: SparkSession, settings: Settings, since: datetime | None = None) -> Report:
    """The latency report of ``gold.latency`` (``since`` on), as ``report latency`` renders it."""
    from playerpulse.latency_report import latency_report

    return latency_report(load_latency(spark, settings, since), settings.alerts, _window(since))


def model_page(spark: SparkSession, settings: Settings, name: str, since: datetime | None = None) -> Report:
    """The health report of model ``name``, as ``report model NAME`` renders it."""
    from playerpulse.model_report import model_report

    m = load_model(spark, settings, name, since)
    return model_report(name, m.predictions, m.training, m.features, settings.alerts, m.context)


def write_report(report: Report, out: Path | None, settings: Settings, default_name: str) -> Path:
    """Write the page to ``out``, else ``{workdir}/reports/default_name``; where it went."""
    path = out or settings.reports_dir / default_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.html(), encoding="utf-8")
    return path


def _finish(report: Report, path: Path, check: bool) -> None:
    console.print(f"wrote {path} ({len(report.sections)} sections, {len(report.breaches)} breaches)")
    if check and report.breaches:
        for line in report.breaches:
            err_console.print(f"ALERT {line}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _spark(settings: Settings) -> SparkSession:
    from pipelines.session import get_spark

    return get_spark(settings, app_name="playerpulse-report")


@report_app.command("latency")
def latency_command(
    since: Since = None, out: Out = None, check: Check = False, env: Env = None, workdir: Workdir = None
) -> None:
    """Per-hop latency distributions, p50/p95/p99 over time, stream backlog, micro-batch durations."""
    settings = load_settings(env, workdir)
    report = latency_page(_spark(settings), settings, parse_since(since))  # the session ends with the process
    _finish(report, write_report(report, out, settings, "latency.html"), check)


@report_app.command("model")
def model_command(
    name: Annotated[str, typer.Argument(help="A model declared in conf/models/NAME.yaml.")],
    since: Since = None,
    out: Out = None,
    check: Check = False,
    env: Env = None,
    workdir: Workdir = None,
) -> None:
    """Score distribution over time, fallback rate by reason, challenger vs champion, live AUC, feature drift (PSI)."""
    settings = load_settings(env, workdir)
    report = model_page(_spark(settings), settings, name, parse_since(since))
    _finish(report, write_report(report, out, settings, f"model-{name}.html"), check)
