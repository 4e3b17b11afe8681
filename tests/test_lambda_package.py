"""A model's Lambda package: built from the registry's champion, it answers API Gateway on its own.

A tiny booster is registered as champion in a real MLflow SQLite store, packaged (the pinned
requirements are pip-installed for the Lambda runtime's platform), unzipped, and imported by a
separate ``python -I -S`` whose ``sys.path`` is the unpacked folder and the standard library
only, as in ``/var/task``. It answers the sample HTTP API events in ``tests/events/``, also
from a read-only copy (as ``/var/task`` is) where every module comes from the shipped bytecode.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from features.config import MlflowConfig, Settings, SqliteOnlineStoreConfig, load_settings
from features.definitions import PLAYER_ACTIVITY_V1
from features.errors import ModelNotFound, PlayerPulseError
from features.online import Profile
from features.online.sqlite import SqliteOnlineStore
from features.profile_state import ProfileState
from serving.deploy.package import PackageReport, SizeLimits, package_model
from training.registry import ensure_experiment, tracking_client

EVENTS = Path(__file__).parent / "events"
MODEL = "store_offer"
FEATURES = ["store_view_count_1d", "session_count_7d"]
PREMIUM = {"offer": "premium_bundle", "price_usd": 19.99}

CHILD = """
import json, sys, sysconfig, types
package, out, *events = sys.argv[1:]
sys.path.insert(0, package)
import serving.model_function as mf
ctx = types.SimpleNamespace(function_name="playerpulse-model-store_offer", memory_limit_in_mb=1024,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:playerpulse-model-store_offer",
    aws_request_id="req-1")
answers = [mf.handler(json.load(open(e)), ctx) for e in events]
allowed = (package, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
outside = sorted({m.__name__.split(".")[0] for m in list(sys.modules.values())
                  if getattr(m, "__file__", None) and not m.__file__.startswith(allowed)})
json.dump({"answers": answers, "outside": outside, "path": sys.path,
           "modules": sorted({n.split(".")[0] for n, m in sys.modules.items() if m is not None}),  # None: blocked
           "dont_write_bytecode": sys.flags.dont_write_bytecode}, open(out, "w"))
"""
COMPILED_FROM_SOURCE = "# code object from "
"""What ``python -v`` prints when it compiles a module from its ``.py`` (a quoted ``.pyc`` path
when it loads bytecode instead, after ``# PYC matches SOURCE``)."""


def declaration() -> dict[str, Any]:
    return {
        "name": MODEL,
        "feature_set": "player_activity_v1",
        "features": FEATURES,
        "label": {"event_type": "purchase", "horizon_hours": 24},
        "training": {"test_days": 1},
        "quality_gate": {"min_auc": 0.5, "max_auc_drop_vs_champion": 0.05},
        "response": {
            "tiers": [
                {"min_score": 0.5, "content": PREMIUM},
                {"min_score": 0.0, "content": {"offer": "free_daily_gift", "price_usd": 0.0}},
            ]
        },
        "fallback": {"content": {"offer": "free_daily_gift", "price_usd": 0.0}},
    }


def register_champion(settings: Settings) -> int:
    """A booster that scores players with ≥ 3 store views today high, registered as champion."""
    import mlflow
    import mlflow.xgboost
    import xgboost as xgb

    rng = np.random.default_rng(1)
    X = np.column_stack([rng.integers(0, 8, 400), rng.integers(0, 20, 400)]).astype(np.float32)
    data = xgb.DMatrix(X, label=(X[:, 0] >= 3).astype(int), feature_names=FEATURES)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1}, data, 20)
    client = tracking_client(settings)
    with mlflow.start_run(experiment_id=ensure_experiment(settings, client)):
        info = mlflow.xgboost.log_model(
            booster,
            name="model",
            registered_model_name=MODEL,
            metadata={"feature_names": FEATURES, "feature_set": "player_activity_v1", "model": MODEL},
            pip_requirements=["xgboost-cpu"],
        )
    client.set_registered_model_alias(MODEL, "champion", str(info.registered_model_version))
    return int(info.registered_model_version)


def settings_under(base: Path) -> Settings:
    (base / "models").mkdir(parents=True, exist_ok=True)
    (base / "models" / f"{MODEL}.yaml").write_text(yaml.safe_dump(declaration()))
    return load_settings("local", base / "var").model_copy(
        update={
            "models_dir": str(base / "models"),
            "mlflow": MlflowConfig(tracking_uri=f"sqlite:///{base}/mlflow.db", artifact_root=str(base / "art")),
        }
    )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = settings_under(tmp_path_factory.mktemp("lambda-package"))
    register_champion(settings)
    return settings


@pytest.fixture(scope="module")
def package(registry: Settings, tmp_path_factory: pytest.TempPathFactory) -> PackageReport:
    return package_model(registry, MODEL, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def unpacked(package: PackageReport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(package.path) as zf:
        zf.extractall(folder)
    return folder


def keen_profile() -> Profile:
    """A player of game ``demo`` who viewed the store four times in the last minutes."""
    now = int(time.time() * 1000)
    state = ProfileState()
    for i in range(4):
        event = {"event_id": f"keen-{i}", "event_type": "store_view", "properties": {}}
        state.apply(PLAYER_ACTIVITY_V1, event, now - (i + 1) * 60_000, max_seen=100)
    return Profile(
        game_id="demo",
        player_id="keen",
        version=1,
        as_of=now - 60_000,
        features=state.features(PLAYER_ACTIVITY_V1, now - 60_000),
        state=state.to_dict(),
        feature_set=PLAYER_ACTIVITY_V1.full_name,
    )


def invoke_isolated(folder: Path, workdir: Path, *events: str, flags: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run the handler in ``python -I -S`` with only ``folder`` (and the stdlib) on ``sys.path``;
    the answers, what the child reported, and its stderr (``-v`` writes its imports there)."""
    out = workdir / "answers.json"
    env = {"PLAYERPULSE_MODEL": MODEL, "PLAYERPULSE_ENV": "local", "PLAYERPULSE_WORKDIR": str(workdir)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # -I ignores PYTHON* variables: ``-B`` in ``flags`` sets the flag
    done = subprocess.run(
        [sys.executable, "-I", "-S", *flags, "-c", CHILD, str(folder), str(out), *(str(EVENTS / e) for e in events)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    traceback = [line for line in done.stderr.splitlines() if not line.startswith(("#", "import "))]
    assert done.returncode == 0, "\n".join(traceback)[-3000:]  # without what -v writes
    return {**json.loads(out.read_text()), "stderr": done.stderr}


@pytest.fixture
def read_only_copy(unpacked: Path, tmp_path: Path) -> Iterator[Path]:
    """The unpacked package copied and made read-only (``chmod -R a-w``), as ``/var/task`` is."""
    folder = tmp_path / "var-task-ro"
    shutil.copytree(unpacked, folder)
    writable = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode & ~writable)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def tree_listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_the_unpacked_package_alone_answers_a_predict_event_with_its_champion(unpacked: Path, tmp_path: Path) -> None:
    store = SqliteOnlineStore(SqliteOnlineStoreConfig(path=str(tmp_path / "online" / "profiles.db")))
    store.put([keen_profile()])
    store.close()

    result = invoke_isolated(unpacked, tmp_path, "http_api_predict_demo.json", "http_api_profile_demo.json")

    predict, profile = result["answers"]
    assert predict["statusCode"] == 200, predict
    body = json.loads(predict["body"])
    assert (body["model"], body["version"], body["player_id"], body["fallback"]) == (MODEL, 1, "keen", False)
    assert body["prediction"]["score"] > 0.5 and body["prediction"]["offer"] == PREMIUM["offer"]
    assert profile["statusCode"] == 200 and json.loads(profile["body"])["player_id"] == "keen"
    assert result["outside"] == [], "modules imported from outside the package and the stdlib"
    assert not {"mlflow", "pyspark", "pandas", "boto3"} & set(result["modules"])
    assert not {"numpy", "scipy", "xgboost"} & set(result["modules"]), "scored through libxgboost, not its Python"


def test_the_package_holds_the_champion_as_native_xgboost_files_and_no_build_or_test_code(
    package: PackageReport,
) -> None:
    with zipfile.ZipFile(package.path) as zf:
        names = set(zf.namelist())
        metadata = json.loads(zf.read("model/metadata.json"))
        declared = yaml.safe_load(zf.read(f"model/{MODEL}.yaml"))
    assert {"model/model.ubj", "serving/model_function.py", "conf/aws.yaml", "xgboost/lib/libxgboost.so"} <= names
    assert metadata == {"model": MODEL, "version": 1, "feature_set": "player_activity_v1", "feature_names": FEATURES}
    assert declared == declaration()
    tops = {n.split("/")[0] for n in names}
    assert not tops & {"tests", "mlflow", "pyspark", "pandas", "boto3", "botocore", "training", "pipelines"}
    assert not tops & {"numpy", "scipy", "numpy.libs", "scipy.libs"}
    assert not any(n.startswith("serving/deploy/") for n in names)
    bytecode = {n for n in names if "__pycache__" in n}
    assert bytecode and all(n.endswith(".cpython-311.pyc") for n in bytecode)


def test_every_module_in_the_package_ships_beside_it_its_unchecked_hash_bytecode(package: PackageReport) -> None:
    with zipfile.ZipFile(package.path) as zf:
        names = set(zf.namelist())
        sources = sorted(n for n in names if n.endswith(".py"))
        assert {"serving/model_function.py", "features/config.py", "pydantic/__init__.py", "yaml/__init__.py"} <= set(
            sources
        )
        for name in sources:
            folder, _, file = name.rpartition("/")
            pyc = zf.read(f"{folder}/__pycache__/{file[:-3]}.cpython-311.pyc".lstrip("/"))
            assert pyc[:4] == importlib.util.MAGIC_NUMBER, name
            assert int.from_bytes(pyc[4:8], "little") == 0b01, f"{name}: not unchecked-hash bytecode"
            assert pyc[8:16] == importlib.util.source_hash(zf.read(name)), f"{name}: bytecode of another source"
    assert package.summary().count("(cpython-311, unchecked hash)") == 2  # the code's and the requirements'


def test_the_read_only_package_answers_with_every_module_loaded_from_its_shipped_bytecode(
    read_only_copy: Path, tmp_path: Path
) -> None:
    before = tree_listing(read_only_copy)

    result = invoke_isolated(read_only_copy, tmp_path, "http_api_predict_demo.json", flags=("-B", "-v"))

    assert result["answers"][0]["statusCode"] == 200, result["answers"][0]
    assert result["dont_write_bytecode"] == 1
    lines = result["stderr"].splitlines()
    compiled = [line for line in lines if line.startswith(COMPILED_FROM_SOURCE + str(read_only_copy))]
    assert compiled == [], "modules of the package compiled from source at import"
    loaded = f"# {read_only_copy}/serving/__pycache__/model_function.cpython-311.pyc matches "
    assert any(line.startswith(loaded) for line in lines)
    assert tree_listing(read_only_copy) == before


def test_the_package_reports_its_sizes_within_lambdas_limits(package: PackageReport) -> None:
    with zipfile.ZipFile(package.path) as zf:
        unzipped = sum(i.file_size for i in zf.infolist())
    assert package.zipped_bytes == package.path.stat().st_size <= 50 * 1024 * 1024
    assert package.unzipped_bytes == unzipped <= 250 * 1024 * 1024
    assert f"{package.zipped_bytes / 2**20:.1f} MiB zipped (Lambda's limit 50.0 MiB)" in package.summary()


def test_a_second_package_reuses_the_cached_requirements(package: PackageReport, registry: Settings) -> None:
    again = package_model(registry, MODEL, package.path.parent / "again")
    assert again.requirements.reused and again.requirements.folder == package.requirements.folder
    assert again.requirements.unzipped_bytes == package.requirements.unzipped_bytes


def test_a_package_over_the_zipped_limit_is_refused_and_not_written(
    package: PackageReport, registry: Settings, tmp_path: Path
) -> None:
    half = SizeLimits(zipped_bytes=package.zipped_bytes // 2)
    with pytest.raises(PlayerPulseError, match="direct-upload limit: remove requirements"):
        package_model(registry, MODEL, tmp_path, limits=half)
    assert list(tmp_path.iterdir()) == []


def test_a_package_over_the_unzipped_limit_is_refused_before_zipping(
    package: PackageReport, registry: Settings, tmp_path: Path
) -> None:
    half = SizeLimits(unzipped_bytes=package.unzipped_bytes // 2)
    limit = f"{half.unzipped_bytes / 2**20:.1f}".replace(".", r"\.")
    with pytest.raises(PlayerPulseError, match=rf"MiB unzipped, over Lambda's {limit} MiB limit"):
        package_model(registry, MODEL, tmp_path, limits=half)
    assert list(tmp_path.iterdir()) == []


def test_a_model_without_a_champion_is_refused_with_what_to_run(tmp_path: Path) -> None:
    settings = settings_under(tmp_path)
    with pytest.raises(ModelNotFound, match=f"playerpulse promote {MODEL}"):
        package_model(settings, MODEL, tmp_path / "dist")
