"""The Databricks bundle (databricks.yml + resources/*.yml) checked as data, offline.

Every job must load as the ``databricks-bundles`` package's ``Job`` model (unknown or mistyped
fields fail), every task's file must exist and its argparse accept exactly the parameters the
bundle passes, schedules must be Quartz cron, ``depends_on`` must name tasks of the same job,
and the workflows the README promises must be there. ``${…}`` references stay strings.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from databricks.bundles.jobs import ClusterSpec, Job
from quartz_cron_checker import validate_cron_string

from features.config import repo_root
from features.errors import ConfigError

ROOT = repo_root()
RESOURCES = ROOT / "resources"
NO_SUCH_ENV = "bundle-check-no-such-env"
"""Jobs get this env, so each stops at loading settings: after argparse, before any Spark."""


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


BUNDLE = _load(ROOT / "databricks.yml")
JOBS: dict[str, dict[str, Any]] = {
    name: job for path in sorted(RESOURCES.glob("*.yml")) for name, job in _load(path)["resources"]["jobs"].items()
}
TASKS = [(job, task) for job, spec in JOBS.items() for task in spec["tasks"]]


def _task_id(item: tuple[str, dict[str, Any]]) -> str:
    return f"{item[0]}.{item[1]['task_key']}"


def _references(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_references(v) for v in value.values()), set())
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value), set())
    return set(re.findall(r"\$\{([^}]+)\}", value)) if isinstance(value, str) else set()


def test_the_bundle_includes_every_resource_file_and_has_dev_and_prod_targets():
    assert BUNDLE["include"] == ["resources/*.yml"]
    assert {"dev", "prod"} <= set(BUNDLE["targets"])
    assert BUNDLE["targets"]["dev"]["mode"] == "development"
    assert BUNDLE["targets"]["prod"]["mode"] == "production"


def test_the_wheel_is_built_from_pyproject_and_installed_by_every_task():
    artifact = BUNDLE["artifacts"]["playerpulse_wheel"]
    assert artifact["type"] == "whl"
    assert (ROOT / artifact["path"] / "pyproject.toml").is_file()
    for _, task in TASKS:
        assert {"whl": "../dist/*.whl"} in task["libraries"], task["task_key"]


@pytest.mark.parametrize("name", sorted(JOBS))
def test_each_job_loads_as_a_databricks_bundles_job(name):
    job = Job.from_dict(JOBS[name])
    assert [t.task_key for t in job.tasks] == [t["task_key"] for t in JOBS[name]["tasks"]]


def test_the_shared_job_cluster_is_a_valid_cluster_spec():
    cluster = ClusterSpec.from_dict(BUNDLE["variables"]["cluster"]["default"])
    assert cluster.spark_env_vars["PLAYERPULSE_CONF_DIR"] == "/Workspace${workspace.file_path}/conf"
    for name, job in JOBS.items():
        assert [c["new_cluster"] for c in job["job_clusters"]] == ["${var.cluster}"], name


def test_every_variable_the_bundle_uses_is_declared():
    declared = set(BUNDLE["variables"])
    used = _references(BUNDLE) | set().union(*(_references(job) for job in JOBS.values()))
    variables = {ref.removeprefix("var.") for ref in used if ref.startswith("var.")}
    assert variables <= declared, variables - declared


@pytest.mark.parametrize("name", sorted(n for n, j in JOBS.items() if "schedule" in j))
def test_schedules_are_quartz_cron_in_utc(name):
    schedule = JOBS[name]["schedule"]
    assert validate_cron_string(schedule["quartz_cron_expression"])
    assert schedule["timezone_id"] == "UTC"


def test_a_unix_cron_line_is_not_accepted_as_quartz():
    with pytest.raises(Exception, match="6 or 7 parts"):
        validate_cron_string("5 * * * *")


@pytest.mark.parametrize("name", sorted(JOBS))
def test_dependencies_name_tasks_of_the_same_job_and_never_loop(name):
    tasks = {t["task_key"]: [d["task_key"] for d in t.get("depends_on", [])] for t in JOBS[name]["tasks"]}
    for key, needs in tasks.items():
        assert set(needs) <= set(tasks), f"{name}.{key} depends on unknown tasks {set(needs) - set(tasks)}"
    done: set[str] = set()
    while len(done) < len(tasks):
        ready = {k for k, needs in tasks.items() if k not in done and set(needs) <= done}
        assert ready, f"{name}: dependency cycle among {set(tasks) - done}"
        done |= ready


@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_run_records_the_git_commit_as_a_job_parameter(name):
    assert {"name": "git_commit", "default": "${bundle.git.commit}"} in JOBS[name]["parameters"]


def _chain(name: str) -> list[tuple[str, list[str]]]:
    return [(t["task_key"], [d["task_key"] for d in t.get("depends_on", [])]) for t in JOBS[name]["tasks"]]


def test_the_lake_runs_bronze_then_silver_then_gold_every_hour():
    assert _chain("lake") == [("bronze", []), ("silver", ["bronze"]), ("gold", ["silver"])]
    minute, hour = JOBS["lake"]["schedule"]["quartz_cron_expression"].split()[1:3]
    assert minute.isdigit() and hour == "*"


def test_the_profiles_stream_runs_continuously_and_alone():
    job = JOBS["profiles_stream"]
    assert "continuous" in job and "schedule" not in job
    assert job["max_concurrent_runs"] == 1
    assert [t["spark_python_task"]["python_file"] for t in job["tasks"]] == ["../pipelines/profiles_stream.py"]


@pytest.mark.parametrize("model", sorted(p.stem for p in (ROOT / "conf" / "models").glob("*.yaml")))
def test_every_declared_model_is_trained_then_validated_daily_and_never_promoted_by_a_task(model):
    job = JOBS[f"train_{model}"]
    assert _chain(f"train_{model}") == [("train", []), ("validate", ["train"])]
    for task in job["tasks"]:
        assert task["spark_python_task"]["parameters"][0] == model
    assert not any("promote" in t["spark_python_task"]["python_file"] for t in job["tasks"])
    assert job["schedule"]["quartz_cron_expression"].split()[3:5] == ["*", "*"]


def test_upkeep_runs_pipeline_maintain_daily():
    (task,) = JOBS["upkeep"]["tasks"]
    assert task["spark_python_task"]["python_file"] == "../pipelines/maintain.py"
    assert JOBS["upkeep"]["schedule"]["quartz_cron_expression"].split()[2].isdigit()


def _module(python_file: str) -> str:
    path = (RESOURCES / python_file).resolve()
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _arguments(parameters: list[str], workdir: Path) -> list[str]:
    values = {"${var.env}": NO_SUCH_ENV, "${var.workdir}": str(workdir)}
    unknown = [p for p in parameters if "${" in p and p not in values]
    assert not unknown, f"parameters this test cannot substitute: {unknown}"
    return [values.get(p, p) for p in parameters]


@pytest.mark.parametrize("item", TASKS, ids=_task_id)
def test_each_tasks_file_exists_and_its_argparse_accepts_exactly_the_bundles_parameters(item, tmp_path, capsys, caplog):
    _, task = item
    python_file = task["spark_python_task"]["python_file"]
    if python_file == "../pipelines/maintain.py" and not (RESOURCES / python_file).exists():
        pytest.skip("pipelines/maintain.py (`playerpulse pipeline maintain`) is being built in another session")
    assert (RESOURCES / python_file).is_file(), python_file
    module = importlib.import_module(_module(python_file))
    argv = _arguments(task["spark_python_task"]["parameters"], tmp_path)

    try:
        code = module.main(argv)
    except SystemExit as exc:  # argparse's answer to an unknown, missing or mistyped argument
        pytest.fail(f"{python_file} refused {argv} (exit {exc.code}): {capsys.readouterr().err.strip()}")
    except ConfigError as exc:
        message = str(exc)
    else:
        assert code != 0
        message = capsys.readouterr().err + caplog.text  # the stream job logs its error
    # the settings are loaded before any session is built: the job got past argparse, and no further
    assert f"no configuration for env '{NO_SUCH_ENV}'" in message


def test_an_argument_a_job_does_not_take_is_refused_by_its_parser(tmp_path):
    from pipelines import bronze

    with pytest.raises(SystemExit) as exc:
        bronze.main(["--env", NO_SUCH_ENV, "--workdir", str(tmp_path), "--no-such-flag"])
    assert exc.value.code == 2
