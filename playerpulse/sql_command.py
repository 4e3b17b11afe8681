"""``playerpulse sql "SELECT …"``: query the lake's tables by name (registered in ``cli.py``).

Analysts and scripts get the same names the jobs write (``silver.player_events``,
``gold.player_daily``): the session catalog is rebuilt from the lake first
(``pipelines.session.register_tables``). A table is printed with rich for people; ``--format
csv`` and ``--format json`` write only the rows to stdout, so a pipe never sees a progress
line. A query Spark rejects (a missing table, a typo, bad SQL) is one line naming Spark's error
class, never a JVM stack trace.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from features.config import Settings, load_settings
from features.errors import PlayerPulseError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_LIMIT = 1000


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


class QueryError(PlayerPulseError):
    """Spark refused or failed the query; the message is Spark's first line plus what to do."""


@dataclass(frozen=True)
class QueryResult:
    """At most ``limit`` rows of a query, and whether more were left out."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__


def _hint(exc: Exception, tables: list[str]) -> str:
    condition = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
    name = condition() if callable(condition) else None
    if name in ("TABLE_OR_VIEW_NOT_FOUND", "SCHEMA_NOT_FOUND"):
        known = ", ".join(tables) or "none yet: run `playerpulse pipeline all` first"
        return f" (tables in the lake: {known})"
    if name and name.startswith(("PARSE_SYNTAX_ERROR", "PARSE_")):
        return " (check the SQL near the position shown)"
    return ""


def _quiet_query_context_loggers() -> None:
    """PySpark logs every failed query with its JVM stack trace at ERROR; the command says it in one line."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)


def run_query(spark: SparkSession, settings: Settings, query: str, limit: int = DEFAULT_LIMIT) -> QueryResult:
    """Run ``query`` over the lake's tables; at most ``limit`` rows. Raises ``QueryError``."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    from pipelines.session import register_tables

    if not query.strip():
        raise QueryError('the query is empty: pass a statement such as "SELECT * FROM gold.player_daily LIMIT 5"')
    if limit < 1:
        raise QueryError(f"--limit must be at least 1, got {limit}")
    _quiet_query_context_loggers()
    tables = register_tables(spark, settings)
    try:
        frame = spark.sql(query)
        rows = [tuple(r) for r in frame.limit(limit + 1).collect()]
    except PySparkException as exc:
        raise QueryError(f"query failed: {_one_line(exc)}{_hint(exc, tables)}") from None
    except Py4JJavaError as exc:  # a failure inside the JVM that PySpark did not convert
        raise QueryError(f"query failed: {_one_line(exc.java_exception)}") from None
    return QueryResult(list(frame.columns), rows[:limit], truncated=len(rows) > limit)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def to_csv(result: QueryResult) -> str:
    """The rows as CSV with a header line (missing values are empty fields)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    writer.writerows([_cell(v) for v in row] for row in result.rows)
    return out.getvalue()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "asDict"):  # a nested Row (struct column)
        return {k: _jsonable(v) for k, v in value.asDict().items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def to_json(result: QueryResult) -> bytes:
    """The rows as one JSON array of objects keyed by column (times in RFC 3339, decimals as text)."""
    import msgspec

    records = [dict(zip(result.columns, (_jsonable(v) for v in row), strict=True)) for row in result.rows]
    return msgspec.json.encode(records) + b"\n"


def to_table(result: QueryResult) -> Table:
    table = Table(*result.columns)
    for row in result.rows:
        table.add_row(*(_cell(v) for v in row))
    return table


def sql(
    query: Annotated[str, typer.Argument(help='A Spark SQL statement, e.g. "SELECT * FROM gold.player_daily".')],
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table (for people), csv or json (rows only, for scripts).")
    ] = OutputFormat.table,
    limit: Annotated[int, typer.Option(min=1, help="Print at most this many rows.")] = DEFAULT_LIMIT,
    env: Annotated[
        str | None,
        typer.Option("--env", help="Configuration to use: conf/<env>.yaml (default $PLAYERPULSE_ENV or 'local')."),
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Folder for all embedded state (default: the config's workdir).")
    ] = None,
) -> None:
    """Query the lake's tables by name (bronze.*, silver.*, gold.*) and print the rows."""
    from pipelines.session import get_spark

    settings = load_settings(env, workdir)
    spark = get_spark(settings, app_name="playerpulse-sql")
    result = run_query(spark, settings, query, limit)
    if output is OutputFormat.csv:
        sys.stdout.write(to_csv(result))
    elif output is OutputFormat.json:
        sys.stdout.buffer.write(to_json(result))
        sys.stdout.flush()
    else:
        console = Console()
        console.print(to_table(result))
        shown = f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}"
        console.print(f"{shown} (more left out: raise --limit)" if result.truncated else shown, style="dim")
    if result.truncated and output is not OutputFormat.table:
        Console(stderr=True).print(f"only the first {limit} rows were written: raise --limit for more", style="dim")
