"""Deploying a model package to AWS Lambda, and rolling its alias back, against moto_server over HTTP.

moto creates functions, publishes versions and moves aliases without Docker; invoking would
need Docker, so nothing here invokes (the package test answers events from the unpacked zip).
Packages here are small zips with the ``model/metadata.json`` a real package carries: what the
deploy reads from them. Each test deploys its own model name, as the server lives for the session.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from features.errors import PlayerPulseError
from playerpulse.cli import main
from serving.deploy.lambda_deploy import ENDPOINT_ENV, deploy_package, rollback_alias
from serving.deploy.naming import model_function_name, model_role_name

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@pytest.fixture
def aws(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(ENDPOINT_ENV, aws_endpoint)
    return boto3.client("lambda", endpoint_url=aws_endpoint, region_name="us-east-1")


@pytest.fixture
def model(aws_endpoint: str) -> str:
    """A fresh model name whose role exists under the stack's naming convention."""
    name = f"offer_{uuid.uuid4().hex[:8]}"
    iam = boto3.client("iam", endpoint_url=aws_endpoint, region_name="us-east-1")
    iam.create_role(RoleName=model_role_name(name), AssumeRolePolicyDocument=json.dumps(TRUST))
    return name


def package(tmp_path: Path, model: str, version: int) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        meta = {"model": model, "version": version, "feature_set": "player_activity_v1", "feature_names": ["a"]}
        zf.writestr("model/metadata.json", json.dumps(meta))
        zf.writestr("serving/model_function.py", f"# {model} v{version}\n")
    path = tmp_path / f"{model}-v{version}.zip"
    path.write_bytes(buf.getvalue())
    return path


def sha256_b64(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def test_the_first_deploy_creates_the_function_with_the_stacks_role_and_points_live_at_version_1(
    aws: Any, model: str, tmp_path: Path
) -> None:
    release = deploy_package(model, package(tmp_path, model, 3), poll_s=1)

    fn = aws.get_function_configuration(FunctionName=model_function_name(model))
    assert (release.created, release.version, release.previous) == (True, "1", None)
    assert fn["Role"] == f"arn:aws:iam::123456789012:role/{model_role_name(model)}"
    assert fn["Handler"] == "serving.model_function.handler" and fn["Runtime"] == "python3.11"
    assert fn["Environment"]["Variables"]["PLAYERPULSE_MODEL"] == model
    live = aws.get_alias(FunctionName=model_function_name(model), Name="live")
    assert live["FunctionVersion"] == "1"
    assert release.description == f"{model} mlflow v3 (player_activity_v1)"


def test_a_second_deploy_uploads_the_new_code_and_moves_live_to_the_new_version(
    aws: Any, model: str, tmp_path: Path
) -> None:
    deploy_package(model, package(tmp_path, model, 3), poll_s=1)
    second = package(tmp_path, model, 4)

    release = deploy_package(model, second, poll_s=1)

    function = model_function_name(model)
    assert (release.created, release.version, release.previous) == (False, "2", "1")
    assert aws.get_alias(FunctionName=function, Name="live")["FunctionVersion"] == "2"
    assert aws.get_function(FunctionName=function, Qualifier="2")["Configuration"]["CodeSha256"] == sha256_b64(second)
    assert "mlflow v4" in aws.get_function(FunctionName=function, Qualifier="2")["Configuration"]["Description"]


def test_rollback_moves_live_back_to_the_previous_published_version(aws: Any, model: str, tmp_path: Path) -> None:
    deploy_package(model, package(tmp_path, model, 3), poll_s=1)
    deploy_package(model, package(tmp_path, model, 4), poll_s=1)

    release = rollback_alias(model)

    assert (release.version, release.previous) == ("1", "2")
    assert aws.get_alias(FunctionName=model_function_name(model), Name="live")["FunctionVersion"] == "1"
    assert "mlflow v3" in release.description


def test_rollback_of_the_first_published_version_is_refused_and_live_stays(
    aws: Any, model: str, tmp_path: Path
) -> None:
    deploy_package(model, package(tmp_path, model, 3), poll_s=1)

    with pytest.raises(PlayerPulseError, match="first published version: nothing to roll back to"):
        rollback_alias(model)
    assert aws.get_alias(FunctionName=model_function_name(model), Name="live")["FunctionVersion"] == "1"


def test_rollback_of_a_function_never_deployed_says_to_deploy_it(aws: Any, model: str) -> None:
    with pytest.raises(PlayerPulseError, match=f"playerpulse models deploy {model}"):
        rollback_alias(model)


def test_a_missing_package_is_refused_with_the_command_that_builds_it(aws: Any, model: str, tmp_path: Path) -> None:
    with pytest.raises(PlayerPulseError, match=f"playerpulse models package {model}"):
        deploy_package(model, tmp_path / "nothing.zip")


def test_a_package_of_another_model_is_refused_before_anything_is_uploaded(
    aws: Any, model: str, tmp_path: Path
) -> None:
    with pytest.raises(PlayerPulseError, match=f"holds model 'someone_else', not '{model}'"):
        deploy_package(model, package(tmp_path, "someone_else", 1))
    with pytest.raises(aws.exceptions.ResourceNotFoundException):
        aws.get_function(FunctionName=model_function_name(model))


def test_a_role_that_does_not_exist_fails_with_what_to_check(aws: Any, tmp_path: Path) -> None:
    name = f"norole_{uuid.uuid4().hex[:8]}"
    with pytest.raises(PlayerPulseError, match=r"deploying playerpulse-model-norole_\w+ failed"):
        deploy_package(name, package(tmp_path, name, 1), role_arn="arn:aws:iam::123456789012:role/missing", poll_s=1)


def test_the_cli_deploys_a_package_and_rolls_the_alias_back(
    aws: Any, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = ["--workdir", str(tmp_path / "var")]
    assert main(["models", "deploy", model, "--package", str(package(tmp_path, model, 3)), *workdir]) == 0
    assert main(["models", "deploy", model, "--package", str(package(tmp_path, model, 4)), *workdir]) == 0
    assert main(["models", "rollback", model, "--lambda"]) == 0

    out = " ".join(capsys.readouterr().out.split())
    assert "alias live → version 2 (was version 1)" in out
    assert "alias live → version 1 (was version 2)" in out
    assert aws.get_alias(FunctionName=model_function_name(model), Name="live")["FunctionVersion"] == "1"
