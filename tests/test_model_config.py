"""Model declarations (conf/models/NAME.yaml): what a data scientist may write, and what is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from features.config import Settings
from features.definitions import PLAYER_ACTIVITY_V1, PLAYER_ACTIVITY_V3
from features.errors import ConfigError, ModelNotFound
from features.model_config import list_model_configs, load_model_config


def declaration(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "offer",
        "description": "test model",
        "feature_set": "player_activity_v1",
        "features": ["store_view_count_1d", "purchase_count_30d"],
        "label": {"event_type": "purchase", "horizon_hours": 24},
        "training": {"test_days": 2, "min_history_days": 1, "xgboost": {"max_depth": 3}},
        "quality_gate": {"min_auc": 0.6, "max_auc_drop_vs_champion": 0.01},
        "response": {
            "tiers": [
                {"min_score": 0.35, "content": {"offer": "premium_bundle", "price_usd": 19.99}},
                {"min_score": 0.12, "content": {"offer": "starter_pack", "price_usd": 4.99}},
                {"min_score": 0.0, "content": {"offer": "free_daily_gift"}},
            ]
        },
        "fallback": {"content": {"offer": "free_daily_gift"}},
    }
    base.update(overrides)
    return base


@pytest.fixture
def models_dir(tmp_path: Path, settings: Settings) -> tuple[Settings, Path]:
    folder = tmp_path / "models"
    folder.mkdir()
    return settings.model_copy(update={"models_dir": str(folder)}), folder


def write(folder: Path, data: dict[str, Any], stem: str | None = None) -> Path:
    path = folder / f"{stem or data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_shipped_store_offer_declaration_is_valid(settings: Settings) -> None:
    cfg = load_model_config(settings, "store_offer")
    assert cfg.label.event_type == "purchase" and cfg.label.horizon_hours == 24
    assert cfg.feature_set == "player_activity_v3" and cfg.feature_names == PLAYER_ACTIVITY_V3.feature_names
    assert cfg.response.content_for(0.5)["offer"] == "premium_bundle"
    assert cfg.response.content_for(0.2)["offer"] == "starter_pack"
    assert cfg.response.content_for(0.01)["offer"] == "free_daily_gift"


def test_omitted_features_mean_the_whole_feature_set(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    data = declaration()
    del data["features"]
    write(folder, data)
    assert load_model_config(settings, "offer").feature_names == PLAYER_ACTIVITY_V1.feature_names


def test_listed_features_keep_their_order(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration(features=["purchase_count_30d", "session_count_1d"]))
    assert load_model_config(settings, "offer").feature_names == ["purchase_count_30d", "session_count_1d"]


def test_a_score_on_a_tier_boundary_gets_that_tier(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration())
    tiers = load_model_config(settings, "offer").response
    assert tiers.content_for(0.35)["offer"] == "premium_bundle"
    assert tiers.content_for(0.3499)["offer"] == "starter_pack"


def test_an_unknown_key_names_the_file_and_the_key(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    data = declaration()
    data["training"]["xgboost"]["max_detph"] = 5
    path = write(folder, data)
    with pytest.raises(ConfigError) as err:
        load_model_config(settings, "offer")
    assert str(path) in str(err.value) and "training.xgboost.max_detph" in str(err.value)


def test_the_quality_gate_declares_a_calibration_bound_with_a_default(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration())
    gate = load_model_config(settings, "offer").quality_gate
    assert (gate.max_calibration_error, gate.calibration_bins) == (0.05, 10)


def test_a_misspelt_quality_gate_key_is_named(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    data = declaration()
    data["quality_gate"]["max_calibration_eror"] = 0.1
    path = write(folder, data)
    with pytest.raises(ConfigError) as err:
        load_model_config(settings, "offer")
    assert str(path) in str(err.value) and "quality_gate.max_calibration_eror" in str(err.value)


def test_a_calibration_bound_of_zero_is_refused(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    data = declaration()
    data["quality_gate"]["max_calibration_error"] = 0
    write(folder, data)
    with pytest.raises(ConfigError, match=r"'quality_gate.max_calibration_error'"):
        load_model_config(settings, "offer")


def test_a_feature_outside_the_feature_set_is_refused(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration(features=["store_view_count_1d", "whale_score_7d"]))
    with pytest.raises(ConfigError, match=r"'features'.*whale_score_7d"):
        load_model_config(settings, "offer")


def test_an_unknown_feature_set_is_refused(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration(feature_set="player_activity_v9"))
    with pytest.raises(ConfigError, match=r"'feature_set'.*player_activity_v9"):
        load_model_config(settings, "offer")


def test_an_unknown_label_event_type_is_refused(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration(label={"event_type": "purchased", "horizon_hours": 24}))
    with pytest.raises(ConfigError, match=r"'label.event_type'"):
        load_model_config(settings, "offer")


def test_tiers_out_of_order_are_refused(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    data = declaration()
    data["response"]["tiers"].reverse()
    write(folder, data)
    with pytest.raises(ConfigError, match=r"'response.tiers'.*high to low"):
        load_model_config(settings, "offer")


def test_tiers_that_leave_low_scores_without_content_are_refused(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    data = declaration()
    data["response"]["tiers"].pop()
    write(folder, data)
    with pytest.raises(ConfigError, match=r"'response.tiers'.*min_score 0"):
        load_model_config(settings, "offer")


def test_a_missing_fallback_is_refused(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    data = declaration()
    del data["fallback"]
    write(folder, data)
    with pytest.raises(ConfigError, match=r"missing key 'fallback'"):
        load_model_config(settings, "offer")


def test_a_name_that_differs_from_the_file_name_is_refused(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration(name="other"), stem="offer")
    with pytest.raises(ConfigError, match=r"'name'.*offer.yaml"):
        load_model_config(settings, "offer")


def test_an_undeclared_model_is_not_found(models_dir: tuple[Settings, Path]) -> None:
    settings, _ = models_dir
    with pytest.raises(ModelNotFound, match="no model 'churn'"):
        load_model_config(settings, "churn")


def test_a_model_name_that_is_a_path_is_not_found_without_touching_files(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration())
    with pytest.raises(ModelNotFound, match="not a valid model name"):
        load_model_config(settings, "../models/offer")


def test_listing_returns_every_declaration_by_name(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration(name="b_model"))
    write(folder, declaration(name="a_model"))
    assert [c.name for c in list_model_configs(settings)] == ["a_model", "b_model"]


def test_listing_fails_on_one_bad_declaration(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration(name="good"))
    (folder / "bad.yaml").write_text("name: bad\nfeature_set: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        list_model_configs(settings)


def test_a_label_without_a_kind_is_an_occurrence(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration())
    label = load_model_config(settings, "offer").label
    assert (label.kind, label.is_classification, label.objective) == ("occurrence", True, "binary:logistic")


def test_a_regression_label_sums_a_numeric_property_with_a_regression_objective(
    models_dir: tuple[Settings, Path],
) -> None:
    settings, folder = models_dir
    label = {"kind": "regression", "event_type": "purchase", "horizon_hours": 168, "value": "price_usd"}
    write(folder, declaration(label=label))
    cfg = load_model_config(settings, "offer")
    assert (cfg.label.is_classification, cfg.label.objective) == (False, "reg:squarederror")


def test_a_regression_label_without_a_value_is_refused(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration(label={"kind": "regression", "event_type": "purchase", "horizon_hours": 24}))
    with pytest.raises(ConfigError, match=r"'label'.*needs 'value'"):
        load_model_config(settings, "offer")


def test_a_value_on_a_classification_label_is_refused(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    label = {"kind": "absence", "event_type": "session_start", "horizon_hours": 24, "value": "price_usd"}
    write(folder, declaration(label=label))
    with pytest.raises(ConfigError, match=r"'label.value'.*only a regression label"):
        load_model_config(settings, "offer")


def test_expectations_on_a_feature_the_model_does_not_use_are_refused(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration(expectations={"ranges": {"ad_view_count_7d": {"low": 0, "high": 10}}}))
    with pytest.raises(ConfigError, match=r"ad_view_count_7d.*not features of model 'offer'"):
        load_model_config(settings, "offer")


def test_bounds_with_low_above_high_are_refused(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration(expectations={"label_share": {"low": 0.5, "high": 0.1}}))
    with pytest.raises(ConfigError, match=r"'expectations.label_share'.*low 0.5 is above high 0.1"):
        load_model_config(settings, "offer")


def test_snapshot_cadence_defaults_to_daily(models_dir: tuple[Settings, Path]) -> None:
    settings, folder = models_dir
    write(folder, declaration())
    assert load_model_config(settings, "offer").training.snapshot_every_days == 1
