"""`wastebank influx`: this checkout's InfluxDB users and schema, and deposit points written again
from the ledger (wastebank/reconcile/)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import typer

from wastebank.cli._common import (
    ConfigOption,
    LedgerUrlOption,
    count_progress,
    fail,
    processes,
    setup_logging,
)

influx_app = typer.Typer(
    help="InfluxDB: pengguna & skema, titik dari buku besar / users and schema, points from the "
    "ledger",
    no_args_is_help=True,
)


@influx_app.command("setup")
def influx_setup(
    database: Annotated[
        list[str] | None,
        typer.Option(
            "--database",
            help="also this database (repeatable); the city's ([influx] database) always",
        ),
    ] = None,
    rotate: Annotated[
        str | None,
        typer.Option("--rotate", help="give this user (admin, ingest, api, tps) a new password"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """This checkout's InfluxDB (1.x, started by `services up`): its users, the schema of each
    database (retention policies, hourly roll-ups) and each role's grant, as `services up`
    makes them; or, with --rotate, a new password for one user (restart its processes). No
    password is printed: each is in .run/secrets/influxdb/<user> (0600)."""
    from wastebank import services
    from wastebank.config import load_settings

    setup_logging()
    settings = load_settings(services.ServicesSettings, config)
    try:
        if rotate is not None:
            path = services.rotate_influx_password(settings, rotate)
            typer.echo(f"kata sandi baru / new password for {rotate}: {path}")
            return
        services.prepare_influxdb(settings, database or [])
    except (OSError, ValueError) as exc:
        raise fail(exc) from None
    for name in [settings.influx.database, *(database or [])]:
        typer.echo(f"skema & hak akses siap / schema and grants ready: {name}")


@influx_app.command("rebuild-deposits")
def influx_rebuild_deposits(
    date_from: Annotated[
        datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="first local day")
    ],
    date_to: Annotated[
        datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="last local day (included)")
    ],
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Make the deposit points of a range of local days again from the ledger: delete them
    (1.x InfluxQL DELETE, 2.x /api/v2/delete; 3.x cannot) and write one per device deposit
    (voided ones too), as the ingester does; on 1.x recompute the hourly roll-up (deposit_1h)
    of those hours. For after `ledger verify --influx` found drift. Running it twice gives the
    same points. Uses the ingester's settings (--config / WASTEBANK_*)."""
    import time

    from wastebank import ledger, reconcile

    first, last = date_from.date(), date_to.date()
    if last < first:
        raise typer.BadParameter("--to sebelum --from / --to before --from", param_hint="--to")
    overrides = {"ledger_url": ledger_url} if ledger_url else {}
    settings = processes().ingest_settings(config, **overrides)
    engine = ledger.make_engine(settings.ledger_url, writer=False)
    bar, progress = count_progress("menulis titik / writing points (deposit)")
    started = time.monotonic()
    try:
        with bar:
            summary = asyncio.run(
                reconcile.rebuild_deposits(engine, settings.influx, first, last, progress=progress)
            )
    except ValueError as exc:
        raise fail(exc) from None
    finally:
        engine.dispose()
    span = f"{summary.start.isoformat()}..{summary.end.isoformat()}"
    typer.echo(
        f"titik deposit {first}..{last} dibangun ulang / deposit points rebuilt (InfluxDB "
        f"{summary.server}, {span}): ditulis / written {summary.written:,} "
        f"({time.monotonic() - started:.1f} s)"
    )
    if summary.beyond_retention:
        typer.echo(
            f"{summary.beyond_retention:,} titik di luar retensi raw, ditolak / points beyond the "
            "raw retention, refused (their deposits stay in the ledger)"
        )
    if summary.hours is not None:
        lo, hi = (h.isoformat() for h in summary.hours)
        typer.echo(f"ringkasan per jam dihitung ulang / hourly roll-up recomputed: {lo}..{hi}")
    for note in summary.notes:
        typer.echo(note)
