"""`wastebank`: one command with a subcommand per process.

This is the root: the Typer app (``wastebank = "wastebank.cli:app"``), the umask every command
runs under, the one place where an error becomes an exit status, and the processes' own commands
(gateway, ingest, api, the simulators). It is the one module of wastebank/ that imports the
processes (gateway, ingest, api, firmware_sim), lazily, inside each command; the command modules
beside it (services, devices, ledger, users, ...) get what they need of the processes through
:func:`wastebank.cli._common.processes`, which this module gives. Imports of the heavy modules
happen inside each command, so `wastebank services up` works before anything else is
configured.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from wastebank.cli._common import (
    ConfigOption,
    IngestSettingsView,
    LogFormat,
    LogFormatOption,
    ReplaySummaryView,
    SiteGrants,
    fail,
    give_processes,
    setup_logging,
)
from wastebank.errors import WastebankError
from wastebank.process import FAILED, private_files, run_until_stopped

if TYPE_CHECKING:
    from fastapi import FastAPI

    from api.settings import ApiSettings
    from ingest.main import IngestSettings

__all__ = ["api_worker_app", "app"]

_logging = setup_logging  # the name tests/test_logging.py imports


# The command modules, imported when their command runs (or `--help` lists them): a process
# started as `wastebank gateway` does not carry the code of fifteen admin commands
# (docs/scaling.md, "Gateway footprint"). `wastebank --help` lists the processes' commands
# defined below, then these, in this order. Name -> (module, its Typer app, whether the app is
# a group of that name or gives its commands to the root).
_COMMANDS: dict[str, tuple[str, str, bool]] = {
    "seed": ("demo", "demo_app", False),
    "demo": ("demo", "demo_app", False),
    "attend": ("attendant", "attendant_app", False),
    "calibrate": ("attendant", "attendant_app", False),
    "services": ("services", "services_app", True),
    "sim": ("", "", True),  # sim_app, below
    "deadletter": ("deadletters", "deadletter_app", True),
    "alert": ("alerts", "alert_app", True),
    "fleet": ("fleet", "fleet_app", False),
    "certs": ("devices", "certs_app", True),
    "device": ("devices", "device_app", True),
    "ledger": ("ledger_data", "ledger_app", True),  # ledger's group with ledger_data's commands
    "user": ("users", "user_app", True),
    "report": ("reports", "report_app", True),
    "tps": ("tps", "tps_app", True),
    "schema": ("schema", "schema_app", True),
    "influx": ("influx", "influx_app", True),
    "sms": ("sms", "sms_app", True),
}


class _Root(TyperGroup):
    """The root command: a :class:`~wastebank.errors.WastebankError` a command lets through
    becomes its message and exit status 2 (``_common.FAILED``), without a traceback, whatever
    its family: settings, services, a refusal, unreadable input. A command that reports an
    error its own way (exit 1 with its own words) catches it itself.

    It also finds the commands of :data:`_COMMANDS`, importing their module on first use
    (click's lazy group: https://click.palletsprojects.com/en/stable/complex/)."""

    def invoke(self, ctx: Any) -> Any:  # a Context of the click Typer bundles
        try:
            return super().invoke(ctx)
        except WastebankError as exc:
            raise fail(exc) from None

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *_COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in _COMMANDS:
            return found
        module, attr, grouped = _COMMANDS[cmd_name]
        typer_app = (
            getattr(importlib.import_module(f"wastebank.cli.{module}"), attr) if module else sim_app
        )
        group = typer.main.get_group(typer_app)
        group.name = cmd_name
        command = group if grouped else group.commands[cmd_name]
        self.add_command(command, cmd_name)
        return command


app = typer.Typer(
    help="wastebank: bank sampah & waste-to-energy monitoring / pemantauan bank sampah",
    no_args_is_help=True,
    add_completion=False,
    cls=_Root,
)
sim_app = typer.Typer(
    help="perangkat simulasi / simulated devices (docs/simulators.md)", no_args_is_help=True
)
MAX_RATE_HZ = 1000.0  # frames a second: real indicators send 5-100
DAY_S = 86_400.0
LINK_HELP = (
    "symlink tetap ke pty, seperti /dev/ttyUSB0 / stable symlink to the pty, like /dev/ttyUSB0"
)
SEED_HELP = "benih acak / random seed"


def _refuse(option: str, message: str) -> NoReturn:
    """A bad simulator option: said in both languages, exit 2 (a usage error), no traceback."""
    typer.echo(f"error: {option}: {message}", err=True)
    raise typer.Exit(code=FAILED)


def _unknown(option: str, value: str, known: Iterable[str]) -> NoReturn:
    _refuse(
        option, f"{value!r} tidak dikenal / unknown; salah satu dari / one of: {', '.join(known)}"
    )


def _positive(option: str, value: float, most: float) -> None:
    if not 0 < value <= most:  # NaN too
        _refuse(option, f"harus > 0 dan <= {most:g} / must be > 0 and <= {most:g}, not {value:g}")


@app.callback()
def _private_files() -> None:
    """Every file and directory a command creates is its user's alone (umask 077): ledgers,
    outboxes, backups, statements, `.run/` and what the services write there hold members'
    money, names and passwords. Services started by `services up` inherit it (PostgreSQL,
    which runs as its own OS user, finds a home it may enter: services.postgres_service)."""
    private_files()


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def gateway(ctx: typer.Context) -> None:
    """Run a waste-bank gateway: serial scale -> outbox -> MQTT (options: `--help`)."""
    if sys.argv[1:] != [ctx.info_name, *ctx.args]:
        # Called from Python (a test's CliRunner), not as this process's command line: run
        # here; an exec would replace the caller.
        from gateway.__main__ import main

        raise typer.Exit(main(ctx.args))
    # This process becomes `python -m gateway` (same pid, same arguments, which that module
    # reads): Typer reads values through pydantic, and a gateway on a Pi cannot carry pydantic
    # and Typer for its whole life (docs/scaling.md). -P: the working directory stays off the
    # import path, as it was for the `wastebank` script.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-P", "-m", "gateway", *ctx.args])  # noqa: S606


@app.command()
def ingest(
    config: ConfigOption = None, verbose: bool = False, log_format: LogFormatOption = LogFormat.text
) -> None:
    """Run the ingester: MQTT -> InfluxDB + ledger. Ctrl-C or SIGTERM stops it (its stop line
    with its counts, exit 0)."""
    from ingest.main import IngestSettings, run
    from wastebank.config import load_settings

    setup_logging(verbose, json=log_format is LogFormat.json)
    settings = load_settings(IngestSettings, config)
    run_until_stopped(run(settings))  # a schema an admin must make first: a SetupError, exit 2


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
    from api.server import http_protocol
    from wastebank.config import load_settings

    setup_logging(verbose, json=log_format is LogFormat.json)
    settings = load_settings(ApiSettings, config)  # checked here, once, before any worker
    # httptools with a bound on a request's head (api/server.py); the workers get it too
    http = http_protocol(
        settings.http.max_head_bytes,
        settings.http.read_timeout_s,
        settings.http.max_connections,
        settings.http.max_connections_per_client,
    )
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
            http=http,
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
        http=http,
    )


_API_WORKER_LOG = "WASTEBANK_API_WORKER_LOG"


def api_worker_app() -> FastAPI:
    """The app of one `wastebank api --workers N` process (uvicorn's zero-argument factory):
    logging as the parent asked, settings from the environment the parent prepared."""
    from api.app import ApiSettings, create_app
    from wastebank.config import load_settings

    fmt, _, verbose = os.environ.get(_API_WORKER_LOG, "text:0").partition(":")
    setup_logging(verbose == "1", json=fmt == LogFormat.json.value)
    return create_app(load_settings(ApiSettings))


@sim_app.command("kiosk")
def sim_kiosk(
    link: Annotated[Path, typer.Option(help=LINK_HELP)],
    cards: Annotated[
        str, typer.Option(help="UID kartu anggota, dipisah koma / comma-separated member card UIDs")
    ],
    categories: Annotated[
        str, typer.Option(help="kode kategori, dipisah koma / comma-separated category codes")
    ],
    interval: Annotated[
        float, typer.Option(help="detik antar setoran / seconds between deposits")
    ] = 8.0,
    seed_value: Annotated[int | None, typer.Option("--seed", help=SEED_HELP)] = None,
) -> None:
    """Timbangan kiosk simulasi di pseudo-terminal / Play a kiosk scale over a real
    pseudo-terminal: the members take turns depositing a random category and weight."""
    from firmware_sim.kiosk import CAPACITY_G, ScriptedDeposit, run_random_kiosk

    _positive("--interval", interval, DAY_S)
    uids = [c.strip() for c in cards.split(",") if c.strip()]
    codes = [c.strip() for c in categories.split(",") if c.strip()]
    for option, given, rule in (
        (
            "--cards",
            uids,
            "UID kartu: 8-20 digit heksadesimal huruf besar / a card UID: 8-20 "
            "upper-case hex digits",
        ),
        ("--categories", codes, "kode kategori: a-z, 0-9, - / a category code: a-z, 0-9, -"),
    ):
        if not given:
            _refuse(option, "paling sedikit satu / at least one")
        for one in given:
            card, category = (one, "x") if option == "--cards" else ("0" * 8, one)
            try:
                ScriptedDeposit(card, category, CAPACITY_G)  # its own checks, as the run makes
            except ValueError:
                _refuse(option, f"{one!r}: {rule}")
    setup_logging()
    run_until_stopped(
        run_random_kiosk(
            link=link,
            cards=uids,
            categories=codes,
            interval_s=interval,
            seed=seed_value,
        )
    )


@sim_app.command("scale")
def sim_scale(
    link: Annotated[Path, typer.Option(help=LINK_HELP)],
    model: Annotated[
        str,
        typer.Option(
            help="id protokol / protocol id: yh_stx, a12e_chk, and_std, gs_nt, cas22, ... "
            "(docs/simulators.md)"
        ),
    ] = "a12e_chk",
    scenario: Annotated[
        str,
        typer.Option(
            help="steady, noisy (sampah + frame rusak / garbage + corruption), unplug, reboot, "
            "overload"
        ),
    ] = "steady",
    seed_value: Annotated[int | None, typer.Option("--seed", help=SEED_HELP)] = None,
    rate: Annotated[
        float,
        typer.Option(
            help=f"konversi A/D (frame) per detik / A/D conversions (frames) per second, "
            f"> 0, <= {MAX_RATE_HZ:g}"
        ),
    ] = 10.0,
    baud: Annotated[
        int | None,
        typer.Option(help="kecepatan jalur (bawaan: model) / line speed (default: the model's)"),
    ] = None,
    interval: Annotated[
        float, typer.Option(help="detik antar beban / seconds between loads")
    ] = 8.0,
) -> None:
    """Indikator timbangan simulasi, model apa pun yang didukung, di pseudo-terminal / Play a
    weighing indicator of any supported model over a real pseudo-terminal."""
    from firmware_sim.scales import MODELS, SCENARIOS, run_scale_scenario

    if model not in MODELS:
        _unknown("--model", model, MODELS)
    if scenario not in SCENARIOS:
        _unknown("--scenario", scenario, SCENARIOS)
    _positive("--rate", rate, MAX_RATE_HZ)
    _positive("--interval", interval, DAY_S)
    if baud is not None and not 300 <= baud <= 921_600:
        _refuse("--baud", f"harus 300..921600 / must be 300..921600, not {baud}")
    setup_logging()
    run_until_stopped(
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


@sim_app.command("tps")
def sim_tps(
    config: ConfigOption = None,
    tps: Annotated[str, typer.Option(help="kode TPS / TPS code")] = "tps-batu-merah",
    sensor: Annotated[str, typer.Option(help="id sensor / sensor id")] = "us-01",
    interval: Annotated[
        float,
        typer.Option(help="detik antar pembacaan (uplink) / seconds between readings (uplinks)"),
    ] = 5.0,
    kind: Annotated[
        str,
        typer.Option(
            help="mqtt (sensor pintar / smart sensor), jsn (JSN-SR04T mode 2, pty), maxbotix "
            "(R####<CR>, pty), em310 (EM310-UDL, uplink ChirpStack v4 / ChirpStack v4 uplinks)"
        ),
    ] = "mqtt",
    link: Annotated[Path | None, typer.Option(help=f"jsn/maxbotix: {LINK_HELP}")] = None,
    dev_eui: Annotated[
        str | None,
        typer.Option(help="em310: DevEUI (bawaan: dari --sensor / default: from --sensor)"),
    ] = None,
    seed_value: Annotated[int | None, typer.Option("--seed", help=SEED_HELP)] = None,
) -> None:
    """Sensor isi TPS simulasi: lewat MQTT, di pty serial, atau sebagai uplink LoRaWAN / Play a
    TPS fill sensor: over MQTT, on a serial pty, or as LoRaWAN uplinks."""
    from firmware_sim.tps import (
        TpsSimSettings,
        run_em310_sensor,
        run_serial_sensor,
        run_tps_sensor,
    )
    from wastebank.config import load_settings
    from wastebank.messages import CODE_PATTERN

    kinds = ("mqtt", "jsn", "maxbotix", "em310")
    if kind not in kinds:
        _unknown("--kind", kind, kinds)
    if kind in ("jsn", "maxbotix") and link is None:
        _refuse("--link", "wajib untuk jsn dan maxbotix / required for jsn and maxbotix")
    _positive("--interval", interval, DAY_S)
    for option, code in (("--tps", tps), ("--sensor", sensor)):
        if re.fullmatch(CODE_PATTERN, code) is None:
            _refuse(
                option,
                f"{code!r}: huruf kecil, angka dan - (1-63, bukan - di depan) / lower-case "
                "letters, digits and - (1-63, not - first)",
            )
    setup_logging()
    settings = load_settings(TpsSimSettings, config)
    if kind == "jsn" and link is not None:
        run_until_stopped(run_serial_sensor(settings, kind="jsn", link=link, seed=seed_value))
    elif kind == "maxbotix" and link is not None:
        run_until_stopped(run_serial_sensor(settings, kind="maxbotix", link=link, seed=seed_value))
    elif kind == "em310":
        run_until_stopped(
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
        run_until_stopped(
            run_tps_sensor(settings, tps_code=tps, sensor_id=sensor, interval_s=interval)
        )


# ---- what the command modules need of the processes ---------------------------------------------


class _Processes:
    """The processes' code the command modules use, imported here, when first used."""

    def ingest_settings(self, config: Path | None, **overrides: Any) -> IngestSettings:
        from ingest.main import IngestSettings
        from wastebank.config import load_settings

        return load_settings(IngestSettings, config, **overrides)

    def api_settings(self, config: Path | None) -> ApiSettings:
        from api.settings import ApiSettings
        from wastebank.config import load_settings

        return load_settings(ApiSettings, config)

    def site_grants(self, path: Path) -> SiteGrants:
        """From a gateway's site file: its bank and id, the TPS sensors it publishes fill
        readings for, the uplink topics it subscribes to (LoRaWAN network server, JSON sensors),
        its prefix."""
        import tomllib

        from gateway.settings import DEFAULT_GATEWAY_ID, SensorSettings
        from wastebank.config import settings_table
        from wastebank.structs import Invalid

        try:
            data = tomllib.loads(path.read_text())
            sensors = [settings_table(s, SensorSettings) for s in data.get("sensors", [])]
        except (OSError, tomllib.TOMLDecodeError, Invalid) as exc:
            raise typer.BadParameter(str(exc), param_hint="--site") from None
        bank = data.get("bank_code")
        if not isinstance(bank, str):
            raise typer.BadParameter("the site file has no bank_code", param_hint="--site")
        gateway = data.get("gateway_id", DEFAULT_GATEWAY_ID)
        prefix = data.get("mqtt", {}).get("topic_prefix", "")
        serves = [(s.tps_code, s.id) for s in sensors]
        reads = [s.topic() for s in sensors if s.over_mqtt]
        return bank, str(gateway), serves, reads, str(prefix)

    def payload_text(self, payload: bytes) -> str | None:
        from ingest.deadletter import payload_text

        return payload_text(payload)

    def hex_dump(self, payload: bytes) -> str:
        from ingest.deadletter import hex_dump

        return hex_dump(payload)

    def replay_dead_letters(
        self,
        settings: IngestSettingsView,
        ids: list[int] | None,
        progress: Callable[[int, int], None],
    ) -> tuple[ReplaySummaryView, str | None]:
        from ingest.deadletter import ReplayAborted, replay_dead_letters
        from ingest.main import IngestSettings

        assert isinstance(settings, IngestSettings)  # as ingest_settings made it
        try:
            return asyncio.run(replay_dead_letters(settings, ids, progress)), None
        except ReplayAborted as exc:
            return exc.summary, str(exc)


give_processes(_Processes())
