"""Only the right caller at the gateway's local endpoint (issue 13, the gateway).

Every route but the minimal /health needs an attendant's session and every write its CSRF token;
`wastebank attend` and `wastebank calibrate` log in for one; HTTPS with a certificate from the
site CA; a central 429 is a refusal, not an outage; an account the central API no longer lets in
loses its cached login and its sessions at the next sync; the gateway's file is 0600.

The gateway's app is the real one (over httpx's ASGI transport, or real uvicorn where a stream,
TLS or the CLI needs a socket); the central API is faked at the transport seam
(tests/gateway_helpers.py). The central API's own answer, ``GET /api/banks/{bank}/
gateway-logins``, is tested against the real API and ledger at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sqlite3
import ssl
import stat
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from gateway.attendant_store import AttendantDb
from gateway.http import local_api
from gateway.http.attendant import COOKIE, LOGIN_COOKIE, AttendantService, LoginRefused
from gateway.outbox import Outbox
from tests.conftest import eventually, free_port
from tests.gateway_helpers import (
    PASSWORD,
    FakeCentral,
    armed,
    attendant_service,
    gateway_settings,
)
from wastebank import devices, services
from wastebank.cli import app as cli_app
from wastebank.config import ConfigError

Gw = tuple[AttendantService, FakeCentral, httpx.AsyncClient]
ARM = {"member_no": "AMB-0001", "category_code": "pet"}
STABLE = b"ST,GS,+0010.00kg\r\n"  # 10,000 g, stable (A&D format)
EMPTY = b"ST,GS,+0000.00kg\r\n"  # the platform empty, as before the first deposit since start


def private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gw]:
    fake = FakeCentral()
    async with attendant_service(gateway_settings(tmp_path), fake) as svc:
        app = local_api.http_app(svc.gw, svc)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw.test"
        ) as client:
            yield svc, fake, client


def other_client(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another browser on the same gateway (its own cookies)."""
    return httpx.AsyncClient(transport=client._transport, base_url=client.base_url)  # noqa: SLF001


async def login(client: httpx.AsyncClient, username: str = "petugas-bm-01") -> str:
    """Log ``client`` in (JSON, as the CLI does); the session's CSRF token."""
    resp = await client.post(
        "/petugas/api/session", json={"username": username, "password": PASSWORD}
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["csrf_token"])


# ---- every route needs the session ----------------------------------------------------------


async def test_health_without_a_session_is_minimal(gateway: Gw) -> None:
    svc, _, client = gateway
    resp = await client.get("/health")
    assert resp.status_code == 200
    body = resp.json()
    # Up, the broker link, the outbox's backlog, each scale's state, the clock, the alerts in
    # force: nothing about members, deposits or money (no weights either).
    assert set(body) == {
        "status",
        "gateway_id",
        "version",
        "uptime_s",
        "broker_connected",
        "outbox_depth",
        "outbox_refused",
        "outbox_dropped",
        "bad_requests",
        "too_large_requests",
        "too_slow_requests",
        "connections_closed",
        "busy_refused",
        "scales",
        "clock",
        "alerts_active",
        "alerts_left_out",
    }
    assert (body["status"], body["gateway_id"], body["outbox_depth"]) == ("ok", "gw-01", 0)
    assert [set(s) for s in body["scales"]] == [{"scale_id", "state", "state_since"}]
    assert (await client.get("/health/full")).status_code == 401
    await login(client)
    full = (await client.get("/health/full")).json()
    assert full["install"] == svc.gw.outbox.install
    assert [s["scale_id"] for s in full["scales"]] == ["scale-01"]


async def test_arm_and_calibration_refuse_without_a_session(gateway: Gw) -> None:
    """The issue's attack: an arm without a session made the next load another member's
    deposit. Now 401 before the body is even read, and nothing is armed or recorded."""
    svc, _, client = gateway
    reader = svc.gw.readers["scale-01"]
    svc.gw.feed(reader, STABLE)
    svc.gw.feed(reader, STABLE)
    assert reader.last is not None
    assert reader.last.status == "stable"
    refused = [
        await client.post("/scales/scale-01/arm", json=ARM),
        await client.post("/scales/scale-01/calibration", json={"reference_g": 10_000}),
        await client.get("/scales/scale-01/calibration"),
        await client.get("/scales"),
        await client.post("/petugas/api/scales/scale-01/record", json=ARM),
        await client.post("/petugas/api/deposits/gw-01.x.1/void", json={"reason": "x"}),
        # a body that is not even JSON, and a route that does not exist: the same 401
        await client.post(
            "/scales/scale-01/arm", content=b"{", headers={"content-type": "application/json"}
        ),
        await client.get("/no/such/route"),
        await client.get("/docs"),
    ]
    assert [r.status_code for r in refused] == [401] * len(refused)
    assert {r.json()["detail"] for r in refused} == {"belum masuk / not signed in"}
    assert armed(svc) is None
    assert svc.gw.calibration.checks("scale-01") == []
    # a forged or foreign cookie is no session either
    client.cookies.set(COOKIE, "x")
    assert (await client.post("/scales/scale-01/arm", json=ARM)).status_code == 401
    assert armed(svc) is None


async def test_writes_need_the_sessions_own_csrf_token(gateway: Gw) -> None:
    svc, _, client = gateway
    token = await login(client)
    async with other_client(client) as other:
        others = await login(other, "petugas-bm-02")
        assert others != token
        for headers in ({}, {"X-CSRF-Token": "x" * 64}, {"X-CSRF-Token": others}):
            resp = await client.post("/scales/scale-01/arm", json=ARM, headers=headers)
            assert resp.status_code == 403, headers
            assert "CSRF" in resp.json()["detail"]
        assert armed(svc) is None
    resp = await client.post("/scales/scale-01/arm", json=ARM, headers={"X-CSRF-Token": token})
    assert resp.status_code == 200, resp.text
    assert armed(svc) == ("AMB-0001", "pet")
    reader = svc.gw.readers["scale-01"]
    assert svc.gw.feed(reader, EMPTY) == []  # the first line after opening: taken as partial
    assert svc.gw.feed(reader, EMPTY) == []
    assert svc.gw.feed(reader, STABLE) == [1]
    entry = svc.gw.attendant_db.journal.get(svc.gw.event_id(1))
    assert entry is not None
    assert entry.attendant == "petugas-bm-01"  # who armed it goes into the journal
    # reads need the session, not the token
    assert (await client.get("/scales")).status_code == 200


async def test_the_login_form_needs_its_own_token(gateway: Gw) -> None:
    """No other site can log a tablet in to an account of its choosing (login CSRF)."""
    _, _, client = gateway
    form = {"username": "petugas-bm-01", "password": PASSWORD}
    blind = await client.post("/petugas/masuk", data=form)
    assert blind.status_code == 403
    assert COOKIE not in blind.cookies
    page = await client.get("/petugas")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    assert LOGIN_COOKIE in client.cookies
    async with other_client(client) as attacker:  # the token without its nonce cookie
        stolen = await attacker.post("/petugas/masuk", data={**form, "csrf_token": token[1]})
        assert stolen.status_code == 403
    resp = await client.post("/petugas/masuk", data={**form, "csrf_token": token[1]})
    assert resp.status_code == 303
    cookie = next(h for h in resp.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}=e"))
    assert "Path=/;" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over HTTPS it is (test_https_...)
    page = await client.get("/petugas")
    assert 'name="csrf-token"' in page.text
    assert (await client.get("/petugas/api/state")).status_code == 200


async def test_the_json_login_takes_json_only(gateway: Gw) -> None:
    """A form or a no-cors fetch (text/plain, or a Blob without a type) is refused."""
    _, _, client = gateway
    body = json.dumps({"username": "petugas-bm-01", "password": PASSWORD}).encode()
    for headers in ({"content-type": "text/plain"}, {}):
        resp = await client.post("/petugas/api/session", content=body, headers=headers)
        assert resp.status_code in (415, 422), headers
        assert COOKIE not in client.cookies
    assert (await client.get("/scales")).status_code == 401


async def test_logout_ends_the_session_on_the_gateway(gateway: Gw) -> None:
    _, _, client = gateway

    async def replayed(cookie: str) -> int:
        """The status of a read with ``cookie`` kept from before the logout."""
        async with other_client(client) as replay:
            replay.cookies.set(COOKIE, cookie)
            return (await replay.get("/scales")).status_code

    token = await login(client)
    kept = client.cookies[COOKIE]
    resp = await client.request("DELETE", "/petugas/api/session", headers={"X-CSRF-Token": token})
    assert resp.status_code == 204
    # the cookie is still signed and unexpired, but its session is gone
    assert await replayed(kept) == 401

    token = await login(client)
    kept = client.cookies[COOKIE]
    wrong = await client.post("/petugas/keluar", data={"csrf_token": "x"})
    assert wrong.status_code == 403
    assert await replayed(kept) == 200  # still signed in
    resp = await client.post("/petugas/keluar", data={"csrf_token": token})
    assert resp.status_code == 303
    assert await replayed(kept) == 401


# ---- a central 429 is a refusal -------------------------------------------------------------


async def test_a_central_429_is_a_refusal_not_an_outage(gateway: Gw) -> None:
    svc, fake, client = gateway
    await svc.login("petugas-bm-01", PASSWORD)  # online: cached
    fake.token_status = 429
    with pytest.raises(LoginRefused) as limited:
        await svc.login("petugas-bm-01", PASSWORD)
    assert (limited.value.status, limited.value.retry_after_s) == (429, 42)
    assert svc.central_online is True  # it answered: not offline
    body = {"username": "petugas-bm-01", "password": PASSWORD}
    resp = await client.post("/petugas/api/session", json=body)
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "42"
    assert COOKIE not in client.cookies

    # A 5xx or no network at all: the cache lets a recent attendant in.
    fake.token_status = 503
    who = await svc.login("petugas-bm-01", PASSWORD)
    assert who.offline
    assert svc.central_online is False
    fake.token_status, fake.down = None, True
    assert (await svc.login("petugas-bm-01", PASSWORD)).offline


# ---- a disabled account ends at the next sync -----------------------------------------------


async def test_disabling_an_account_ends_its_cached_login_and_cookies_at_the_next_sync(
    gateway: Gw,
) -> None:
    svc, fake, client = gateway
    await login(client)
    async with other_client(client) as second:
        await login(second, "petugas-bm-02")
        fake.disabled.add("petugas-bm-02")
        assert (await second.get("/scales")).status_code == 200  # until the next sync
        assert await svc.sync_logins(svc.tokens["petugas-bm-01"])
        assert fake.logins_asked == [["petugas-bm-01", "petugas-bm-02"]]
        assert (await second.get("/scales")).status_code == 401
        assert (await client.get("/scales")).status_code == 200  # the others stay
    assert svc.db.logins.usernames() == ["petugas-bm-01"]
    assert set(svc.tokens) == {"petugas-bm-01"}
    fake.down = True  # and no way back in offline
    with pytest.raises(LoginRefused) as refused:
        await svc.login("petugas-bm-02", PASSWORD)
    assert refused.value.status == 401

    # Moved to another bank: the sync's own token is refused there (403), its owner ends too.
    fake.down = False
    fake.users["petugas-bm-01"] = (PASSWORD, "attendant", ["bs-nusaniwe"])
    assert not await svc.sync_logins(svc.tokens["petugas-bm-01"])
    assert (await client.get("/scales")).status_code == 401
    assert svc.db.logins.usernames() == []


async def test_the_running_sync_ends_a_disabled_account(tmp_path: Path) -> None:
    """The service's own loop, not a direct call: at its next sync (``sync_interval_s``)."""
    fake = FakeCentral()
    settings = gateway_settings(
        tmp_path,
        attendant={"argon2_time_cost": 1, "argon2_memory_kib": 8, "sync_interval_s": 0.05},
    )
    async with attendant_service(settings, fake) as svc:
        cookie = svc.session_cookie(await svc.login("petugas-bm-01", PASSWORD))
        other = svc.session_cookie(await svc.login("petugas-bm-02", PASSWORD))
        sync = asyncio.create_task(svc.run())
        try:
            fake.disabled.add("petugas-bm-02")

            async def ended() -> bool:
                return svc.who(other) is None

            await eventually(ended)
            assert svc.who(cookie) is not None
            assert svc.db.logins.usernames() == ["petugas-bm-01"]
        finally:
            sync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sync


# ---- on a socket: the live stream, the CLI, HTTPS -------------------------------------------


@contextlib.asynccontextmanager
async def serving(svc: AttendantService) -> AsyncIterator[str]:
    """The local endpoint on uvicorn (HTTPS when the settings say so); its base URL."""
    s = svc.gw.settings
    s.http_port = free_port()
    task = asyncio.create_task(local_api.serve(svc.gw, svc))
    scheme = "https" if s.http_tls_cert else "http"
    base = f"{scheme}://127.0.0.1:{s.http_port}"
    verify: ssl.SSLContext | bool = False  # up-probe only; the tests verify on their own
    async with httpx.AsyncClient(base_url=base, verify=verify, timeout=5) as probe:

        async def up() -> bool:
            try:
                return (await probe.get("/health")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(up)
    try:
        yield base
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_live_stream_ends_with_its_session(tmp_path: Path) -> None:
    fake = FakeCentral()
    async with attendant_service(gateway_settings(tmp_path), fake) as svc, serving(svc) as base:
        cookie = svc.session_cookie(await svc.login("petugas-bm-02", PASSWORD))
        async with (
            httpx.AsyncClient(base_url=base, timeout=5, cookies={COOKIE: cookie}) as client,
            client.stream("GET", "/petugas/api/scales/scale-01/live") as resp,
        ):
            assert resp.status_code == 200
            lines = resp.aiter_lines()
            first = await anext(line async for line in lines if line.startswith("data: "))
            assert "scale-01" in first
            svc.end_login("petugas-bm-02", "test")
            rest = [line async for line in lines]  # ends: the session is gone
            assert all("AMB" not in line for line in rest)
        assert svc.streams == 0


def run_cli(args: list[str], stdin: str = "") -> Result:
    return CliRunner().invoke(cli_app, args, input=stdin)


async def test_attend_and_calibrate_log_in_and_keep_the_session_0600(tmp_path: Path) -> None:
    fake = FakeCentral()
    sessions = tmp_path / "state" / "sessions.json"
    async with attendant_service(gateway_settings(tmp_path), fake) as svc, serving(svc) as base:
        common = ["--gateway", base, "--session-file", str(sessions)]
        arm = ["attend", *common, "--scale", "scale-01", "--member", "AMB-0001", "--category"]

        # No password option at all: never in argv, where every user could read it.
        no = await asyncio.to_thread(run_cli, [*arm, "pet", "--password", PASSWORD])
        assert no.exit_code == 2

        wrong = await asyncio.to_thread(run_cli, [*arm, "pet"], "petugas-bm-01\nsalah\n")
        assert wrong.exit_code == 1
        assert "ditolak / refused (401)" in wrong.output
        assert armed(svc) is None

        first = await asyncio.to_thread(run_cli, [*arm, "pet"], f"petugas-bm-01\n{PASSWORD}\n")
        assert first.exit_code == 0, first.output
        assert "signed in as petugas-bm-01" in first.output
        assert armed(svc) == ("AMB-0001", "pet")
        assert private(sessions)
        assert stat.S_IMODE(sessions.parent.stat().st_mode) == 0o700
        assert PASSWORD not in sessions.read_text()

        # The kept session: no prompt (no input: a prompt would abort).
        again = await asyncio.to_thread(run_cli, [*arm, "kardus"])
        assert again.exit_code == 0, again.output
        assert "signed in" not in again.output
        assert armed(svc) == ("AMB-0001", "kardus")
        cancel = await asyncio.to_thread(
            run_cli, ["attend", *common, "--scale", "scale-01", "--cancel"]
        )
        assert cancel.exit_code == 0, cancel.output
        assert armed(svc) is None

        # calibrate: the same session; a stable reading on the scale first
        reader = svc.gw.readers["scale-01"]
        svc.gw.feed(reader, STABLE)
        svc.gw.feed(reader, STABLE)
        cal = ["calibrate", *common, "--scale", "scale-01", "--reference-g", "10000"]
        out = await asyncio.to_thread(run_cli, cal)
        assert out.exit_code == 0, out.output
        assert "+0 g" in out.output
        assert len(svc.gw.calibration.checks("scale-01")) == 1

        # The session ended on the gateway (the account disabled and enabled again, a logout
        # elsewhere): the kept one is dropped and the CLI logs in again, here from stdin.
        for username in svc.db.sessions.usernames(datetime.now(UTC)):
            svc.db.sessions.end_user(username)
        piped = await asyncio.to_thread(
            run_cli, [*cal, "--user", "petugas-bm-02", "--password-stdin"], f"{PASSWORD}\n"
        )
        assert piped.exit_code == 0, piped.output
        assert "signed in as petugas-bm-02" in piped.output

        out = await asyncio.to_thread(run_cli, ["attend", *common, "--logout"])
        assert out.exit_code == 0, out.output
        assert json.loads(sessions.read_text()) == {}
        assert svc.db.sessions.usernames(datetime.now(UTC)) == []


async def test_https_with_a_certificate_from_the_site_ca(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {"WASTEBANK_RUN_DIR": str(run_dir)}
    no_ca = CliRunner().invoke(
        cli_app, ["certs", "gateway", "--gateway", "gw-01", "--host", "127.0.0.1"], env=env
    )
    assert no_ca.exit_code == 2
    assert "wastebank certs init" in no_ca.output
    files = services.broker_auth_files(run_dir)
    devices.init_certs(files, ["localhost"])
    made = CliRunner().invoke(
        cli_app, ["certs", "gateway", "--gateway", "gw-01", "--host", "127.0.0.1"], env=env
    )
    assert made.exit_code == 0, made.output
    out = files.ca_cert.parent / "gateways" / "gw-01"
    assert private(out / "page.key")
    assert "http_tls_cert" in made.output

    fake = FakeCentral()
    settings = gateway_settings(
        tmp_path, http_tls_cert=out / "page.crt", http_tls_key=out / "page.key"
    )
    async with attendant_service(settings, fake) as svc, serving(svc) as base:
        assert base.startswith("https://")
        trust = ssl.create_default_context(cafile=str(out / "ca.crt"))
        async with httpx.AsyncClient(base_url=base, verify=trust, timeout=5) as client:
            assert (await client.get("/health")).status_code == 200
            resp = await client.post(
                "/petugas/api/session", json={"username": "petugas-bm-01", "password": PASSWORD}
            )
            assert resp.status_code == 200
            cookie = next(h for h in resp.headers.get_list("set-cookie") if "Path=/;" in h)
            assert "Secure" in cookie
        async with httpx.AsyncClient(base_url=base, timeout=5) as untrusting:
            with pytest.raises(httpx.ConnectError):  # the system's CAs do not know the site CA
                await untrusting.get("/health")
        attend = [
            "attend",
            "--gateway",
            base,
            "--ca-file",
            str(out / "ca.crt"),
            "--no-session-file",
            "--scale",
            "scale-01",
            "--member",
            "AMB-0001",
            "--category",
            "pet",
        ]
        result = await asyncio.to_thread(run_cli, attend, f"petugas-bm-01\n{PASSWORD}\n")
        assert result.exit_code == 0, result.output
        assert armed(svc) == ("AMB-0001", "pet")


def test_tls_cert_and_key_go_together(tmp_path: Path) -> None:
    cert = tmp_path / "page.crt"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="http_tls_cert and http_tls_key go together"):
        gateway_settings(tmp_path, http_tls_cert=cert)


# ---- the gateway's file is 0600 -------------------------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which a plain create would be 0644."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("umask_022")
def test_a_new_gateway_file_is_0600_from_its_creation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "new" / "outbox.db"
    modes: list[int] = []
    connect = sqlite3.connect

    def watched(database: Any, *args: Any, **kw: Any) -> sqlite3.Connection:
        modes.append(stat.S_IMODE(os.stat(database).st_mode))  # before SQLite writes a byte
        connection: sqlite3.Connection = connect(database, *args, **kw)
        return connection

    monkeypatch.setattr("gateway.outbox.sqlite3.connect", watched)
    box = Outbox(path)
    try:
        assert modes == [0o600]
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        AttendantDb(box).secret("attendant-session")  # the session key is in it
        for name in ("outbox.db", "outbox.db-wal", "outbox.db-shm"):
            assert private(path.parent / name), name
    finally:
        box.close()


@pytest.mark.usefixtures("umask_022")
def test_an_existing_gateway_file_is_made_0600_at_open(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    db = sqlite3.connect(path)  # an older release's file, at the umask's 0644
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    db.commit()
    wal = path.with_name("outbox.db-wal")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(wal.stat().st_mode) == 0o644
    box = Outbox(path)
    try:
        assert private(path)
        assert private(wal)
        assert private(path.with_name("outbox.db-shm"))
    finally:
        box.close()
        db.close()


# ---- the central API's side: who may still log in at a bank's gateway --------------------------


@pytest.mark.integration
async def test_a_user_disabled_centrally_is_signed_out_of_the_gateway(
    ledger_url: str, tmp_path: Path
) -> None:
    """The real API and ledger: `GET /api/banks/{bank}/gateway-logins` answers for the bank's
    attendants and admins only, and a user disabled there loses the gateway at its next sync."""
    from sqlalchemy.orm import Session

    from gateway.app import Gateway
    from tests.auth_helpers import ApiEnv, api_settings
    from wastebank import access

    with ApiEnv(ledger_url, api_settings(ledger_url=ledger_url)) as api:
        base = str(api.client.base_url)
        bm, bm_secret = api.creds["attendant_1"]
        asked = {"username": [bm, api.creds["attendant_2"][0], "admin", "dlh-ambon", "nobody"]}
        resp = api.client.get(
            "/api/banks/bs-batu-merah/gateway-logins", params=asked, headers=api.bearer("admin")
        )
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"allowed": sorted(["admin", bm])}
        other_bank = api.client.get(
            "/api/banks/bs-batu-merah/gateway-logins",
            params=asked,
            headers=api.bearer("attendant_2"),
        )
        assert other_bank.status_code == 403

        settings = gateway_settings(tmp_path, api_url=base)
        gw = Gateway(settings)
        svc = AttendantService(gw)
        try:
            cookie = svc.session_cookie(await svc.login(bm, bm_secret))
            admin = svc.session_cookie(await svc.login("admin", api.creds["admin"][1]))
            assert await svc.sync_logins(svc.tokens["admin"])
            assert svc.who(cookie) is not None  # nothing changed centrally: all stay
            with Session(api.engine) as s:
                access.set_active(s, bm, False, access.Actor("test", "cli"))
                s.commit()
            assert await svc.sync_logins(svc.tokens["admin"])
            assert svc.who(cookie) is None
            assert svc.who(admin) is not None
            assert svc.db.logins.usernames() == ["admin"]
        finally:
            await svc.aclose()
            gw.outbox.close()
