"""The collector's Lambda package: unzipped, it answers API Gateway ``POST /v1/events`` on its own.

``collector.zip`` is built with the packaging code (its pinned requirements pip-installed for the
Lambda runtime's platform), unzipped, and imported by a separate ``python -I -S`` whose
``sys.path`` is the unpacked folder, a stand-in for the runtime's ``/var/runtime`` holding only
boto3 and its dependencies (what the python3.11 runtime provides), and the standard library.
It runs the cloud profile (``conf/aws.yaml``) against the session's moto_server: accepted events
must be on the Kinesis stream, rejected ones in the S3 dead-letter bucket. The unpacked folder
is read-only and the child runs with ``-B``, as in ``/var/task``: every module of the package
must load from the bytecode shipped beside it.
"""

from __future__ import annotations

import base64
import copy
import gzip
import importlib.util
import json
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from features.config import KinesisStreamConfig, hash_api_key, load_settings
from features.errors import PlayerPulseError
from features.streams import decode_batch, open_stream
from playerpulse.cli import main
from serving.deploy.collector_package import CollectorPackageReport, package_collector
from serving.deploy.package import SizeLimits
from tests_support import make_event

EVENTS = Path(__file__).parent / "events"
INGEST_KEY = "pp-ingest-collector-package-test"
STREAM = "pp-collector-package-test"
BUCKET = "pp-collector-package-test"
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
"""What the python3.11 Lambda runtime has on its path besides the function's own code."""

CHILD = """
import json, sys, sysconfig
package, runtime, out, *events = sys.argv[1:]
sys.path[:0] = [package, runtime]
import serving.lambda_handler as lh
answers = [lh.handler(json.load(open(e)), None) for e in events]
allowed = (package, runtime, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
outside = sorted({m.__name__.split(".")[0] for m in list(sys.modules.values())
                  if getattr(m, "__file__", None) and not m.__file__.startswith(allowed)})
json.dump({"answers": answers, "outside": outside, "modules": sorted({n.split(".")[0] for n in sys.modules}),
           "dont_write_bytecode": sys.flags.dont_write_bytecode}, open(out, "w"))
"""
COMPILED_FROM_SOURCE = "# code object from "
"""What ``python -v`` prints when it compiles a module from its ``.py`` rather than loading bytecode."""


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> CollectorPackageReport:
    settings = load_settings("local", tmp_path_factory.mktemp("collector-package") / "var")
    return package_collector(settings, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def unpacked(package: CollectorPackageReport, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The zip unpacked and made read-only (``chmod -R a-w``), as Lambda's ``/var/task`` is."""
    folder = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(package.path) as zf:
        zf.extractall(folder)
    writable = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    for path in [*folder.rglob("*"), folder]:
        path.chmod(path.stat().st_mode & ~writable)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.fixture(scope="module")
def lambda_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``/var/runtime`` stand-in: links to this interpreter's boto3 and its dependencies only."""
    import importlib

    folder = tmp_path_factory.mktemp("var-runtime")
    for name in RUNTIME_PACKAGES:
        source = Path(importlib.import_module(name).__file__ or "")
        source = source.parent if source.name == "__init__.py" else source
        (folder / source.name).symlink_to(source, target_is_directory=source.is_dir())
    return folder


def api_event(*events: dict[str, Any]) -> dict[str, Any]:
    """The sample HTTP API event with a gzip'd batch of ``events`` and the test's ingest key."""
    event = copy.deepcopy(json.loads((EVENTS / "http_api_events.json").read_text()))
    event["headers"]["authorization"] = f"Bearer {INGEST_KEY}"
    event["body"] = base64.b64encode(gzip.compress(json.dumps(events).encode())).decode()
    return event


@pytest.fixture(scope="module")
def invoked(
    unpacked: Path, lambda_runtime: Path, aws_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Two requests through the unpacked handler, in one isolated process (one cold start):
    three valid events of two players, then one valid and one invalid event."""
    import os

    boto3.client("kinesis", endpoint_url=aws_endpoint).create_stream(StreamName=STREAM, ShardCount=1)
    boto3.client("s3", endpoint_url=aws_endpoint).create_bucket(Bucket=BUCKET)
    work = tmp_path_factory.mktemp("invoke")
    valid = [make_event("p1"), make_event("p1", event_type="store_view"), make_event("p2")]
    mixed = [make_event("p3"), {"event_id": 1}]
    paths = []
    for i, batch in enumerate((valid, mixed)):
        paths.append(work / f"event-{i}.json")
        paths[-1].write_text(json.dumps(api_event(*batch)))
    env = {
        **{k: v for k, v in os.environ.items() if k.startswith("AWS_")},
        "PLAYERPULSE_ENV": "aws",
        "PLAYERPULSE_WORKDIR": str(work / "tmp"),
        "PLAYERPULSE_AWS_ENDPOINT": aws_endpoint,
        "PLAYERPULSE_KINESIS_STREAM": STREAM,
        "PLAYERPULSE_BUCKET": BUCKET,
        "PLAYERPULSE_INGEST_KEY_SHA256": hash_api_key(INGEST_KEY),
        "PLAYERPULSE_SERVE_KEY_SHA256": hash_api_key("pp-serve-collector-package-test"),
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
    }
    out = work / "answers.json"
    before = sorted(p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*"))
    child = [sys.executable, "-I", "-S", "-B", "-v", "-c", CHILD]  # -v: every import, and whence, on stderr
    done = subprocess.run(
        [*child, str(unpacked), str(lambda_runtime), str(out), *map(str, paths)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    traceback = [line for line in done.stderr.splitlines() if not line.startswith(("#", "import "))]
    assert done.returncode == 0, "\n".join(traceback)[-3000:]  # without what -v writes
    after = sorted(p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*"))
    written = sorted(set(after) - set(before))
    return {**json.loads(out.read_text()), "valid": valid, "mixed": mixed, "stderr": done.stderr, "written": written}


def test_the_unpacked_collector_puts_accepted_events_on_the_kinesis_stream(
    invoked: dict[str, Any], aws_endpoint: str
) -> None:
    first, second = invoked["answers"]
    assert first["statusCode"] == 202 and json.loads(first["body"]) == {"accepted": 3, "rejected": 0, "errors": []}
    assert second["statusCode"] == 202 and json.loads(second["body"])["accepted"] == 1
    with open_stream(KinesisStreamConfig(stream_name=STREAM, endpoint_url=aws_endpoint)) as stream:
        records = list(stream.read_all())
    landed = [e for rec in records for e in decode_batch(rec.data)[1]]
    sent = invoked["valid"] + invoked["mixed"][:1]
    assert sorted(e["event_id"] for e in landed) == sorted(e["event_id"] for e in sent)
    assert len(records) == 3  # one record per player and request: p1 and p2, then p3


def test_the_unpacked_collector_keeps_a_rejected_event_in_the_s3_dead_letter_bucket(
    invoked: dict[str, Any], aws_endpoint: str
) -> None:
    body = json.loads(invoked["answers"][1]["body"])
    assert body["rejected"] == 1 and body["errors"][0]["index"] == 1
    listed = boto3.client("s3", endpoint_url=aws_endpoint).list_objects_v2(Bucket=BUCKET, Prefix="dead_letter/")
    assert listed.get("KeyCount", 0) >= 1


def test_the_collector_imports_nothing_but_its_package_the_runtimes_boto3_and_the_stdlib(
    invoked: dict[str, Any],
) -> None:
    assert invoked["outside"] == [], "modules imported from outside the package, the runtime and the stdlib"
    assert not {"numpy", "xgboost", "scipy", "mlflow", "pyspark", "pandas", "fastapi"} & set(invoked["modules"])


def test_the_collector_package_holds_the_handler_and_conf_but_no_model_numpy_or_boto3(
    package: CollectorPackageReport,
) -> None:
    with zipfile.ZipFile(package.path) as zf:
        names = set(zf.namelist())
    assert package.path.name == "collector.zip"
    assert {"serving/lambda_handler.py", "conf/aws.yaml", "zstandard/__init__.py", "msgspec/__init__.py"} <= names
    tops = {n.split("/")[0] for n in names}
    assert not tops & {"model", "numpy", "scipy", "xgboost", "boto3", "botocore", "tests", "training", "pipelines"}
    assert not any(n.startswith("serving/deploy/") for n in names)


def test_every_module_in_the_collector_package_ships_beside_it_its_unchecked_hash_bytecode(
    package: CollectorPackageReport,
) -> None:
    with zipfile.ZipFile(package.path) as zf:
        names = set(zf.namelist())
        sources = sorted(n for n in names if n.endswith(".py"))
        assert {"serving/lambda_handler.py", "zstandard/__init__.py", "msgspec/__init__.py"} <= set(sources)
        for name in sources:
            folder, _, file = name.rpartition("/")
            pyc = zf.read(f"{folder}/__pycache__/{file[:-3]}.cpython-311.pyc".lstrip("/"))
            assert pyc[:4] == importlib.util.MAGIC_NUMBER, name
            assert int.from_bytes(pyc[4:8], "little") == 0b01, f"{name}: not unchecked-hash bytecode"
            assert pyc[8:16] == importlib.util.source_hash(zf.read(name)), f"{name}: bytecode of another source"
    assert all(n.endswith(".cpython-311.pyc") for n in names if "__pycache__" in n)


def test_the_read_only_collector_loads_every_module_of_its_package_from_the_shipped_bytecode(
    invoked: dict[str, Any], unpacked: Path
) -> None:
    lines = invoked["stderr"].splitlines()
    assert invoked["dont_write_bytecode"] == 1
    assert [line for line in lines if line.startswith(COMPILED_FROM_SOURCE + str(unpacked))] == []
    loaded = f"# {unpacked}/serving/__pycache__/lambda_handler.cpython-311.pyc matches "
    assert any(line.startswith(loaded) for line in lines)
    assert invoked["written"] == [], "files written into the read-only package"


def test_the_collector_package_reports_its_sizes_within_lambdas_limits(package: CollectorPackageReport) -> None:
    with zipfile.ZipFile(package.path) as zf:
        unzipped = sum(i.file_size for i in zf.infolist())
    assert package.zipped_bytes == package.path.stat().st_size <= 50 * 2**20
    assert package.unzipped_bytes == unzipped <= 250 * 2**20
    assert f"{package.zipped_bytes / 2**20:.1f} MiB zipped (Lambda's limit 50.0 MiB)" in package.summary()


def test_a_collector_package_over_the_zipped_limit_is_refused_and_not_written(
    package: CollectorPackageReport, tmp_path: Path
) -> None:
    settings = load_settings("local", package.requirements.folder.parent.parent)
    refused = r"the package for the collector is [\d.]+ MiB zipped, over Lambda's 1\.0 MiB direct-upload limit"
    with pytest.raises(PlayerPulseError, match=refused):
        package_collector(settings, tmp_path, limits=SizeLimits(zipped_bytes=2**20))
    assert list(tmp_path.iterdir()) == []


def test_collector_package_on_the_command_line_writes_collector_zip_into_out(
    package: CollectorPackageReport, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = package.requirements.folder.parent.parent  # reuses the module's requirements cache
    code = main(["collector", "package", "--out", str(tmp_path / "dist"), "--workdir", str(workdir)])
    assert code == 0
    assert zipfile.is_zipfile(tmp_path / "dist" / "collector.zip")
    assert "requirements reused from cache" in capsys.readouterr().out
