"""`wastebank` — one command with a subcommand per process.

Imports of the heavy modules happen inside each command, so `wastebank services up` works before
anything else is configured.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from wastebank.config import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi import FastAPI
    from rich.progress import Progress
    from sqlalchemy import Engine

    from ingest.deadletter import ReplaySummary
    from ingest.main import IngestSettings
    from wastebank import bulk_import, ledger
    from wastebank.gateway_client import GatewayClient
    from wastebank.services import ServicesSettings

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
certs_app = typer.Typer(
    help="sertifikat listener TLS broker / certificates of the broker's TLS listener",
    no_args_is_help=True,
)
device_app = typer.Typer(
    help="kredensial MQTT per perangkat / per-device MQTT credentials", no_args_is_help=True
)
app.add_typer(services_app, name="services")
app.add_typer(sim_app, name="sim")
app.add_typer(deadletter_app, name="deadletter")
alert_app = typer.Typer(
    help="peringatan sistem untuk admin / the system's alerts for admins", no_args_is_help=True
)


@app.callback()
def _private_files() -> None:
    """Every file and directory a command creates is its user's alone (umask 077): ledgers,
    outboxes, backups, statements, `.run/` and what the services write there hold members'
    money, names and passwords. Services started by `services up` inherit it (PostgreSQL,
    which runs as its own OS user, finds a home it may enter: services.postgres_service)."""
    os.umask(0o077)


app.add_typer(alert_app, name="alert")
app.add_typer(certs_app, name="certs")
app.add_typer(device_app, name="device")
ledger_app = typer.Typer(
    help="buku besar / the ledger: schema, checks, statements, backup", no_args_is_help=True
)
app.add_typer(ledger_app, name="ledger")


class LogFormat(StrEnum):
    text = "text"
    json = "json"


ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML settings file (or WASTEBANK_CONFIG)")
]


LogFormatOption = Annotated[
    LogFormat,
    typer.Option(
        "--log-format", help="text, or json: one JSON object per line (for a log collector)"
    ),
]


def _logging(
    verbose: bool = False, *, json: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Log to stderr (or ``stream``) as text, or as one JSON object per line with ``time``,
    ``level``, ``logger``, ``message`` and any ``extra=`` fields. Returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if json:
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",  # ISO 8601, UTC
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True
    )
    # One line per InfluxDB write or health probe is noise; keep their warnings.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=2)


def _count_progress(description: str) -> tuple[Progress, Callable[[int, int], None]]:
    """A progress bar of done / total on stderr (off when stderr is not a terminal), and the
    ``progress(done, total)`` callback long commands pass to the work; use the bar as a
    context manager around the work."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    task = bar.add_task(description, total=None)

    def progress(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, progress


# ---- services ---------------------------------------------------------------------------------


class OptionalService(StrEnum):
    postgresql = "postgresql"


@services_app.command("up")
def services_up(
    config: ConfigOption = None,
    with_: Annotated[
        list[OptionalService] | None,
        typer.Option(
            "--with",
            help="also PostgreSQL, for a multi-node ledger (or WASTEBANK_POSTGRESQL=true)",
        ),
    ] = None,
) -> None:
    """Install (if missing) and start Mosquitto and InfluxDB (and PostgreSQL) on 127.0.0.1."""
    from wastebank import services
    from wastebank.config import load_settings

    _logging()
    overrides = {"postgresql": True} if OptionalService.postgresql in (with_ or []) else {}
    try:
        services.up(load_settings(services.ServicesSettings, config, **overrides))
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


# ---- certificates and device credentials (the broker's TLS listener) --------------------------


def _services_settings(config: Path | None) -> ServicesSettings:
    from wastebank import services
    from wastebank.config import load_settings

    try:
        return load_settings(services.ServicesSettings, config)
    except ConfigError as exc:
        raise _fail(exc) from None


def _reload_broker(settings: ServicesSettings) -> None:
    """Tell our running Mosquitto to re-read its password, ACL and certificate files."""
    from wastebank import devices

    pid = devices.reload_mosquitto(settings.run_dir)
    if pid is None:
        typer.echo(
            "mosquitto tidak berjalan; berlaku saat dimulai / mosquitto is not running; "
            "takes effect when it starts (wastebank services up)"
        )
    elif not devices.mosquitto_tls_listening(settings.run_dir):
        typer.echo(
            f"broker dimuat ulang / broker reloaded (pid {pid}), tetapi listener TLS belum "
            "dibuka / but its TLS listener is not open yet: restart it after "
            "`wastebank certs init` (wastebank services down && wastebank services up)"
        )
    else:
        typer.echo(f"broker dimuat ulang / broker reloaded (pid {pid})")


@certs_app.command("init")
def certs_init(
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="nama host atau IP broker / a host name or IP address gateways use to reach "
            "the broker (repeat: --host broker.example.go.id --host 203.0.113.10); default: "
            "those of the current certificate, or localhost and this machine's name",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="CA baru juga / a new CA too: every gateway then needs the new ca.crt"
        ),
    ] = False,
    name: Annotated[str, typer.Option(help="site name in the CA, e.g. 'Kota Ambon'")] = "wastebank",
    config: ConfigOption = None,
) -> None:
    """Create the site CA and the broker's certificate (idempotent; keeps an existing CA)."""
    from wastebank import devices

    settings = _services_settings(config)
    files = devices.broker_auth_files(settings.run_dir)
    had_ca = files.ca_cert.is_file()
    try:
        report = devices.init_certs(files, host, force=force, site_name=name)
    except devices.DeviceError as exc:
        raise _fail(exc) from None
    ca_state = "dibuat / created" if report.ca_created else "tetap / kept"
    typer.echo(f"CA {ca_state}: {files.ca_cert}")
    typer.echo(
        f"  SHA-256 {report.ca_fingerprint}\n"
        f"  berlaku sampai / valid until {report.ca_not_after:%Y-%m-%d}"
    )
    server_state = "diterbitkan / issued" if report.server_issued else "tetap / kept"
    typer.echo(
        f"sertifikat broker / broker certificate {server_state} ({report.reason}): "
        f"{files.server_cert}"
    )
    typer.echo(
        f"  host: {', '.join(report.hosts)}\n"
        f"  berlaku sampai / valid until {report.server_not_after:%Y-%m-%d}"
    )
    if had_ca and report.ca_created:
        typer.echo(
            "CA baru: setiap gateway perlu ca.crt yang baru / new CA: every gateway needs the "
            "new ca.crt, or it will refuse the broker"
        )
    typer.echo(
        f"salin / copy {files.ca_cert} ke setiap gateway / to every gateway (mqtt.ca_file); "
        f"kunci privat tetap di sini / private keys stay here (0600)"
    )
    if report.server_issued:
        _reload_broker(settings)


@certs_app.command("show")
def certs_show(config: ConfigOption = None) -> None:
    """Show the site CA and the broker's certificate: fingerprint, names, validity."""
    from wastebank import devices

    settings = _services_settings(config)
    files = devices.broker_auth_files(settings.run_dir)
    try:
        ca, server = devices.cert_info(files.ca_cert), devices.cert_info(files.server_cert)
    except devices.DeviceError as exc:
        raise _fail(exc) from None
    if ca is None or server is None:
        typer.echo("belum ada sertifikat / no certificates yet: wastebank certs init", err=True)
        raise typer.Exit(code=1)
    for label, info in (("CA", ca), ("broker", server)):
        typer.echo(f"{label}: {info.path}")
        typer.echo(f"  subjek / subject: {info.subject}")
        typer.echo(f"  SHA-256 {info.fingerprint}")
        typer.echo(f"  berlaku / valid {info.not_before:%Y-%m-%d} .. {info.not_after:%Y-%m-%d}")
        if info.hosts:
            typer.echo(f"  host: {', '.join(info.hosts)}")
    typer.echo(
        f"listener TLS / TLS listener: port {settings.mqtt_tls_port} "
        f"({settings.mqtt_tls_bind or 'semua antarmuka / every interface'})"
    )


@certs_app.command("gateway")
def certs_gateway(
    gateway: Annotated[str, typer.Option(help="the gateway's id (its site file's gateway_id)")],
    host: Annotated[
        list[str],
        typer.Option(
            "--host",
            help="the name or address the tablets open the page at (repeat: --host 192.168.1.10 "
            "--host gw-batu-merah-01.local); the Pi's fixed LAN address at least",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="where to write page.crt, page.key, ca.crt (default: the run dir's "
            "certs/gateways/<gateway>)"
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """HTTPS for a gateway's attendant page: a certificate from the site CA (valid 397 days)."""
    from wastebank import devices

    settings = _services_settings(config)
    files = devices.broker_auth_files(settings.run_dir)
    target = out or files.ca_cert.parent / "gateways" / gateway
    try:
        issued = devices.issue_page_cert(files, gateway, host, target)
    except devices.DeviceError as exc:
        raise _fail(exc) from None
    typer.echo(f"sertifikat halaman / page certificate: {issued.cert}")
    typer.echo(f"  host: {', '.join(issued.hosts)}")
    typer.echo(
        f"  berlaku sampai / valid until {issued.not_after:%Y-%m-%d} (terbitkan lagi / "
        "issue again before then)"
    )
    typer.echo(f"kunci / key (0600): {issued.key}")
    typer.echo(f"CA: {issued.ca_cert}  SHA-256 {issued.ca_fingerprint}")
    typer.echo(
        "di Pi / on the Pi: install -m 0644 page.crt, -m 0600 -o wastebank page.key ke / to "
        "/etc/wastebank/, lalu di site.toml / then in site.toml:\n"
        '  http_host = "0.0.0.0"\n'
        '  http_tls_cert = "/etc/wastebank/page.crt"\n'
        '  http_tls_key = "/etc/wastebank/page.key"\n'
        "pasang ca.crt di setiap tablet / install ca.crt on every tablet (docs/deploy-pi.md)"
    )


def _site_grants(path: Path) -> tuple[str, str, list[tuple[str, str]], list[str], str]:
    """From a gateway's site file: its bank and id, the TPS sensors it publishes fill readings
    for, the uplink topics it subscribes to (LoRaWAN network server, JSON sensors), its prefix."""
    import tomllib

    from pydantic import ValidationError

    from gateway.main import GatewaySettings, SensorSettings

    try:
        data = tomllib.loads(path.read_text())
        sensors = [SensorSettings.model_validate(s) for s in data.get("sensors", [])]
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--site") from None
    bank = data.get("bank_code")
    if not isinstance(bank, str):
        raise typer.BadParameter("the site file has no bank_code", param_hint="--site")
    gateway = data.get("gateway_id", GatewaySettings.model_fields["gateway_id"].default)
    prefix = data.get("mqtt", {}).get("topic_prefix", "")
    serves = [(s.tps_code, s.id) for s in sensors]
    reads = [s.topic() for s in sensors if s.over_mqtt]
    return bank, str(gateway), serves, reads, str(prefix)


@device_app.command("add")
def device_add(
    bank: Annotated[str | None, typer.Option(help="gateway: the waste bank's code")] = None,
    gateway: Annotated[str | None, typer.Option(help="gateway: its gateway_id")] = None,
    tps: Annotated[str | None, typer.Option(help="TPS fill sensor: the TPS code")] = None,
    sensor: Annotated[str | None, typer.Option(help="TPS fill sensor: its sensor id")] = None,
    site: Annotated[
        Path | None,
        typer.Option(
            help="the gateway's site file: bank, gateway id, and the grants its sensors need"
        ),
    ] = None,
    serves: Annotated[
        list[str] | None,
        typer.Option(
            "--serves", metavar="TPS/SENSOR", help="gateway: also publishes this sensor's fill"
        ),
    ] = None,
    reads: Annotated[
        list[str] | None,
        typer.Option(
            "--reads",
            metavar="FILTER",
            help="gateway: may subscribe to this topic filter (e.g. LoRaWAN uplinks)",
        ),
    ] = None,
    topic_prefix: Annotated[
        str, typer.Option(help="topic prefix (tests only; empty in production)")
    ] = "",
    rotate: Annotated[
        bool, typer.Option("--rotate", help="a new password for a registered device")
    ] = False,
    snippet: Annotated[
        Path | None,
        typer.Option(help="also write the site file's mqtt table to this file (mode 0600)"),
    ] = None,
    broker_host: Annotated[
        str | None,
        typer.Option(help="host in the snippet (default: a name in the broker's certificate)"),
    ] = None,
    broker_port: Annotated[
        int | None, typer.Option(help="port in the snippet (default: the TLS listener's)")
    ] = None,
    device_ca_file: Annotated[
        str, typer.Option(help="where the device keeps the site CA (snippet's ca_file)")
    ] = "/etc/wastebank/ca.crt",
    config: ConfigOption = None,
) -> None:
    """Issue a device's MQTT password; it may publish only under its own bank/TPS and id.

    Prints the password once. A registered device is refused unless --rotate (a new password;
    the old one stops working at once).
    """
    from wastebank import devices

    serves_list, reads_list = list(serves or []), list(reads or [])
    if site is not None:
        site_bank, site_gateway, site_serves, site_reads, site_prefix = _site_grants(site)
        for given, found, option in (
            (bank, site_bank, "--bank"),
            (gateway, site_gateway, "--gateway"),
        ):
            if given is not None and given != found:
                raise typer.BadParameter(f"the site file says {found!r}", param_hint=option)
        bank, gateway = site_bank, site_gateway
        serves_list += [f"{t}/{s}" for t, s in site_serves]
        reads_list += site_reads
        topic_prefix = topic_prefix or site_prefix
    is_gateway = bank is not None or gateway is not None
    is_sensor = tps is not None or sensor is not None
    if is_gateway == is_sensor:
        typer.echo(
            "sebutkan --bank dan --gateway, atau --tps dan --sensor / give --bank and --gateway, "
            "or --tps and --sensor",
            err=True,
        )
        raise typer.Exit(code=2)
    settings = _services_settings(config)
    files = devices.broker_auth_files(settings.run_dir)
    try:
        if is_gateway:
            if bank is None or gateway is None:
                raise devices.DeviceError("perlu --bank dan --gateway / need both")
            device = devices.Device(
                kind="gateway",
                site=bank,
                device_id=gateway,
                topic_prefix=topic_prefix,
                serves=devices.parse_serves(serves_list),
                reads=tuple(dict.fromkeys(reads_list)),
            )
        else:
            if tps is None or sensor is None:
                raise devices.DeviceError("perlu --tps dan --sensor / need both")
            if serves_list or reads_list:
                raise devices.DeviceError("--serves/--reads: hanya gateway / gateways only")
            device = devices.Device(
                kind="sensor", site=tps, device_id=sensor, topic_prefix=topic_prefix
            )
        issued = devices.Registry(files).add(device, rotate=rotate)
    except devices.DeviceError as exc:
        raise _fail(exc) from None

    device = issued.device
    done = "kata sandi diganti / password rotated" if issued.rotated else "ditambahkan / added"
    typer.echo(f"perangkat / device {done}: {device.describe()}")
    typer.echo(f"  username: {device.username}")
    typer.echo(f"  password: {issued.password}")
    typer.echo("  (ditampilkan sekali saja / shown only once)")
    for topic in device.publish_topics:
        typer.echo(f"  boleh menerbitkan / may publish: {topic}")
    for topic_filter in device.read_filters:
        typer.echo(f"  boleh berlangganan / may subscribe: {topic_filter}")
    if not files.tls_ready:
        typer.echo(
            "belum ada sertifikat / no certificates yet: wastebank certs init --host <broker>"
        )
    _reload_broker(settings)

    host = broker_host
    if host is None:
        server = devices.cert_info(files.server_cert) if files.tls_ready else None
        names = [h for h in (server.hosts if server else ()) if h not in ("localhost", "::1")]
        host = names[0] if names else "127.0.0.1"
    text = devices.site_snippet(
        issued, host=host, port=broker_port or settings.mqtt_tls_port, ca_file=device_ca_file
    )
    if snippet is not None:
        devices.write_secret(snippet, text)
        typer.echo(f"potongan site ditulis / site snippet written: {snippet} (0600)")
    typer.echo("")
    typer.echo(text, nl=False)


@device_app.command("list")
def device_list(config: ConfigOption = None) -> None:
    """List the devices allowed on the TLS listener and the topics each may use."""
    from wastebank import devices

    files = devices.broker_auth_files(_services_settings(config).run_dir)
    registry = devices.Registry(files)
    try:
        registered = registry.devices()
    except devices.DeviceError as exc:
        raise _fail(exc) from None
    for device in registered:
        created = f"{device.created_at:%Y-%m-%d}" if device.created_at else "-"
        rotated = f"{device.rotated_at:%Y-%m-%d}" if device.rotated_at else "-"
        typer.echo(
            f"{device.username}\t{device.kind}\t{device.site}\t"
            f"dibuat / created {created}\tdiganti / rotated {rotated}"
        )
        for topic in device.publish_topics:
            typer.echo(f"    tulis / write  {topic}")
        for topic_filter in device.read_filters:
            typer.echo(f"    baca / read    {topic_filter}")
    unknown = sorted(set(registry.password_users()) - {d.username for d in registered})
    if unknown:
        typer.echo(
            f"di file kata sandi tetapi tidak terdaftar / in the password file but not "
            f"registered (no ACL: may do nothing): {', '.join(unknown)}"
        )
    typer.echo(f"{len(registered)} perangkat / device(s)")


@device_app.command("remove")
def device_remove(
    username: Annotated[str, typer.Argument(help="as `wastebank device list` shows it")],
    config: ConfigOption = None,
) -> None:
    """Revoke a device: its password and ACL go; the broker drops it at once."""
    from wastebank import devices

    settings = _services_settings(config)
    registry = devices.Registry(devices.broker_auth_files(settings.run_dir))
    try:
        device = registry.remove(username)
    except devices.DeviceError as exc:
        raise _fail(exc) from None
    typer.echo(f"dicabut / revoked: {device.describe()}")
    _reload_broker(settings)


# ---- processes --------------------------------------------------------------------------------


@app.command()
def gateway(
    config: ConfigOption = None, verbose: bool = False, log_format: LogFormatOption = LogFormat.text
) -> None:
    """Run a waste-bank gateway: serial scale -> outbox -> MQTT."""
    from gateway.main import GatewaySettings, run
    from wastebank.config import load_settings

    _logging(verbose, json=log_format is LogFormat.json)
    try:
        settings = load_settings(GatewaySettings, config)
    except ConfigError as exc:
        raise _fail(exc) from None
    asyncio.run(run(settings))


@app.command()
def ingest(
    config: ConfigOption = None, verbose: bool = False, log_format: LogFormatOption = LogFormat.text
) -> None:
    """Run the ingester: MQTT -> InfluxDB + ledger."""
    from ingest.main import IngestSettings, run
    from wastebank.config import load_settings
    from wastebank.influx import InfluxSchemaError

    _logging(verbose, json=log_format is LogFormat.json)
    try:
        settings = load_settings(IngestSettings, config)
    except ConfigError as exc:
        raise _fail(exc) from None
    try:
        asyncio.run(run(settings))
    except InfluxSchemaError as exc:  # an admin's step is missing: say which, no traceback
        raise _fail(exc) from None


@app.command()
def api(
    config: ConfigOption = None,
    verbose: bool = False,
    log_format: LogFormatOption = LogFormat.text,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="proses / processes serving the port (uvicorn workers); one per core serves "
            "the most requests",
        ),
    ] = 1,
) -> None:
    """Run the HTTP API and pages."""
    import uvicorn

    from api.app import ApiSettings, create_app
    from wastebank.config import load_settings

    _logging(verbose, json=log_format is LogFormat.json)
    try:
        settings = load_settings(ApiSettings, config)  # checked here, once, before any worker
    except ConfigError as exc:
        raise _fail(exc) from None
    from uvicorn.config import LOGGING_CONFIG

    # JSON: uvicorn's loggers keep no text handlers of their own and reach ours.
    log_config = None if log_format is LogFormat.json else LOGGING_CONFIG
    # uvicorn's own X-Forwarded-* handling off (it believes 127.0.0.1 by default): the app
    # believes only WASTEBANK_HTTP__TRUSTED_PROXIES (api/app.py)
    if workers == 1:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level="info",
            log_config=log_config,
            access_log=settings.access_log,
            proxy_headers=False,
        )
        return
    # Several processes share the listening socket; each builds the app from the same settings
    # (the file through WASTEBANK_CONFIG, the rest from WASTEBANK_* as inherited). They share the
    # token signing key (its file is created once, see access.signing_key) and the login limits
    # (kept in the ledger), so any worker accepts any token.
    if config is not None:
        os.environ["WASTEBANK_CONFIG"] = str(config.resolve())
    os.environ[_API_WORKER_LOG] = f"{log_format.value}:{int(verbose)}"
    uvicorn.run(
        "wastebank.cli:api_worker_app",
        factory=True,
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=log_config,
        access_log=settings.access_log,
        proxy_headers=False,
    )


_API_WORKER_LOG = "WASTEBANK_API_WORKER_LOG"


def api_worker_app() -> FastAPI:
    """The app of one `wastebank api --workers N` process (uvicorn's zero-argument factory):
    logging as the parent asked, settings from the environment the parent prepared."""
    from api.app import ApiSettings, create_app
    from wastebank.config import load_settings

    fmt, _, verbose = os.environ.get(_API_WORKER_LOG, "text:0").partition(":")
    _logging(verbose == "1", json=fmt == LogFormat.json.value)
    return create_app(load_settings(ApiSettings))


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
GatewayUserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        help="your login (an attendant's staff id, or an admin's); asked for when not given",
        envvar="WASTEBANK_GATEWAY_USER",
    ),
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="read the password from standard input (for scripts), not from a prompt; there "
        "is no password option: a password on the command line is seen by every user",
    ),
]
SessionFileOption = Annotated[
    Path | None,
    typer.Option(
        "--session-file",
        help="where the gateway session is kept (0600) so the password is asked once per "
        "session; default $XDG_STATE_HOME/wastebank/gateway-sessions.json",
        envvar="WASTEBANK_GATEWAY_SESSION_FILE",
    ),
]
NoSessionFileOption = Annotated[
    bool, typer.Option("--no-session-file", help="keep no session: log in every time")
]
GatewayCaOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-file",
        help="the site CA (ca.crt) that signed the gateway's HTTPS certificate",
        envvar="WASTEBANK_GATEWAY_CA",
        exists=True,
        dir_okay=False,
    ),
]


def _gateway_client(
    gateway_url: str,
    user: str | None,
    password_stdin: bool,
    session_file: Path | None,
    no_session_file: bool,
    ca_file: Path | None,
) -> GatewayClient:
    """A client of the gateway's local endpoint that logs in when it has no session."""
    from wastebank.gateway_client import GatewayClient, default_session_file

    def username() -> str:
        return user or str(typer.prompt("Nama pengguna / username", err=True))

    def password() -> str:
        if password_stdin:
            line = sys.stdin.readline().rstrip("\r\n")
            if not line:
                typer.echo("kata sandi kosong di stdin / no password on standard input", err=True)
                raise typer.Exit(code=2)
            return line
        return str(typer.prompt("Kata sandi / password", hide_input=True, err=True))

    return GatewayClient(
        gateway_url,
        username=username,
        password=password,
        session_file=None if no_session_file else session_file or default_session_file(),
        ca_file=ca_file,
    )


def _gateway_call(
    client: GatewayClient, method: str, path: str, body: dict[str, object] | None = None
) -> object:
    from wastebank.gateway_client import GatewayError

    try:
        answer = client.call(method, path, body)
    except GatewayError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from None
    if client.logged_in_as is not None:
        typer.echo(f"masuk sebagai / signed in as {client.logged_in_as}", err=True)
    return answer


@app.command()
def attend(
    scale: Annotated[str | None, typer.Option(help="scale id at this bank")] = None,
    member: Annotated[str | None, typer.Option(help="member number (nomor nasabah)")] = None,
    category: Annotated[str | None, typer.Option(help="waste category code")] = None,
    cancel: Annotated[bool, typer.Option(help="cancel what is armed")] = False,
    logout: Annotated[
        bool, typer.Option("--logout", help="end the kept session on the gateway, and forget it")
    ] = False,
    gateway_url: GatewayOption = "http://127.0.0.1:8081",
    user: GatewayUserOption = None,
    password_stdin: PasswordStdinOption = False,
    session_file: SessionFileOption = None,
    no_session_file: NoSessionFileOption = False,
    ca_file: GatewayCaOption = None,
) -> None:
    """Attendant flow: name the member and category; the next settled load is their deposit.

    Logs in to the gateway with your central account (asks for the password, once per session)."""
    client = _gateway_client(
        gateway_url, user, password_stdin, session_file, no_session_file, ca_file
    )
    with client:
        if logout:
            ended = client.logout()
            typer.echo("keluar / signed out" if ended else "tidak ada sesi / no session kept")
            return
        if not scale:
            typer.echo("perlu --scale / need --scale", err=True)
            raise typer.Exit(code=2)
        if cancel:
            _gateway_call(client, "POST", f"/scales/{scale}/cancel")
            typer.echo("dibatalkan / cancelled")
            return
        if not member or not category:
            typer.echo("perlu --member dan --category / need --member and --category", err=True)
            raise typer.Exit(code=2)
        view = _gateway_call(
            client,
            "POST",
            f"/scales/{scale}/arm",
            {"member_no": member, "category_code": category},
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
    user: GatewayUserOption = None,
    password_stdin: PasswordStdinOption = False,
    session_file: SessionFileOption = None,
    no_session_file: NoSessionFileOption = False,
    ca_file: GatewayCaOption = None,
) -> None:
    """Record a calibration check: put a known mass on the scale, then run this.

    Logs in to the gateway as `wastebank attend` does."""
    client = _gateway_client(
        gateway_url, user, password_stdin, session_file, no_session_file, ca_file
    )
    with client:
        check = _gateway_call(
            client,
            "POST",
            f"/scales/{scale}/calibration",
            {"reference_g": reference_g, "note": note},
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


LedgerUrlOption = Annotated[
    str | None,
    typer.Option(help="SQLAlchemy URL of the ledger (default: the ingester's settings)"),
]
WHEN_HELP = "ISO 8601 date or time, e.g. 2026-11-23 or 2026-11-23T09:00+09:00 (no offset: local)"


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not a date or time: {value!r}", param_hint=option) from None
    return parsed if parsed.tzinfo else parsed.astimezone()  # naive: this machine's local time


def _ledger_url(ledger_url: str | None, config: Path | None) -> str:
    if ledger_url:
        return ledger_url
    from ingest.main import IngestSettings
    from wastebank.config import load_settings

    try:
        return load_settings(IngestSettings, config).ledger_url
    except ConfigError as exc:
        raise _fail(exc) from None


def _replay_state(row: ledger.DeadLetter) -> str:
    if row.resolved_at is not None:
        return f"diselesaikan / resolved {row.resolved_at.isoformat(timespec='seconds')}"
    if row.replayed_at is not None:
        return f"diputar ulang / replayed {row.replayed_at.isoformat(timespec='seconds')}"
    if row.replay_attempts:
        n = row.replay_attempts
        return f"gagal diputar ulang {n}x / replay failed {n}x"
    return "belum diputar ulang / not replayed"


@deadletter_app.command("list")
def deadletter_list(
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
    topic_contains: Annotated[
        str | None, typer.Option(help="only topics containing this text")
    ] = None,
    since: Annotated[str | None, typer.Option(help=f"received at or after: {WHEN_HELP}")] = None,
    limit: Annotated[int, typer.Option(min=1, help="show at most the newest N")] = 1000,
) -> None:
    """List rejected messages: id, time, replay state, topic, error (the latest, if replayed)."""
    from wastebank import ledger

    engine = ledger.make_engine(_ledger_url(ledger_url, config))
    try:
        with ledger.Session(engine) as session:
            rows = ledger.dead_letters(
                session,
                limit + 1,
                topic_contains=topic_contains,
                since=_when(since, "--since"),
                newest_first=True,
            )
    finally:
        engine.dispose()
    more = len(rows) > limit
    rows = rows[:limit][::-1]
    for row in rows:
        typer.echo(
            f"{row.id}\t{row.received_at.isoformat(timespec='seconds')}\t{row.reason}"
            f"\t{_replay_state(row)}\t{row.topic}\t{row.current_error}"
        )
    typer.echo(f"{len(rows)} pesan ditolak / {len(rows)} dead letter(s)")
    if more:
        typer.echo(f"hanya {limit} terbaru / only the newest {limit} shown (--limit)")


@deadletter_app.command("show")
def deadletter_show(
    dead_letter_id: Annotated[int, typer.Argument(metavar="ID", help="the dead letter's id")],
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Show one rejected message: topic, times, reason, errors and the raw payload (text or
    hex); for a conflict, also the deposit the ledger keeps under that event id."""
    from ingest.deadletter import hex_dump, payload_text
    from wastebank import ledger

    engine = ledger.make_engine(_ledger_url(ledger_url, config))
    try:
        with ledger.Session(engine) as session:
            row = ledger.get_dead_letter(session, dead_letter_id)
            kept = (
                ledger.deposit_by_event_id(session, row.event_id)
                if row is not None and row.event_id
                else None
            )
            kept_text = _deposit_text(kept) if kept is not None else None
    finally:
        engine.dispose()
    if row is None:
        typer.echo(f"tidak ada / no dead letter #{dead_letter_id}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"id: {row.id}")
    typer.echo(f"topik / topic: {row.topic}")
    typer.echo(f"diterima / received: {row.received_at.isoformat()}")
    typer.echo(f"alasan / reason: {row.reason}")
    if row.event_id:
        typer.echo(f"event id: {row.event_id}")
    typer.echo(f"galat / error: {row.error}")
    typer.echo(f"status: {_replay_state(row)}")
    if row.resolution:
        typer.echo(f"penyelesaian / resolution: {row.resolution} ({row.resolved_by})")
    if kept_text is not None:
        typer.echo("di buku besar / in the ledger (tidak berubah / unchanged):")
        typer.echo(kept_text)
        typer.echo("versi yang ditolak / the rejected version:")
    if row.replay_attempts:
        typer.echo(f"percobaan ulang / replay attempts: {row.replay_attempts}")
    if row.last_error:
        typer.echo(f"galat terakhir / last error: {row.last_error}")
    if row.last_attempt_at:
        typer.echo(f"percobaan terakhir / last attempt: {row.last_attempt_at.isoformat()}")
    text = payload_text(row.payload)
    if text is not None:
        typer.echo(f"muatan / payload ({len(row.payload)} bytes, UTF-8):")
        typer.echo(text)
    else:
        typer.echo(f"muatan / payload ({len(row.payload)} bytes, hex):")
        typer.echo(hex_dump(row.payload))


@alert_app.command("list")
def alert_list(
    show_all: Annotated[bool, typer.Option("--all", help="cleared ones too")] = False,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """The system's alerts (deposit conflicts, gateway clashes, InfluxDB drift), newest first:
    id, raised, cleared, code, subject, message. Exit status 1 while any is active."""
    from wastebank import alerts, ledger

    engine = ledger.make_engine(_ledger_url(ledger_url, config))
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
    engine = ledger.make_engine(_ledger_url(ledger_url, config))
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


def _deposit_text(d: ledger.Deposit) -> str:
    """A deposit as ``deadletter show`` prints it beside a conflicting payload."""
    return json.dumps(
        {
            "event_id": d.event_id,
            "bank_code": d.bank.code,
            "gateway_id": d.gateway_id,
            "scale_id": d.scale_id,
            "member_no": d.member.member_no,
            "category_code": d.category.code,
            "net_g": d.net_g,
            "amount_idr": d.amount_idr,
            "measured_at": d.measured_at.isoformat(),
            "recorded_at": d.recorded_at.isoformat(),
        },
        indent=2,
    )


@deadletter_app.command("resolve")
def deadletter_resolve(
    dead_letter_id: Annotated[int, typer.Argument(metavar="ID", help="the dead letter's id")],
    reason: Annotated[str, typer.Option(help="why (kept on the dead letter and in the audit)")],
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="a conflict: apply it as a new deposit R-<ID>; over_limit: apply it as sent",
        ),
    ] = False,
    discard: Annotated[bool, typer.Option("--discard", help="keep it, settled, unapplied")] = False,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Settle a dead letter a replay cannot settle: --apply a conflict as a deposit of its own
    (id R-<ID>; the deposit already under its event id is not touched) or a deposit over its
    scale's limit under its own id (you vouch for the weight), or --discard it. Once, with a
    reason, audited. The deposit's InfluxDB point is written with the ingester's settings; if
    InfluxDB is unreachable, `wastebank influx rebuild-deposits` writes it later.
    """
    from ingest.main import IngestSettings
    from wastebank import access, ledger
    from wastebank.config import load_settings

    if apply == discard:
        typer.echo("pilih --apply atau --discard / choose --apply or --discard", err=True)
        raise typer.Exit(code=2)
    overrides = {"ledger_url": ledger_url} if ledger_url else {}
    try:
        settings = load_settings(IngestSettings, config, **overrides)
    except ConfigError as exc:
        raise _fail(exc) from None
    actor = access.cli_actor()
    engine = ledger.make_engine(settings.ledger_url)
    try:
        with ledger.Session(engine) as session:
            try:
                row, applied = ledger.resolve_dead_letter(
                    session,
                    dead_letter_id,
                    apply=apply,
                    reason=reason,
                    author=actor.name,
                    rules=settings.money,
                )
            except ledger.LedgerError as exc:
                typer.echo(f"ditolak / refused: {exc}", err=True)
                raise typer.Exit(code=1) from None
            resolution = row.resolution or ""
            access.audit(session, actor, "deadletter.resolve", "dead_letter", row.id, resolution)
            session.commit()
    finally:
        engine.dispose()
    typer.echo(f"#{dead_letter_id}: {resolution}")
    if applied is not None:
        try:
            asyncio.run(_write_deposit_point(settings, applied))
        except Exception as exc:  # noqa: BLE001 - the ledger holds; say how to mend InfluxDB
            typer.echo(
                f"titik InfluxDB belum ditulis / InfluxDB point not written ({exc}): "
                "wastebank influx rebuild-deposits",
                err=True,
            )


async def _write_deposit_point(settings: IngestSettings, d: ledger.AppliedDeposit) -> None:
    from wastebank.influx import deposit_line, make_writer

    assert d.measured_at is not None
    writer = await make_writer(settings.influx)
    try:
        await writer.write(
            [
                deposit_line(
                    event_id=d.event_id,
                    bank=d.bank_code,
                    kecamatan=d.kecamatan,
                    category=d.category_code,
                    net_g=d.net_g,
                    amount_idr=d.amount_idr,
                    gateway=d.gateway_id,
                    measured_at=d.measured_at,
                )
            ]
        )
    finally:
        await writer.aclose()


@deadletter_app.command("replay")
def deadletter_replay(
    ids: Annotated[list[int] | None, typer.Argument(metavar="[ID]...", show_default=False)] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="every dead letter not yet replayed")
    ] = False,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Run rejected messages through the ingester again, after a fix; each is applied once.

    Uses the ingester's settings (--config / WASTEBANK_*). A message that still fails keeps its
    row with the new error and a count of attempts; one that succeeds is marked replayed.
    Exit status 1 if any message failed again or an ID does not exist.
    """
    from ingest.deadletter import ReplayAborted, replay_dead_letters
    from ingest.main import IngestSettings
    from wastebank.config import load_settings

    if bool(ids) == replay_all:
        typer.echo("sebutkan ID atau --all / give IDs or --all (not both)", err=True)
        raise typer.Exit(code=2)
    overrides = {"ledger_url": ledger_url} if ledger_url else {}
    try:
        settings = load_settings(IngestSettings, config, **overrides)
    except ConfigError as exc:
        raise _fail(exc) from None
    bar, progress = _count_progress("memutar ulang / replaying")

    aborted: str | None = None
    with bar:
        try:
            summary = asyncio.run(replay_dead_letters(settings, ids or None, progress))
        except ReplayAborted as exc:
            summary, aborted = exc.summary, str(exc)
    _report_replay(summary)
    if aborted is not None:
        typer.echo(f"dihentikan / stopped: {aborted}", err=True)
        raise typer.Exit(code=1)
    if summary.failed or summary.missing:
        raise typer.Exit(code=1)


REPLAY_FAILURES_SHOWN = 20


def _report_replay(summary: ReplaySummary) -> None:
    for row_id, error in list(summary.failed.items())[:REPLAY_FAILURES_SHOWN]:
        typer.echo(f"#{row_id} gagal / failed: {error}")
    if len(summary.failed) > REPLAY_FAILURES_SHOWN:
        more = len(summary.failed) - REPLAY_FAILURES_SHOWN
        typer.echo(f"... dan {more} lagi / and {more} more: wastebank deadletter list")
    for row_id in summary.missing:
        typer.echo(f"#{row_id} tidak ada / not found")
    typer.echo(
        f"diputar ulang / replayed: {len(summary.replayed)}, gagal / failed: "
        f"{len(summary.failed)}, sudah diputar ulang / already replayed: {len(summary.skipped)}"
    )


@deadletter_app.command("purge")
def deadletter_purge(
    replayed: Annotated[bool, typer.Option("--replayed", help="rows already replayed")] = False,
    before: Annotated[str | None, typer.Option(help=f"received before: {WHEN_HELP}")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="really delete")] = False,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Delete dead letters: replayed ones and/or those received before a date (both: both)."""
    from wastebank import ledger

    if not replayed and before is None:
        typer.echo("perlu --replayed dan/atau --before / need --replayed and/or --before", err=True)
        raise typer.Exit(code=2)
    cutoff = _when(before, "--before")
    engine = ledger.make_engine(_ledger_url(ledger_url, config))
    try:
        with ledger.Session(engine) as session:
            count = ledger.purge_dead_letters(
                session, replayed=replayed, before=cutoff, dry_run=not yes
            )
    finally:
        engine.dispose()
    if not yes:
        typer.echo(
            f"{count} akan dihapus; ulangi dengan --yes / {count} would be deleted; "
            "repeat with --yes",
            err=True,
        )
        raise typer.Exit(code=1)
    typer.echo(f"{count} dihapus / {count} deleted")


# ---- ledger schema ------------------------------------------------------------------------------


@ledger_app.command("migrate")
def ledger_migrate(
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
    revision: Annotated[str, typer.Option(help="the revision to upgrade to")] = "head",
) -> None:
    """Upgrade the ledger's schema (a ledger from before migrations is adopted). Writers
    (ingest, seed) do this on start too; run it first when several start at once."""
    from wastebank import ledger, migrations

    _logging()
    engine = ledger.make_engine(_ledger_url(ledger_url, config), migrate=False)
    try:
        before = migrations.current(engine)
        migrations.upgrade(engine, revision)
        after = migrations.current(engine)
    except migrations.LedgerSchemaError as exc:
        raise _fail(exc) from None
    finally:
        engine.dispose()
    if before == after:
        typer.echo(f"sudah pada revisi / already at revision {after}")
    else:
        typer.echo(f"dimigrasi / migrated: {before or '(kosong / empty)'} -> {after}")


@ledger_app.command("current")
def ledger_current(config: ConfigOption = None, ledger_url: LedgerUrlOption = None) -> None:
    """Show the ledger's revision and this release's head; exit 1 if they differ."""
    from wastebank import ledger, migrations

    engine = ledger.make_engine(_ledger_url(ledger_url, config), writer=False, migrate=False)
    try:
        rev, head = migrations.current(engine), migrations.head()
    finally:
        engine.dispose()
    state = "mutakhir / up to date" if rev == head else "perlu migrasi / needs `ledger migrate`"
    typer.echo(f"revisi / revision {rev or '(kosong / none)'}, head {head}: {state}")
    if rev != head:
        raise typer.Exit(code=1)


@ledger_app.command("revision")
def ledger_revision(
    message: Annotated[str, typer.Option("--message", "-m", help="what the revision changes")],
) -> None:
    """(Developers) write a new revision from the models' changes (autogenerate); review it."""
    from wastebank import migrations

    path = migrations.new_revision(message)
    typer.echo(f"ditulis / written: {path}")


# ---- ledger books (the ledger's model: wastebank/ledger.py) ----------------------------------


@ledger_app.command("verify")
def ledger_verify(
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
    limit: Annotated[int, typer.Option(min=1, help="problems to print at most")] = 100,
    influx: Annotated[
        bool,
        typer.Option(
            "--influx",
            help="also compare the device deposits with InfluxDB's points, per local day, bank "
            "and category (count, grams, Rupiah) / bandingkan juga dengan InfluxDB",
        ),
    ] = False,
    date_from: Annotated[
        datetime | None,
        typer.Option(
            "--from", formats=["%Y-%m-%d"], help="--influx: first local day (default: --to - 29)"
        ),
    ] = None,
    date_to: Annotated[
        datetime | None,
        typer.Option(
            "--to", formats=["%Y-%m-%d"], help="--influx: last local day (default: today)"
        ),
    ] = None,
    settle: Annotated[
        float,
        typer.Option(
            min=0,
            help="--influx: seconds after which differing days are compared again; only what "
            "differs both times is drift (a deposit between its ledger commit and its point)",
        ),
    ] = 5.0,
) -> None:
    """Check the books: every transaction balanced, journal and stock entries exactly as the
    deposits, voids, withdrawals and stock movements imply, no negative balance or stock, a valid
    induk/unit hierarchy, the daily and monthly tonnage summaries as the deposits imply (`ledger
    rebuild-summary` mends those). With --influx, also that InfluxDB's deposit points agree
    with the ledger's device deposits (voided ones included) over the local days --from..--to
    (`influx rebuild-deposits` mends them); the comparison is recorded (reconciliation_run).
    Exit 1 when anything is wrong, 2 when InfluxDB cannot be asked."""
    from wastebank import ledger, migrations

    if not influx and (date_from or date_to):
        raise typer.BadParameter("only with --influx / hanya dengan --influx", param_hint="--from")
    try:
        engine = ledger.make_engine(_ledger_url(ledger_url, config), writer=False)
    except migrations.LedgerSchemaError as exc:
        raise _fail(exc) from None
    # One snapshot for every query: SQLite's read transaction is one; on PostgreSQL, READ
    # COMMITTED would let a deposit committed mid-check look like entries without a document.
    bind = engine
    if engine.dialect.name == "postgresql":
        bind = engine.execution_options(isolation_level="REPEATABLE READ")
    try:
        with ledger.Session(bind) as session:
            problems = ledger.verify(session)
        for problem in problems[:limit]:
            typer.echo(str(problem))
        if problems:
            typer.echo(f"{len(problems)} masalah / problems", err=True)
        else:
            typer.echo("pembukuan benar / the books hold")
        drifts = 0
        if influx:
            first = date_from.date() if date_from else None
            last = date_to.date() if date_to else None
            drifts = _verify_influx(engine, config, ledger_url, first, last, settle, limit)
    finally:
        engine.dispose()
    if problems or drifts:
        raise typer.Exit(code=1)


def _verify_influx(
    engine: Engine,
    config: Path | None,
    ledger_url: str | None,
    first: date | None,
    last: date | None,
    settle: float,
    limit: int,
) -> int:
    """`ledger verify --influx`: compare, print each drift, record the run; the drift count."""
    from ingest.main import IngestSettings
    from wastebank import access, ledger, reconcile
    from wastebank.config import load_settings
    from wastebank.influx import Influx, InfluxError

    overrides = {"ledger_url": ledger_url} if ledger_url else {}
    try:
        settings = load_settings(IngestSettings, config, **overrides)
    except ConfigError as exc:
        raise _fail(exc) from None
    with ledger.Session(engine) as session:
        zones = reconcile.city_zones(session)
    last = last or reconcile.local_today(zones)
    first = first or last - timedelta(days=29)
    if last < first:
        raise typer.BadParameter("--to sebelum --from / --to before --from", param_hint="--to")

    async def run() -> list[reconcile.Drift]:
        influx = Influx(settings.influx)
        try:
            return await reconcile.reconcile(engine, influx, first, last, settle_s=settle)
        finally:
            await influx.aclose()

    try:
        drifts = asyncio.run(run())
    except InfluxError as exc:
        raise _fail(exc) from None
    writer = ledger.make_engine(settings.ledger_url, writer=True, migrate=False)
    try:
        with ledger.Session(writer) as session:
            reconcile.record_run(session, first, last, drifts, access.cli_actor().name)
            session.commit()
    finally:
        writer.dispose()
    for drift in drifts[:limit]:
        typer.echo(drift.describe())
    if drifts:
        typer.echo(
            f"{len(drifts)} selisih buku besar-InfluxDB / ledger-InfluxDB drifts {first}..{last} "
            "(`wastebank influx rebuild-deposits --from D --to D`)",
            err=True,
        )
    else:
        typer.echo(f"buku besar dan InfluxDB sama / the ledger and InfluxDB agree {first}..{last}")
    return len(drifts)


@ledger_app.command("rebuild-summary")
def ledger_rebuild_summary(
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
    limit: Annotated[int, typer.Option(min=1, help="problems to print at most")] = 100,
) -> None:
    """Make the daily tonnage summary (deposit_day) and its monthly roll-up (deposit_month),
    which the DLH reports read, again from the deposits, then check them against the deposits.
    For after a city's time zone was changed, deposits loaded around the ledger (a bulk COPY),
    or `ledger verify` reporting `summary` problems. In one transaction: the reports see the old
    summary until it commits; on PostgreSQL deposit writers wait meanwhile. Exit 1 when the
    check finds anything wrong."""
    import time

    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from sqlalchemy import func, select

    from wastebank import ledger, migrations

    _logging()
    try:
        engine = ledger.make_engine(_ledger_url(ledger_url, config))
    except migrations.LedgerSchemaError as exc:
        raise _fail(exc) from None
    started = time.monotonic()
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        ) as progress:
            task = progress.add_task("membangun ulang ringkasan / rebuilding the summary")

            def step(what: str) -> None:
                progress.update(task, description=what)

            with ledger.Session(engine) as session:
                days = ledger.rebuild_deposit_days(session, progress=step)
                months = session.scalar(select(func.count()).select_from(ledger.DepositMonth))
            step("memeriksa terhadap setoran / checking against the deposits")
            bind = engine
            if engine.dialect.name == "postgresql":  # one snapshot, as `ledger verify`
                bind = engine.execution_options(isolation_level="REPEATABLE READ")
            with ledger.Session(bind) as session:
                problems = ledger.verify_summaries(session)
            step("selesai / done")
    finally:
        engine.dispose()
    typer.echo(
        f"ringkasan dibangun ulang / summary rebuilt: {days:,} baris harian / daily rows, "
        f"{months or 0:,} baris bulanan / monthly rows ({time.monotonic() - started:.1f} s)"
    )
    for problem in problems[:limit]:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} masalah / problems", err=True)
        raise typer.Exit(code=1)
    typer.echo("ringkasan sesuai setoran / the summary matches the deposits")


# ---- backups, passbooks, bulk imports (wastebank/backup.py, passbook.py, bulk_import.py) -----


@ledger_app.command("backup")
def ledger_backup(
    dest: Annotated[
        Path | None,
        typer.Argument(
            metavar="[FILE]",
            help="the backup file (default: .run/backups/ledger-<UTC time>.sqlite or .pgdump)",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Back up the ledger while it runs: SQLite's online backup API, or pg_dump (custom format)
    for PostgreSQL. The file is readable by its owner only: it holds personal data."""
    from wastebank import backup

    url = _ledger_url(ledger_url, config)
    try:
        info = backup.backup(url, dest or backup.default_path(url))
    except backup.BackupError as exc:
        raise _fail(exc) from None
    typer.echo(
        f"dicadangkan / backed up: {info.path} ({info.size} bytes, {info.backend}, "
        f"revisi / revision {info.revision or '-'})"
    )


@ledger_app.command("restore")
def ledger_restore(
    src: Annotated[
        Path,
        typer.Argument(metavar="FILE", exists=True, dir_okay=False, help="a `ledger backup` file"),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="replace whatever the target database holds")
    ] = False,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="check the restored books (ledger verify)")
    ] = True,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Restore a backup into an empty ledger database (of the same kind: SQLite or PostgreSQL);
    a database that holds any table is refused unless --force. Stop the writers (ingest) first.
    Exit 1 when the restored books do not verify."""
    from wastebank import backup, ledger

    url = _ledger_url(ledger_url, config)
    try:
        info = backup.restore(src, url, force=force)
    except backup.BackupError as exc:
        raise _fail(exc) from None
    replaced = f", {info.replaced_tables} tabel diganti / tables replaced" * bool(
        info.replaced_tables
    )
    typer.echo(f"dipulihkan / restored: {src} (revisi / revision {info.revision or '-'}{replaced})")
    if info.needs_migration:
        typer.echo(
            "skema lebih lama dari rilis ini / the schema is older than this release: run "
            "`wastebank ledger migrate` (writers do it on start)"
        )
        return
    if not verify:
        return
    engine = ledger.make_engine(url, writer=False)
    try:
        with ledger.Session(engine) as session:
            problems = ledger.verify(session)
    finally:
        engine.dispose()
    for problem in problems[:100]:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} masalah / problems", err=True)
        raise typer.Exit(code=1)
    typer.echo("pembukuan benar / the books hold")


class StatementFormat(StrEnum):
    text = "text"
    json = "json"
    csv = "csv"
    pdf = "pdf"


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not a date: {value!r} (2026-11-01)", param_hint=option) from None


@ledger_app.command("statement")
def ledger_statement(
    member_no: Annotated[str, typer.Argument(metavar="MEMBER_NO", help="e.g. AMB-0001")],
    date_from: Annotated[
        str | None, typer.Option("--from", help="first day, local to the city: 2026-11-01")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="last day (included), local: 2026-11-30")
    ] = None,
    fmt: Annotated[StatementFormat, typer.Option("--format", "-f")] = StatementFormat.text,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="write here (default: standard output; a PDF: buku-tabungan-<member>.pdf)",
        ),
    ] = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """A member's passbook (buku tabungan): opening balance, every deposit, reversal and
    withdrawal with the running balance, closing balance. Days are the city's (WIB/WITA/WIT)."""
    from wastebank import ledger, migrations, passbook

    start, end = _day(date_from, "--from"), _day(date_to, "--to")
    try:
        engine = ledger.make_engine(_ledger_url(ledger_url, config), writer=False)
    except migrations.LedgerSchemaError as exc:
        raise _fail(exc) from None
    try:
        with ledger.Session(engine) as session:
            st = passbook.statement(session, member_no, start, end)
    except (ledger.NotFound, ValueError) as exc:
        raise _fail(exc) from None
    finally:
        engine.dispose()
    if fmt is StatementFormat.pdf:
        path = output or Path(f"buku-tabungan-{member_no}.pdf")
        path.write_bytes(passbook.statement_pdf(st))
        typer.echo(f"ditulis / written: {path}", err=True)
        return
    if fmt is StatementFormat.json:
        rendered = st.model_dump_json(indent=2) + "\n"
    elif fmt is StatementFormat.csv:
        rendered = passbook.statement_csv(st)
    else:
        rendered = passbook.statement_text(st)
    if output is None:
        typer.echo(rendered, nl=False)
    else:
        # A CSV with the BOM Excel looks for, or it misreads names outside ASCII.
        encoding = "utf-8-sig" if fmt is StatementFormat.csv else "utf-8"
        output.write_text(rendered, encoding=encoding, newline="")
        typer.echo(f"ditulis / written: {output}", err=True)


ImportFileArgument = Annotated[
    Path,
    typer.Argument(metavar="FILE", exists=True, dir_okay=False, help="a .csv or .xlsx list"),
]
ValidOnlyOption = Annotated[
    bool,
    typer.Option(
        "--valid-only", help="import the valid rows, refuse the others (default: all or nothing)"
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="check every row and report; write nothing")
]
ReportOption = Annotated[
    Path | None, typer.Option("--report", help="also write the report to this .csv or .xlsx")
]
SheetOption = Annotated[
    str | None, typer.Option("--sheet", help="the XLSX sheet (default: the first)")
]


def _run_import(
    run: Callable[[Callable[[int, int], None]], bulk_import.ImportReport],
    report_path: Path | None,
) -> None:
    """Run an import with a progress bar (on a terminal), print its report, write it to
    ``report_path``, exit 1 when a row was refused."""
    from wastebank.bulk_import import ImportFileError

    bar, progress = _count_progress("mengimpor / importing")

    with bar:
        try:
            report = run(progress)
        except ImportFileError as exc:
            raise _fail(exc) from None
    typer.echo(report.text(), nl=False)
    if report_path is not None:
        try:
            report.write(report_path)
        except ImportFileError as exc:
            raise _fail(exc) from None
        typer.echo(f"laporan / report: {report_path}")
    if not report.ok:
        raise typer.Exit(code=1)


@ledger_app.command("import-members")
def ledger_import_members(
    file: ImportFileArgument,
    valid_only: ValidOnlyOption = False,
    dry_run: DryRunOption = False,
    report: ReportOption = None,
    sheet: SheetOption = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Register nasabah from a CSV/XLSX list: every row imported or refused with its reasons.
    Columns: no_nasabah, nama, kode_bank (required); jenis, no_hp, kelurahan, kecamatan, rt,
    rw, nik, kartu. A NIK needs WASTEBANK_NIK_KEY and is stored only as its keyed hash.
    Exit 1 when a row was refused."""
    from wastebank import bulk_import, ledger
    from wastebank.config import load_settings

    try:
        privacy = load_settings(ledger.MemberPrivacySettings, config)
    except ConfigError as exc:
        raise _fail(exc) from None
    nik_key = privacy.key() if privacy.nik_key is not None else None
    mode = bulk_import.Mode.VALID_ONLY if valid_only else bulk_import.Mode.ALL_OR_NOTHING
    engine = ledger.make_engine(_ledger_url(ledger_url, config))
    try:
        _run_import(
            lambda progress: bulk_import.import_members(
                engine,
                file,
                mode=mode,
                dry_run=dry_run,
                nik_key=nik_key,
                sheet=sheet,
                progress=progress,
            ),
            report,
        )
    finally:
        engine.dispose()


@ledger_app.command("import-prices")
def ledger_import_prices(
    file: ImportFileArgument,
    author: Annotated[
        str, typer.Option("--author", help="your staff id: an attendant of each bank (or induk)")
    ],
    valid_only: ValidOnlyOption = False,
    dry_run: DryRunOption = False,
    report: ReportOption = None,
    sheet: SheetOption = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Set prices from a CSV/XLSX list (kode_bank, kategori, harga, berlaku_mulai), each through
    the ledger's price rule: a price may not reprice deposits already made, nor lie outside the
    money rules' price limits (the API's settings, [money]). A date means 00:00 in the bank's
    city; no date: from now. Exit 1 when a row was refused."""
    from api.settings import ApiSettings
    from wastebank import bulk_import, ledger
    from wastebank.config import load_settings

    try:
        rules = load_settings(ApiSettings, config).money
    except ConfigError as exc:
        raise _fail(exc) from None
    mode = bulk_import.Mode.VALID_ONLY if valid_only else bulk_import.Mode.ALL_OR_NOTHING
    engine = ledger.make_engine(_ledger_url(ledger_url, config))
    try:
        _run_import(
            lambda progress: bulk_import.import_prices(
                engine,
                file,
                author=author,
                mode=mode,
                dry_run=dry_run,
                sheet=sheet,
                progress=progress,
                rules=rules,
            ),
            report,
        )
    finally:
        engine.dispose()


# ---- users: logins for the API and pages (wastebank/access.py) -------------------------------

user_app = typer.Typer(
    help="pengguna dan peran / users and roles: admin, dlh, attendant, citizen",
    no_args_is_help=True,
)
app.add_typer(user_app, name="user")


class UserRole(StrEnum):
    admin = "admin"
    dlh = "dlh"
    attendant = "attendant"
    citizen = "citizen"


if TYPE_CHECKING:
    from collections.abc import Callable

    from argon2 import PasswordHasher

    from wastebank.access import AuthSettings

    UserWork = Callable[[ledger.Session, PasswordHasher], object]


def _user_settings(config: Path | None, ledger_url: str | None) -> tuple[str, AuthSettings]:
    """The ledger URL and the API's auth settings (argon2 cost) from the API's settings."""
    from api.settings import ApiSettings
    from wastebank.config import load_settings

    try:
        settings = load_settings(ApiSettings, config)
    except ConfigError as exc:
        raise _fail(exc) from None
    return ledger_url or settings.ledger_url, settings.auth


def _secret(role: str, pin: str | None, password: str | None) -> tuple[str, bool]:
    """The PIN or password given; else a citizen gets a generated PIN (shown once) and staff
    are asked for a password. Returns (secret, generated)."""
    from wastebank import access

    if pin is not None and password is not None:
        raise typer.BadParameter("--pin atau --password, bukan keduanya / not both")
    if role == UserRole.citizen:
        if password is not None:
            raise typer.BadParameter(
                "nasabah memakai PIN / citizens use a PIN", param_hint="--password"
            )
        return (pin, False) if pin is not None else (access.generate_pin(), True)
    if pin is not None:
        raise typer.BadParameter(
            "staf memakai kata sandi / staff use a password", param_hint="--pin"
        )
    if password is None:
        password = typer.prompt("Kata sandi / password", hide_input=True, confirmation_prompt=True)
    return password, False


def _with_users(config: Path | None, ledger_url: str | None, work: UserWork) -> object:
    """Run ``work(session, hasher)`` on the ledger in one transaction (committed if it returns)."""
    from wastebank import access, ledger

    url, auth = _user_settings(config, ledger_url)
    engine = ledger.make_engine(url)
    try:
        with ledger.Session(engine) as session:
            try:
                result = work(session, access.password_hasher(auth))
            except access.AccessError as exc:
                session.rollback()
                raise _fail(exc) from None
            session.commit()
            return result
    finally:
        engine.dispose()


UsernameArg = Annotated[str, typer.Argument(help="staff username, or a member number")]
PinOption = Annotated[
    str | None, typer.Option(help="citizen: 6-digit PIN (default: a random one, shown once)")
]
PasswordOption = Annotated[
    str | None, typer.Option(help="staff: password (default: asked for, not echoed)")
]


@user_app.command("add")
def user_add(
    role: Annotated[UserRole, typer.Option(help="admin, dlh, attendant or citizen")],
    username: Annotated[
        str | None,
        typer.Option(help="staff: login name (an attendant's is their staff id at their bank)"),
    ] = None,
    member: Annotated[
        str | None, typer.Option(help="citizen: member number (their login name)")
    ] = None,
    city: Annotated[str | None, typer.Option(help="dlh: the city's code, e.g. ambon")] = None,
    name: Annotated[str | None, typer.Option(help="full name (citizen: the member's)")] = None,
    pin: PinOption = None,
    password: PasswordOption = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Add a login: a nasabah (member number + PIN) or staff (username + password)."""
    from wastebank import access

    secret, generated = _secret(role, pin, password)

    def add(session: ledger.Session, hasher: PasswordHasher) -> str:
        user = access.add_user(
            session,
            role=role.value,
            username=username,
            name=name,
            secret=secret,
            hasher=hasher,
            actor=access.cli_actor(),
            city_code=city,
            member_no=member,
        )
        return user.username

    login = _with_users(config, ledger_url, add)
    typer.echo(f"ditambahkan / added: {login} ({role.value})")
    if generated:
        typer.echo(f"PIN: {secret}  (berikan kepada nasabah / give it to the member; shown once)")


@user_app.command("list")
def user_list(
    role: Annotated[UserRole | None, typer.Option(help="only this role")] = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """List logins: username, role, name, scope (city, banks or member), active."""
    from sqlalchemy import select

    from wastebank import access, ledger

    def rows(session: ledger.Session, _hasher: PasswordHasher) -> list[str]:
        out = []
        for user in access.users(session):
            if role is not None and user.role != role.value:
                continue
            p = access.principal_of(session, user)
            if p.role == access.Role.DLH:
                scope = f"city {user.city.code if user.city else '?'}"
            elif p.role == access.Role.ATTENDANT:
                codes = session.scalars(
                    select(ledger.Bank.code).where(ledger.Bank.id.in_(p.bank_ids))
                )
                scope = "banks " + (",".join(sorted(codes)) or "-")
            elif p.role == access.Role.CITIZEN:
                scope = f"member {p.member_no}"
            else:
                scope = "all"
            state = "aktif / active" if user.active else "nonaktif / disabled"
            out.append(
                f"{user.username:<24} {user.role:<10} {user.name[:30]:<30} {scope:<30} {state}"
            )
        return out

    lines = _with_users(config, ledger_url, rows)
    assert isinstance(lines, list)
    for line in lines:
        typer.echo(line)
    if not lines:
        typer.echo("(belum ada pengguna / no users yet)")


@user_app.command("disable")
def user_disable(
    username: UsernameArg, config: ConfigOption = None, ledger_url: LedgerUrlOption = None
) -> None:
    """Disable a login; every token and session it holds stops working at once."""
    from wastebank import access

    _with_users(
        config,
        ledger_url,
        lambda s, _h: access.set_active(s, username, False, access.cli_actor()),
    )
    typer.echo(f"dinonaktifkan / disabled: {username}")


@user_app.command("enable")
def user_enable(
    username: UsernameArg, config: ConfigOption = None, ledger_url: LedgerUrlOption = None
) -> None:
    """Enable a disabled login again."""
    from wastebank import access

    _with_users(
        config,
        ledger_url,
        lambda s, _h: access.set_active(s, username, True, access.cli_actor()),
    )
    typer.echo(f"diaktifkan / enabled: {username}")


@user_app.command("set-pin")
def user_set_pin(
    username: UsernameArg,
    pin: PinOption = None,
    password: PasswordOption = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Set a citizen's PIN (default: a random one, shown once) or a staff user's password;
    their tokens and sessions stop working."""
    from wastebank import access

    def role_of(session: ledger.Session, _hasher: PasswordHasher) -> str:
        return access.get_user(session, username).role

    role = _with_users(config, ledger_url, role_of)
    assert isinstance(role, str)
    secret, generated = _secret(role, pin, password)
    _with_users(
        config,
        ledger_url,
        lambda s, h: access.set_secret(s, username, secret, h, access.cli_actor()),
    )
    typer.echo(f"diubah / changed: {username}")
    if generated:
        typer.echo(f"PIN: {secret}  (berikan kepada nasabah / give it to the member; shown once)")


# ---- report: DLH reports (wastebank/reports.py) -------------------------------------------------

report_app = typer.Typer(help="laporan DLH / DLH reports", no_args_is_help=True)
app.add_typer(report_app, name="report")


class ReportFormat(StrEnum):
    xlsx = "xlsx"
    csv = "csv"
    pdf = "pdf"


@report_app.command("monthly")
def report_monthly(
    month: Annotated[str, typer.Option("--month", help="the month, e.g. 2026-10")],
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.xlsx,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="file to write (default: laporan-dlh-<city>-<month>.<fmt>)"
        ),
    ] = None,
    city: Annotated[str | None, typer.Option(help="city code (default: the first city)")] = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """The monthly DLH report per kecamatan x category: deposits, kg (measured / estimated),
    reduction share of the estimated generation, CO2e avoided and energy potential. Days are
    the city's own (WIB/WITA/WIT); voided deposits are left out. Settings: [reports] of the
    API's settings (WASTEBANK_REPORTS__*)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from api.settings import ApiSettings
    from wastebank import ledger, migrations, reports
    from wastebank.config import load_settings

    try:
        reports.parse_month(month)
        settings = load_settings(ApiSettings, config)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--month") from None
    except ConfigError as exc:
        raise _fail(exc) from None
    try:
        engine = ledger.make_engine(ledger_url or settings.ledger_url, writer=False)
    except migrations.LedgerSchemaError as exc:
        raise _fail(exc) from None
    steps = 6  # monthly_report's four, writing, done
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as progress:
        task = progress.add_task(f"laporan / report {month}", total=steps)

        def step(what: str) -> None:
            progress.update(task, description=what, advance=1)

        try:
            with ledger.Session(engine) as session:
                scope = reports.load_scope(session, city_code=city)
                report = reports.monthly_report(
                    session,
                    scope,
                    month,
                    settings.reports,
                    estimator=reports.default_estimator(),
                    progress=step,
                )
        except ledger.NotFound as exc:
            raise _fail(exc) from None
        finally:
            engine.dispose()
        progress.update(task, description=f"menulis / writing {fmt.value}", advance=1)
        body = reports.render(report, fmt.value)
        path = out or Path(reports.filename(report, fmt.value))
        path.write_bytes(body)
        progress.update(task, description="selesai / done", completed=steps)
    typer.echo(
        f"ditulis / written: {path} ({len(report.rows)} baris / rows, "
        f"{report.total.deposits} setoran / deposits)",
        err=True,
    )


# ---- TPS: alerts, pickups and bulk density (wastebank/tps.py) ---------------------------------

tps_app = typer.Typer(
    help=(
        "TPS: pemantau peringatan dan pengangkutan, kalibrasi berat jenis / TPS alert and pickup "
        "watcher, density calibration"
    ),
    no_args_is_help=True,
)
app.add_typer(tps_app, name="tps")


@tps_app.command("watch")
def tps_watch(
    config: ConfigOption = None, verbose: bool = False, log_format: LogFormatOption = LogFormat.text
) -> None:
    """Watch TPS fill readings (MQTT): fill_high and sensor_offline alerts, published on MQTT
    (retained state + event) and recorded in the ledger, each raised once and cleared once."""
    from wastebank.config import load_settings
    from wastebank.tps import TpsWatchSettings
    from wastebank.tps import run as run_watch

    _logging(verbose, json=log_format is LogFormat.json)
    try:
        settings = load_settings(TpsWatchSettings, config)
    except ConfigError as exc:
        raise _fail(exc) from None
    asyncio.run(run_watch(settings))


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
    engine = ledger.make_engine(_ledger_url(ledger_url, config))
    try:
        with ledger.Session(engine) as session:
            row = tps_mod.get_tps(session, tps)
            if row is None:
                raise _fail(ledger.NotFound(f"TPS {tps}"))
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
            typer.echo(
                f"{row.code}: berat jenis / density {row.density_kg_m3:.1f} kg/m3 "
                f"({row.density_source})"
            )
    except ValueError as exc:
        raise _fail(exc) from None
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

    from wastebank import ledger, migrations
    from wastebank import tps as tps_mod
    from wastebank.config import load_settings
    from wastebank.influx import Influx, InfluxError
    from wastebank.tps import TpsWatchSettings

    first, last = date_from.date(), date_to.date()
    if last < first:
        raise typer.BadParameter("--to sebelum --from / --to before --from", param_hint="--to")
    overrides = {"ledger_url": ledger_url} if ledger_url else {}
    try:
        settings = load_settings(TpsWatchSettings, config, **overrides)
        engine = ledger.make_engine(settings.ledger_url)
    except (ConfigError, migrations.LedgerSchemaError) as exc:
        raise _fail(exc) from None
    bar, progress = _count_progress("membaca bacaan / reading the readings (TPS)")

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
                raise _fail(ledger.NotFound(f"TPS {', '.join(missing)}"))
            zones = {r.city.timezone for r in rows if r is not None} or {"UTC"}
            lo = min(datetime.combine(first, datetime.min.time(), ZoneInfo(z)) for z in zones)
            hi = max(
                datetime.combine(last + timedelta(days=1), datetime.min.time(), ZoneInfo(z))
                for z in zones
            )
            with bar:
                summary = asyncio.run(run(session))
    except (InfluxError, ValueError) as exc:
        raise _fail(exc) from None
    finally:
        engine.dispose()
    typer.echo(
        f"pengangkutan / pickups {first}..{last}: {summary.tps} TPS, {summary.sensors} sensor, "
        f"{summary.readings:,} bacaan / readings; dihapus / removed {summary.removed:,}, "
        f"dicatat / recorded {summary.inserted:,} ({time.monotonic() - started:.1f} s)"
    )


# ---- schema: the MQTT messages as JSON Schema files (wastebank/wire_schema.py) -----------------

schema_app = typer.Typer(
    help="skema JSON pesan MQTT / the MQTT messages as JSON Schema files", no_args_is_help=True
)
app.add_typer(schema_app, name="schema")


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
    health.json, alert.json, tps_alert.json, from the pydantic models with their limits; for
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


# ---- InfluxDB: points again from the ledger (wastebank/reconcile.py) ----------------------------

influx_app = typer.Typer(
    help="InfluxDB: pengguna & skema, titik dari buku besar / users and schema, points from the "
    "ledger",
    no_args_is_help=True,
)
app.add_typer(influx_app, name="influx")


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

    _logging()
    try:
        settings = load_settings(services.ServicesSettings, config)
        if rotate is not None:
            path = services.rotate_influx_password(settings, rotate)
            typer.echo(f"kata sandi baru / new password for {rotate}: {path}")
            return
        services.prepare_influxdb(settings, database or [])
    except (ConfigError, services.ServiceError, OSError, ValueError) as exc:
        raise _fail(exc) from None
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

    from ingest.main import IngestSettings
    from wastebank import ledger, migrations, reconcile
    from wastebank.config import load_settings
    from wastebank.influx import InfluxError

    first, last = date_from.date(), date_to.date()
    if last < first:
        raise typer.BadParameter("--to sebelum --from / --to before --from", param_hint="--to")
    overrides = {"ledger_url": ledger_url} if ledger_url else {}
    try:
        settings = load_settings(IngestSettings, config, **overrides)
        engine = ledger.make_engine(settings.ledger_url, writer=False)
    except (ConfigError, migrations.LedgerSchemaError) as exc:
        raise _fail(exc) from None
    bar, progress = _count_progress("menulis titik / writing points (deposit)")
    started = time.monotonic()
    try:
        with bar:
            summary = asyncio.run(
                reconcile.rebuild_deposits(engine, settings.influx, first, last, progress=progress)
            )
    except reconcile.RebuildUnsupported as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    except (InfluxError, ValueError) as exc:
        raise _fail(exc) from None
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


if __name__ == "__main__":
    app()
