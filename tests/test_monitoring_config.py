"""Alert thresholds and the prediction log are configuration: validated at start-up, errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from features.config import load_settings
from features.errors import ConfigError
from features.latency import HOP_NAMES
from features.monitoring_config import AlertsConfig, HopName


def conf_with(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load((Path(__file__).parent.parent / "conf" / "local.yaml").read_text())
    change(raw)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "local.yaml").write_text(yaml.safe_dump(raw))
    return conf


def test_the_alertable_hops_are_the_hops_of_the_latency_model():
    assert set(HopName.__args__) == set(HOP_NAMES)


def test_alert_thresholds_load_from_the_configuration(monkeypatch, tmp_path):
    conf = conf_with(tmp_path, lambda raw: raw.update(alerts={"hop_p95_ms": {"stream": 900}, "max_psi": 0.1}))
    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf))

    alerts = load_settings("local", tmp_path / "var").alerts

    assert (alerts.hop_p95_ms, alerts.max_psi, alerts.max_fallback_rate) == ({"stream": 900.0}, 0.1, 0.05)


def test_the_profiles_declare_the_default_thresholds_and_null_turns_the_live_auc_check_off(monkeypatch, tmp_path):
    assert load_settings("local", tmp_path / "var").alerts == AlertsConfig()
    conf = conf_with(tmp_path, lambda raw: raw["alerts"].update(max_live_auc_drop=None))
    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf))
    assert load_settings("local", tmp_path / "var").alerts.max_live_auc_drop is None


@pytest.mark.parametrize(
    ("alerts", "named"),
    [
        ({"hop_p95_ms": {"strem": 900}}, "alerts.hop_p95_ms.strem"),
        ({"max_fallback_rate": 1.5}, "alerts.max_fallback_rate"),
        ({"max_live_auc_drop": -0.1}, "alerts.max_live_auc_drop"),
        ({"max_backlog": 10}, "alerts.max_backlog"),
    ],
)
def test_a_bad_alert_threshold_stops_start_up_naming_the_key(monkeypatch, tmp_path, alerts, named):
    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf_with(tmp_path, lambda raw: raw.update(alerts=alerts))))
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings("local", tmp_path / "var")


def test_a_prediction_log_sample_rate_above_one_stops_start_up(monkeypatch, tmp_path):
    conf = conf_with(tmp_path, lambda raw: raw.setdefault("serving", {}).update(prediction_log={"sample_rate": 2}))
    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf))
    with pytest.raises(ConfigError, match=r"serving\.prediction_log\.sample_rate"):
        load_settings("local", tmp_path / "var")
