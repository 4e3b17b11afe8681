"""The estimator's data files: a bad price table or measurement file names the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from features.errors import ConfigError
from playerpulse.cost.inputs import DEFAULT_PRICES, load_measured, load_prices


def edited_prices(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(DEFAULT_PRICES.read_text())
    edit(raw)
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_committed_price_table_is_dated_and_names_its_source():
    prices = load_prices()
    assert prices.region == "us-east-1" and str(prices.recorded).startswith("2026-11")
    assert "aws.amazon.com" in prices.source


def test_a_misspelt_price_names_the_key(tmp_path):
    path = edited_prices(tmp_path, lambda raw: raw["kinesis"].update(shard_hours=raw["kinesis"].pop("shard_hour")))
    with pytest.raises(ConfigError) as err:
        load_prices(path)
    assert "unknown key 'kinesis.shard_hours'" in str(err.value)
    assert "missing key 'kinesis.shard_hour'" in str(err.value)


def test_a_negative_price_names_the_key(tmp_path):
    path = edited_prices(tmp_path, lambda raw: raw["s3"]["classes"]["standard_ia"].update(storage_gb_month=-1))
    with pytest.raises(ConfigError, match=r"'s3\.classes\.standard_ia\.storage_gb_month'"):
        load_prices(path)


def test_a_measurement_file_without_a_figure_names_it_and_says_how_to_refresh_it(tmp_path):
    path = tmp_path / "measured.json"
    path.write_text('{"measured_at": "2026-11-30", "source": "x", "players": 1, "lake": {}, "hourly_share": []}')
    with pytest.raises(ConfigError) as err:
        load_measured(path)
    assert "missing key 'stream'" in str(err.value) and "benchmarks/cost.py" in str(err.value)
