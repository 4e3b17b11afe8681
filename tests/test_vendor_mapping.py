"""The vendor mapping files: validated with errors that name the file and the key."""

from __future__ import annotations

import pytest

from features.errors import ConfigError
from serving.vendors.mapping import load_mapping


def test_the_shipped_default_mapping_is_valid():
    mapping = load_mapping("default")
    assert mapping.segment.events["track:Order Completed"].event_type == "purchase"
    assert mapping.gameanalytics.events["business"].properties["price_usd"].scale == 0.01


def test_an_unknown_event_type_names_its_key(tmp_path):
    (tmp_path / "bad.yaml").write_text("segment:\n  events:\n    'track:Won': {event_type: victory}\n")
    with pytest.raises(ConfigError, match=r"segment\.events\.track:Won\.event_type.*unknown event_type 'victory'"):
        load_mapping("bad", tmp_path)


def test_a_misspelt_key_is_refused_not_ignored(tmp_path):
    (tmp_path / "typo.yaml").write_text("unmaped: reject\n")
    with pytest.raises(ConfigError, match=r"(?s)typo\.yaml.*'unmaped': unknown key"):
        load_mapping("typo", tmp_path)
