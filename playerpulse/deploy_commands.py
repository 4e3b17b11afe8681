"""CLI: package a model for AWS Lambda, deploy it behind an alias, roll the alias back, render the stack.

    playerpulse models package NAME [--out DIR]
    playerpulse models deploy NAME [--alias live] [--package ZIP] [--role-arn ARN]
    playerpulse models rollback NAME --lambda [--alias live]
    playerpulse infra render [--out infra/template.yaml]
    playerpulse collector package [--out DIR]

The logic lives in ``serving.deploy``; these functions parse options and print the outcome.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from features.config import load_settings, repo_root
from serving.deploy.naming import LIVE_ALIAS

console = Console()

infra_app = typer.Typer(help="The cloud stack as code (AWS SAM), rendered from configuration.", no_args_is_help=True)
collector_app = typer.Typer(help="The collector's AWS Lambda function (POST /v1/events).", no_args_is_help=True)

Env = Annotated[
    str | None,
    typer.Option("--env", help="Configuration to use: conf/<env>.yaml (default $PLAYERPULSE_ENV or 'local')."),
]
Workdir = Annotated[
    Path | None, typer.Option("--workdir", help="Folder for all embedded state (default: the config's workdir, ./var).")
]
Alias = Annotated[str, typer.Option("--alias", help="The Lambda alias the HTTP API routes call.")]
Region = Annotated[str | None, typer.Option("--region", help="AWS region (default $AWS_REGION or us-east-1).")]


def models_package(
    model: Annotated[str, typer.Argument(help="Model name: conf/models/<model>.yaml, registered with a champion.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for MODEL.zip (default: WORKDIR/lambda/packages).")
    ] = None,
    env: Env = None,
    workdir: Workdir = None,
) -> None:
    """Build the model's Lambda zip: handler code, its champion as native xgboost files, requirements."""
    from serving.deploy.package import package_model

    report = package_model(load_settings(env, workdir), model, out)
    console.print(report.summary(), markup=False, soft_wrap=True)
    console.print(f"next: playerpulse models deploy {model} --package {report.path}", markup=False, soft_wrap=True)


def models_deploy(
    model: Annotated[str, typer.Argument(help="Model name; the function is playerpulse-model-<model>.")],
    alias: Alias = LIVE_ALIAS,
    package: Annotated[
        Path | None, typer.Option("--package", help="The zip (default: what `models package` wrote).")
    ] = None,
    role_arn: Annotated[
        str | None,
        typer.Option(
            "--role-arn",
            help="Role for a new function (default: the stack's playerpulse-model-<model> in the caller's account).",
        ),
    ] = None,
    region: Region = None,
    env: Env = None,
    workdir: Workdir = None,
) -> None:
    """Create or update the model's Lambda function, publish a version and point the alias at it."""
    from serving.deploy.lambda_deploy import deploy_package
    from serving.deploy.package import default_package_path

    zip_path = package or default_package_path(load_settings(env, workdir), model)
    release = deploy_package(model, zip_path, alias=alias, role_arn=role_arn, region=region)
    console.print(release.summary(), markup=False, soft_wrap=True)


def lambda_rollback(model: str, alias: str = LIVE_ALIAS, region: str | None = None) -> None:
    """``models rollback NAME --lambda``: the alias back to the previous published version."""
    from serving.deploy.lambda_deploy import rollback_alias

    console.print(rollback_alias(model, alias=alias, region=region).summary(), markup=False, soft_wrap=True)


@infra_app.command("render")
def infra_render(
    out: Annotated[Path | None, typer.Option("--out", help="Where to write (default infra/template.yaml).")] = None,
) -> None:
    """Write the SAM template of the cloud profile from conf/aws.yaml and every conf/models/*.yaml."""
    from serving.deploy.template import TEMPLATE_PATH, render_template, write_template

    path = write_template(out or repo_root() / TEMPLATE_PATH)
    functions = [r for r in render_template()["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    console.print(f"wrote {path} ({len(functions)} functions)", markup=False, soft_wrap=True)


@collector_app.command("package")
def collector_package(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder for collector.zip (default: WORKDIR/lambda/packages; the stack reads dist/lambda)."
        ),
    ] = None,
    env: Env = None,
    workdir: Workdir = None,
) -> None:
    """Build the collector's Lambda zip: handler code and its pinned requirements (no model, no numpy)."""
    from serving.deploy.collector_package import package_collector

    report = package_collector(load_settings(env, workdir), out)
    console.print(report.summary(), markup=False, soft_wrap=True)
