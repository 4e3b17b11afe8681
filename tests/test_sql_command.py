"""``playerpulse sql``: the lake's tables by name, as a table for people and csv/json for scripts."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest

from features.config import Settings
from pipelines.session import table_path
from playerpulse.cli import main

pytestmark = pytest.mark.spark


@pytest.fixture
def lake_table(spark, settings: Settings) -> str:
    """A tiny gold table in this test's lake; its name is unique because the session is shared."""
    name = f"gold.daily_{uuid.uuid4().hex[:8]}"
    rows = [("p1", "2026-11-01", 3, 4.99), ("p2", "2026-11-01", 1, None), ("p3", "2026-11-02", 7, 0.0)]
    frame = spark.createDataFrame(rows, "player_id STRING, day STRING, sessions INT, spend_usd DOUBLE")
    frame.write.format("delta").save(table_path(settings, name))
    return name


def _sql(settings: Settings, *args: str) -> int:
    return main(["sql", *args, "--env", "local", "--workdir", settings.workdir])


def test_a_table_is_queried_by_its_lake_name_and_printed_as_a_table(settings, lake_table, capsys):
    code = _sql(settings, f"SELECT player_id, sessions FROM {lake_table} ORDER BY player_id")

    out = capsys.readouterr().out
    assert code == 0
    assert "player_id" in out and "sessions" in out
    cells = [[c.strip() for c in line.strip("│ ").split("│")] for line in out.splitlines() if "│ p" in line]
    assert cells == [["p1", "3"], ["p2", "1"], ["p3", "7"]]
    assert "3 rows" in out


def test_csv_writes_a_header_and_the_rows_only(settings, lake_table, capsys):
    code = _sql(settings, f"SELECT player_id, spend_usd FROM {lake_table} ORDER BY player_id", "--format", "csv")

    out = capsys.readouterr().out
    assert code == 0
    assert list(csv.reader(io.StringIO(out))) == [["player_id", "spend_usd"], ["p1", "4.99"], ["p2", ""], ["p3", "0.0"]]


def test_json_writes_one_array_of_rows_keyed_by_column(settings, lake_table, capsys):
    query = f"SELECT player_id, sessions, spend_usd FROM {lake_table} WHERE day = '2026-11-01' ORDER BY player_id"
    code = _sql(settings, query, "--format", "json")

    assert code == 0
    assert json.loads(capsys.readouterr().out) == [
        {"player_id": "p1", "sessions": 3, "spend_usd": 4.99},
        {"player_id": "p2", "sessions": 1, "spend_usd": None},
    ]


def test_limit_caps_the_rows_and_says_more_were_left_out(settings, lake_table, capsys):
    code = _sql(settings, f"SELECT * FROM {lake_table} ORDER BY player_id", "--format", "csv", "--limit", "2")

    captured = capsys.readouterr()
    assert code == 0
    assert [row[0] for row in csv.reader(io.StringIO(captured.out))] == ["player_id", "p1", "p2"]
    assert "raise --limit" in captured.err


def test_a_missing_table_is_one_line_naming_it_and_the_tables_there_are(settings, lake_table, capsys):
    code = _sql(settings, "SELECT * FROM gold.no_such_table")

    err = capsys.readouterr().err
    assert code == 1
    assert "TABLE_OR_VIEW_NOT_FOUND" in err and "no_such_table" in err
    assert lake_table in err
    assert "at org.apache" not in err and "Traceback" not in err
    assert err.count("error:") == 1 and err.startswith("error: query failed:")  # one message (rich wraps it)


def test_bad_sql_is_one_line_with_sparks_parse_error(settings, lake_table, capsys):
    code = _sql(settings, f"SELEC player_id FROM {lake_table}")

    err = capsys.readouterr().err
    assert code == 1
    assert "PARSE_SYNTAX_ERROR" in err
    assert "at org.apache" not in err and "Traceback" not in err
