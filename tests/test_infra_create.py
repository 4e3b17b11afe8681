"""``playerpulse infra create --env aws`` makes the bucket, stream and table, and a second run changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import boto3

from features.config import hash_api_key


def aws_env(aws_endpoint: str, tmp_path) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "PLAYERPULSE_AWS_ENDPOINT": aws_endpoint,
        "PLAYERPULSE_BUCKET": f"pp-infra-{suffix}",
        "PLAYERPULSE_KINESIS_STREAM": f"pp-infra-{suffix}",
        "PLAYERPULSE_PROFILES_TABLE": f"pp-infra-{suffix}",
        "PLAYERPULSE_INGEST_KEY_SHA256": hash_api_key("ingest-" + suffix),
        "PLAYERPULSE_SERVE_KEY_SHA256": hash_api_key("serve-" + suffix),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
    }


def infra_create(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "playerpulse", "infra", "create", "--env", "aws"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_infra_create_makes_every_resource_the_configuration_names(aws_endpoint, tmp_path):
    env = aws_env(aws_endpoint, tmp_path)

    done = infra_create(env)

    assert done.returncode == 0, done.stderr
    name = env["PLAYERPULSE_BUCKET"]
    assert f"bucket {name}: created" in done.stdout
    assert f"stream {name}: created" in done.stdout and f"table {name}: created" in done.stdout
    s3 = boto3.client("s3", endpoint_url=aws_endpoint)
    s3.head_bucket(Bucket=name)
    block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    kinesis = boto3.client("kinesis", endpoint_url=aws_endpoint)
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    table = boto3.client("dynamodb", endpoint_url=aws_endpoint).describe_table(TableName=name)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_a_second_infra_create_finds_everything_and_changes_nothing(aws_endpoint, tmp_path):
    env = aws_env(aws_endpoint, tmp_path)
    assert infra_create(env).returncode == 0

    again = infra_create(env)

    assert again.returncode == 0, again.stderr
    lines = again.stdout.strip().splitlines()
    assert lines and all(line.endswith(": exists") for line in lines)


def test_infra_create_on_the_embedded_profile_says_there_is_nothing_to_create(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "playerpulse", "infra", "create", "--env", "local"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PLAYERPULSE_WORKDIR": str(tmp_path)},
    )

    assert done.returncode == 1
    assert "names no cloud resource" in done.stderr


def test_infra_create_takes_the_workdir_every_command_takes(aws_endpoint, tmp_path):
    env = aws_env(aws_endpoint, tmp_path)
    command = [sys.executable, "-m", "playerpulse", "infra", "create", "--env", "aws", "--workdir", str(tmp_path)]

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert f"bucket {env['PLAYERPULSE_BUCKET']}: created" in done.stdout
