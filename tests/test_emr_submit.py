"""``playerpulse submit JOB --emr-serverless APP``: what EMR Serverless records for the run.

Against moto_server over HTTP: the job's file and the configuration are uploaded under the
lake bucket, and ``start_job_run`` gets the entry point, its arguments, the packed virtualenv,
the Delta jars and the configuration's environment, as ``get_job_run`` reads them back.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import boto3
import pytest

from features.config import repo_root
from playerpulse.cli import main

BUCKET = "pp-emr-lake"
ROLE = "arn:aws:iam::123456789012:role/playerpulse-emr-serverless"
VENV = f"s3://{BUCKET}/playerpulse/emr/pyspark_venv.tar.gz"
MLFLOW_URI = "http://mlflow.internal:5000"


@pytest.fixture
def aws_env(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The variables conf/aws.yaml reads, pointing at this test's bucket."""
    monkeypatch.setenv("PLAYERPULSE_AWS_ENDPOINT", aws_endpoint)
    monkeypatch.setenv("PLAYERPULSE_BUCKET", BUCKET)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", MLFLOW_URI)
    monkeypatch.setenv("PLAYERPULSE_INGEST_KEY_SHA256", "a" * 64)
    monkeypatch.setenv("PLAYERPULSE_SERVE_KEY_SHA256", "b" * 64)
    return aws_endpoint


@pytest.fixture
def s3(aws_env: str):
    client = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def emr(aws_env: str):
    return boto3.client("emr-serverless", endpoint_url=aws_env, region_name="us-east-1")


@pytest.fixture
def application(emr) -> str:
    # In AWS the application is emr-spark-8.0.0 (Spark 4); moto only accepts labels shaped emr-X.Y.0.
    return emr.create_application(name="playerpulse", releaseLabel="emr-7.13.0", type="SPARK")["applicationId"]


@pytest.fixture
def venv(s3) -> str:
    s3.put_object(Bucket=BUCKET, Key=VENV.split(f"{BUCKET}/", 1)[1], Body=b"a packed venv")
    return VENV


def _commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=repo_root(), capture_output=True, text=True, check=True
    ).stdout.strip()


def _confs(parameters: str) -> dict[str, str]:
    tokens = parameters.split()
    assert tokens[::2] == ["--conf"] * (len(tokens) // 2), parameters
    return dict(token.split("=", 1) for token in tokens[1::2])


def _only_run(emr, application: str) -> dict:
    runs = emr.list_job_runs(applicationId=application)["jobRuns"]
    assert len(runs) == 1
    return emr.get_job_run(applicationId=application, jobRunId=runs[0]["id"])["jobRun"]


def _submit(tmp_path: Path, *args: str) -> int:
    return main(["submit", *args, "--env", "aws", "--workdir", str(tmp_path)])


def test_a_lake_job_runs_its_uploaded_file_with_env_aws(tmp_path, s3, emr, application, venv):
    assert _submit(tmp_path, "bronze", "--emr-serverless", application, "--role-arn", ROLE) == 0

    run = _only_run(emr, application)
    driver = run["jobDriver"]["sparkSubmit"]
    key = f"playerpulse/emr/{_commit()}/pipelines/bronze.py"
    assert driver["entryPoint"] == f"s3://{BUCKET}/{key}"
    assert driver["entryPointArguments"] == ["--env", "aws"]
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == (repo_root() / "pipelines/bronze.py").read_bytes()
    assert run["executionRole"] == ROLE
    assert run["tags"]["playerpulse.job"] == "bronze" and run["tags"]["playerpulse.commit"] == _commit()


def test_the_run_gets_the_packed_venv_and_the_configuration_as_archives(tmp_path, s3, emr, application, venv):
    _submit(tmp_path, "silver", "--emr-serverless", application, "--role-arn", ROLE)

    confs = _confs(_only_run(emr, application)["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"])
    conf_key = f"playerpulse/emr/{_commit()}/conf.tar.gz"
    assert confs["spark.archives"] == f"{VENV}#environment,s3://{BUCKET}/{conf_key}#conf"
    assert confs["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
    assert confs["spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON"] == "./environment/bin/python"
    assert confs["spark.executorEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
    assert confs["spark.emr-serverless.driverEnv.PLAYERPULSE_CONF_DIR"] == "./conf"
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=BUCKET, Key=conf_key)["Body"].read())) as archive:
        assert {"aws.yaml", "models/store_offer.yaml"} <= set(archive.getnames())


def test_the_run_uses_the_releases_delta_and_the_delta_catalog(tmp_path, s3, emr, application, venv):
    _submit(tmp_path, "gold", "--emr-serverless", application, "--role-arn", ROLE)

    confs = _confs(_only_run(emr, application)["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"])
    assert confs["spark.jars"] == "/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar"
    assert confs["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert confs["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def test_the_configurations_variables_are_forwarded_but_not_the_local_endpoint_or_keys(
    tmp_path, s3, emr, application, venv
):
    _submit(tmp_path, "all", "--emr-serverless", application, "--role-arn", ROLE)

    confs = _confs(_only_run(emr, application)["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"])
    for side in ("spark.emr-serverless.driverEnv", "spark.executorEnv"):
        assert confs[f"{side}.PLAYERPULSE_BUCKET"] == BUCKET
        assert confs[f"{side}.MLFLOW_TRACKING_URI"] == MLFLOW_URI
    names = " ".join(confs)
    assert "PLAYERPULSE_AWS_ENDPOINT" not in names and "AWS_SECRET_ACCESS_KEY" not in names


def test_jars_from_a_folder_are_uploaded_and_become_spark_jars(tmp_path, s3, emr, application, venv):
    jars = tmp_path / "jars"
    jars.mkdir()
    for name in ("delta-spark_4.0_2.13-4.0.0.jar", "delta-storage-4.0.0.jar"):
        (jars / name).write_bytes(b"PK\x03\x04 " + name.encode())

    _submit(tmp_path, "bronze", "--emr-serverless", application, "--role-arn", ROLE, "--jars", str(jars))

    confs = _confs(_only_run(emr, application)["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"])
    prefix = f"s3://{BUCKET}/playerpulse/emr/{_commit()}/jars"
    assert confs["spark.jars"] == f"{prefix}/delta-spark_4.0_2.13-4.0.0.jar,{prefix}/delta-storage-4.0.0.jar"
    key = f"playerpulse/emr/{_commit()}/jars/delta-storage-4.0.0.jar"
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == (jars / "delta-storage-4.0.0.jar").read_bytes()


def test_training_runs_the_train_file_with_the_model_first(tmp_path, s3, emr, application, venv):
    _submit(tmp_path, "train", "--model", "store_offer", "--emr-serverless", application, "--role-arn", ROLE)

    driver = _only_run(emr, application)["jobDriver"]["sparkSubmit"]
    assert driver["entryPoint"].endswith("/training/train.py")
    assert driver["entryPointArguments"] == ["store_offer", "--env", "aws"]


def test_a_missing_venv_archive_stops_before_any_run_saying_how_to_build_it(tmp_path, s3, emr, application, capsys):
    code = _submit(
        tmp_path,
        "bronze",
        "--emr-serverless",
        application,
        "--role-arn",
        ROLE,
        "--venv-archive",
        f"s3://{BUCKET}/no.tgz",
    )

    assert code == 1
    assert "no virtualenv archive" in capsys.readouterr().err
    with pytest.raises(emr.exceptions.ResourceNotFoundException):  # moto's answer for an application with no runs
        emr.list_job_runs(applicationId=application)


def test_an_unknown_application_is_one_line_naming_it(tmp_path, s3, venv, capsys):
    code = _submit(tmp_path, "bronze", "--emr-serverless", "00nosuchapp", "--role-arn", ROLE)

    err = capsys.readouterr().err
    assert code == 1
    assert "00nosuchapp" in err and "Traceback" not in err


def test_every_job_submit_names_is_a_spark_submit_file_of_the_repo():
    from playerpulse.submit_command import JOB_FILES

    missing = [f"{job}: {path}" for job, path in JOB_FILES.items() if not (repo_root() / path).is_file()]
    assert missing == []
    assert {"monitoring", "maintain"} <= set(JOB_FILES)
