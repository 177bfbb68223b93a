"""`wastebank` — one command with a subcommand per process.

Imports of the heavy modules happen inside each command, so `wastebank services up` works before
anything else is configured.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from wastebank.config import ConfigError

app = typer.Typer(
    help="wastebank: bank sampah & waste-to-energy monitoring / pemantauan bank sampah",
    no_args_is_help=True,
    add_completion=False,
)
services_app = typer.Typer(
    help="Mosquitto + InfluxDB on loopback / layanan lokal", no_args_is_help=True
)
sim_app = typer.Typer(help="simulated devices / perangkat simulasi", no_args_is_help=True)
deadletter_app = typer.Typer(help="rejected messages / pesan yang ditolak", no_args_is_help=True)
app.add_typer(services_app, name="services")
app.add_typer(sim_app, name="sim")
app.add_typer(deadletter_app, name="deadletter")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML settings file (or WASTEBANK_CONFIG)")
]


def _logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # One line per InfluxDB write or health probe is noise; keep their warnings.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=2)


# ---- services ---------------------------------------------------------------------------------


@services_app.command("up")
def services_up(config: ConfigOption = None) -> None:
    """Install (if missing) and start Mosquitto and InfluxDB on 127.0.0.1."""
    from wastebank import services
    from wastebank.config import load_settings

    _logging()
    try:
        services.up(load_settings(services.ServicesSettings, config))
    except (ConfigError, services.ServiceError) as exc:
        raise _fail(exc) from None


@services_app.command("down")
def services_down(config: ConfigOption = None) -> None:
    """Stop the services this project started (by their own pid files)."""
    from wastebank import services
    from wastebank.config import load_settings

    _logging()
    try:
        services.down(load_settings(services.ServicesSettings, config))
    except (ConfigError, services.ServiceError) as exc:
        raise _fail(exc) from None


@services_app.command("status")
def services_status(config: ConfigOption = None) -> None:
    """Show whether each service is running and answering; exit 1 if one is not."""
    from wastebank import services
    from wastebank.config import load_settings

    try:
        states = services.status(load_settings(services.ServicesSettings, config))
    except ConfigError as exc:
        raise _fail(exc) from None
    for state in states:
        typer.echo(state.describe())
    if not all(s.healthy for s in states):
        raise typer.Exit(code=1)


# ---- processes --------------------------------------------------------------------------------


@app.command()
def gateway(config: ConfigOption = None, verbose: bool = False) -> None:
    """Run a waste-bank gateway: serial scale -> outbox -> MQTT."""
    from gateway.main import GatewaySettings, run
    from wastebank.config import load_settings

    _logging(verbose)
    try:
        settings = load_settings(GatewaySettings, config)
    except ConfigError as exc:
        raise _fail(exc) from None
    asyncio.run(run(settings))


@app.command()
def ingest(config: ConfigOption = None, verbose: bool = False) -> None:
    """Run the ingester: MQTT -> InfluxDB + ledger."""
    from ingest.main import IngestSettings, run
    from wastebank.config import load_settings

    _logging(verbose)
    try:
        settings = load_settings(IngestSettings, config)
    except ConfigError as exc:
        raise _fail(exc) from None
    asyncio.run(run(settings))


@app.command()
def api(config: ConfigOption = None, verbose: bool = False) -> None:
    """Run the HTTP API and pages."""
    import uvicorn

    from api.app import ApiSettings, create_app
    from wastebank.config import load_settings

    _logging(verbose)
    try:
        settings = load_settings(ApiSettings, config)
    except ConfigError as exc:
        raise _fail(exc) from None
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


@app.command()
def seed(
    config: ConfigOption = None,
    ledger_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the ledger")] = None,
) -> None:
    """Create the demo city (Ambon, WIT) with two waste banks, members, cards and prices."""
    from wastebank.seed import seed_demo

    summary = seed_demo(ledger_url)
    typer.echo(summary)


@app.command()
def demo(config: ConfigOption = None) -> None:
    """Start services, seed, simulated devices, gateway, ingester and API; Ctrl-C stops all."""
    from wastebank.demo import run as run_demo

    _logging()
    try:
        asyncio.run(run_demo())
    except (KeyboardInterrupt, asyncio.CancelledError):
        typer.echo("dihentikan / stopped")


# ---- at the waste bank: the attendant's commands against the local gateway ---------------------

GatewayOption = Annotated[
    str,
    typer.Option("--gateway", help="the gateway's local endpoint", envvar="WASTEBANK_GATEWAY_URL"),
]


def _gateway_call(method: str, url: str, body: dict[str, object] | None = None) -> object:
    import httpx

    try:
        resp = httpx.request(method, url, json=body, timeout=10)
    except httpx.HTTPError as exc:
        typer.echo(f"gateway tidak terjangkau / gateway unreachable: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if resp.status_code >= 400:
        detail = resp.json().get("detail", resp.text) if resp.content else resp.reason_phrase
        typer.echo(f"ditolak / refused ({resp.status_code}): {detail}", err=True)
        raise typer.Exit(code=1)
    return resp.json()


@app.command()
def attend(
    scale: Annotated[str, typer.Option(help="scale id at this bank")],
    member: Annotated[str | None, typer.Option(help="member number (nomor nasabah)")] = None,
    category: Annotated[str | None, typer.Option(help="waste category code")] = None,
    cancel: Annotated[bool, typer.Option(help="cancel what is armed")] = False,
    gateway_url: GatewayOption = "http://127.0.0.1:8081",
) -> None:
    """Attendant flow: name the member and category; the next settled load is their deposit."""
    base = gateway_url.rstrip("/")
    if cancel:
        _gateway_call("POST", f"{base}/scales/{scale}/cancel")
        typer.echo("dibatalkan / cancelled")
        return
    if not member or not category:
        typer.echo("perlu --member dan --category / need --member and --category", err=True)
        raise typer.Exit(code=2)
    view = _gateway_call(
        "POST", f"{base}/scales/{scale}/arm", {"member_no": member, "category_code": category}
    )
    assert isinstance(view, dict)
    typer.echo(
        f"siap menimbang / ready: {view['armed_member_no']} {view['armed_category_code']} "
        f"on {scale}; letakkan sampah di timbangan / put the waste on the scale"
    )


@app.command()
def calibrate(
    scale: Annotated[str, typer.Option(help="scale id at this bank")],
    reference_g: Annotated[int, typer.Option(help="the reference mass on the scale, grams")],
    note: Annotated[str, typer.Option(help="who checked, which weight set")] = "",
    gateway_url: GatewayOption = "http://127.0.0.1:8081",
) -> None:
    """Record a calibration check: put a known mass on the scale, then run this."""
    base = gateway_url.rstrip("/")
    check = _gateway_call(
        "POST", f"{base}/scales/{scale}/calibration", {"reference_g": reference_g, "note": note}
    )
    assert isinstance(check, dict)
    typer.echo(
        f"kalibrasi / calibration {check['version']}: acuan / reference {check['reference_g']} g, "
        f"terbaca / read {check['reading_g']} g, selisih / error {check['error_g']:+d} g"
    )


# ---- simulators -------------------------------------------------------------------------------


@sim_app.command("kiosk")
def sim_kiosk(
    link: Annotated[Path, typer.Option(help="stable symlink to the pty slave, like /dev/ttyUSB0")],
    cards: Annotated[str, typer.Option(help="comma-separated member card UIDs")],
    categories: Annotated[str, typer.Option(help="comma-separated category codes")],
    interval: Annotated[float, typer.Option(help="seconds between deposits")] = 8.0,
    seed_value: Annotated[int | None, typer.Option("--seed", help="random seed")] = None,
) -> None:
    """Play a kiosk scale over a real pseudo-terminal."""
    from firmware_sim.kiosk import run_random_kiosk

    _logging()
    asyncio.run(
        run_random_kiosk(
            link=link,
            cards=[c.strip() for c in cards.split(",") if c.strip()],
            categories=[c.strip() for c in categories.split(",") if c.strip()],
            interval_s=interval,
            seed=seed_value,
        )
    )


@sim_app.command("scale")
def sim_scale(
    link: Annotated[Path, typer.Option(help="stable symlink to the pty slave, like /dev/ttyUSB0")],
    model: Annotated[
        str, typer.Option(help="protocol id: yh_stx, a12e_chk, and_std, gs_nt, cas22, ...")
    ] = "a12e_chk",
    scenario: Annotated[
        str, typer.Option(help="steady, noisy (garbage + corruption), unplug, reboot, overload")
    ] = "steady",
    seed_value: Annotated[int | None, typer.Option("--seed", help="random seed")] = None,
    rate: Annotated[float, typer.Option(help="A/D conversions (frames) per second")] = 10.0,
    baud: Annotated[int | None, typer.Option(help="line speed (default: the model's)")] = None,
    interval: Annotated[float, typer.Option(help="seconds between loads")] = 8.0,
) -> None:
    """Play a weighing indicator of any supported model over a real pseudo-terminal."""
    from firmware_sim.scales import MODELS, SCENARIOS, run_scale_scenario

    if model not in MODELS:
        raise typer.BadParameter(f"must be one of {', '.join(MODELS)}", param_hint="--model")
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"must be one of {', '.join(SCENARIOS)}", param_hint="--scenario")
    _logging()
    try:
        asyncio.run(
            run_scale_scenario(
                link=link,
                model=model,
                scenario=scenario,  # narrowed by the SCENARIOS check
                seed=seed_value,
                rate_hz=rate,
                baud=baud,
                interval_s=interval,
            )
        )
    except KeyboardInterrupt:
        typer.echo("dihentikan / stopped")


@sim_app.command("tps")
def sim_tps(
    config: ConfigOption = None,
    tps: Annotated[str, typer.Option(help="TPS code")] = "tps-batu-merah",
    sensor: Annotated[str, typer.Option(help="sensor id")] = "us-01",
    interval: Annotated[float, typer.Option(help="seconds between readings / uplinks")] = 5.0,
    kind: Annotated[
        str,
        typer.Option(
            help="mqtt (smart sensor), jsn (JSN-SR04T mode 2 on a pty), "
            "maxbotix (R####<CR> on a pty), em310 (EM310-UDL via ChirpStack v4 uplinks)"
        ),
    ] = "mqtt",
    link: Annotated[
        Path | None, typer.Option(help="jsn/maxbotix: stable symlink to the pty slave")
    ] = None,
    dev_eui: Annotated[
        str | None, typer.Option(help="em310: DevEUI (default derived from --sensor)")
    ] = None,
    seed_value: Annotated[int | None, typer.Option("--seed", help="random seed")] = None,
) -> None:
    """Play a TPS fill sensor: over MQTT, on a serial pty, or as LoRaWAN uplinks."""
    from firmware_sim.tps import (
        TpsSimSettings,
        run_em310_sensor,
        run_serial_sensor,
        run_tps_sensor,
    )
    from wastebank.config import load_settings

    kinds = ("mqtt", "jsn", "maxbotix", "em310")
    if kind not in kinds:
        raise typer.BadParameter(f"must be one of {', '.join(kinds)}", param_hint="--kind")
    if kind in ("jsn", "maxbotix") and link is None:
        raise typer.BadParameter("required for jsn and maxbotix", param_hint="--link")
    _logging()
    try:
        settings = load_settings(TpsSimSettings, config)
    except ConfigError as exc:
        raise _fail(exc) from None
    if kind == "jsn" and link is not None:
        asyncio.run(run_serial_sensor(settings, kind="jsn", link=link, seed=seed_value))
    elif kind == "maxbotix" and link is not None:
        asyncio.run(run_serial_sensor(settings, kind="maxbotix", link=link, seed=seed_value))
    elif kind == "em310":
        asyncio.run(
            run_em310_sensor(
                settings,
                tps_code=tps,
                sensor_id=sensor,
                interval_s=interval,
                dev_eui=dev_eui,
                seed=seed_value,
            )
        )
    else:
        asyncio.run(run_tps_sensor(settings, tps_code=tps, sensor_id=sensor, interval_s=interval))


# ---- dead letters -----------------------------------------------------------------------------


@deadletter_app.command("list")
def deadletter_list(
    ledger_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the ledger")] = None,
) -> None:
    """List messages the ingester rejected (topic, error, time)."""
    from wastebank import ledger

    engine = ledger.make_engine(ledger_url)
    with ledger.Session(engine) as session:
        rows = ledger.dead_letters(session)
    for row in rows:
        typer.echo(f"{row.id}\t{row.received_at.isoformat()}\t{row.topic}\t{row.error}")
    typer.echo(f"{len(rows)} dead letter(s) / pesan ditolak")


if __name__ == "__main__":
    app()
