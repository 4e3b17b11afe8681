"""``playerpulse cost estimate`` as a team meets it: one table, the committed prices and measurements."""

from __future__ import annotations

from playerpulse.cli import main


def test_the_estimate_prints_the_bill_by_service_lever_by_lever(capsys):
    assert main(["cost", "estimate", "--events-per-day", "10000000", "--players", "100000"]) == 0
    out = capsys.readouterr().out
    for line in ("Kinesis", "Lambda", "API Gateway", "DynamoDB", "S3 IA", "EMR Serverless"):
        assert line in out
    for column in ("no levers", "batching", "zstd", "autoscal", "compaction", "lifecycle", "total", "saves"):
        assert column in out
    assert "2026-11-30" in out  # the price table's date


def test_databricks_can_stand_in_for_emr_serverless(capsys):
    assert main(["cost", "estimate", "--events-per-day", "1000", "--players", "10", "--compute", "databricks"]) == 0
    out = capsys.readouterr().out
    assert "Databricks" in out and "EMR Serverless" not in out


def test_an_unknown_compute_option_names_it(capsys):
    assert main(["cost", "estimate", "--events-per-day", "1000", "--players", "10", "--compute", "spot"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "compute" in err and "emr_serverless" in err


def test_a_missing_price_file_says_which(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    code = main(["cost", "estimate", "--events-per-day", "1", "--players", "1", "--prices", str(missing)])
    assert code == 1
    assert "nope.yaml" in " ".join(capsys.readouterr().err.split())
