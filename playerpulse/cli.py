"""``playerpulse``: the one command line of the platform.

Every command takes ``--env`` (which ``conf/<env>.yaml``; default ``$PLAYERPULSE_ENV`` or
``local``) and ``--workdir`` (where all embedded state lives; default the file's ``workdir``).
A failure prints what went wrong and what to do, never a bare stack trace (set
``PLAYERPULSE_DEBUG=1`` to see one).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from features.config import Settings, load_settings
from features.errors import PlayerPulseError
from playerpulse.autoscale_command import stream_autoscale
from playerpulse.cost.command import cost_app
from playerpulse.deploy_commands import collector_app, infra_app, lambda_rollback, models_deploy, models_package
from playerpulse.forget_command import forget
from playerpulse.infra_command import infra_create
from playerpulse.report_command import report_app
from playerpulse.sql_command import sql
from playerpulse.submit_command import submit

console = Console(stderr=False)
err_console = Console(stderr=True)

app = typer.Typer(
    name="playerpulse",
    help="Real-time player events in, ML predictions out: collector, Delta lakehouse, online profiles, models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Registered models: list versions and aliases, roll back.", no_args_is_help=True)
stream_app = typer.Typer(help="Streaming jobs.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(stream_app, name="stream")
stream_app.command("autoscale")(stream_autoscale)
app.add_typer(cost_app, name="cost")
models_app.command("package")(models_package)
models_app.command("deploy")(models_deploy)
app.add_typer(infra_app, name="infra")
infra_app.command("create")(infra_create)
app.command("sql")(sql)
app.command("submit")(submit)
app.command("forget")(forget)
app.add_typer(collector_app, name="collector")
keys_app = typer.Typer(help="API keys per game and role.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(report_app, name="report")

Env = Annotated[
    str | None,
    typer.Option("--env", help="Configuration to use: conf/<env>.yaml (default $PLAYERPULSE_ENV or 'local')."),
]
Workdir = Annotated[
    Path | None, typer.Option("--workdir", help="Folder for all embedded state (default: the config's workdir, ./var).")
]


def _settings(env: str | None, workdir: Path | None) -> Settings:
    return load_settings(env, workdir)


@app.command()
def demo(
    players: Annotated[int, typer.Option(min=10, help="Simulated players.")] = 2000,
    days: Annotated[int, typer.Option(min=10, max=60, help="Days of simulated history.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed of the simulation.")] = 7,
    port: Annotated[int, typer.Option(help="Port of the local gateway (0 = any free port).")] = 0,
    env: Env = None,
    workdir: Workdir = None,
) -> None:
    """Run the whole platform end to end on one machine and print a summary."""
    settings = _settings(env, workdir)
    from playerpulse.demo import run_demo

    summary = run_demo(settings, players=players, days=days, seed=seed, port=port, console=console)
    summary.print(console)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    env: Env = None,
    workdir: Workdir = None,
) -> None:
    """Serve the HTTP API (events, profiles, predictions, /healthz, /metrics, /docs)."""
    import uvicorn

    settings = _settings(env, workdir)
    os.environ["PLAYERPULSE_ENV"] = settings.env
    os.environ["PLAYERPULSE_WORKDIR"] = settings.workdir
    limits = settings.serving
    if limits.metrics.port is not None and workers > 1:
        raise PlayerPulseError(
            f"serving.metrics.port serves one process's metrics, but --workers is {workers}: "
            "run one worker, or protect /metrics with serving.metrics.keys instead"
        )
    console.print(f"serving env [bold]{settings.env}[/] from {settings.workdir} on http://{host}:{port}")
    uvicorn.run(
        "serving.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        # Beyond this many concurrent connections per worker, new requests get a 503.
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=limits.keep_alive_timeout_s,
    )


@keys_app.command("new")
def keys_new(
    game: Annotated[str, typer.Argument(help="The game the key is for (as in conf: games.GAME).")],
    role: Annotated[str, typer.Option(help="ingest (posts events, ships in the client) or serve (reads players).")],
) -> None:
    """Make a new random key and print it with the SHA-256 digest that goes into configuration."""
    import secrets

    from features.config import hash_api_key

    if role not in ("ingest", "serve"):
        raise PlayerPulseError(f"--role must be 'ingest' or 'serve', not '{role}'")
    key = f"pp-{role}-{secrets.token_urlsafe(32)}"
    holder = "the game client" if role == "ingest" else "the game's servers"
    console.print(f"key:    {key}  (give it to {holder}; it is shown once and stored nowhere)", soft_wrap=True)
    console.print(f"digest: {hash_api_key(key)}  (add it to games.{game}.{role}_keys)", soft_wrap=True)


@app.command()
def simulate(
    url: Annotated[str, typer.Option(help="Base URL of a running collector.")] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str, typer.Option(envvar="PLAYERPULSE_API_KEY", help="The game's API key.")
    ] = "pp-demo-key-local-only",
    players: Annotated[int, typer.Option(min=1)] = 2000,
    days: Annotated[int, typer.Option(min=1, max=60)] = 30,
    seed: int = 7,
    env: Env = None,
    workdir: Workdir = None,
) -> None:
    """Simulate a game's players and send their history to a collector; keep the ground truth."""
    settings = _settings(env, workdir)
    from playerpulse.demo import simulate_and_send

    simulate_and_send(settings, url, api_key, players, days, seed, console)


@app.command()
def pipeline(
    job: Annotated[str, typer.Argument(help="bronze, silver, gold, maintain, monitoring, or all (the lake pass).")],
    env: Env = None,
    workdir: Workdir = None,
) -> None:
    """Run a lakehouse job (also runnable as a file with spark-submit)."""
    from pipelines.jobs import JOBS, run_all
    from pipelines.session import job_session

    if job != "all" and job not in JOBS:
        raise PlayerPulseError(f"unknown job '{job}': choose one of {', '.join([*JOBS, 'all'])}")
    settings = _settings(env, workdir)
    with job_session(settings, app_name=f"playerpulse-{job}") as spark:
        result = run_all(spark, settings) if job == "all" else {job: JOBS[job](spark, settings)}
    for name, metrics in result.items():
        console.print(f"[bold]{name}[/]: {metrics}")


@stream_app.command("profiles")
def stream_profiles(
    trigger_ms: Annotated[int | None, typer.Option(help="Micro-batch interval (default from config).")] = None,
    available_now: Annotated[bool, typer.Option(help="Process what is on the stream, then stop.")] = False,
    env: Env = None,
    workdir: Workdir = None,
) -> None:
    """Materialise player profiles into the online store from the event stream."""
    from pipelines.profiles_stream import run_until_interrupted, start_profiles_stream
    from pipelines.session import get_spark

    settings = _settings(env, workdir)
    spark = get_spark(settings, app_name="playerpulse-profiles")
    query = start_profiles_stream(spark, settings, trigger_ms=trigger_ms, available_now=available_now)
    console.print(f"profiles stream running (id {query.id}); Ctrl-C to stop")
    run_until_interrupted(query)


@app.command()
def train(
    model: Annotated[str, typer.Argument(help="Model name: conf/models/<model>.yaml.")],
    ground_truth: Annotated[
        Path | None, typer.Option(help="Simulator ground truth parquet (reports the AUC ceiling).")
    ] = None,
    reproduce: Annotated[
        str | None,
        typer.Option(
            metavar="RUN_ID",
            help="Rerun that training run from the Delta versions and declaration it recorded; "
            "exits 1 unless every metric is identical. Registers nothing.",
        ),
    ] = None,
    tune: Annotated[
        bool | None,
        typer.Option(
            "--tune/--no-tune",
            help="Search the booster settings with Optuna on the training days before training. Default: "
            "search when the declaration has tuning:; --tune searches one without it in the default space; "
            "--no-tune skips a declared search.",
        ),
    ] = None,
    trials: Annotated[
        int | None, typer.Option(min=1, help="Trials of the search (implies --tune; replaces tuning.trials).")
    ] = None,
    env: Env = None,
    workdir: Workdir = None,
) -> None:
    """Build the point-in-time training set, train, log to MLflow and register a version (then: validate)."""
    from features.model_config import load_model_config
    from pipelines.session import get_spark
    from training.train import train_model
    from training.tuning import with_tuning

    settings = _settings(env, workdir)
    if reproduce is not None and (tune is not None or trials is not None):
        raise typer.BadParameter(
            "--reproduce reruns the declaration the run recorded; --tune/--trials cannot change it"
        )
    if reproduce is not None:
        _print_reproduction(get_spark(settings, app_name=f"playerpulse-train-{model}"), settings, model, reproduce)
        return
    config = with_tuning(load_model_config(settings, model), tune=tune, trials=trials)  # fails before Spark starts
    spark = get_spark(settings, app_name=f"playerpulse-train-{model}")
    result = train_model(
        spark, settings, model, ground_truth_path=str(ground_truth) if ground_truth else None, config=config
    )
    console.print(result)
    console.print(f"next: playerpulse validate {model} --version {result.version}", markup=False)


def _print_reproduction(spark, settings: Settings, model: str, run_id: str) -> None:
    from training.reproduce import reproduce

    outcome = reproduce(spark, settings, model, run_id)
    console.print(f"{model}: run {outcome.run_id} reproduces run {run_id} from {outcome.inputs}", markup=False)
    code = {True: "the commit the run recorded", False: "NOT the commit the run recorded", None: "commit unknown"}
    console.print(f"  code: {code[outcome.same_code]}", markup=False)
    for key in sorted(outcome.metrics):
        diff = outcome.differences.get(key)
        shown = f"{outcome.metrics[key]:.6g}" + (f"  (recorded {diff[0]:.6g})" if diff else "")
        console.print(f"  {'DIFF' if diff else 'same'} {key}: {shown}", markup=False)
    if not outcome.identical:
        console.print(f"not reproduced: {len(outcome.differences)} metric(s) differ", markup=False)
        raise typer.Exit(1)
    console.print("reproduced: every recorded metric is identical", markup=False)


@app.command()
def validate(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int | None, typer.Option(help="Version to validate (default: the newest).")] = None,
    env: Env = None,
    workdir: Workdir = None,
) -> None:
    """Check a version against its model's quality_gate on its holdout rows; a pass makes it challenger.

    Exits 1 when the version fails; the decision is recorded either way (version tags, MLflow run).
    """
    from training.validate import validate as do_validate

    settings = _settings(env, workdir)
    result = do_validate(settings, model, version)
    console.print(f"{model} version {result.version}: validation {result.status.upper()}", markup=False)
    for check in result.checks:
        console.print(f"  {'ok  ' if check.passed else 'FAIL'} {check.name}: {check.detail}", markup=False)
    console.print(f"  recorded in run {result.run_id}; aliases: {', '.join(result.aliases) or '-'}", markup=False)
    if not result.passed:
        raise typer.Exit(1)


@app.command()
def promote(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int | None, typer.Option(help="Version to make champion (default: the challenger).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote a version that did not pass validation (needs --reason).")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why; required with --force, recorded either way.")] = None,
    env: Env = None,
    workdir: Workdir = None,
) -> None:
    """Make a validated challenger (or version V) the champion that serving uses; the move is recorded."""
    from training.promote import promote as do_promote

    settings = _settings(env, workdir)
    console.print(do_promote(settings, model, version, force=force, reason=reason))


@models_app.command("list")
def models_list(env: Env = None, workdir: Workdir = None) -> None:
    """Registered models with their versions, aliases and metrics."""
    from rich.table import Table

    from training.promote import list_models

    settings = _settings(env, workdir)
    table = Table("model", "version", "aliases", "test_auc", "validation", "created")
    for m in list_models(settings):
        for v in m["versions"]:
            auc = v.get("metrics", {}).get("test_auc")
            table.add_row(
                m["name"],
                str(v["version"]),
                ", ".join(v.get("aliases", [])),
                f"{auc:.3f}" if isinstance(auc, float) else "",
                v.get("validation") or "-",
                str(v.get("created", "")),
            )
    console.print(table)


@models_app.command("rollback")
def models_rollback(
    model: Annotated[str, typer.Argument()],
    reason: Annotated[str | None, typer.Option(help="Why (recorded with the rollback).")] = None,
    lambda_: Annotated[bool, typer.Option("--lambda", help="Move the Lambda alias back a version instead.")] = False,
    alias: Annotated[str, typer.Option(help="The Lambda alias to move (with --lambda).")] = "live",
    env: Env = None,
    workdir: Workdir = None,
) -> None:
    """Give the champion alias back to the previous champion (or, with --lambda, the function's alias)."""
    from training.promote import rollback

    if lambda_:
        return lambda_rollback(model, alias)
    settings = _settings(env, workdir)
    console.print(rollback(settings, model, reason=reason))


@models_app.command("history")
def models_history(model: Annotated[str, typer.Argument()], env: Env = None, workdir: Workdir = None) -> None:
    """Every promotion and rollback of a model: who, when, from which version to which, and why."""
    from rich.table import Table

    from training.promote import promotion_history

    settings = _settings(env, workdir)
    keys = ("at", "action", "from_version", "to_version", "actor", "forced", "validation.status", "reason")
    table = Table("at", "action", "from", "to", "actor", "forced", "validation", "reason")
    for record in promotion_history(settings, model):
        table.add_row(*(record[k] for k in keys))
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the Typer app and turns failures into short, actionable messages."""
    try:
        code = app(args=argv, standalone_mode=False)  # a command's typer.Exit(n) arrives as n here
        return code if isinstance(code, int) else 0
    except PlayerPulseError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        return 1
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors: bad option values, unknown commands
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            err_console.print(f"[bold red]error:[/] {exc}")
        return int(getattr(exc, "exit_code", 2))
    except Exception as exc:  # last resort: still no bare stack trace for a user
        if os.environ.get("PLAYERPULSE_DEBUG"):
            raise
        err_console.print(f"[bold red]unexpected error:[/] {type(exc).__name__}: {exc}")
        err_console.print("run again with PLAYERPULSE_DEBUG=1 for the full trace, and report it if it is a bug")
        return 1


if __name__ == "__main__":
    sys.exit(main())
