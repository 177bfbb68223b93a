"""`wastebank alert`: the system's alerts for admins (wastebank/alerts.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from wastebank.cli._common import ConfigOption, LedgerUrlOption, resolve_ledger_url

alert_app = typer.Typer(
    help="peringatan sistem untuk admin / the system's alerts for admins", no_args_is_help=True
)


@alert_app.command("list")
def alert_list(
    show_all: Annotated[bool, typer.Option("--all", help="cleared ones too")] = False,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """The system's alerts (deposit conflicts, gateway clashes, InfluxDB drift), newest first:
    id, raised, cleared, code, subject, message. Exit status 1 while any is active."""
    from wastebank import alerts, ledger

    engine = ledger.make_engine(resolve_ledger_url(ledger_url, config))
    try:
        with ledger.Session(engine) as session:
            rows = alerts.alerts(session, active_only=not show_all)
            lines = [
                f"{a.id}\t{a.raised_at.isoformat(timespec='seconds')}\t"
                f"{a.cleared_at.isoformat(timespec='seconds') if a.cleared_at else 'aktif/active'}"
                f"\t{a.code}\t{a.subject}\t{a.message}"
                for a in rows
            ]
            active = sum(1 for a in rows if a.cleared_at is None)
    finally:
        engine.dispose()
    for text in lines:
        typer.echo(text)
    typer.echo(f"{active} aktif / {active} active")
    if active:
        raise typer.Exit(code=1)


@alert_app.command("clear")
def alert_clear(
    alert_id: Annotated[int, typer.Argument(metavar="ID")],
    note: Annotated[str, typer.Option(help="what was done (kept with the alert)")],
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Clear an active alert, with a note of what was done (audited)."""
    from wastebank import access, alerts, ledger

    actor = access.cli_actor()
    engine = ledger.make_engine(resolve_ledger_url(ledger_url, config))
    try:
        with ledger.Session(engine) as session:
            cleared = alerts.clear_by_id(session, alert_id, by=actor.name, note=note)
            if cleared is not None:
                access.audit(session, actor, "alert.clear", "system_alert", alert_id, note)
            session.commit()
    finally:
        engine.dispose()
    if cleared is None:
        typer.echo(f"tidak ada peringatan aktif / no active alert #{alert_id}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"#{alert_id} dibersihkan / cleared")
