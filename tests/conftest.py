"""Shared test helpers and the fixtures for integration tests on the real services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest
import tomli_w
from sqlalchemy import Engine, make_url, text

from ingest.main import IngestSettings
from ingest.main import run as run_ingest
from ingest.metrics import MetricsSettings
from wastebank import devices, services
from wastebank.config import INFLUX_ROLES, InfluxSettings, MqttSettings, load_settings
from wastebank.influx import Influx, deposit_line, ensure_schema, grant
from wastebank.messages import DepositEvent
from wastebank.mqtt import client_id

WIT = timezone(timedelta(hours=9))  # the demo city, Ambon (Asia/Jayapura)
_AN_HOUR_AGO = datetime.now(WIT).replace(microsecond=0) - timedelta(hours=1)


def deposit_event(
    seq: int,
    *,
    net_g: int = 1250,
    card: str = "04A1B2C3D4",  # AMB-0001 at bs-batu-merah in the demo city
    category: str = "pet",
    bank: str = "bs-batu-merah",
    gateway: str = "gw-01",
    at: datetime | None = None,
) -> DepositEvent:
    """A valid deposit; by default measured an hour ago plus ``seq`` seconds (recent, so it is
    inside any retention policy whenever the suite runs)."""
    return DepositEvent(
        event_id=f"{gateway}-{seq}",
        gateway_id=gateway,
        seq=seq,
        bank_code=bank,
        scale_id="scale-01",
        card_uid=card,
        category_code=category,
        net_g=net_g,
        stable=True,
        protocol="gs_nt",
        measured_at=at or _AN_HOUR_AGO + timedelta(seconds=seq),
        raw_frames=["ST,GS,+0001.25kg"],
    )


def event_line(
    ev: DepositEvent, *, kecamatan: str, amount_idr: int, clock_ahead_s: int | None = None
) -> str:
    """The point the ingester writes for ``ev`` once the ledger applied it as sent."""
    return deposit_line(
        event_id=ev.event_id,
        bank=ev.bank_code,
        kecamatan=kecamatan,
        category=ev.category_code,
        net_g=ev.net_g,
        amount_idr=amount_idr,
        gateway=ev.gateway_id,
        measured_at=ev.measured_at,
        clock_ahead_s=clock_ahead_s,
    )


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05
) -> None:
    """Poll `predicate` until it is true; fail the test if `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate!r}")
        time.sleep(interval)  # poll interval, not a fixed wait for an outcome


# ---- integration fixtures: the real Mosquitto and InfluxDB started by `wastebank services up` ----


async def eventually(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0, interval: float = 0.05
) -> None:
    """Await until the async ``predicate`` holds; fail if ``timeout`` passes first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)  # poll interval, not a fixed wait for an outcome


@pytest.fixture(autouse=True)
def root_logging_restored() -> Iterator[None]:
    """Each test ends with the root logger it began with. A command run through CliRunner calls
    setup_logging, which leaves a handler on the runner's stream: closed once the command ends.
    The next test's log line then fails, and logging writes the failure to sys.stderr, which a
    CLI running in a thread at that moment has swapped for its own stream and closes under the
    writer: the ingester died of it once (ValueError, I/O operation on closed file)."""
    root = logging.getLogger()
    before, level = root.handlers[:], root.level
    yield
    # Only setup_logging's (plain StreamHandlers): pytest adds and removes its own per phase.
    for handler in root.handlers[:]:
        if type(handler) is logging.StreamHandler and handler not in before:
            root.removeHandler(handler)
    root.setLevel(level)


class HeldBody:
    """A request body whose first bytes come and the rest never (until ``release`` is set):
    its request stays in progress. ``started`` counts the bodies the app began to read."""

    def __init__(self, release: asyncio.Event, first: bytes, tally: list[int]) -> None:
        self.release, self.first, self.tally = release, first, tally

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.tally[0] += 1
        yield self.first
        await self.release.wait()
        yield b"}" if self.first.startswith(b"{") else b"x"


async def held_requests(
    client: Any, path: str, n: int, *, json_body: bool = False
) -> tuple[list[asyncio.Task[Any]], asyncio.Event]:
    """``n`` POSTs to ``path`` on ``client`` (an httpx.AsyncClient) whose bodies begin and
    then wait; returned once the app has begun reading every one, with the event that lets
    their bodies end (never set: they end by the server's read timeout)."""
    release, tally = asyncio.Event(), [0]
    content_type = "application/json" if json_body else "application/x-www-form-urlencoded"
    first = b"{" if json_body else b"username="
    tasks = [
        asyncio.create_task(
            client.post(
                path,
                content=HeldBody(release, first, tally),
                headers={"Content-Type": content_type},
            )
        )
        for _ in range(n)
    ]

    async def all_in() -> bool:
        return tally[0] == n

    await eventually(all_in)
    return tasks, release


@pytest.fixture(scope="session")
def running_services() -> services.ServicesSettings:
    """Start (or find running) the project's Mosquitto and InfluxDB; never skip."""
    settings = load_settings(services.ServicesSettings)
    services.up(settings)
    return settings


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex[:10]


def broker_settings(
    broker: services.ServicesSettings, *, user: str = "test", topic_prefix: str = ""
) -> MqttSettings:
    """How a test connects to ``broker`` (ours or a private one): as ``user``, a process
    identity `services up` gave a password (the test's own, "test", by default)."""
    return MqttSettings(
        port=broker.mqtt_port,
        topic_prefix=topic_prefix,
        username=user,
        credentials_dir=services.mqtt_secrets_dir(broker.run_dir),
    ).as_user(None)


@pytest.fixture
def mqtt_settings(running_services: services.ServicesSettings, test_id: str) -> MqttSettings:
    return broker_settings(running_services, topic_prefix=f"test-{test_id}/")


@pytest.fixture
async def influx_settings(
    running_services: services.ServicesSettings, test_id: str
) -> AsyncIterator[InfluxSettings]:
    """The test's own database, ``test_{id}``, on the InfluxDB `services up` started, made as
    `up` makes the city's: retention policies, continuous queries and each role's grant, so a
    child process logs in as its own user (ingest, api, tps: :func:`settings_env`). The test
    itself is the admin (its password from ``.run/secrets/influxdb/admin``)."""
    settings = services.influx_admin_settings(running_services, f"test_{test_id}")
    influx = Influx(settings)
    try:
        await ensure_schema(influx, settings)
        await grant(influx, settings.database, INFLUX_ROLES)
    finally:
        await influx.aclose()
    yield settings
    influx = Influx(settings)
    try:
        await influx.drop_database()
    finally:
        await influx.aclose()


def influx_database(running: services.ServicesSettings, name: str) -> InfluxSettings:
    """Database ``name`` on ``running``'s InfluxDB, made as `services up` makes the city's
    (schema, each role's grant), and the admin's login to it: for sync fixtures and modules
    (``influx_settings`` is async); the caller drops it."""
    services.prepare_influxdb(running, [name])
    return services.influx_admin_settings(running, name)


def influx_as(influx: InfluxSettings, user: str) -> InfluxSettings:
    """``influx`` (a test's database) logged in as another InfluxDB user (ingest, api, tps),
    with the password `services up` gave it."""
    return msgspec.structs.replace(influx, username=None, password=None).as_user(user)


# ---- the ledger, on SQLite and on PostgreSQL -------------------------------------------------
#
# A test that uses a ledger (``ledger_url``, ``ledger_factory``, or the ``ingester`` fixture) runs
# once per backend: ``test_x[sqlite]`` and ``test_x[postgresql]``; ``--ledger sqlite`` (or
# ``postgresql``) runs one only. PostgreSQL is the project's own (`services.up(only=["postgres"])`,
# started when missing) or the server named by WASTEBANK_TEST_POSTGRESQL_URL (a role that may
# create databases). Each test gets a database of its own, copied from a template this session
# made once (migrated, and seeded with the demo city), and dropped after the test; every session
# names its databases with a random prefix, so several suites can share one server. On the
# project's own server the suite is the operator: it makes and drops databases as the superuser
# and gives each to the ledger's role, ``wastebank``, which the test and its processes then use
# (no superuser, no CREATEDB: as in production).

LEDGER_BACKENDS = ("sqlite", "postgresql")

# About the gateway and the broker, where the ledger is only where deposits land, and 20-80 s
# each: on one backend only (SQLite, unless --ledger postgresql).
ONE_BACKEND_MODULES = frozenset(
    {
        "test_gateway_chaos",
        "test_gateway_site",
        "test_identity_e2e",
        "test_api_head_limit",
        "test_broker_backlog",
        "test_end_to_end",
        "test_ingest_faults",
        "test_pages_attendant",
        "test_pages_attendant_layout",
    }
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ledger",
        choices=[*LEDGER_BACKENDS, "both"],
        default="both",
        help="the database(s) ledger tests run on (default: both)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ledger_backend" not in metafunc.fixturenames:
        return
    chosen = metafunc.config.getoption("--ledger")
    backends = list(LEDGER_BACKENDS) if chosen == "both" else [chosen]
    if metafunc.module.__name__.rpartition(".")[2] in ONE_BACKEND_MODULES:
        backends = backends[:1]
    metafunc.parametrize("ledger_backend", backends, scope="module")


@pytest.fixture(scope="module")
def ledger_backend() -> str:
    """``sqlite`` or ``postgresql``: parametrized by ``pytest_generate_tests``."""
    raise AssertionError("parametrized in pytest_generate_tests")


class LedgerFactory:
    """New ledgers on one backend, each at the migrations' head (``seeded``: with the demo city).

    SQLite: a copy of a template file, in a directory of its own. PostgreSQL: ``CREATE DATABASE
    ... TEMPLATE`` (a few tens of ms), dropped by :meth:`drop` (``WITH (FORCE)``: connections a
    test left open do not keep it).
    """

    def __init__(
        self,
        backend: str,
        tmp: pytest.TempPathFactory,
        admin_url: str | None,
        owner_url: str | None = None,
    ) -> None:
        """``admin_url``: a role that creates and drops databases; ``owner_url`` (default: the
        same): the role that owns them and that ledger URLs name."""
        self.backend = backend
        self.tmp = tmp
        self.admin_url = admin_url
        self.owner_url = owner_url or admin_url
        self.prefix = f"wbt_{uuid.uuid4().hex[:8]}"
        self.count = 0
        self.templates: dict[bool, str] = {}

    def _admin(self, sql: str) -> None:
        import psycopg

        from wastebank.ledger import postgresql_conninfo

        assert self.admin_url is not None
        conninfo, password = postgresql_conninfo(self.admin_url)
        with psycopg.connect(conninfo, password=password, autocommit=True) as conn:
            conn.execute(sql.encode())

    def _create(self, name: str, template: str | None = None) -> str:
        """A new PostgreSQL database ``name``, owned by the owner's role; its URL."""
        assert self.owner_url is not None
        owner = make_url(self.owner_url).username
        clause = f' TEMPLATE "{template}"' if template else ""
        self._admin(f'CREATE DATABASE "{name}" OWNER "{owner}"{clause}')
        return self._url(name)

    def blank(self) -> str:
        """A PostgreSQL database with nothing in it, not even the schema (dropped by
        :meth:`drop`); its URL."""
        return self._create(f"{self.prefix}_blank_{uuid.uuid4().hex[:8]}")

    def _template(self, seeded: bool) -> str:
        """A migrated (and ``seeded``) SQLite file or PostgreSQL database, made once."""
        if seeded not in self.templates:
            from wastebank import ledger
            from wastebank.seed import load_city, seed

            if self.backend == "sqlite":
                path = self.tmp.mktemp("ledger-template") / "ledger.db"
                url = f"sqlite:///{path}"
                name = str(path)
            else:
                name = f"{self.prefix}_{'seeded' if seeded else 'empty'}"
                url = self._create(name)
            engine = ledger.make_engine(url)
            try:
                if seeded:
                    seed(engine, load_city())
            finally:
                engine.dispose()
            self.templates[seeded] = name
        return self.templates[seeded]

    def _url(self, database: str) -> str:
        assert self.owner_url is not None
        return make_url(self.owner_url).set(database=database).render_as_string(False)

    def new(self, *, seeded: bool = True) -> str:
        """The URL of a new ledger of its own."""
        template = self._template(seeded)
        self.count += 1
        if self.backend == "sqlite":
            path = self.tmp.mktemp("ledger") / "ledger.db"
            shutil.copyfile(template, path)
            return f"sqlite:///{path}"
        return self._create(f"{self.prefix}_{self.count}", template)

    def drop(self, url: str) -> None:
        if self.backend == "postgresql":
            self._drop(make_url(url).database or "")

    def _drop(self, name: str) -> None:
        import psycopg

        deadline = time.monotonic() + 10
        while True:
            try:
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except psycopg.errors.InsufficientPrivilege:
                # An autovacuum worker is in it, which only a superuser may end (an admin of
                # WASTEBANK_TEST_POSTGRESQL_URL may be none); it is done in a moment.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        if self.backend == "postgresql":
            for name in self.templates.values():
                self._drop(name)


@pytest.fixture(scope="session")
def postgresql_urls() -> tuple[str, str]:
    """Two PostgreSQL URLs, neither with a password in it: the role that creates and drops the
    tests' databases, and the role that owns them and that the tests' ledgers log in as.

    The project's own server (started when it is not running): its superuser and the ledger's
    role, ``wastebank``, their passwords from .run/secrets/postgres/ (found by
    wastebank.ledger's engines from the URL's host and port). WASTEBANK_TEST_POSTGRESQL_URL:
    one role that may create databases, for both."""
    if url := os.environ.get("WASTEBANK_TEST_POSTGRESQL_URL"):
        return url, url
    settings = load_settings(services.ServicesSettings)
    services.up(settings, only=["postgres"])
    admin = services.postgresql_url(settings, "postgres", role=services.POSTGRESQL_SUPERUSER)
    return admin, services.postgresql_url(settings)


@pytest.fixture(scope="session")
def ledger_factories() -> Iterator[dict[str, LedgerFactory]]:
    """A :class:`LedgerFactory` per backend, each made when first needed (so PostgreSQL is
    started only for a session that runs a test on it)."""
    factories: dict[str, LedgerFactory] = {}
    yield factories
    for made in factories.values():
        made.close()


@pytest.fixture(scope="module")
def ledger_factory(
    request: pytest.FixtureRequest,
    ledger_backend: str,
    ledger_factories: dict[str, LedgerFactory],
    tmp_path_factory: pytest.TempPathFactory,
) -> LedgerFactory:
    if ledger_backend not in ledger_factories:
        admin = owner = None
        if ledger_backend == "postgresql":
            admin, owner = request.getfixturevalue("postgresql_urls")
        ledger_factories[ledger_backend] = LedgerFactory(
            ledger_backend, tmp_path_factory, admin, owner
        )
    return ledger_factories[ledger_backend]


@pytest.fixture
def ledger_url(ledger_factory: LedgerFactory) -> Iterator[str]:
    """A ledger of the test's own at the migrations' head, seeded with the demo city."""
    url = ledger_factory.new()
    yield url
    ledger_factory.drop(url)


class Processes:
    """Child `wastebank` processes, each with its own env and log file; all stopped at teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "wastebank.cli", *args],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        proc.send_signal(sig)
        proc.wait(timeout=15)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


def settings_env(
    mqtt: MqttSettings, influx: InfluxSettings | None = None, ledger: str | None = None
) -> dict[str, str]:
    """WASTEBANK_* variables that point a child process at this test's broker prefix, DB, ledger.

    Not the test's broker identity: each child logs in as its own (ingest, api, tps, sim; a
    gateway as its gateway id, see :func:`gateway_credentials`), from ``mqtt.credentials_dir``;
    and to InfluxDB as its own user (ingest, api, tps), from ``influx.credentials_dir``.
    """
    env = {
        "WASTEBANK_MQTT__HOST": mqtt.host,
        "WASTEBANK_MQTT__PORT": str(mqtt.port),
        "WASTEBANK_MQTT__TOPIC_PREFIX": mqtt.topic_prefix,
    }
    if mqtt.credentials_dir is not None:
        env["WASTEBANK_MQTT__CREDENTIALS_DIR"] = str(mqtt.credentials_dir)
    if influx is not None:  # not the test's login: each child is its own InfluxDB user
        env["WASTEBANK_INFLUX__URL"] = influx.url
        env["WASTEBANK_INFLUX__DATABASE"] = influx.database
        if influx.credentials_dir is not None:
            env["WASTEBANK_INFLUX__CREDENTIALS_DIR"] = str(influx.credentials_dir)
    if ledger is not None:
        env["WASTEBANK_LEDGER_URL"] = ledger
    return env


def write_site(
    path: Path,
    *,
    gateway_id: str,
    link: Path,
    outbox: Path,
    bank: str = "bs-batu-merah",
    flow: str = "kiosk",
    protocol: str = "gs_nt",
    http_port: int = 0,
    credentials: MqttSettings | None = None,
    **extra: object,
) -> Path:
    """A gateway site file with one scale on ``link``, as a waste bank would write it; with
    ``credentials`` (a broker's settings), the gateway's own login there too
    (:func:`gateway_credentials`)."""
    if credentials is not None:
        sensors = cast(list[dict[str, str]], extra.get("sensors", []))
        serves = tuple((s["tps_code"], s["id"]) for s in sensors)
        gateway_credentials(credentials, gateway_id, bank, serves)
    site = {
        "gateway_id": gateway_id,
        "bank_code": bank,
        "http_port": http_port,
        "outbox": {"path": str(outbox)},
        "scales": [{"id": "scale-01", "port": str(link), "flow": flow, "protocol": protocol}],
        **extra,
    }
    path.write_text(tomli_w.dumps(site))
    return path


def mqtt_login(mqtt: MqttSettings, local: str | None = None) -> dict[str, Any]:
    """The username, password and client id keyword arguments of a raw aiomqtt client that
    logs in as ``mqtt`` says (``local`` names the connection: see wastebank.mqtt.client_id)."""
    return {
        "username": mqtt.username,
        "password": mqtt.password.get_secret_value() if mqtt.password else None,
        "identifier": client_id(mqtt.username, local),
    }


def gateway_credentials(
    mqtt: MqttSettings,
    gateway_id: str,
    bank: str = "bs-batu-merah",
    serves: tuple[tuple[str, str], ...] = (),
    reads: tuple[str, ...] = (),
) -> None:
    """Register ``gateway_id`` as a device of the broker whose passwords are in
    ``mqtt.credentials_dir`` (as `wastebank device add` does, its topics under the test's
    prefix) and leave its password where the gateway process looks for it."""
    assert mqtt.credentials_dir is not None
    run_dir = mqtt.credentials_dir.parents[1]
    registry = devices.Registry(services.broker_auth_files(run_dir))
    device = devices.Device(
        "gateway", bank, gateway_id, topic_prefix=mqtt.topic_prefix, serves=serves, reads=reads
    )
    known = registry.get(gateway_id)
    secret = mqtt.credentials_dir / gateway_id
    if known is not None and secret.is_file():
        same = (known.site, known.topic_prefix, known.serves, known.reads)
        if same == (device.site, device.topic_prefix, device.serves, device.reads):
            return  # this test's gateway again (a second process, a restart): same password
    if known is not None:  # an earlier test's gateway of that id
        registry.remove(gateway_id)
    issued = registry.add(device)
    devices.write_secret(mqtt.credentials_dir / gateway_id, issued.password + "\n")
    services.reload_mosquitto(load_settings(services.ServicesSettings, run_dir=run_dir))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class PrivateMosquitto:
    """A Mosquitto of the test's own (tmp run_dir, free port) that it may stop and restart.

    Started with the project's own `services.up(only=...)`, so config, pid file and persistence
    are the real ones; `stop` is `services.down` (SIGTERM: Mosquitto saves its persistence file).
    """

    def __init__(self, run_dir: Path) -> None:
        # influx_port only has to be valid and differ from the shared one: no InfluxDB starts here.
        self.settings = load_settings(
            services.ServicesSettings,
            run_dir=run_dir,
            mqtt_port=free_port(),
            influx_port=min(free_port(), 65000),
        )
        self.port = self.settings.mqtt_port

    def start(self) -> None:
        services.up(self.settings, only=["mosquitto"])

    def stop(self) -> None:
        services.down(self.settings)

    def running(self) -> bool:
        return all(s.healthy for s in services.status(self.settings) if s.name == "mosquitto")

    def mqtt(self, topic_prefix: str = "", user: str = "test") -> MqttSettings:
        return broker_settings(self.settings, user=user, topic_prefix=topic_prefix)


@pytest.fixture
def private_mosquitto(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    broker = PrivateMosquitto(tmp_path / "run")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
async def ingester(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str, test_id: str
) -> AsyncIterator[IngestSettings]:
    """An ingester running in the test's event loop, already subscribed; its /metrics served."""
    async with running_ingester(
        mqtt_settings, influx_settings, ledger_url, client_id=f"ingest-{test_id}"
    ) as settings:
        yield settings


@contextlib.asynccontextmanager
async def running_ingester(
    mqtt: MqttSettings, influx: InfluxSettings, ledger_url: str, *, client_id: str
) -> AsyncIterator[IngestSettings]:
    """Run an ingester in this event loop until the block ends; entered once it has subscribed."""
    settings = load_settings(
        IngestSettings,
        mqtt=mqtt,
        influx=influx,
        ledger_url=ledger_url,
        client_id=client_id,
        batch_max_age_s=0.05,
        metrics=MetricsSettings(port=free_port()),
    )
    ready = asyncio.Event()
    task = asyncio.create_task(run_ingest(settings, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 20)
        yield settings
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def undo_0009(engine: Engine) -> None:
    """Take a ledger at the head back to 0008's schema (tests that start from an older release).
    On SQLite the batch copies `deposit`, which other tables reference: foreign keys are off
    for it, as they are for the migrations themselves."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    with engine.connect() as conn:
        raw = conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")  # before BEGIN, as wastebank.migrations does
        with conn.begin():
            op = Operations(MigrationContext.configure(conn))
            conn.execute(text("DROP TABLE device_report"))  # 0015's, to run again
            conn.execute(text("DROP TABLE sms_inbound"))  # 0013's, to run again
            conn.execute(text("DROP TABLE sms_message"))
            with op.batch_alter_table("member") as batch:
                batch.drop_column("sms_opt_in")
            conn.execute(text("DROP TABLE day_close"))  # 0012's, to run again
            with op.batch_alter_table("stock_movement") as batch:
                batch.drop_constraint("stock_movement_author_idempotency_key_key", type_="unique")
                batch.drop_column("idempotency_key")
                batch.drop_column("payment_method")
            with op.batch_alter_table("withdrawal") as batch:  # 0011's, to run again
                batch.drop_column("dual_control")
            conn.execute(text("DROP TABLE revoked_token"))  # 0010's, to run again
            conn.execute(text("DROP TABLE system_alert"))
            conn.execute(text("DROP TABLE reconciliation_run"))
            with op.batch_alter_table("dead_letter") as batch:
                batch.drop_index("ix_dead_letter_event_id")
                batch.drop_index("ix_dead_letter_payload_sha256")  # 0016's, to run again
                for column in ("reason", "event_id", "resolved_at", "resolved_by", "resolution"):
                    batch.drop_column(column)
                for column in ("payload_size", "payload_sha256", "times_received"):
                    batch.drop_column(column)
                batch.drop_column("last_received_at")
            with op.batch_alter_table("deposit") as batch:
                batch.drop_column("clock_synced")  # 0014's, to run again
                batch.drop_constraint("deposit_author_idempotency_key_key", type_="unique")
                batch.drop_column("idempotency_key")
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=ON")
