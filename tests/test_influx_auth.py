"""InfluxDB with auth on (issue 13 part 3): the InfluxDB `services up` starts refuses anonymous
and wrong logins; each process is its own user (ingest writes, api and tps read) with a
password `up` generated (.run/secrets/influxdb, 0600); an older data dir with auth off is
migrated; an ingester without admin rights names the schema it lacks."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import msgspec
import pytest
from asgi_lifespan import LifespanManager

from api.app import create_app
from ingest.main import IngestSettings
from tests.auth_helpers import PASSWORD, add_users, api_settings, login
from tests.conftest import (
    Processes,
    deposit_event,
    eventually,
    free_port,
    influx_as,
    settings_env,
    wait_until,
)
from tests.test_ingest import influx_sum, ledger_counts, publish
from wastebank import services
from wastebank.config import (
    INFLUX_ADMIN,
    INFLUX_ROLES,
    InfluxSettings,
    MqttSettings,
    SecretStr,
    load_settings,
    read_secret,
    settings_builtins,
)
from wastebank.influx import (
    DOWNSAMPLES,
    Influx,
    InfluxError,
    InfluxSchemaError,
    V1Writer,
    auth_headers,
    ensure_schema,
    grant,
    ident,
)
from wastebank.messages import Topics
from wastebank.structs import encode_json

WIT = ZoneInfo("Asia/Jayapura")


# ---- settings (no server) -----------------------------------------------------------------------


def _secret(directory: Path, user: str, password: str, mode: int = 0o600) -> Path:
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / user
    path.write_text(password + "\n")
    path.chmod(mode)
    return path


def test_each_process_is_its_own_influx_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "influxdb"
    for user in ("ingest", "api", "tps"):
        _secret(secrets, user, f"pw-of-{user}")
    monkeypatch.setenv("WASTEBANK_INFLUX__CREDENTIALS_DIR", str(secrets))

    from wastebank.tps import TpsWatchSettings

    made = {
        "ingest": load_settings(IngestSettings),
        "api": api_settings(),
        "tps": load_settings(TpsWatchSettings),
    }
    for user, settings in made.items():
        influx = settings.influx
        assert influx.username == user
        assert influx.password is not None
        assert influx.password.get_secret_value() == f"pw-of-{user}"
        # never in a repr or a settings dump
        assert f"pw-of-{user}" not in repr(settings)
        assert f"pw-of-{user}" not in str(settings_builtins(settings))
    assert set(INFLUX_ROLES) == {"ingest", "api", "tps"}


def test_given_login_token_or_nothing(tmp_path: Path) -> None:
    secrets = tmp_path / "influxdb"
    _secret(secrets, "ingest", "local")
    base = InfluxSettings(credentials_dir=secrets)

    named = msgspec.structs.replace(base, username="ops").as_user("ingest")
    assert (named.username, named.password) == ("ops", None)  # no local file for "ops"
    from_file = InfluxSettings(
        username="ops", password_file=_secret(tmp_path / "other", "ops", "from-file")
    ).as_user("ingest")
    assert from_file.password is not None
    assert from_file.password.get_secret_value() == "from-file"
    token = InfluxSettings(token=SecretStr("t0ken"), credentials_dir=secrets).as_user("ingest")
    assert (token.username, token.password) == (None, None)  # 2.x/3.x: the token alone
    # This checkout's passwords go only to a server on this machine, unless a folder is named.
    remote = InfluxSettings(url="https://influx.example.id:8086").as_user("ingest")
    assert (remote.username, remote.password) == (None, None)
    named_dir = InfluxSettings(url="https://influx.example.id:8086", credentials_dir=secrets)
    assert named_dir.as_user("ingest").username == "ingest"
    nobody = InfluxSettings(credentials_dir=tmp_path / "none").as_user("ingest")
    assert (nobody.username, nobody.password) == (None, None)  # anonymous
    assert auth_headers(nobody) == {}
    assert auth_headers(token) == {"Authorization": "Token t0ken"}
    assert auth_headers(base.as_user("ingest"))["Authorization"].startswith("Basic ")


def test_a_password_file_others_may_read_is_refused(tmp_path: Path) -> None:
    loose = _secret(tmp_path / "influxdb", "ingest", "pw", mode=0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        InfluxSettings(credentials_dir=loose.parent).as_user("ingest")
    with pytest.raises(ValueError, match="exclude each other"):
        InfluxSettings(password=SecretStr("a"), password_file=loose)


# ---- the InfluxDB `services up` started ------------------------------------------------------


def _base(running: services.ServicesSettings) -> str:
    return f"http://127.0.0.1:{running.influx_port}"


@pytest.mark.integration
def test_secret_files_are_0600_in_a_0700_dir(running_services: services.ServicesSettings) -> None:
    directory = services.influx_secrets_dir(running_services.run_dir)
    assert directory.stat().st_mode & 0o777 == 0o700
    before = {}
    for user in (INFLUX_ADMIN, *INFLUX_ROLES):
        path = directory / user
        assert path.stat().st_mode & 0o777 == 0o600, path
        before[user] = read_secret(path)
    services.up(running_services)  # again: the same passwords, still logging in
    assert {u: read_secret(directory / u) for u in before} == before
    conf = services._services(running_services)[1].conf.read_text()  # noqa: SLF001
    assert "auth-enabled = true" in conf


@pytest.mark.integration
async def test_anonymous_write_and_query_are_refused(
    running_services: services.ServicesSettings, influx_settings: InfluxSettings
) -> None:
    db = influx_settings.database
    async with httpx.AsyncClient(base_url=_base(running_services), timeout=10) as http:
        wrote = await http.post("/write", params={"db": db}, content=b"m v=1i")
        assert wrote.status_code == 401, wrote.text
        read = await http.get("/query", params={"db": db, "q": "SHOW MEASUREMENTS"})
        assert read.status_code == 401, read.text
        # as a client whose settings name no login at all: refused, retryable, saying so
    writer = V1Writer(msgspec.structs.replace(influx_settings, username=None, password=None))
    try:
        with pytest.raises(InfluxError) as info:
            await writer.write(["m v=1i"])
    finally:
        await writer.aclose()
    assert info.value.server_status == 401
    assert info.value.retryable
    assert "anonymous" in str(info.value)
    admin = Influx(influx_settings)
    try:
        assert await admin.query('SELECT count("v") FROM "m"') == []  # nothing landed
    finally:
        await admin.aclose()


@pytest.mark.integration
async def test_api_reads_but_cannot_write_and_a_wrong_password_is_refused(
    influx_settings: InfluxSettings,
) -> None:
    api = influx_as(influx_settings, "api")
    assert api.username == "api"
    assert api.password is not None
    ingest = influx_as(influx_settings, "ingest")
    writer = V1Writer(ingest)
    try:
        await writer.write(["m v=1i"])  # ingest writes
    finally:
        await writer.aclose()
    reader = Influx(api)
    try:
        (series,) = await reader.query('SELECT count("v") FROM "m"')  # api reads
        assert series.values[0][1] == 1
        with pytest.raises(InfluxError) as refused:
            await reader.write(["m v=2i"])
        assert refused.value.server_status == 403
        assert "user 'api'" in str(refused.value)
        with pytest.raises(InfluxError) as ddl:
            await reader.execute(f"DROP MEASUREMENT {ident('m')}")
        assert ddl.value.server_status == 403
    finally:
        await reader.aclose()
    wrong = Influx(msgspec.structs.replace(api, password=SecretStr("not-the-password")))
    try:
        with pytest.raises(InfluxError) as bad:
            await wrong.query('SELECT count("v") FROM "m"')
        assert bad.value.server_status == 401
        assert "not-the-password" not in str(bad.value)
    finally:
        await wrong.aclose()
    tps = Influx(influx_as(influx_settings, "tps"))
    try:
        with pytest.raises(InfluxError) as tps_write:
            await tps.write(["m v=3i"])
        assert tps_write.value.server_status == 403
    finally:
        await tps.aclose()


@pytest.mark.integration
async def test_an_ingester_without_admin_rights_names_the_missing_schema(
    influx_settings: InfluxSettings,
) -> None:
    ingest = Influx(influx_as(influx_settings, "ingest"))
    admin = Influx(influx_settings)
    try:
        assert await ensure_schema(ingest)  # all there (the fixture made it as `up` does)
        db = ident(influx_settings.database)
        await admin.execute(f"DROP RETENTION POLICY {ident('hourly')} ON {db}")
        await admin.execute(f"DROP CONTINUOUS QUERY {ident(DOWNSAMPLES[0].name)} ON {db}")
        with pytest.raises(InfluxSchemaError) as info:
            await ensure_schema(ingest)
        err = info.value
        assert err.missing == ["retention policy 'hourly'", "continuous query 'deposit_1h'"]
        assert not err.retryable  # the ingester stops at start, saying what to run
        assert "wastebank influx setup" in str(err)
        assert "user 'ingest'" in str(err)
        # nothing was created behind the admin's back
        (rps,) = await admin.query(f"SHOW RETENTION POLICIES ON {db}")
        assert "hourly" not in {row["name"] for row in rps.rows()}
        await ensure_schema(admin)  # the admin mends it (what `influx setup` runs)
        assert await ensure_schema(ingest)
    finally:
        await ingest.aclose()
        await admin.aclose()


@pytest.mark.integration
async def test_a_database_without_a_grant_is_named(
    running_services: services.ServicesSettings, test_id: str
) -> None:
    admin = Influx(services.influx_admin_settings(running_services, f"nogrant_{test_id}"))
    try:
        await admin.ensure_database()
        ingest = Influx(influx_as(admin.settings, "ingest"))
        try:
            with pytest.raises(InfluxSchemaError) as info:
                await ensure_schema(ingest)
            assert "a grant on it for user 'ingest'" in str(info.value)
            await ensure_schema(admin)
            await grant(admin, admin.settings.database, INFLUX_ROLES)
            assert await ensure_schema(ingest)
        finally:
            await ingest.aclose()
    finally:
        await admin.drop_database()
        await admin.aclose()


def _proc_bytes(pid: int) -> bytes:
    """A process's command line and environment."""
    return Path(f"/proc/{pid}/cmdline").read_bytes() + Path(f"/proc/{pid}/environ").read_bytes()


@pytest.mark.integration
async def test_wastebank_ingest_stops_at_start_naming_what_is_missing(
    processes: Processes,
    mqtt_settings: MqttSettings,
    running_services: services.ServicesSettings,
    tmp_path: Path,
    test_id: str,
) -> None:
    admin = Influx(services.influx_admin_settings(running_services, f"bare_{test_id}"))
    try:
        await admin.ensure_database()  # a database alone: no policies, no roll-ups
        await grant(admin, admin.settings.database, INFLUX_ROLES)
        env = {
            **settings_env(mqtt_settings, admin.settings, f"sqlite:///{tmp_path / 'ledger.db'}"),
            "WASTEBANK_CLIENT_ID": f"ingest-{test_id}",
        }
        proc = processes.start("ingest", ["ingest"], env)

        async def exited() -> bool:
            return proc.poll() is not None

        await eventually(exited, timeout=60)
        assert proc.returncode == 2
        log = processes.log("ingest")
        assert "InfluxDB schema incomplete" in log
        assert "retention policy 'raw' (DEFAULT)" in log
        assert "continuous query 'fill_level_1h'" in log
        assert "Traceback" not in log
    finally:
        await admin.drop_database()
        await admin.aclose()


# ---- end to end: the ingester writes as ingest, the API reads as api ---------------------------


@pytest.mark.integration
async def test_ingester_writes_as_ingest_and_the_api_reads_as_api(
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx_settings: InfluxSettings,
    ledger_url: str,
    tmp_path: Path,
    test_id: str,
) -> None:
    # The children get only these two passwords: whatever they do, they do as ingest or api.
    mine = tmp_path / "influx-secrets"
    mine.mkdir(mode=0o700)
    assert influx_settings.credentials_dir is not None
    source = influx_settings.credentials_dir
    for user in ("ingest", "api"):
        shutil.copy2(source / user, mine / user)
    env = {
        **settings_env(mqtt_settings, influx_settings, ledger_url),
        "WASTEBANK_INFLUX__CREDENTIALS_DIR": str(mine),
        "WASTEBANK_CLIENT_ID": f"ingest-{test_id}",
        "WASTEBANK_BATCH_MAX_AGE_S": "0.1",
    }
    proc = processes.start("ingest", ["ingest"], env)

    async def subscribed() -> bool:
        return "subscribed" in processes.log("ingest")

    await eventually(subscribed)
    events = [deposit_event(n, net_g=1000 + n) for n in (1, 2, 3)]
    topic = Topics(mqtt_settings.topic_prefix).deposit("bs-batu-merah", "gw-01")
    await publish(mqtt_settings, [(topic, encode_json(e)) for e in events])

    async def points() -> bool:
        rows = await influx_sum(influx_settings, 'SELECT sum("net_g") FROM "deposit"')
        return bool(rows) and rows[0][1] == sum(e.net_g for e in events)

    await eventually(points)
    assert ledger_counts(ledger_url)[:2] == (3, 0)

    # The ingester's password is nowhere but in its file: not in its command line, its
    # environment or its log.
    password = read_secret(mine / "ingest")
    assert password.encode() not in _proc_bytes(proc.pid)
    assert password not in processes.log("ingest")

    # The API, with no InfluxDB login configured, logs in as api from the same folder.
    add_users(ledger_url, ("admin",))
    settings = api_settings(
        mqtt=mqtt_settings,
        influx=InfluxSettings(
            url=influx_settings.url, database=influx_settings.database, credentials_dir=mine
        ),
        ledger_url=ledger_url,
    )
    assert settings.influx.username == "api"
    day = (events[0].measured_at.astimezone(WIT)).date()
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test"
        ) as client,
    ):
        admin = await login(client, "admin", PASSWORD)
        params = {"start": day.isoformat(), "end": day.isoformat()}
        resp = await client.get("/api/tonnage", params=params, headers=admin)
        assert resp.status_code == 200, resp.text
        assert resp.json()["total_g"] == sum(e.net_g for e in events)

        # The same API with a wrong password in its file: the read is refused, 503.
        (mine / "api").write_text("not-the-password\n")
        wrong = api_settings(
            mqtt=mqtt_settings,
            influx=InfluxSettings(
                url=influx_settings.url, database=influx_settings.database, credentials_dir=mine
            ),
            ledger_url=ledger_url,
        )
        assert wrong.influx.username == "api"
    refused = create_app(wrong)
    async with (
        LifespanManager(refused) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test"
        ) as client,
    ):
        admin = await login(client, "admin", PASSWORD)
        resp = await client.get("/api/tonnage", params=params, headers=admin)
        assert resp.status_code == 503
        assert "401" in resp.text


# ---- an older data dir, from when auth was off ------------------------------------------------


ONLY_INFLUXD: tuple[services.ServiceName, ...] = ("influxd",)


def _start_old_influxd(influxd: services.Service) -> subprocess.Popen[bytes]:
    with influxd.log_file.open("ab") as log:
        return subprocess.Popen(  # noqa: S603
            [
                str(services.INFLUXD_BIN),
                "run",
                "-config",
                str(influxd.conf),
                "-pidfile",
                str(influxd.pid_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.mark.integration
def test_an_older_data_dir_with_auth_off_is_migrated_by_up(tmp_path: Path) -> None:
    settings = load_settings(
        services.ServicesSettings,
        run_dir=tmp_path / "run",
        mqtt_port=free_port(),
        influx_port=min(free_port(), 65000),
        start_timeout_s=60,
    )
    services.claim_ports(settings)
    influxd = services._services(settings)[1]  # noqa: SLF001
    for sub in ("meta", "data", "wal"):
        (influxd.dir / sub).mkdir(parents=True, exist_ok=True)
    # What `up` wrote before auth was on, and the daemon an older checkout left running.
    old = services.influxdb_conf(influxd, settings)
    assert "auth-enabled = true" in old
    influxd.conf.write_text(old.replace("auth-enabled = true", "auth-enabled = false"))
    child = _start_old_influxd(influxd)
    http = httpx.Client(base_url=f"http://127.0.0.1:{settings.influx_port}", timeout=10)
    try:

        def answering() -> bool:
            try:
                return http.get("/ping").status_code == 204
            except httpx.HTTPError:
                return False

        wait_until(answering, timeout=60)
        made = http.post("/query", params={"q": 'CREATE DATABASE "wastebank"'})
        assert made.status_code == 200
        old_point = http.post(
            "/write", params={"db": "wastebank"}, content=b"deposit,bank=b net_g=1250i"
        )
        assert old_point.status_code == 204  # anonymous, as it used to be

        services.up(settings, only=ONLY_INFLUXD)
        child.wait(timeout=30)  # ours, stopped: `up` started it again with auth on

        assert "auth-enabled = true" in influxd.conf.read_text()
        assert services.status(settings)[1].healthy
        refused = http.post(
            "/write", params={"db": "wastebank"}, content=b"deposit,bank=b net_g=1i"
        )
        assert refused.status_code == 401
        directory = services.influx_secrets_dir(settings.run_dir)
        assert directory.stat().st_mode & 0o777 == 0o700
        assert sorted(p.name for p in directory.iterdir()) == sorted((INFLUX_ADMIN, *INFLUX_ROLES))
        assert all(p.stat().st_mode & 0o777 == 0o600 for p in directory.iterdir())

        # The old point is still there, read by the API's user; the schema is complete.
        admin = services.influx_admin_settings(settings)
        asyncio.run(_old_point_and_schema(admin))
        services.up(settings, only=ONLY_INFLUXD)  # again: nothing to migrate, nothing changes
    finally:
        http.close()
        services.down(settings)
        if child.poll() is None:
            child.kill()
        child.wait()


async def _old_point_and_schema(admin: InfluxSettings) -> None:
    api = Influx(influx_as(admin, "api"))
    ingest = Influx(influx_as(admin, "ingest"))
    try:
        # written before `up` made "raw" the default policy: in "autogen"
        (series,) = await api.query('SELECT sum("net_g") FROM "autogen"."deposit"')
        assert series.values[0][1] == 1250
        assert await ensure_schema(ingest)  # RPs and CQs there: a check, no refusal
    finally:
        await api.aclose()
        await ingest.aclose()
