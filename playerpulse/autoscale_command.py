"""``playerpulse stream autoscale``: size the Kinesis stream to its traffic (registered in ``cli.py``).

A thin edge over ``features.streams.kinesis_scaling``: load the configuration, run one step
(``--once``) or one step every ``stream_autoscaling.interval_s``, print what was decided.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from features.config import KinesisStreamConfig, load_settings
from features.errors import ConfigError

console = Console()


if TYPE_CHECKING:  # boto3 loads only when the command runs, not with every CLI start
    from features.streams.kinesis_autoscaler import StepResult


def _describe(result: StepResult) -> str:
    obs = result.observation
    return (
        f"[bold]{result.decision.action}[/] {obs.open_shards} → {result.decision.target} shards "
        f"({obs.mode.lower()}, recent {obs.recent.bytes_per_s / 1024:,.1f} KiB/s "
        f"{obs.recent.records_per_s:,.1f} rec/s, "
        f"sustained {obs.sustained.bytes_per_s / 1024:,.1f} KiB/s {obs.sustained.records_per_s:,.1f} rec/s, "
        f"{len(obs.updates)} changes in 24 h): {result.message}"
    )


def stream_autoscale(
    once: Annotated[bool, typer.Option("--once", help="Decide (and apply) once, then stop.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the decision without changing the stream.")] = False,
    env: Annotated[
        str | None,
        typer.Option("--env", help="Configuration to use: conf/<env>.yaml (default $PLAYERPULSE_ENV or 'local')."),
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Folder for all embedded state (default: the config's workdir).")
    ] = None,
) -> None:
    """Scale the Kinesis stream's shards to its traffic (or switch it to on-demand), per stream_autoscaling."""
    settings = load_settings(env, workdir)
    if not isinstance(settings.stream, KinesisStreamConfig):
        raise ConfigError(
            f"stream autoscale sizes a Kinesis stream, but env '{settings.env}' uses the "
            f"{settings.stream.backend} stream (fixed shards): run it with --env aws"
        )
    from features.streams.kinesis_autoscaler import KinesisAutoscaler

    scaler = KinesisAutoscaler(settings.stream, settings.stream_autoscaling)
    try:
        while True:
            console.print(_describe(scaler.step(dry_run=dry_run)))
            if once:
                return
            time.sleep(settings.stream_autoscaling.interval_s)
    finally:
        scaler.close()
