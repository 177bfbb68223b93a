"""`wastebank.services`: the real Mosquitto and InfluxDB (`make test` starts them first)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import socket
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from sqlalchemy import make_url, text

from tests.conftest import broker_settings, mqtt_login, wait_until
from wastebank import ledger, services
from wastebank.config import (
    BUILTIN_PORTS,
    load_settings,
    postgresql_secrets_dir,
    read_secret,
    recorded_ports,
)
from wastebank.services import ServicesSettings


def _gone(pid: int) -> bool:
    """No such process, or only a zombie left for its parent to reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port(offset_also_free: int = 0) -> int:
    """A port the kernel just handed out (bind to 0), with `port + offset` free as well."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port + offset_also_free <= 65535 and _bindable(port + offset_also_free):
            return port
    raise AssertionError("no free port pair found")


def _pids(settings: ServicesSettings) -> dict[str, int | None]:
    return {s.name: s.pid for s in services.status(settings)}


@pytest.fixture(scope="module")
def main_settings() -> ServicesSettings:
    """The instance `make services` started (default run_dir and ports)."""
    return load_settings(ServicesSettings)


# ---- the shared instance ----------------------------------------------------------------------


@pytest.mark.integration
def test_status_reports_both_healthy(main_settings: ServicesSettings) -> None:
    states = services.status(main_settings)

    # and postgres, once `make test` (or a PostgreSQL ledger test) has started it
    assert [s.name for s in states][:2] == ["mosquitto", "influxd"]
    for state in states:
        assert state.healthy, f"{state.describe()} — run `make services` first"
        assert str(state.pid) in state.describe()


@pytest.mark.integration
def test_up_again_keeps_the_same_processes(main_settings: ServicesSettings) -> None:
    before = _pids(main_settings)

    services.up(main_settings)

    assert _pids(main_settings) == before
    assert all(pid is not None for pid in before.values())


@pytest.mark.integration
def test_influxdb_answers_ping_as_1x(main_settings: ServicesSettings) -> None:
    resp = httpx.get(f"http://127.0.0.1:{main_settings.influx_port}/ping", timeout=5)

    assert resp.status_code == 204
    assert resp.headers["X-Influxdb-Version"].startswith("1.")


@pytest.mark.integration
async def test_mosquitto_qos1_round_trip(main_settings: ServicesSettings) -> None:
    topic = f"test/services/{uuid.uuid4().hex}"
    async with aiomqtt.Client(
        "127.0.0.1", main_settings.mqtt_port, **mqtt_login(broker_settings(main_settings))
    ) as client:
        await client.subscribe(topic, qos=1)
        await client.publish(topic, b"halo dari Ambon", qos=1)
        async with asyncio.timeout(10):
            message = await anext(aiter(client.messages))

    assert message.topic.matches(topic)
    assert message.payload == b"halo dari Ambon"
    assert message.qos == 1


# ---- a second, private instance -----------------------------------------------------------------


@pytest.mark.integration
def test_second_instance_up_status_down(tmp_path: Path, main_settings: ServicesSettings) -> None:
    settings = load_settings(
        ServicesSettings,
        run_dir=tmp_path / "run",
        mqtt_port=_free_port(),
        influx_port=_free_port(offset_also_free=services.INFLUX_RPC_OFFSET),
    )
    main_pids = _pids(main_settings)
    assert not any(s.running for s in services.status(settings))

    services.up(settings)
    try:
        states = services.status(settings)
        assert all(s.healthy for s in states), [s.describe() for s in states]
        pids = {s.name: s.pid for s in states}
        assert set(pids.values()).isdisjoint(main_pids.values())
        services.up(settings)
        assert _pids(settings) == pids
        conf = (tmp_path / "run/influxdb/influxdb.conf").read_text()
        assert f"127.0.0.1:{settings.influx_port + services.INFLUX_RPC_OFFSET}" in conf
    finally:
        services.down(settings)

    for pid in pids.values():
        assert pid is not None
        wait_until(functools.partial(_gone, pid), timeout=15)
    assert not any(svc.pid_file.exists() for svc in services._services(settings))
    assert not any(s.running or s.answering for s in services.status(settings))
    assert _pids(main_settings) == main_pids  # the shared instance was not touched
    services.down(settings)  # nothing running: still fine


# ---- no daemons needed ------------------------------------------------------------------------


def test_down_never_signals_a_process_it_did_not_start(tmp_path: Path) -> None:
    settings = load_settings(ServicesSettings, run_dir=tmp_path)
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        for sub, pid_file in (("mosquitto", "mosquitto.pid"), ("influxdb", "influxd.pid")):
            (tmp_path / sub).mkdir()
            (tmp_path / sub / pid_file).write_text(f"{stranger.pid}\n")

        assert not any(s.running for s in services.status(settings))
        services.down(settings)

        assert stranger.poll() is None
        assert not (tmp_path / "mosquitto/mosquitto.pid").exists()
    finally:
        assert stranger.stdin is not None
        stranger.stdin.close()
        stranger.wait(timeout=10)


def test_a_new_client_id_plugin_makes_the_brokers_config_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mosquitto loads its plugin once, at start: a release with a changed plugin must restart
    the broker at `up` (a stale config does), not leave the old library running."""
    settings = load_settings(ServicesSettings, run_dir=tmp_path, mqtt_port=21883, influx_port=28086)
    mosquitto, _ = services._services(settings)
    mosquitto.conf.parent.mkdir(parents=True)
    mosquitto.conf.write_text(services.mosquitto_conf(mosquitto, settings))
    assert not services._stale_config(mosquitto, settings)
    changed = tmp_path / "wastebank_clientid.c"
    changed.write_bytes(services.CLIENTID_PLUGIN_SOURCE.read_bytes() + b"\n/* next release */\n")
    monkeypatch.setattr(services.mosquitto, "CLIENTID_PLUGIN_SOURCE", changed)
    assert services._stale_config(mosquitto, settings)


def test_configs_use_our_ports_and_dirs(tmp_path: Path) -> None:
    settings = load_settings(ServicesSettings, run_dir=tmp_path, mqtt_port=21883, influx_port=28086)
    mosquitto, influxd = services._services(settings)

    mconf = services.mosquitto_conf(mosquitto, settings)
    assert "listener 21883 127.0.0.1\n" in mconf
    assert f"persistence_location {tmp_path}/mosquitto/data/\n" in mconf
    # A persistent session keeps its backlog: never expired, and queue limits far above
    # Mosquitto's default of 1000 (which silently drops the rest), but bounded; Nagle off.
    assert "\npersistent_client_expiration" not in mconf
    lines = [line.partition(" ") for line in mconf.splitlines() if not line.startswith("#")]
    keys = {key: value for key, _, value in lines}
    assert int(keys["max_queued_messages"]) >= 1_000_000
    assert int(keys["max_queued_bytes"]) >= 256 << 20
    assert int(keys["max_queued_bytes"]) < 2**31  # parsed as a C int by some releases
    assert int(keys["max_inflight_messages"]) >= 5_000
    assert keys["set_tcp_nodelay"] == "true"

    iconf = tomllib.loads(services.influxdb_conf(influxd, settings))
    assert iconf["bind-address"] == "127.0.0.1:28088"
    assert iconf["http"]["bind-address"] == "127.0.0.1:28086"
    assert iconf["http"]["auth-enabled"] is True  # users: tests/test_influx_auth.py
    assert iconf["data"]["wal-dir"] == os.fspath(tmp_path / "influxdb/wal")
    assert iconf["monitor"]["store-enabled"] is False


@pytest.mark.integration
def test_a_second_checkout_chooses_ports_of_its_own_and_never_shares_a_daemon(
    running_services: services.ServicesSettings, tmp_path: Path
) -> None:
    squatters = []  # every built-in port held, whether by the main checkout or by us
    for port in BUILTIN_PORTS.values():
        sock = socket.socket()
        with contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            sock.listen()
        squatters.append(sock)
    try:
        ports: dict[str, Any] = {f: BUILTIN_PORTS[n] for n, f in FIELDS}  # as **overrides
        other = load_settings(
            services.ServicesSettings, run_dir=tmp_path / "other-checkout", **ports
        )
        chosen = services.claim_ports(other)
        assert all(chosen[n] != BUILTIN_PORTS[n] for n in BUILTIN_PORTS)
        assert recorded_ports(other.run_dir / "ports.toml") == chosen
        assert [getattr(other, f) for _, f in FIELDS] == [chosen[n] for n, _ in FIELDS]
        services.up(other, only=["mosquitto"])
        try:
            (state,) = [s for s in services.status(other) if s.name == "mosquitto"]
            assert state.pid is not None
            assert state.healthy
            assert state.port == chosen["mqtt"]
        finally:
            services.down(other)
    finally:
        for sock in squatters:
            sock.close()
    assert all(state.healthy for state in services.status(running_services))


FIELDS = list(services.PORT_FIELDS.items())


def test_a_port_held_by_something_else_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = load_settings(
            services.ServicesSettings,
            run_dir=tmp_path,
            mqtt_port=port,
            influx_port=min(port + 1, 65000),
            start_timeout_s=5,
        )
        with pytest.raises(services.ServiceError, match="already in use"):
            services.up(settings, only=["mosquitto"])


@pytest.mark.integration
def test_a_private_postgresql_up_status_down(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    settings = load_settings(
        ServicesSettings,
        run_dir=run_dir,
        mqtt_port=_free_port(),
        influx_port=_free_port(offset_also_free=services.INFLUX_RPC_OFFSET),
        postgresql_port=_free_port(),
    )
    assert [s.name for s in services.status(settings)] == ["mosquitto", "influxd"]
    pdir = services.postgres_service(settings).dir
    if os.geteuid() == 0:  # pytest's tmp dirs are 0700: the postgres user cannot enter them
        assert pdir.parent == Path("~postgres/wastebank").expanduser()
    else:
        assert pdir == run_dir / "postgresql"
    umask = os.umask(0o077)  # the CLI's: what root makes is closed to the postgres user
    try:
        services.up(settings, only=["postgres"])
        os.umask(umask)
        (state,) = [s for s in services.status(settings) if s.name == "postgres"]
        assert state.healthy, state.describe()
        conf = (pdir / "postgresql.conf").read_text()
        assert f"port = {settings.postgresql_port}\n" in conf
        assert "listen_addresses = '127.0.0.1'\n" in conf
        services.up(settings, only=["postgres"])  # running: kept, role and database kept
        assert _pids(settings)["postgres"] == state.pid
        # The wastebank role, with its password from up's file (a server of another run dir
        # than .run: the ledger would not look there; tests/test_postgres_auth.py)
        password = read_secret(postgresql_secrets_dir(run_dir) / services.LEDGER_ROLE)
        url = make_url(services.postgresql_url(settings)).set(password=password)
        engine = ledger.make_engine(url.render_as_string(False))
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT current_user")) == "wastebank"
        engine.dispose()
    finally:
        os.umask(umask)
        services.down(settings)
        shutil.rmtree(pdir, ignore_errors=True)
    assert state.pid is not None
    wait_until(lambda: _gone(state.pid or 0), timeout=15)
    assert [s.name for s in services.status(settings)] == ["mosquitto", "influxd"]
