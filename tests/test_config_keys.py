"""Keys in configuration: per game and role, distinct, and never the published development keys
outside the embedded demo. Each mistake stops start-up with a message naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from features.config import DEVELOPMENT_KEYS, hash_api_key, load_settings
from features.errors import ConfigError
from playerpulse.cli import main

AWS_ENV = {
    "PLAYERPULSE_BUCKET": "pp-test-bucket",
    "PLAYERPULSE_INGEST_KEY_SHA256": hash_api_key("pp-ingest-secret"),
    "PLAYERPULSE_SERVE_KEY_SHA256": hash_api_key("pp-serve-secret"),
    "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
}


def conf_with(tmp_path: Path, env: str, change) -> Path:
    """A copy of conf/local.yaml saved as conf/<env>.yaml after ``change(raw)``."""
    raw = yaml.safe_load((Path(__file__).parent.parent / "conf" / "local.yaml").read_text())
    change(raw)
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / f"{env}.yaml").write_text(yaml.safe_dump(raw))
    return conf


def test_the_aws_profile_loads_with_keys_from_the_environment(monkeypatch, tmp_path):
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    settings = load_settings("aws", tmp_path)
    assert settings.games["demo"].serve_keys == [AWS_ENV["PLAYERPULSE_SERVE_KEY_SHA256"]]


def test_the_aws_profile_refuses_the_development_key_published_in_the_readme(monkeypatch, tmp_path):
    for k, v in {**AWS_ENV, "PLAYERPULSE_INGEST_KEY_SHA256": hash_api_key(DEVELOPMENT_KEYS["ingest"])}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=r"games\.demo\.ingest_keys holds a development key"):
        load_settings("aws", tmp_path)


def test_a_copy_of_the_local_profile_under_another_name_refuses_the_development_keys(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf_with(tmp_path, "staging", lambda raw: None)))
    with pytest.raises(ConfigError, match="development key"):
        load_settings("staging", tmp_path)


def test_one_key_in_two_roles_is_refused(monkeypatch, tmp_path):
    def same_key(raw):
        raw["games"]["demo"]["serve_keys"] = raw["games"]["demo"]["ingest_keys"]

    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf_with(tmp_path, "local", same_key)))
    with pytest.raises(ConfigError, match="one key is configured twice"):
        load_settings("local", tmp_path)


def test_a_game_without_an_ingest_key_is_refused(monkeypatch, tmp_path):
    def no_ingest(raw):
        raw["games"]["demo"]["ingest_keys"] = []

    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf_with(tmp_path, "local", no_ingest)))
    with pytest.raises(ConfigError, match=r"games\.demo\.ingest_keys"):
        load_settings("local", tmp_path)


def test_a_game_id_that_could_break_a_store_key_is_refused(monkeypatch, tmp_path):
    def hashed(raw):
        raw["games"]["de#mo"] = raw["games"].pop("demo")

    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf_with(tmp_path, "local", hashed)))
    with pytest.raises(ConfigError, match="game id 'de#mo'"):
        load_settings("local", tmp_path)


def test_open_metrics_are_refused(monkeypatch, tmp_path):
    def open_metrics(raw):
        raw["serving"]["metrics"] = {"keys": []}

    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf_with(tmp_path, "local", open_metrics)))
    with pytest.raises(ConfigError, match=r"serving\.metrics.*set metrics\.keys"):
        load_settings("local", tmp_path)


def test_a_legacy_api_keys_section_names_the_key_to_remove(monkeypatch, tmp_path):
    def legacy(raw):
        raw["collector"]["api_keys"] = {"demo": hash_api_key("k")}

    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf_with(tmp_path, "local", legacy)))
    with pytest.raises(ConfigError, match=r"unknown key 'collector\.api_keys'"):
        load_settings("local", tmp_path)


def test_keys_new_prints_a_key_and_the_digest_that_matches_it(capsys):
    assert main(["keys", "new", "demo", "--role", "serve"]) == 0
    out = capsys.readouterr().out.split()
    key, digest = out[out.index("key:") + 1], out[out.index("digest:") + 1]
    assert key.startswith("pp-serve-") and hash_api_key(key) == digest


def test_serve_refuses_several_workers_with_a_metrics_port(monkeypatch, tmp_path, capsys):
    def port(raw):
        raw["serving"]["metrics"] = {"port": 9464}

    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf_with(tmp_path, "local", port)))
    assert main(["serve", "--workers", "2", "--workdir", str(tmp_path)]) == 1
    assert "serving.metrics.port" in " ".join(capsys.readouterr().err.split())


def test_the_databricks_workspace_registry_is_refused_because_it_has_no_aliases(monkeypatch, tmp_path):
    for k, v in {**AWS_ENV, "MLFLOW_TRACKING_URI": "databricks"}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=r"has no aliases.*databricks-uc"):
        load_settings("aws", tmp_path)


def test_databricks_tracking_with_the_unity_catalog_registry_is_accepted(monkeypatch, tmp_path):
    for k, v in {**AWS_ENV, "MLFLOW_TRACKING_URI": "databricks", "MLFLOW_REGISTRY_URI": "databricks-uc"}.items():
        monkeypatch.setenv(k, v)
    assert load_settings("aws", tmp_path).mlflow.registry_uri == "databricks-uc"


def test_pointing_mlflow_at_one_profile_leaves_the_next_profiles_registry_as_configured(monkeypatch, tmp_path):
    from training.registry import tracking_client

    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    tracking_client(load_settings("local", tmp_path / "var"))
    for k, v in {**AWS_ENV, "MLFLOW_TRACKING_URI": "databricks"}.items():
        monkeypatch.setenv(k, v)

    with pytest.raises(ConfigError, match=r"has no aliases"):
        load_settings("aws", tmp_path)
