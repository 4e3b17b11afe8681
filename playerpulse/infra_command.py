"""``playerpulse infra create``: the buckets, stream and table a configuration names, made if missing.

For local AWS-compatible servers and dev accounts, where deploying the SAM stack
(``infra/template.yaml``) is more than the job needs. It uses the names configuration gives
(``PLAYERPULSE_BUCKET``, ``PLAYERPULSE_KINESIS_STREAM``, ``PLAYERPULSE_PROFILES_TABLE``), which
are also the names the stack's functions are given, and the same shapes: a Kinesis stream, a
DynamoDB table keyed by the string ``pk`` (``game_id#player_id``, see
``features/online/dynamodb.py``) on demand with TTL on ``expires_at``, buckets with public access
blocked. Running it twice changes nothing: every resource is looked up before it is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from features.config import DynamoDBOnlineStoreConfig, KinesisStreamConfig, S3DeadLetterConfig, Settings, load_settings
from features.errors import ConfigError

TTL_ATTRIBUTE = "expires_at"


@dataclass(frozen=True)
class Resource:
    kind: str
    name: str
    created: bool

    def line(self) -> str:
        return f"{self.kind} {self.name}: {'created' if self.created else 'exists'}"


def buckets(settings: Settings) -> list[str]:
    """Every S3 bucket the configuration names (lake, checkpoints, reports, dead letters, MLflow)."""
    locations = [settings.lake.root, settings.lake.checkpoints, settings.lake.reports, settings.mlflow.artifact_root]
    names = [urlsplit(loc).netloc for loc in locations if loc and urlsplit(loc).scheme in ("s3", "s3a")]
    if isinstance(settings.dead_letter, S3DeadLetterConfig):
        names.append(settings.dead_letter.bucket)
    return list(dict.fromkeys(names))


def _endpoint(settings: Settings) -> str | None:
    if isinstance(settings.dead_letter, S3DeadLetterConfig) and settings.dead_letter.endpoint_url:
        return settings.dead_letter.endpoint_url
    return settings.lake.endpoint_url


def create_bucket(settings: Settings, name: str) -> Resource:
    import boto3
    from botocore.exceptions import ClientError

    region = settings.lake.region or "us-east-1"
    s3 = boto3.client("s3", region_name=region, endpoint_url=_endpoint(settings))
    try:
        s3.head_bucket(Bucket=name)
        return Resource("bucket", name, False)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    args: dict = {"Bucket": name}
    if region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**args)
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    return Resource("bucket", name, True)


def create_stream(cfg: KinesisStreamConfig) -> Resource:
    import boto3

    kinesis = boto3.client("kinesis", region_name=cfg.region, endpoint_url=cfg.endpoint_url)
    try:
        kinesis.describe_stream_summary(StreamName=cfg.stream_name)
        created = False
    except kinesis.exceptions.ResourceNotFoundException:
        kinesis.create_stream(StreamName=cfg.stream_name, ShardCount=cfg.shard_count)
        created = True
    kinesis.get_waiter("stream_exists").wait(StreamName=cfg.stream_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return Resource("stream", cfg.stream_name, created)


def create_table(cfg: DynamoDBOnlineStoreConfig) -> Resource:
    import boto3

    dynamodb = boto3.client("dynamodb", region_name=cfg.region, endpoint_url=cfg.endpoint_url)
    try:
        dynamodb.describe_table(TableName=cfg.table_name)
        created = False
    except dynamodb.exceptions.ResourceNotFoundException:
        dynamodb.create_table(
            TableName=cfg.table_name,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        created = True
    dynamodb.get_waiter("table_exists").wait(TableName=cfg.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    if created:
        dynamodb.update_time_to_live(
            TableName=cfg.table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
        )
    return Resource("table", cfg.table_name, created)


def create_resources(settings: Settings) -> list[Resource]:
    """Make every cloud resource ``settings`` names that does not exist yet; what was done."""
    made = [create_bucket(settings, name) for name in buckets(settings)]
    if isinstance(settings.stream, KinesisStreamConfig):
        made.append(create_stream(settings.stream))
    if isinstance(settings.online_store, DynamoDBOnlineStoreConfig):
        made.append(create_table(settings.online_store))
    if not made:
        raise ConfigError(
            f"env '{settings.env}' names no cloud resource (no S3 location, Kinesis stream or DynamoDB table): "
            "use --env aws"
        )
    return made


def infra_create(
    env: Annotated[str | None, typer.Option("--env", help="Configuration: conf/<env>.yaml (default aws).")] = "aws",
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Work folder (accepted as by every command; the resources are remote)."),
    ] = None,
) -> None:
    """Create the buckets, Kinesis stream and DynamoDB table the configuration names, if missing."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        settings = load_settings(env, workdir)
        for resource in create_resources(settings):
            typer.echo(resource.line())
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except (BotoCoreError, ClientError) as exc:
        typer.echo(
            f"error: AWS refused to create a resource: {exc}. Check the credentials (AWS_* variables) and, "
            "for a local server, PLAYERPULSE_AWS_ENDPOINT",
            err=True,
        )
        raise typer.Exit(1) from None
