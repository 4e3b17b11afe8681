"""``playerpulse cost estimate``: print the monthly bill by service, lever by lever (registered in ``cli.py``)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.table import Table

from features.errors import ConfigError
from playerpulse.cost.estimate import Workload, cumulative, kinesis_on_demand
from playerpulse.cost.inputs import DEFAULT_MEASURED, DEFAULT_PRICES, load_measured, load_prices

cost_app = typer.Typer(help="What the platform costs on AWS, and what each cost lever saves.", no_args_is_help=True)
console = Console(width=max(Console().width, 120))
"""At least 120 columns: seven columns of dollars do not fit the 80 of a pipe."""


@cost_app.command("estimate")
def estimate_command(
    events_per_day: Annotated[int, typer.Option("--events-per-day", min=1, help="Events the games send per day.")],
    players: Annotated[int, typer.Option("--players", min=1, help="Players with an online profile.")],
    compute: Annotated[str, typer.Option(help="emr_serverless or databricks.")] = "emr_serverless",
    retention_days: Annotated[int, typer.Option(min=1, help="Days bronze events are kept.")] = 365,
    prices: Annotated[Path, typer.Option(help="Dated price table (YAML).")] = DEFAULT_PRICES,
    measured: Annotated[Path, typer.Option(help="Measurements written by benchmarks/cost.py.")] = DEFAULT_MEASURED,
) -> None:
    """Monthly AWS bill by service with no lever, then each lever added in turn."""
    try:
        workload = Workload(
            events_per_day=events_per_day, players=players, compute=compute, retention_days=retention_days
        )  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"bad estimate option: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
    table_prices, inputs = load_prices(prices), load_measured(measured)
    columns = cumulative(workload, inputs, table_prices)
    table = Table(
        "USD / month",
        *[name for name, _, _ in columns],
        box=box.SIMPLE_HEAD,
        title=f"{events_per_day:,} events/day, {players:,} players — {table_prices.region} prices of "
        f"{table_prices.recorded}, measured inputs of {inputs.measured_at} ({inputs.players:,} simulated players)",
    )
    for service in columns[0][2]:
        table.add_row(service, *[f"{bill[service]:,.2f}" for _, _, bill in columns])
    totals = [sum(bill.values()) for _, _, bill in columns]
    table.add_row("[bold]total[/]", *[f"[bold]{t:,.2f}[/]" for t in totals])
    table.add_row("saves", "", *[f"{a - b:,.2f}" for a, b in itertools.pairwise(totals)])
    console.print(table)
    on_demand = kinesis_on_demand(workload, inputs, table_prices, columns[-1][1])
    console.print(
        f"Kinesis in on-demand mode instead, all levers on: {on_demand:,.2f} "
        f"USD/month. Assumptions: {workload.model_dump(exclude={'events_per_day', 'players'})}"
    )
