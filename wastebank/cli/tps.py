"""`wastebank tps`: the TPS alert and pickup watcher, bulk density, pickups again from the fill
readings (wastebank/tps/)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated

import typer

from wastebank.cli._common import (
    ConfigOption,
    LedgerUrlOption,
    LogFormat,
    LogFormatOption,
    count_progress,
    fail,
    resolve_ledger_url,
    setup_logging,
)

tps_app = typer.Typer(
    help=(
        "TPS: pemantau peringatan dan pengangkutan, kalibrasi berat jenis / TPS alert and pickup "
        "watcher, density calibration"
    ),
    no_args_is_help=True,
)


@tps_app.command("watch")
def tps_watch(
    config: ConfigOption = None, verbose: bool = False, log_format: LogFormatOption = LogFormat.text
) -> None:
    """Watch TPS fill readings (MQTT): fill_high and sensor_offline alerts, published on MQTT
    (retained state + event) and recorded in the ledger, each raised once and cleared once."""
    from wastebank.config import load_settings
    from wastebank.process import run_until_stopped
    from wastebank.tps import TpsWatchSettings
    from wastebank.tps import run as run_watch

    setup_logging(verbose, json=log_format is LogFormat.json)
    settings = load_settings(TpsWatchSettings, config)
    run_until_stopped(run_watch(settings))  # SIGTERM (systemd) as Ctrl-C: stop line, exit 0


@tps_app.command("calibrate")
def tps_calibrate(
    tps: Annotated[str, typer.Option("--tps", help="TPS code")],
    source: Annotated[str, typer.Option(help="where the figure comes from (study, weighbridge)")],
    density: Annotated[
        float | None, typer.Option("--density", help="bulk density, kg/m3 (about 200-300)")
    ] = None,
    weighbridge_kg: Annotated[
        float | None, typer.Option(help="a weighed load's mass, kg (with --fill)")
    ] = None,
    fill: Annotated[
        float | None, typer.Option(help="the container's fill ratio (0..1) of that load")
    ] = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Set a TPS's bulk density: given (--density), or from a weighbridge mass
    (--weighbridge-kg, --fill): density = mass / (container volume x fill)."""
    from wastebank import ledger
    from wastebank import tps as tps_mod

    if (density is None) == (weighbridge_kg is None):
        typer.echo("beri --density atau --weighbridge-kg / give --density or --weighbridge-kg")
        raise typer.Exit(code=2)
    if weighbridge_kg is not None and fill is None:
        raise typer.BadParameter("required with --weighbridge-kg", param_hint="--fill")
    engine = ledger.make_engine(resolve_ledger_url(ledger_url, config))
    try:
        with ledger.Session(engine) as session:
            row = tps_mod.get_tps(session, tps)
            if row is None:
                raise ledger.NotFound(f"TPS {tps}")
            value = density
            how = source
            if weighbridge_kg is not None and fill is not None:
                value = tps_mod.density_from_weighbridge(
                    weighbridge_kg, row.container_volume_m3, fill
                )
                how = (
                    f"{source} (jembatan timbang / weighbridge {weighbridge_kg:g} kg, "
                    f"{row.container_volume_m3:g} m3 x {fill:g})"
                )
            assert value is not None
            row = tps_mod.calibrate(session, tps, density_kg_m3=value, source=how)
            session.commit()
            typer.echo(
                f"{row.code}: berat jenis / density {row.density_kg_m3:.1f} kg/m3 "
                f"({row.density_source})"
            )
    except ValueError as exc:
        raise fail(exc) from None
    finally:
        engine.dispose()


@tps_app.command("rebuild-pickups")
def tps_rebuild_pickups(
    date_from: Annotated[
        datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="first local day")
    ],
    date_to: Annotated[
        datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="last local day (included)")
    ],
    tps: Annotated[
        list[str] | None, typer.Option("--tps", help="TPS code (repeat; default: every TPS)")
    ] = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Make the pickup journal (tps_pickup) of a range of local days again from the fill
    readings in InfluxDB: after a change of the pickup rule, a watcher outage longer than the
    broker kept its session, or readings imported into InfluxDB directly. The range's rows are
    replaced in one transaction. Uses the watcher's settings (--config / WASTEBANK_*)."""
    import time
    from zoneinfo import ZoneInfo

    from wastebank import ledger
    from wastebank import tps as tps_mod
    from wastebank.config import load_settings
    from wastebank.influx import Influx
    from wastebank.tps import TpsWatchSettings

    first, last = date_from.date(), date_to.date()
    if last < first:
        raise typer.BadParameter("--to sebelum --from / --to before --from", param_hint="--to")
    overrides = {"ledger_url": ledger_url} if ledger_url else {}
    settings = load_settings(TpsWatchSettings, config, **overrides)
    engine = ledger.make_engine(settings.ledger_url)
    bar, progress = count_progress("membaca bacaan / reading the readings (TPS)")

    async def run(session: ledger.Session) -> tps_mod.RebuildSummary:
        influx = Influx(settings.influx)
        try:
            return await tps_mod.rebuild_pickups(
                session, influx, lo, hi, tps or None, progress=progress
            )
        finally:
            await influx.aclose()

    started = time.monotonic()
    try:
        with ledger.Session(engine) as session:
            # local days in the zone of each city concerned (the widest bounds if they differ)
            rows = [tps_mod.get_tps(session, c) for c in tps] if tps else tps_mod.city_tps(session)
            if any(r is None for r in rows):
                missing = [c for c, r in zip(tps or [], rows, strict=True) if r is None]
                raise ledger.NotFound(f"TPS {', '.join(missing)}")
            zones = {r.city.timezone for r in rows if r is not None} or {"UTC"}
            lo = min(datetime.combine(first, datetime.min.time(), ZoneInfo(z)) for z in zones)
            hi = max(
                datetime.combine(last + timedelta(days=1), datetime.min.time(), ZoneInfo(z))
                for z in zones
            )
            with bar:
                summary = asyncio.run(run(session))
            session.commit()
    except ValueError as exc:
        raise fail(exc) from None
    finally:
        engine.dispose()
    typer.echo(
        f"pengangkutan / pickups {first}..{last}: {summary.tps} TPS, {summary.sensors} sensor, "
        f"{summary.readings:,} bacaan / readings; dihapus / removed {summary.removed:,}, "
        f"dicatat / recorded {summary.inserted:,} ({time.monotonic() - started:.1f} s)"
    )
