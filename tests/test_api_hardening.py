"""The API's doors under abuse (issue 13): body limits before parsing and before auth, zip bombs
refused before openpyxl, the login limits keyed on the normalized name and on the address only a
trusted proxy may forward, logout that ends the token server-side, CSRF bound to the session,
and no 500 from any parameter of any route."""

from __future__ import annotations

import logging
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import msgspec
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.app import create_app
from api.settings import ApiSettings, HttpSettings
from tests.auth_helpers import (
    PASSWORD,
    PIN,
    add_users,
    api_settings,
    auth_settings,
    csrf_of,
    login,
    with_csrf,
)
from wastebank import access, bulk_import, ledger, services
from wastebank.config import MqttSettings
from wastebank.influx import Influx


@pytest.fixture
async def served(ledger_url: str) -> AsyncIterator[Any]:
    """``serve(settings, peer)``: a client of the app on ``ledger_url`` (its users added),
    connecting from ``peer`` (the address the app sees)."""
    add_users(ledger_url)
    async with _Apps() as apps:
        yield apps.serve


class _Apps:
    def __init__(self) -> None:
        self.stack: list[Any] = []

    async def __aenter__(self) -> _Apps:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for cm in reversed(self.stack):
            await cm.__aexit__(None, None, None)

    async def serve(self, settings: ApiSettings, peer: str = "192.0.2.10") -> httpx.AsyncClient:
        manager = LifespanManager(create_app(settings))
        await manager.__aenter__()
        self.stack.append(manager)
        transport = httpx.ASGITransport(app=manager.app, client=(peer, 4321))
        client = httpx.AsyncClient(transport=transport, base_url="http://test")
        await client.__aenter__()
        self.stack.append(client)
        return client


# ---- body limits ------------------------------------------------------------------------------


class Body:
    """A request body sent in chunks as the app asks for them; counts what it handed out."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.sent = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            n = min(self.chunk, self.total - self.sent)
            self.sent += n
            yield b"[" + b"1," * ((n - 2) // 2) + b"1]" if n >= 3 else b"1" * n


async def test_a_20_mb_json_is_refused_before_parsing_and_before_auth(
    served: Any, ledger_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = await served(api_settings(ledger_url=ledger_url))
    body = Body(20 * 1024 * 1024)
    with (
        caplog.at_level(logging.WARNING, "api.limits"),
        mock.patch("json.loads", side_effect=AssertionError("parsed")) as parsed,
    ):
        resp = await client.post(
            "/api/banks/bs-batu-merah/deposits",
            content=body,
            headers={"Content-Type": "application/json", "Content-Length": str(body.total)},
        )
    assert resp.status_code == 413, resp.text  # not 401: nobody signed in, and it is too large
    assert resp.json()["detail"] == (
        "isi permintaan terlalu besar, paling banyak 65.536 bita / request body too large: at "
        "most 65.536 bytes"
    )
    assert resp.headers["connection"] == "close"
    assert body.sent == 0  # not one byte read, let alone parsed
    parsed.assert_not_called()
    assert "request body too large: POST /api/banks/bs-batu-merah/deposits" in caplog.text
    # within the limit, the same request is the usual 401
    small = await client.post("/api/banks/bs-batu-merah/deposits", json={"net_g": 1})
    assert small.status_code == 401


async def test_a_chunked_body_is_counted_and_cut_at_the_limit(served: Any, ledger_url: str) -> None:
    client = await served(
        api_settings(ledger_url=ledger_url, http=HttpSettings(max_body_bytes=100_000))
    )
    body = Body(5 * 1024 * 1024, chunk=16 * 1024)
    resp = await client.post(
        "/api/token", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert resp.status_code == 413
    assert "100.000" in resp.json()["detail"]
    # read up to the chunk that crossed the limit, then no more
    assert 100_000 < body.sent <= 100_000 + 16 * 1024


async def test_upload_routes_take_the_larger_limit(served: Any, ledger_url: str) -> None:
    settings = api_settings(
        ledger_url=ledger_url,
        http=HttpSettings(max_body_bytes=10_000, max_upload_bytes=200_000),
    )
    client = await served(settings)
    form = await with_csrf(client, {"username": "admin", "password": PASSWORD})
    assert (await client.post("/masuk", data=form)).status_code == 303
    page = await client.get("/admin/impor")
    rows = "".join(f"AMB-{9000 + i},Nasabah {i},bs-batu-merah,Rijali\n" for i in range(800))
    csv = ("no_nasabah,nama,kode_bank,kelurahan\n" + rows).encode()
    assert 10_000 < len(csv) < 200_000
    ok = await client.post(
        "/admin/impor",
        data={"dry_run": "true", "csrf_token": csrf_of(page.text)},
        files={"file": ("anggota.csv", csv, "text/csv")},
    )
    assert ok.status_code == 200, ok.text
    assert "800 baris / rows" in ok.text
    too_big = await client.post(
        "/admin/impor",
        data={"dry_run": "true", "csrf_token": csrf_of(page.text)},
        files={"file": ("anggota.csv", csv * 20, "text/csv")},
    )
    assert too_big.status_code == 413
    assert "200.000" in too_big.json()["detail"]
    # the JSON routes keep the small limit
    big_json = await client.post("/api/banks/bs-batu-merah/deposits", content=b"1" * 20_000)
    assert big_json.status_code == 413


# ---- zip bombs --------------------------------------------------------------------------------


def zip_bomb(path: Path, unpacked: int = 48 * 1024 * 1024) -> Path:
    """An XLSX-shaped archive of ~44 KB whose sheet unpacks to ``unpacked`` bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with z.open("xl/worksheets/sheet1.xml", "w") as sheet:
            block = b" " * (1024 * 1024)
            for _ in range(unpacked // len(block)):
                sheet.write(block)
    return path


def real_xlsx(path: Path, rows: int = 50) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["no_nasabah", "nama", "kode_bank", "kelurahan"])
    for i in range(rows):
        ws.append([f"AMB-{8000 + i}", f"Nasabah Uji {i}", "bs-batu-merah", "Rijali"])
    wb.save(path)
    return path


async def test_a_wrong_method_is_answered_405_with_every_method_of_the_path(
    served: Any, ledger_url: str
) -> None:
    """The route list is read whole (included routers too, api.limits.flat_routes): a 405's
    Allow names GET and POST of /masuk, which two routes serve."""
    client = await served(api_settings(ledger_url=ledger_url))
    resp = await client.delete("/masuk")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "GET, POST"


def test_the_archive_check_reads_the_central_directory_only(tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "bom.xlsx")
    assert bomb.stat().st_size < 60_000  # ~44 KB packed, 48 MiB unpacked
    limits = bulk_import.ImportLimits()
    with pytest.raises(bulk_import.ArchiveTooLarge, match="at most 33.554.432"):
        bulk_import.check_archive(bomb, limits)
    # each rule on its own
    roomy = msgspec.structs.replace(limits, max_uncompressed_bytes=10**9)
    with pytest.raises(bulk_import.ArchiveTooLarge, match=r"compressed \d[\d.]* times"):
        bulk_import.check_archive(bomb, roomy)
    many = tmp_path / "banyak.xlsx"
    with zipfile.ZipFile(many, "w") as z:
        for i in range(20):
            z.writestr(f"xl/part{i}.xml", "<x/>")
    with pytest.raises(bulk_import.ArchiveTooLarge, match="20 files inside, at most 10"):
        bulk_import.check_archive(many, msgspec.structs.replace(limits, max_members=10))
    bulk_import.check_archive(real_xlsx(tmp_path / "anggota.xlsx", rows=2000), limits)
    (tmp_path / "bukan.xlsx").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(bulk_import.ImportFileError, match="not a readable XLSX"):
        bulk_import.check_archive(tmp_path / "bukan.xlsx", limits)


async def test_an_xlsx_zip_bomb_upload_is_refused_before_openpyxl(
    served: Any, ledger_url: str, tmp_path: Path
) -> None:
    client = await served(api_settings(ledger_url=ledger_url))
    form = await with_csrf(client, {"username": "admin", "password": PASSWORD})
    assert (await client.post("/masuk", data=form)).status_code == 303
    token = csrf_of((await client.get("/admin/impor")).text)
    bomb = zip_bomb(tmp_path / "anggota.xlsx").read_bytes()
    with mock.patch("openpyxl.load_workbook", side_effect=AssertionError("opened")) as opened:
        resp = await client.post(
            "/admin/impor",
            data={"dry_run": "true", "csrf_token": token},
            files={"file": ("anggota.xlsx", bomb, "application/octet-stream")},
        )
    assert resp.status_code == 413, resp.text
    assert "berkas terlalu besar jika dibuka / file too large unpacked" in resp.text
    assert "(a zip bomb?)" in resp.text or "at most 33.554.432" in resp.text
    opened.assert_not_called()
    # a real list still goes through
    good = real_xlsx(tmp_path / "baik.xlsx", rows=3).read_bytes()
    resp = await client.post(
        "/admin/impor",
        data={"dry_run": "true", "csrf_token": token},
        files={"file": ("baik.xlsx", good, "application/octet-stream")},
    )
    assert resp.status_code == 200, resp.text
    assert "3 baris / rows" in resp.text


# ---- login limits: the account's normalized name, the address only from trusted proxies --------


def test_spellings_of_one_name_are_one_account(ledger_url: str) -> None:
    assert access.login_key("ſby-0001") == access.login_key("sby-0001") == "sby-0001"
    assert access.login_key(" ＡＭＢ－０００１ ") == "amb-0001"  # a phone's full-width digits
    assert access.login_key("PETUGAS-BM-01") == access.login_key("petugaſ-bm-01")
    add_users(ledger_url, ("attendant_1", "citizen_a"))
    settings = auth_settings(login_max_failures=4)
    hasher = access.password_hasher(settings)
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            # the login finds the account under each spelling the limit counts as it
            for typed in ("petugaſ-bm-01", "PETUGAS-BM-01", "ｐｅｔｕｇａｓ-ｂｍ-０１"):
                user = access.find_login(s, typed)
                assert user is not None, typed
                assert user.username == "petugas-bm-01", typed
            assert access.find_login(s, "ａｍｂ－０００１").username == "AMB-0001"  # type: ignore[union-attr]
            # a username at the longest (64); one character more names nobody (it was cut to
            # the 64 that name someone)
            longest = "admin-" + "x" * 58
            access.add_user(
                s,
                role="admin",
                username=longest,
                secret=PASSWORD,
                hasher=hasher,
                actor=access.Actor("test", "cli"),
            )
            assert access.find_login(s, longest.upper()) is not None
            assert access.find_login(s, longest + "y") is None
            for typed in ("petugaſ-bm-01", "petugas-bm-01", "PETUGAS-BM-01", "petugaſ-BM-01"):
                with pytest.raises(access.LoginRefused):
                    access.authenticate(
                        s,
                        typed,
                        "salah-sekali-123",
                        client_ip=None,
                        settings=settings,
                        hasher=hasher,
                    )
            with pytest.raises(access.TooManyAttempts):  # four spellings, one account
                access.authenticate(
                    s, "petugas-bm-01", PASSWORD, client_ip=None, settings=settings, hasher=hasher
                )
            keys = set(s.scalars(select(access.LoginFailure.key)))
            assert keys == {"account:petugas-bm-01", "ip:unknown"}
    finally:
        engine.dispose()


async def _fail_logins(client: httpx.AsyncClient, n: int, forwarded_for: str | None) -> int:
    """``n`` wrong logins (each for another account), then a right one: its status."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    for i in range(n):
        resp = await client.post(
            "/api/token",
            data={"username": f"tidak-ada-{uuid.uuid4().hex[:6]}-{i}", "password": "x" * 12},
            headers=headers,
        )
        assert resp.status_code == 401, resp.text
    right = await client.post(
        "/api/token", data={"username": "admin", "password": PASSWORD}, headers=headers
    )
    return right.status_code


async def test_x_forwarded_for_is_believed_only_from_a_configured_proxy(
    served: Any, ledger_url: str
) -> None:
    auth = auth_settings(login_max_failures_per_ip=3)
    # the default: no proxy trusted, not even 127.0.0.1; a forged header changes nothing
    local = await served(api_settings(ledger_url=ledger_url, auth=auth), peer="127.0.0.1")
    statuses = [await _fail_logins(local, 1, f"203.0.113.{i}") for i in range(3)]
    assert statuses == [200, 200, 429]  # three forwarded "clients", one address: 127.0.0.1
    blocked = await local.post(
        "/api/token",
        data={"username": "admin", "password": PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.99"},
    )
    assert blocked.status_code == 429  # 127.0.0.1 has had its three failures
    # a configured proxy: each forwarded client counts on its own
    proxied = api_settings(
        ledger_url=ledger_url, auth=auth, http=HttpSettings(trusted_proxies=["10.0.0.0/24"])
    )
    via_proxy = await served(proxied, peer="10.0.0.7")
    assert await _fail_logins(via_proxy, 2, "198.51.100.1") == 200
    assert await _fail_logins(via_proxy, 3, "198.51.100.2") == 429
    assert await _fail_logins(via_proxy, 0, "198.51.100.3") == 200
    # ... and what a proxy says of the scheme: https, so the session cookie is Secure
    form = await with_csrf(via_proxy, {"username": "admin", "password": PASSWORD})
    signed = await via_proxy.post(
        "/masuk",
        data=form,
        headers={"X-Forwarded-For": "198.51.100.4", "X-Forwarded-Proto": "https"},
    )
    assert signed.status_code == 303
    assert "secure" in signed.headers["set-cookie"].lower()
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            ips = [e.client_ip for e in access.audit_entries(s, actor="admin", limit=10)]
        assert "198.51.100.4" in ips
    finally:
        engine.dispose()
    # a peer outside the trusted network forwards nothing: its own address counts
    other = await served(proxied, peer="192.0.2.50")
    assert await _fail_logins(other, 3, "198.51.100.9") == 429
    assert await _fail_logins(other, 0, "198.51.100.10") == 429


def test_wastebank_api_leaves_forwarding_headers_to_the_app() -> None:
    """uvicorn's own X-Forwarded-* handling would believe 127.0.0.1 whatever the settings."""
    from typer.testing import CliRunner

    from wastebank.cli import app as cli

    for workers in ("1", "2"):
        with mock.patch("uvicorn.run") as run:
            result = CliRunner().invoke(cli, ["api", "--workers", workers])
        assert result.exit_code == 0, result.output
        assert run.call_args.kwargs["proxy_headers"] is False


# ---- logout ends the token --------------------------------------------------------------------


async def test_revoking_a_bearer_token_ends_it_at_once_in_every_process(
    served: Any, ledger_url: str
) -> None:
    settings = api_settings(ledger_url=ledger_url)
    one, two = await served(settings), await served(settings)
    bearer = await login(one, "AMB-0001", PIN)
    other = await login(one, "AMB-0001", PIN)  # the same member on another phone
    assert (await two.get("/api/me", headers=bearer)).status_code == 200
    token = bearer["Authorization"].removeprefix("Bearer ")
    resp = await one.post("/api/token/revoke", data={"token": token})
    assert resp.status_code == 200
    for client in (one, two):
        refused = await client.get("/api/members/AMB-0001/balance", headers=bearer)
        assert refused.status_code == 401
        assert (
            refused.json()["detail"]
            == "token tidak sah atau kedaluwarsa / invalid or expired token"
        )
    assert (await two.get("/api/me", headers=other)).status_code == 200  # only that token
    # again, or no token of ours: the same answer (RFC 7009), nothing recorded
    assert (await one.post("/api/token/revoke", data={"token": token})).status_code == 200
    assert (await one.post("/api/token/revoke", data={"token": "x.y.z"})).status_code == 200
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            logouts = access.audit_entries(s, actor="AMB-0001")
            assert [e.action for e in logouts].count("auth.logout") == 1
            assert s.scalars(select(access.RevokedToken)).one().user_id is not None
    finally:
        engine.dispose()


async def test_logging_out_of_the_pages_ends_the_session_cookie(
    served: Any, ledger_url: str
) -> None:
    client = await served(api_settings(ledger_url=ledger_url))
    form = await with_csrf(client, {"username": "AMB-0001", "password": PIN})
    assert (await client.post("/masuk", data=form)).status_code == 303
    kept = client.cookies["wb_sesi"]
    assert (await client.get("/nasabah/AMB-0001")).status_code == 200
    out = await client.post("/keluar", data=await with_csrf(client))
    assert out.status_code == 303
    assert "wb_sesi" not in client.cookies
    # a copy of the cookie kept from before (another tab, a stolen cookie) no longer works
    client.cookies.set("wb_sesi", kept)
    again = await client.get("/nasabah/AMB-0001")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/masuk")
    # as a bearer token either (it is of the session kind, refused there anyway)
    assert (
        await client.get("/api/me", headers={"Authorization": f"Bearer {kept}"})
    ).status_code == 401


def test_tokens_carry_an_id_and_old_ones_without_it_are_refused() -> None:
    import jwt

    key = b"k" * 40
    user = access.User(id=7, role="citizen", token_version=0)
    a = access.read_claims(
        access.issue_token(user, key, timedelta(minutes=5), "access"), key, "access"
    )
    b = access.read_claims(
        access.issue_token(user, key, timedelta(minutes=5), "access"), key, "access"
    )
    assert a.jti != b.jti
    assert len(a.jti) >= 16
    legacy = jwt.encode(
        {"sub": "7", "ver": 0, "typ": "access", "iat": 1, "exp": 4_000_000_000}, key, "HS256"
    )
    with pytest.raises(access.InvalidToken):
        access.read_claims(legacy, key, "access")


# ---- CSRF bound to the session ----------------------------------------------------------------


async def test_a_csrf_token_works_only_in_its_own_session(served: Any, ledger_url: str) -> None:
    client: httpx.AsyncClient = await served(api_settings(ledger_url=ledger_url))
    login_page = await client.get("/masuk")
    anonymous_token = csrf_of(login_page.text)  # the login form works before any session
    csrf_cookie = client.cookies["wb_csrf"]

    async def session_of(username: str, secret: str) -> tuple[str, str]:
        client.cookies.clear()
        client.cookies.set("wb_csrf", csrf_cookie)  # one browser cookie, planted or not
        resp = await client.post(
            "/masuk",
            data={"username": username, "password": secret, "csrf_token": anonymous_token},
        )
        assert resp.status_code == 303, resp.text
        page = await client.get(resp.headers["location"])
        return client.cookies["wb_sesi"], csrf_of(page.text)

    a_session, a_token = await session_of("AMB-0001", PIN)
    b_session, b_token = await session_of("AMB-0002", "975318")
    assert len({anonymous_token, a_token, b_token}) == 3

    async def withdraw(session: str, token: str) -> httpx.Response:
        client.cookies.clear()
        client.cookies.set("wb_csrf", csrf_cookie)
        client.cookies.set("wb_sesi", session)
        return await client.post(
            "/nasabah/AMB-0002/penarikan", data={"amount_idr": "10000", "csrf_token": token}
        )

    # B's session with A's token (an attacker's own, planted with the same wb_csrf cookie)
    refused = await withdraw(b_session, a_token)
    assert refused.status_code == 403
    assert "Formulir kedaluwarsa" in refused.text
    assert (await withdraw(b_session, anonymous_token)).status_code == 403
    # B's own token passes the CSRF check (the member's balance then decides)
    assert (await withdraw(b_session, b_token)).status_code != 403


# ---- no 500 from any parameter ----------------------------------------------------------------

MEMBER_A, BANK_1 = "AMB-0001", "bs-batu-merah"

# A valid value per parameter name, for the parameters a case does not vary.
VALID: dict[str, Any] = {
    "member_no": MEMBER_A,
    "bank_code": BANK_1,
    "category_code": "pet",
    "code": "tps-batu-merah",
    "event_id": "M-HARD-0001",
    "withdrawal_id": 1,
    "month": "2026-10",
    "year": 2026,
    "start": "2026-11-01",
    "end": "2026-11-02",
}

HUGE_INTS = [
    "0",
    "-1",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "1" + "0" * 40,
    "1e3",
    "١٢٣",
    "",
    " 7 ",
]
DATES = [
    "0001-01-01",
    "9999-12-31",
    "1677-09-21",
    "2262-04-12",
    "1970-01-01",
    "2026-02-30",
    "+10000-01-01",
    "２０２６-１１-０１",
    "1",
]
DATE_TIMES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59.999999",
    "2026-11-01T10:00:00",
    "1e30",
]
MONTHS = [
    "9999-12",
    "0000-01",
    "0001-01",
    "2026-13",
    "2026-00",
    "١٢٣٤-١٠",
    "２０２６-１０",
    "10000-01",
]
STRINGS = [
    "",
    " ",
    "ſby-0001",
    "AMB-0001\x00",
    "x" * 5000,
    "💩",
    "../../etc/passwd",
    "%",
    "İ" * 40,
    "\u202eAMB",
    "AMB-0001\n",
    "' OR 1=1 --",
    "null",
]


def edge_values(name: str, schema: dict[str, Any]) -> list[Any]:
    kinds = [schema, *schema.get("anyOf", [])]
    types = {k.get("type") for k in kinds}
    formats = {k.get("format") for k in kinds}
    if name == "month":
        return MONTHS + STRINGS[:4]
    if "date" in formats:
        return DATES + STRINGS[:4]
    if "date-time" in formats:
        return DATE_TIMES + DATES[:3] + STRINGS[:3]
    if "integer" in types:
        return HUGE_INTS + STRINGS[:3]
    if "array" in types:
        return [["x"] * 500, ["💩"], [""], ["M-HARD-0001"] * 3]
    if "boolean" in types:
        return ["2", "ya", ""]
    return STRINGS


def valid_value(name: str, schema: dict[str, Any]) -> Any:
    if name in VALID:
        return VALID[name]
    kinds = [schema, *schema.get("anyOf", [])]
    for k in kinds:
        if "enum" in k:
            return k["enum"][0]
        if k.get("format") == "date":
            return "2026-11-01"
        if k.get("type") == "integer":
            return max(1, k.get("minimum", 1))
        if k.get("type") == "array":
            return [VALID.get(name, "x")]
    return "x"


def cases(openapi: dict[str, Any]) -> Iterator[tuple[str, str, str, Any, dict[str, Any]]]:
    """(method, path, varied parameter, its value, the request's path and query) for every
    path and query parameter of every operation x its edge values."""
    for path, ops in openapi["paths"].items():
        for method, op in ops.items():
            params = [p for p in op.get("parameters", []) if p["in"] in ("path", "query")]
            for param in params:
                for value in edge_values(param["name"], param["schema"]):
                    values = {
                        p["name"]: (value if p is param else valid_value(p["name"], p["schema"]))
                        for p in params
                        if p is param or p.get("required")
                    }
                    yield (
                        method.upper(),
                        path,
                        param["name"],
                        value,
                        {
                            "path": {
                                p["name"]: values[p["name"]] for p in params if p["in"] == "path"
                            },
                            "query": {
                                p["name"]: values[p["name"]]
                                for p in params
                                if p["in"] == "query" and p["name"] in values
                            },
                        },
                    )


def _url(path: str, values: dict[str, Any]) -> str:
    from urllib.parse import quote

    for name, value in values.items():
        path = path.replace("{" + name + "}", quote(str(value), safe=""))
    return path


async def _sessions(client: httpx.AsyncClient, who: dict[str, tuple[str, str]]) -> dict[str, Any]:
    out = {}
    for name, (username, secret) in who.items():
        bearer = await login(client, username, secret)
        client.cookies.clear()
        form = await with_csrf(client, {"username": username, "password": secret})
        assert (await client.post("/masuk", data=form)).status_code == 303
        cookies = dict(client.cookies)
        client.cookies.clear()
        out[name] = (bearer, cookies)
    return out


@pytest.mark.integration
async def test_no_parameter_of_any_route_answers_500(
    ledger_url: str, running_services: services.ServicesSettings
) -> None:
    influx = services.influx_admin_settings(
        running_services, f"test_hardening_{uuid.uuid4().hex[:10]}"
    )
    made = Influx(influx)
    await made.ensure_database()
    who = add_users(ledger_url, ("admin", "attendant_1", "citizen_a"))
    settings = api_settings(
        ledger_url=ledger_url,
        mqtt=MqttSettings(port=running_services.mqtt_port),
        influx=influx,
        auth=auth_settings(login_max_failures=10**6, login_max_failures_per_ip=10**6),
    )
    app = create_app(settings)
    failures: list[str] = []
    sent = 0
    try:
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                sessions = await _sessions(client, who)
                for method, path, name, value, req in cases(app.openapi()):
                    for role, (bearer, cookies) in sessions.items():
                        client.cookies.clear()
                        client.cookies.update(cookies)
                        resp = await client.request(
                            method, _url(path, req["path"]), params=req["query"], headers=bearer
                        )
                        sent += 1
                        if resp.status_code >= 500 and resp.status_code != 503:
                            failures.append(
                                f"{method} {path} {name}={value!r:.60} as {role}: "
                                f"{resp.status_code} {resp.text[:200]}"
                            )
    finally:
        await made.drop_database()
        await made.aclose()
    assert sent > 1000
    assert failures == [], "\n".join(failures)
