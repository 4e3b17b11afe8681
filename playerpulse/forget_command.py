"""``playerpulse forget PLAYER_ID … [--game GAME] [--file IDS] [--now]`` (registered in ``cli.py``).

Answers an erasure request: the ids are the game's own (pseudonymised where the game is), and
``pipelines.forget`` removes them from the lake, the stores, the stream, MLflow holdouts and
report files, logging digests only in ``gold.erasure_log``. The output names places and counts,
never an id, so it can go into a ticket as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from features.config import load_settings
from features.errors import ConfigError

console = Console()


def _ids(player_ids: list[str] | None, file: Path | None) -> list[str]:
    ids = list(player_ids or [])
    if file is not None:
        if not file.is_file():
            raise ConfigError(f"--file {file} does not exist: give a text file with one player id per line")
        ids += [line.strip() for line in file.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return ids


def forget(
    player_ids: Annotated[list[str] | None, typer.Argument(help="Player ids as the game knows them.")] = None,
    game: Annotated[str | None, typer.Option("--game", help="The players' game (default: the only game).")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A file of player ids, one per line.")] = None,
    now: Annotated[
        bool,
        typer.Option("--now", help="VACUUM with no retention and expire old log versions, instead of waiting."),
    ] = False,
    env: Annotated[str | None, typer.Option("--env", help="Configuration to use: conf/<env>.yaml.")] = None,
    workdir: Annotated[Path | None, typer.Option("--workdir", help="Folder for all embedded state.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Erase players from every table, store, stream record, holdout and report file (privacy)."""
    from pipelines import forget as erasure
    from pipelines.session import get_spark

    settings = load_settings(env, workdir)
    if game is None:
        if len(settings.games) != 1:
            raise ConfigError(f"name the players' game with --game (configured: {sorted(settings.games)})")
        game = next(iter(settings.games))
    ids = _ids(player_ids, file)
    erasure.check_request(settings, game, ids)
    spark = get_spark(settings, app_name="playerpulse-forget")
    try:
        report = erasure.run(spark, settings, game, ids, now=now)
    finally:
        spark.stop()
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    console.print(f"erasure {report.erasure_id}: {report.players} players of game {report.game}")
    for place, n in report.removed.items():
        console.print(f"  {place}: {n} removed")
    for model in report.retrain:
        console.print(f"  retrain {model['model']} v{model['version']} {model['aliases']}: trained on their data")
    for note in report.notes:
        console.print(f"  note: {note}")
