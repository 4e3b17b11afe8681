"""Declaring request-time context in a model YAML: what a data scientist may write, and what is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from test_model_config import declaration

from features.errors import ConfigError
from features.model_config import ModelConfig, parse_model_config
from features.model_context import RESERVED_NAMES
from tests_support import PLATFORM_CONTEXT
from training.dataset import KEY_COLUMNS, LABEL

PLATFORM = PLATFORM_CONTEXT
PLACEMENT = {"name": "placement", "type": "category", "values": ["shop", "home"], "default": "home"}


def parsed(tmp_path: Path, *context: dict[str, Any]) -> ModelConfig:
    path = tmp_path / "offer.yaml"
    path.write_text(yaml.safe_dump(declaration(context=list(context))))
    return parse_model_config(path)


def refused(tmp_path: Path, *context: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parsed(tmp_path, *context)
    return str(caught.value)


def test_context_fields_are_model_inputs_after_the_features_in_declared_order(tmp_path: Path) -> None:
    level = {"name": "screen_level", "type": "int", "default": 1, "low": 1, "high": 100, "training": "default"}
    cfg = parsed(tmp_path, level, PLATFORM)
    assert cfg.input_names == [*cfg.feature_names, "screen_level", "platform"]
    assert cfg.context_names == ["screen_level", "platform"]
    assert cfg.context[1].source is not None and cfg.context[1].source.property == "platform"
    assert cfg.context[0].source is None  # the constant default


def test_a_model_without_context_takes_only_its_features(tmp_path: Path) -> None:
    cfg = parsed(tmp_path)
    assert cfg.input_names == cfg.feature_names and cfg.context_encodings == ()


def test_a_field_named_like_a_feature_of_the_set_is_refused_even_one_the_model_does_not_use(tmp_path: Path) -> None:
    message = refused(tmp_path, {"name": "session_count_7d", "type": "int", "default": 0, "training": "default"})
    assert "'context'" in message and "session_count_7d" in message and "player_activity_v1" in message


@pytest.mark.parametrize("name", RESERVED_NAMES)
def test_a_field_named_like_a_training_set_column_is_refused(tmp_path: Path, name: str) -> None:
    assert name in refused(tmp_path, {"name": name, "type": "float", "default": 0.0, "training": "default"})


def test_the_reserved_names_are_the_training_sets_own_columns() -> None:
    assert set(RESERVED_NAMES) == {*KEY_COLUMNS, LABEL}


def test_a_field_declared_twice_is_refused(tmp_path: Path) -> None:
    assert "['platform'] more than once" in refused(tmp_path, PLATFORM, PLATFORM)


@pytest.mark.parametrize(
    "field, expected",
    [
        ({"type": "bool", "default": "yes"}, "default 'yes' is not a bool"),
        ({"type": "int", "default": 1.5}, "default 1.5 is not an integer"),
        ({"type": "int", "default": True}, "default True is not an integer"),
        ({"type": "float", "default": "high"}, "default 'high' is not a number"),
        ({"type": "float", "default": 200, "low": 0, "high": 100}, "default 200 lies outside [low, high]"),
        ({"type": "float", "default": 0, "low": 5, "high": 1}, "low 5.0 is above high 1.0"),
        ({"type": "bool", "default": False, "low": 0}, "a bool takes none"),
        ({"type": "int", "default": 0, "values": ["a"]}, "only a category lists values"),
    ],
)
def test_a_default_or_bound_that_does_not_fit_the_type_is_refused(
    tmp_path: Path, field: dict[str, Any], expected: str
) -> None:
    message = refused(tmp_path, {"name": "level_hint", "training": "default", **field})
    assert "'context.0'" in message and "context field 'level_hint'" in message and expected in message


def test_a_category_default_outside_its_values_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, {**PLATFORM, "default": "web"})
    assert "default 'web' is not one of its values ['ios', 'android', 'pc']" in message


def test_a_category_without_values_is_refused(tmp_path: Path) -> None:
    assert "lists its values" in refused(tmp_path, {**PLATFORM, "values": []})


def test_an_unknown_type_is_refused(tmp_path: Path) -> None:
    assert "'context.0.type'" in refused(tmp_path, {**PLATFORM, "type": "string"})


def test_an_unknown_event_type_to_train_from_is_refused(tmp_path: Path) -> None:
    source = {"latest_property": {"event_type": "login", "property": "platform"}}
    message = refused(tmp_path, {**PLATFORM, "training": source})
    assert "context.0.training" in message and "unknown event type 'login'" in message


def test_an_unknown_property_to_train_from_is_refused(tmp_path: Path) -> None:
    source = {"latest_property": {"event_type": "session_start", "property": "device_model"}}
    message = refused(tmp_path, {**PLATFORM, "training": source})
    assert "unknown property 'device_model'" in message and "placement" in message  # lists the known ones


def test_a_property_of_another_type_than_the_field_is_refused(tmp_path: Path) -> None:
    source = {"latest_property": {"event_type": "purchase", "property": "price_usd"}}
    message = refused(tmp_path, {**PLATFORM, "training": source})
    assert "training reads price_usd, a double value, which a category field cannot take" in message


def test_a_field_without_a_training_source_is_refused(tmp_path: Path) -> None:
    assert "missing key 'context.0.training'" in refused(tmp_path, PLACEMENT)


def test_a_training_source_that_is_neither_default_nor_latest_property_is_refused(tmp_path: Path) -> None:
    assert "Input should be 'default'" in refused(tmp_path, {**PLACEMENT, "training": "latest"})
    assert "must be 'default' or {latest_property" in refused(tmp_path, {**PLACEMENT, "training": 3})


def test_a_declaration_with_context_round_trips_through_its_dump(tmp_path: Path) -> None:
    """``--reproduce`` re-validates the declaration a run logged (``model_dump``)."""
    cfg = parsed(tmp_path, PLATFORM, {**PLACEMENT, "training": "default"})
    again = ModelConfig.model_validate(cfg.model_dump(mode="json"))
    assert again == cfg and again.context_encodings == cfg.context_encodings
