"""`wastebank schema`: the MQTT messages as JSON Schema files (wastebank/wire_schema.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

schema_app = typer.Typer(
    help="skema JSON pesan MQTT / the MQTT messages as JSON Schema files", no_args_is_help=True
)


@schema_app.command("export")
def schema_export(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="directory for the files (created if missing)")
    ] = Path("docs/schema"),
    check: Annotated[
        bool,
        typer.Option("--check", help="write nothing; exit 1 if a file is missing or differs"),
    ] = False,
) -> None:
    """One JSON Schema (2020-12) file per MQTT message: deposit.json, fill.json, status.json,
    health.json, alert.json, tps_alert.json, from the msgspec Structs with their limits; for
    third-party firmware and network-server integrations to validate before publishing."""
    from wastebank import wire_schema

    if check:
        stale = wire_schema.stale(out)
        for name in stale:
            typer.echo(f"berbeda / out of date: {out / name}", err=True)
        if stale:
            raise typer.Exit(code=1)
        typer.echo(f"mutakhir / up to date: {out}")
        return
    for path in wire_schema.export(out):
        typer.echo(f"ditulis / written: {path}")
