"""`wastebank seed` and `wastebank demo`: the demo city, and the whole system on one machine
(wastebank/seed.py, wastebank/demo.py; the demo starts each process by its command line)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from wastebank.cli._common import ConfigOption, setup_logging

demo_app = typer.Typer()
"""Top-level commands (added to the root without a group name)."""


@demo_app.command()
def seed(
    config: ConfigOption = None,
    ledger_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the ledger")] = None,
) -> None:
    """Create the demo city (Ambon, WIT): three waste banks, members, cards and prices."""
    from wastebank.seed import seed_demo

    summary = seed_demo(ledger_url)
    typer.echo(summary)


@demo_app.command()
def demo(
    config: ConfigOption = None,
    with_sms: Annotated[
        bool,
        typer.Option(
            "--with-sms",
            help="also SMS to members: Gammu SMSD on its dummy phone (apt-get install "
            "gammu-smsd the first time) and `wastebank sms run`; or WASTEBANK_GAMMU_SMSD=true",
        ),
    ] = False,
) -> None:
    """Start services, seed, simulated devices, gateway, ingester and API; Ctrl-C stops all."""
    from wastebank.demo import run as run_demo

    setup_logging()
    try:
        asyncio.run(run_demo(with_sms=with_sms))
    except (KeyboardInterrupt, asyncio.CancelledError):
        typer.echo("dihentikan / stopped")
