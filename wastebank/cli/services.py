"""`wastebank services`: this checkout's Mosquitto, InfluxDB (and PostgreSQL) on loopback
(wastebank/services/)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from wastebank.cli._common import ConfigOption, setup_logging

services_app = typer.Typer(
    help="Mosquitto + InfluxDB on loopback / layanan lokal", no_args_is_help=True
)


class OptionalService(StrEnum):
    postgresql = "postgresql"
    sms = "sms"


@services_app.command("up")
def services_up(
    config: ConfigOption = None,
    with_: Annotated[
        list[OptionalService] | None,
        typer.Option(
            "--with",
            help="also PostgreSQL, for a multi-node ledger (or WASTEBANK_POSTGRESQL=true); "
            "sms: Gammu SMSD on a dummy phone in .run/gammu (or WASTEBANK_GAMMU_SMSD=true)",
        ),
    ] = None,
) -> None:
    """Install (if missing) and start Mosquitto and InfluxDB (and PostgreSQL) on 127.0.0.1."""
    from wastebank import services
    from wastebank.config import load_settings

    setup_logging()
    fields = {OptionalService.postgresql: "postgresql", OptionalService.sms: "gammu_smsd"}
    overrides = {fields[name]: True for name in with_ or []}
    services.up(load_settings(services.ServicesSettings, config, **overrides))


@services_app.command("down")
def services_down(config: ConfigOption = None) -> None:
    """Stop the services this project started (by their own pid files)."""
    from wastebank import services
    from wastebank.config import load_settings

    setup_logging()
    services.down(load_settings(services.ServicesSettings, config))


@services_app.command("status")
def services_status(config: ConfigOption = None) -> None:
    """Show whether each service is running and answering; exit 1 if one is not."""
    from wastebank import services
    from wastebank.config import load_settings

    states = services.status(load_settings(services.ServicesSettings, config))
    for state in states:
        typer.echo(state.describe())
    if not all(s.healthy for s in states):
        raise typer.Exit(code=1)
