"""Put a packaged model on AWS Lambda behind an alias, and move the alias back.

A deploy uploads the package (creating the function the first time, with the role the stack
made for it), waits until Lambda reports the update ``Successful``, publishes an immutable
version whose description names the MLflow version inside, and points the alias (``live``, the
one the HTTP API routes call) at it. Rollback points the alias at the published version before
the one it serves. Nothing is invoked: publishing and aliasing are the whole release.

``PLAYERPULSE_AWS_ENDPOINT`` points every call at a local AWS-compatible server (moto_server).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.errors import PlayerPulseError
from serving.deploy import naming
from serving.deploy.package import HANDLER, MODEL_ENV
from serving.deploy.runtime import ARCHITECTURE, RUNTIME

ENDPOINT_ENV = "PLAYERPULSE_AWS_ENDPOINT"
DEFAULT_MEMORY_MB = 1024
DEFAULT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Release:
    function: str
    alias: str
    version: str
    """The published Lambda version the alias now points at."""
    previous: str | None
    """The version it pointed at before (``None``: the alias is new)."""
    description: str
    created: bool = False

    def summary(self) -> str:
        before = f"(was version {self.previous})" if self.previous else "(new alias)"
        made = "created, " if self.created else ""
        return f"{self.function}: {made}alias {self.alias} → version {self.version} {before}: {self.description}"


def _region(region: str | None) -> str:
    return region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def lambda_client(region: str | None = None) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "lambda",
        region_name=_region(region),
        endpoint_url=os.environ.get(ENDPOINT_ENV) or None,
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )


def default_role_arn(region: str | None, model: str) -> str:
    """The role ``infra/template.yaml`` gives the model's function, in the caller's account."""
    import boto3

    sts = boto3.client(
        "sts",
        region_name=region or os.environ.get("AWS_REGION") or "us-east-1",
        endpoint_url=os.environ.get(ENDPOINT_ENV) or None,
    )
    ident = sts.get_caller_identity()
    partition = str(ident["Arn"]).split(":")[1]
    return naming.model_role_arn(str(ident["Account"]), model, partition)


def package_description(zip_bytes: bytes, model: str) -> str:
    """``store_offer mlflow v3 (player_activity_v1)`` from the package's ``model/metadata.json``."""
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
            meta = json.loads(zf.read("model/metadata.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise PlayerPulseError(
            f"the package is not a model package ({exc}): build it with `playerpulse models package {model}`"
        ) from None
    if meta.get("model") != model:
        raise PlayerPulseError(
            f"the package holds model '{meta.get('model')}', not '{model}': package {model} and deploy that"
        )
    return f"{model} mlflow v{meta.get('version')} ({meta.get('feature_set')})"


def _aws_error(exc: Exception, doing: str) -> PlayerPulseError:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        hint = {
            "AccessDeniedException": "the caller may not manage Lambda functions: check its IAM permissions",
            "InvalidParameterValueException": "check the role ARN (--role-arn) and that the role exists",
            "ResourceConflictException": "another update of the function is in progress: retry in a minute",
            "RequestEntityTooLargeException": "the package is over Lambda's 50 MB direct-upload limit: re-package it",
        }.get(code, "check the AWS credentials, region and PLAYERPULSE_AWS_ENDPOINT")
        return PlayerPulseError(f"{doing} failed ({code}: {message}): {hint}")
    return PlayerPulseError(f"{doing} failed ({type(exc).__name__}: {exc}): check the endpoint and credentials")


def _wait_until_updated(client: Any, function: str, delay_s: int) -> None:
    from botocore.exceptions import WaiterError

    try:
        client.get_waiter("function_updated_v2").wait(
            FunctionName=function, WaiterConfig={"Delay": delay_s, "MaxAttempts": 120}
        )
    except WaiterError:
        cfg = client.get_function_configuration(FunctionName=function)
        raise PlayerPulseError(
            f"{function}: the update ended {cfg.get('LastUpdateStatus')} "
            f"({cfg.get('LastUpdateStatusReason') or 'no reason given'}); nothing was published, the alias did not "
            "move: fix the cause and deploy again"
        ) from None


def _function_exists(client: Any, function: str) -> bool:
    try:
        client.get_function(FunctionName=function)
    except client.exceptions.ResourceNotFoundException:
        return False
    return True


def _alias_version(client: Any, function: str, alias: str) -> str | None:
    try:
        return str(client.get_alias(FunctionName=function, Name=alias)["FunctionVersion"])
    except client.exceptions.ResourceNotFoundException:
        return None


def _point_alias(client: Any, function: str, alias: str, version: str, description: str) -> str | None:
    previous = _alias_version(client, function, alias)
    if previous is None:
        client.create_alias(FunctionName=function, Name=alias, FunctionVersion=version, Description=description)
    else:
        client.update_alias(FunctionName=function, Name=alias, FunctionVersion=version, Description=description)
    return previous


def deploy_package(
    model: str,
    package: Path,
    alias: str = naming.LIVE_ALIAS,
    role_arn: str | None = None,
    region: str | None = None,
    client: Any = None,
    poll_s: int = 2,
) -> Release:
    """Create or update ``playerpulse-model-MODEL`` from ``package``, publish it, point ``alias`` at it."""
    if not package.is_file():
        raise PlayerPulseError(f"no package at {package}: build it with `playerpulse models package {model}`")
    code = package.read_bytes()
    description = package_description(code, model)
    client = client or lambda_client(region)
    function = naming.model_function_name(model)
    created = False
    try:
        if _function_exists(client, function):
            client.update_function_code(FunctionName=function, ZipFile=code)
        else:
            client.create_function(
                FunctionName=function,
                Runtime=RUNTIME,
                Architectures=[ARCHITECTURE],
                Role=role_arn or default_role_arn(region, model),
                Handler=HANDLER,
                Code={"ZipFile": code},
                Description=description,
                Timeout=DEFAULT_TIMEOUT_S,
                MemorySize=DEFAULT_MEMORY_MB,
                Environment={"Variables": {MODEL_ENV: model, "PLAYERPULSE_ENV": "aws"}},
            )
            created = True
            client.get_waiter("function_active_v2").wait(FunctionName=function, WaiterConfig={"Delay": poll_s})
        _wait_until_updated(client, function, poll_s)
        version = str(client.publish_version(FunctionName=function, Description=description)["Version"])
        previous = _point_alias(client, function, alias, version, description)
    except PlayerPulseError:
        raise
    except Exception as exc:
        raise _aws_error(exc, f"deploying {function}") from exc
    return Release(function, alias, version, previous, description, created)


def published_versions(client: Any, function: str) -> list[tuple[int, str]]:
    """``(number, description)`` of every published version, oldest first (``$LATEST`` left out)."""
    out = []
    for page in client.get_paginator("list_versions_by_function").paginate(FunctionName=function):
        out += [(int(v["Version"]), v.get("Description", "")) for v in page["Versions"] if v["Version"] != "$LATEST"]
    return sorted(out)


def rollback_alias(
    model: str, alias: str = naming.LIVE_ALIAS, region: str | None = None, client: Any = None
) -> Release:
    """Point ``alias`` at the published version just before the one it serves."""
    client = client or lambda_client(region)
    function = naming.model_function_name(model)
    try:
        current = _alias_version(client, function, alias)
        if current is None:
            raise PlayerPulseError(
                f"{function} has no alias '{alias}' (or no such function): deploy it first "
                f"(`playerpulse models deploy {model}`)"
            )
        earlier = [(n, d) for n, d in published_versions(client, function) if n < int(current)]
        if not earlier:
            raise PlayerPulseError(
                f"{function}:{alias} serves version {current}, the first published version: nothing to roll back to"
            )
        version, description = earlier[-1]
        client.update_alias(FunctionName=function, Name=alias, FunctionVersion=str(version), Description=description)
    except PlayerPulseError:
        raise
    except Exception as exc:
        raise _aws_error(exc, f"rolling back {function}:{alias}") from exc
    return Release(function, alias, str(version), current, description)
