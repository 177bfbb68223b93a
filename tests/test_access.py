"""Access: PINs and passwords, tokens, the signing key, login limits, the audit log, personal
data, and the roles' edges the matrix (tests/test_authz_matrix.py) does not show."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api.app import create_app
from api.settings import ApiSettings
from tests.auth_helpers import (
    OTHER_PIN,
    PASSWORD,
    PIN,
    add_users,
    api_settings,
    auth_settings,
    login,
    with_csrf,
)
from tests.conftest import deposit_event
from tests.ledger_helpers import read_token
from wastebank import access, ledger
from wastebank.cli import app as cli
from wastebank.config import SecretStr

NIK = "8171014501900001"  # the shape of a NIK (Kota Ambon, 5 Jan 1990); not a real person's


# ---- secrets and tokens (no database) ---------------------------------------------------------


@pytest.mark.parametrize("pin", ["12345", "1234567", "12a456", "000000", "123456", "987654"])
def test_weak_or_malformed_pins_are_refused(pin: str) -> None:
    with pytest.raises(access.AccessError):
        access.check_secret(access.Role.CITIZEN, pin)


def test_generated_pins_pass_and_staff_need_a_real_password() -> None:
    for _ in range(50):
        access.check_secret(access.Role.CITIZEN, access.generate_pin())
    access.check_secret(access.Role.ADMIN, "panjang-sekali-99", "admin")
    with pytest.raises(access.AccessError):
        access.check_secret(access.Role.ADMIN, "pendek", "admin")
    with pytest.raises(access.AccessError):
        access.check_secret(access.Role.DLH, "dlh-ambon-1", "DLH-AMBON-1")


def _user(version: int = 0) -> access.User:
    return access.User(id=7, role="citizen", token_version=version)


def test_tokens_are_signed_typed_and_expire() -> None:
    key = b"k" * 8 + os.urandom(32)
    token = access.issue_token(_user(3), key, timedelta(minutes=5), "access")
    assert read_token(token, key, "access") == (7, 3)
    with pytest.raises(access.InvalidToken):
        read_token(token, key, "session")  # a bearer token is no page session
    with pytest.raises(access.InvalidToken):
        read_token(token, os.urandom(40), "access")
    with pytest.raises(access.InvalidToken):
        read_token(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], key, "access")
    old = access.issue_token(
        _user(), key, timedelta(minutes=5), "access", now=datetime.now(UTC) - timedelta(hours=1)
    )
    with pytest.raises(access.InvalidToken):
        read_token(old, key, "access")
    with pytest.raises(access.InvalidToken):
        read_token("not-a-token", key, "access")


def test_the_signing_key_is_generated_once_into_the_run_dir(tmp_path: Path) -> None:
    settings = access.AuthSettings(secret_file=tmp_path / "run" / "api-secret.key")
    key = access.signing_key(settings)
    assert len(key) >= 32
    assert stat.S_IMODE(settings.secret_file.stat().st_mode) == 0o600
    assert access.signing_key(settings) == key  # a restart, or another process: the same key
    assert list(settings.secret_file.parent.iterdir()) == [settings.secret_file]
    raw = "a-key-from-the-settings-0123456789abcdef"
    given = access.AuthSettings(secret_key=SecretStr(raw), secret_file=tmp_path / "none")
    assert access.signing_key(given) == raw.encode()
    assert not (tmp_path / "none").exists()


def test_placeholder_and_short_keys_are_refused(tmp_path: Path) -> None:
    for bad in ("changeme", "a" * 40):
        with pytest.raises(ValueError, match="placeholder|32"):
            access.AuthSettings(secret_key=SecretStr(bad))
    short = tmp_path / "short.key"
    short.write_text("too-short\n")
    with pytest.raises(access.AccessError, match="32"):
        access.signing_key(access.AuthSettings(secret_file=short))


# ---- login limits -----------------------------------------------------------------------------


def test_failed_logins_lock_the_account_then_the_address(ledger_url: str) -> None:
    add_users(ledger_url, ("citizen_a", "citizen_b"))
    settings = auth_settings(login_max_failures=5, login_max_failures_per_ip=8)
    hasher = access.password_hasher(settings)
    engine = ledger.make_engine(ledger_url)
    t0 = datetime.now(UTC)

    def attempt(login: str, secret: str, at: datetime, ip: str = "10.0.0.1") -> str:
        with Session(engine) as s:
            try:
                user = access.authenticate(
                    s, login, secret, client_ip=ip, settings=settings, hasher=hasher, now=at
                )
            except access.TooManyAttempts as exc:
                return f"429 {exc.retry_after_s}"
            except access.LoginRefused:
                return "401"
            return user.username

    try:
        for i in range(5):
            assert attempt("AMB-0001", "111111", t0 + timedelta(seconds=i)) == "401"
        # locked: even the right PIN is not checked, from any address
        locked = attempt("amb-0001", PIN, t0 + timedelta(seconds=10), ip="10.9.9.9")
        assert locked.startswith("429 ")
        assert 14 * 60 < int(locked.split()[1]) <= 15 * 60
        # the window slides past the first failure: one more try
        assert attempt("AMB-0001", PIN, t0 + timedelta(minutes=15, seconds=1)) == "AMB-0001"
        # a success cleared the account's failures
        assert attempt("AMB-0001", "111111", t0 + timedelta(minutes=16)) == "401"
        assert attempt("AMB-0001", PIN, t0 + timedelta(minutes=16, seconds=1)) == "AMB-0001"

        # one address trying many accounts: 8 failures in the window lock the address
        t1 = t0 + timedelta(hours=1)
        for i in range(2):
            assert attempt("AMB-0002", "111111", t1 + timedelta(seconds=i), ip="10.0.0.2") == "401"
        for i in range(6):
            assert attempt(f"nobody-{i}", "x", t1 + timedelta(seconds=i), ip="10.0.0.2") == "401"
        assert attempt("AMB-0002", OTHER_PIN, t1 + timedelta(seconds=9), ip="10.0.0.2").startswith(
            "429"
        )
        assert attempt("AMB-0002", OTHER_PIN, t1 + timedelta(seconds=9), ip="10.0.0.3") == (
            "AMB-0002"
        )
        with Session(engine) as s:  # failures outside the window are pruned
            oldest = s.scalar(select(func.min(access.LoginFailure.at)))
            assert oldest is not None
            assert oldest >= t1 - settings.login_window
    finally:
        engine.dispose()


# ---- through the API --------------------------------------------------------------------------


async def _client(settings: ApiSettings, base_url: str = "http://test") -> AsyncIterator[Any]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("192.0.2.10", 4321))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as c:
            yield c


@pytest.fixture
async def client(ledger_url: str) -> AsyncIterator[httpx.AsyncClient]:
    add_users(ledger_url)
    nik_key = SecretStr("nik-key-for-tests-only-4c1d9e8f7a6b5c4d3e2f")
    async for c in _client(api_settings(ledger_url=ledger_url, nik_key=nik_key)):
        yield c


async def test_the_api_limits_logins_across_processes(
    client: httpx.AsyncClient, ledger_url: str
) -> None:
    for _ in range(5):
        resp = await client.post("/api/token", data={"username": "AMB-0001", "password": "999999"})
        assert resp.status_code == 401
        assert "salah" in resp.json()["detail"]
    resp = await client.post("/api/token", data={"username": "AMB-0001", "password": PIN})
    assert resp.status_code == 429
    assert 0 < int(resp.headers["retry-after"]) <= 900
    # another API process on the same ledger counts the same failures
    async for other in _client(api_settings(ledger_url=ledger_url)):
        resp = await other.post("/api/token", data={"username": "AMB-0001", "password": PIN})
        assert resp.status_code == 429
        page = await other.post(
            "/masuk", data=await with_csrf(other, {"username": "AMB-0001", "password": PIN})
        )
        assert page.status_code == 429
        assert "terlalu banyak" in page.text
        assert "retry-after" in page.headers
    # other accounts are unaffected
    assert (await login(client, "AMB-0002", OTHER_PIN))["Authorization"].startswith("Bearer ")


async def test_tokens_end_when_a_user_is_disabled_or_their_pin_changes(
    client: httpx.AsyncClient, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WASTEBANK_AUTH__ARGON2_TIME_COST", "1")
    monkeypatch.setenv("WASTEBANK_AUTH__ARGON2_MEMORY_KIB", "8")
    monkeypatch.setenv("WASTEBANK_AUTH__ARGON2_PARALLELISM", "1")
    runner = CliRunner()
    siti = await login(client, "AMB-0001", PIN)
    assert (await client.get("/api/me", headers=siti)).json()["member_no"] == "AMB-0001"

    result = runner.invoke(cli, ["user", "set-pin", "AMB-0001", "--ledger-url", ledger_url])
    assert result.exit_code == 0, result.output
    new_pin = result.output.split("PIN: ")[1].split()[0]
    assert (await client.get("/api/me", headers=siti)).status_code == 401
    siti = await login(client, "AMB-0001", new_pin)
    assert (await client.get("/api/me", headers=siti)).status_code == 200

    result = runner.invoke(cli, ["user", "disable", "AMB-0001", "--ledger-url", ledger_url])
    assert result.exit_code == 0, result.output
    assert (await client.get("/api/me", headers=siti)).status_code == 401
    resp = await client.post("/api/token", data={"username": "AMB-0001", "password": new_pin})
    assert resp.status_code == 401

    result = runner.invoke(cli, ["user", "enable", "AMB-0001", "--ledger-url", ledger_url])
    assert result.exit_code == 0, result.output
    assert (
        await client.get("/api/me", headers=await login(client, "AMB-0001", new_pin))
    ).status_code == 200

    # a page session is no bearer token, and the other way round
    signed_in = await client.post(
        "/masuk", data=await with_csrf(client, {"username": "admin", "password": PASSWORD})
    )
    session_jwt = signed_in.cookies["wb_sesi"]
    client.cookies.clear()
    resp = await client.get("/api/me", headers={"Authorization": f"Bearer {session_jwt}"})
    assert resp.status_code == 401

    result = runner.invoke(cli, ["user", "list", "--ledger-url", ledger_url])
    assert "petugas-bm-01" in result.output
    assert "banks bs-batu-merah,bs-rijali" in result.output
    audit = [e.action for e in _audit(ledger_url, "user", "AMB-0001") if e.role == "cli"]
    assert audit == ["user.enable", "user.disable", "user.set_secret", "user.add"]


def _audit(ledger_url: str, entity: str, entity_id: str) -> list[access.AuditEntry]:
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine, expire_on_commit=False) as s:
            return access.audit_entries(s, entity=entity, entity_id=entity_id)
    finally:
        engine.dispose()


def _count(ledger_url: str, model: type[Any]) -> int:
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            return s.scalar(select(func.count()).select_from(model)) or 0
    finally:
        engine.dispose()


def _seed_savings(ledger_url: str, member_no: str = "AMB-0001", grams: int = 10_000) -> None:
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            bank = ledger.get_member(s, member_no)
            assert bank is not None
            ledger.record_manual_deposit(
                s,
                bank_code=bank.bank.code,
                member_no=member_no,
                category_code="pet",
                net_g=grams,
                measured_at=datetime.now(UTC) - timedelta(hours=1),
                author="petugas-bm-01",
                reason="tabungan / savings",
            )
            s.commit()
    finally:
        engine.dispose()


async def test_a_write_and_its_audit_entry_commit_together(
    client: httpx.AsyncClient, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed_savings(ledger_url)  # Rp40,000
    siti = await login(client, "AMB-0001", PIN)
    headers = siti | {"User-Agent": "HP Siti/1.0"}
    resp = await client.post(
        "/api/members/AMB-0001/withdrawals", json={"amount_idr": 15_000}, headers=headers
    )
    assert resp.status_code == 201, resp.text
    wid = resp.json()["id"]
    (entry,) = _audit(ledger_url, "withdrawal", str(wid))
    assert (entry.actor, entry.role, entry.action) == ("AMB-0001", "citizen", "withdrawal.request")
    assert entry.user_id is not None
    assert (entry.client_ip, entry.user_agent) == ("192.0.2.10", "HP Siti/1.0")
    assert entry.at.tzinfo is not None
    assert abs(entry.at - datetime.now(UTC)) < timedelta(minutes=1)
    assert entry.summary == "AMB-0001 Rp15000"

    # a refused write leaves neither the write nor an audit entry
    before = _count(ledger_url, access.AuditEntry)
    resp = await client.post(
        "/api/members/AMB-0001/withdrawals", json={"amount_idr": 30_000}, headers=siti
    )
    assert resp.status_code == 409
    assert "saldo tidak cukup" in resp.json()["detail"]
    assert _count(ledger_url, access.AuditEntry) == before
    assert _count(ledger_url, ledger.Withdrawal) == 1

    # the audit entry cannot be written: the request rolls back the ledger's write too
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(access, "audit", broken)
    with pytest.raises(RuntimeError, match="audit log unavailable"):
        await client.post(
            "/api/members/AMB-0001/withdrawals", json={"amount_idr": 10_000}, headers=siti
        )
    assert _count(ledger_url, ledger.Withdrawal) == 1


async def test_personal_data_is_for_the_member_their_bank_and_admins(
    client: httpx.AsyncClient, ledger_url: str
) -> None:
    nurlela = await login(client, "petugas-bm-01", PASSWORD)
    body = {
        "member_no": "AMB-0009",
        "name": "Ina Pattimura",
        "phone": "081211112222",
        "kelurahan": "Batu Merah",
        "rt": 7,
        "rw": 3,
        "nik": NIK,
        "cards": ["04A1B2C3E9"],
    }
    resp = await client.post("/api/banks/bs-batu-merah/members", json=body, headers=nurlela)
    assert resp.status_code == 201, resp.text
    made = resp.json()
    assert made["nik_on_file"] is True
    assert (made["phone"], made["kecamatan"], made["rt"], made["rw"]) == (
        "081211112222",
        "Sirimau",
        "007",
        "003",
    )
    assert NIK not in resp.text
    (entry,) = _audit(ledger_url, "member", "AMB-0009")
    assert entry.summary == "bank bs-batu-merah"  # no personal data in the audit log

    again = await client.post(
        "/api/banks/bs-batu-merah/members",
        json=body | {"member_no": "AMB-0010", "cards": []},
        headers=nurlela,
    )
    assert again.status_code == 409
    assert "NIK" in again.json()["detail"]
    assert "AMB-0009" in again.json()["detail"]

    dlh = await login(client, "dlh-ambon", PASSWORD)
    seen = (await client.get("/api/members/AMB-0009", headers=dlh)).json()
    assert seen == {
        "member_no": "AMB-0009",
        "bank_code": "bs-batu-merah",
        "kind": "individual",
        "personal": False,
        "name": None,
        "phone": None,
        "kecamatan": None,
        "kelurahan": None,
        "rt": None,
        "rw": None,
        "cards": None,
        "nik_on_file": None,
        "has_login": None,
        "sms_opt_in": None,
    }
    listed = (await client.get("/api/banks/bs-batu-merah/members", headers=dlh)).json()
    assert {m["member_no"] for m in listed} >= {"AMB-0001", "AMB-0009"}
    assert all(m["name"] is None for m in listed)
    assert (await client.get("/api/members/AMB-0009/balance", headers=dlh)).json()["name"] is None

    admin = await login(client, "admin", PASSWORD)
    export = await client.get("/api/members/AMB-0009/export", headers=admin)
    assert export.status_code == 200
    assert export.json()["data"]["profile"]["phone"] == "081211112222"
    assert NIK not in export.text

    # the member's own export: their data, deposits, login and what was done with it
    _seed_savings(ledger_url)
    siti = await login(client, "AMB-0001", PIN)
    mine = (await client.get("/api/members/AMB-0001/export", headers=siti)).json()
    assert mine["data"]["profile"]["name"] == "Siti Latuconsina"
    assert mine["data"]["statement"]["closing_balance_idr"] == 40_000
    assert len(mine["data"]["deposits"]) == 1
    assert mine["login"]["username"] == "AMB-0001"
    assert "auth.login" in {e["action"] for e in mine["audit"]}
    # another member's is not found, and an attendant may read it but not export it
    assert (await client.get("/api/members/AMB-0009/export", headers=siti)).status_code == 404
    assert (await client.get("/api/members/AMB-0009/export", headers=nurlela)).status_code == 403

    # attendants update addresses; a cleared field is cleared
    resp = await client.patch(
        "/api/members/AMB-0009", json={"phone": None, "rt": 12}, headers=nurlela
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["phone"], resp.json()["rt"]) == (None, "012")
    assert _audit(ledger_url, "member", "AMB-0009")[0].summary == "phone, rt"


async def test_an_induk_attendant_acts_at_its_units_not_the_other_way(
    client: httpx.AsyncClient, ledger_url: str
) -> None:
    engine = ledger.make_engine(ledger_url)
    with Session(engine) as s:  # Fatma, petugas of the unit bs-rijali
        access.add_user(
            s,
            role="attendant",
            username="petugas-rjl-01",
            secret=PASSWORD,
            hasher=access.password_hasher(auth_settings()),
            actor=access.Actor("test", "cli"),
        )
        s.commit()
    engine.dispose()
    nurlela = await login(client, "petugas-bm-01", PASSWORD)
    fatma = await login(client, "petugas-rjl-01", PASSWORD)
    deposit = {"member_no": "AMB-0201", "category": "kardus", "net_g": 4000, "reason": "manual"}
    resp = await client.post("/api/banks/bs-rijali/deposits", json=deposit, headers=nurlela)
    assert resp.status_code == 201, resp.text
    assert resp.json()["amount_idr"] == 6000  # at the induk's price (Rp1,500/kg)
    resp = await client.post("/api/banks/bs-rijali/deposits", json=deposit, headers=fatma)
    assert resp.status_code == 201
    to_induk = deposit | {"member_no": "AMB-0002"}
    resp = await client.post("/api/banks/bs-batu-merah/deposits", json=to_induk, headers=fatma)
    assert resp.status_code == 403
    resp = await client.get("/api/members/AMB-0002", headers=fatma)
    assert resp.status_code == 404
    me = (await client.get("/api/me", headers=nurlela)).json()
    assert me["bank_codes"] == ["bs-batu-merah", "bs-rijali"]
    # a unit that buys at its induk's prices has no list of its own
    resp = await client.put(
        "/api/banks/bs-rijali/prices/pet", json={"price_idr": 4500}, headers=nurlela
    )
    assert resp.status_code == 409
    prices = (await client.get("/api/banks/bs-rijali/prices")).json()
    assert prices["price_bank_code"] == "bs-batu-merah"
    assert {p["category_code"]: p["price_idr"] for p in prices["prices"]}["pet"] == 4000


async def test_an_admin_sets_prices_as_themself(client: httpx.AsyncClient, ledger_url: str) -> None:
    admin = await login(client, "admin", PASSWORD)
    since = datetime.now(UTC) + timedelta(days=1)
    resp = await client.put(
        "/api/banks/bs-nusaniwe/prices/pet",
        json={"price_idr": 3700, "effective_from": since.isoformat()},
        headers=admin,
    )
    assert resp.status_code == 200, resp.text
    engine = ledger.make_engine(ledger_url)
    with Session(engine) as s:
        price = s.scalar(select(ledger.Price).where(ledger.Price.price_per_kg_idr == 3700))
        assert price is not None
        assert price.created_by == "admin"
    engine.dispose()
    at = (since + timedelta(minutes=1)).isoformat()
    listed = (await client.get("/api/banks/bs-nusaniwe/prices", params={"at": at})).json()
    assert {p["category_code"]: p["price_idr"] for p in listed["prices"]}["pet"] == 3700


async def test_dlh_of_another_city_sees_nothing_here(
    client: httpx.AsyncClient, ledger_url: str
) -> None:
    engine = ledger.make_engine(ledger_url)
    with Session(engine) as s:
        s.add(ledger.City(code="tual", name="Kota Tual", timezone="Asia/Jayapura"))
        s.flush()
        access.add_user(
            s,
            role="dlh",
            username="dlh-tual",
            city_code="tual",
            secret=PASSWORD,
            hasher=access.password_hasher(auth_settings()),
            actor=access.Actor("test", "cli"),
        )
        s.commit()
    engine.dispose()
    tual = await login(client, "dlh-tual", PASSWORD)
    assert (await client.get("/api/banks/bs-batu-merah/members", headers=tual)).status_code == 403
    assert (await client.get("/api/members/AMB-0001", headers=tual)).status_code == 404
    tonnage = await client.get(
        "/api/tonnage", params={"start": "2026-11-01", "end": "2026-11-02"}, headers=tual
    )
    assert tonnage.status_code == 200
    assert tonnage.json()["groups"] == []


async def test_the_login_page(ledger_url: str) -> None:
    add_users(ledger_url, ("citizen_a",))
    async for client in _client(api_settings(ledger_url=ledger_url), "https://bank.example"):
        wrong = await client.post(
            "/masuk", data=await with_csrf(client, {"username": "AMB-0001", "password": "111111"})
        )
        assert wrong.status_code == 401
        assert "salah" in wrong.text
        assert "wb_sesi" not in wrong.headers.get("set-cookie", "")
        # never a redirect to another site
        for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
            form = {"username": "AMB-0001", "password": PIN, "next": target}
            resp = await client.post("/masuk", data=await with_csrf(client, form))
            assert resp.status_code == 303
            assert resp.headers["location"] == "/nasabah/AMB-0001"
        assert "secure" in resp.headers["set-cookie"].lower()  # served over https
        page = await client.get("/masuk")
        assert "Siti Latuconsina" in page.text
        out = await client.post("/keluar", data=await with_csrf(client))
        assert out.status_code == 303
        assert (
            'wb_sesi=""' in out.headers["set-cookie"]
            or "max-age=0" in out.headers["set-cookie"].lower()
        )
        assert (await client.get("/nasabah/AMB-0001")).status_code == 303


async def test_bad_requests_get_clear_4xx(client: httpx.AsyncClient, ledger_url: str) -> None:
    _seed_savings(ledger_url)  # Rp40,000
    nurlela = await login(client, "petugas-bm-01", PASSWORD)
    siti = await login(client, "AMB-0001", PIN)
    w = "/api/members/AMB-0001/withdrawals"
    cases: list[tuple[str, str, dict[str, Any] | None, dict[str, str], int, str]] = [
        ("POST", w, {"amount_idr": -5}, siti, 422, ""),
        ("POST", w, {"amount_idr": 5000}, siti, 422, "minimum"),
        ("POST", w, {"amount_idr": 10**9}, siti, 409, "saldo tidak cukup"),
        ("POST", w, {"amount_idr": 20000, "method": "ewallet"}, siti, 422, "tujuan"),
        ("POST", w, {"amount_idr": 20000, "method": "gold"}, siti, 422, ""),
        ("POST", w, {"amount_idr": 20000, "note": "x"}, siti, 422, ""),
        ("POST", "/api/withdrawals/999999/approve", None, nurlela, 404, "tidak ditemukan"),
        (
            "POST",
            "/api/banks/bs-batu-merah/deposits",
            {"member_no": "AMB-0001", "category": "emas", "net_g": 5, "reason": "x"},
            nurlela,
            422,
            "unknown category",
        ),
        (
            "POST",
            "/api/banks/bs-batu-merah/deposits",
            {"member_no": "AMB-0101", "category": "pet", "net_g": 5, "reason": "x"},
            nurlela,
            422,
            "another bank",
        ),
        (
            "POST",
            "/api/banks/bs-batu-merah/deposits",
            {"member_no": "AMB-0001", "category": "pet", "net_g": 5, "reason": "  "},
            nurlela,
            422,
            "",
        ),
        (
            "PUT",
            "/api/banks/bs-batu-merah/prices/pet",
            {"price_idr": 100, "effective_from": "2026-01-01T00:00:00"},
            nurlela,
            422,
            "",
        ),
        (
            "PUT",
            "/api/banks/bs-batu-merah/prices/pet",
            {"price_idr": 100, "effective_from": "2026-01-01T00:00:00+09:00"},
            nurlela,
            409,
            "riwayat harga",
        ),
        ("PUT", "/api/banks/bs-nope/prices/pet", {"price_idr": 100}, nurlela, 404, "bank"),
        (
            "POST",
            "/api/banks/bs-batu-merah/members",
            {"member_no": "AMB-0001", "name": "Dua Kali"},
            nurlela,
            409,
            "sudah ada",
        ),
        (
            "POST",
            "/api/banks/bs-batu-merah/members",
            {"member_no": "AMB-0099", "name": "X", "kelurahan": "Atlantis"},
            nurlela,
            422,
            "kelurahan",
        ),
        (
            "POST",
            "/api/banks/bs-batu-merah/sales",
            {"category": "pet", "grams": 10**8, "collector": "ud-galala-plastik", "revenue_idr": 1},
            nurlela,
            409,
            "stok tidak cukup",
        ),
        ("PATCH", "/api/members/AMB-0001", {"name": None}, nurlela, 422, "kosong"),
        ("GET", "/api/banks/bs-batu-merah/prices?at=2026-01-01T00:00:00", None, siti, 422, ""),
    ]
    for method, url, body, headers, status, text in cases:
        resp = await client.request(method, url, json=body, headers=headers)
        assert resp.status_code == status, (method, url, body, resp.text)
        detail = json.dumps(resp.json()["detail"], ensure_ascii=False)  # pydantic's: a list
        assert text in detail, (method, url, body, detail)
    resp = await client.post(
        w, content=b"{not json", headers=siti | {"content-type": "application/json"}
    )
    assert resp.status_code == 422

    # a withdrawal's life: requested, paid only once approved, paid once
    wid = (await client.post(w, json={"amount_idr": 10_000}, headers=siti)).json()["id"]
    pay = f"/api/withdrawals/{wid}/pay"
    assert (await client.post(pay, json={}, headers=nurlela)).status_code == 409
    ok = await client.post(f"/api/withdrawals/{wid}/approve", headers=nurlela)
    assert ok.status_code == 200
    assert (await client.post(pay, json={"payout_ref": "kas-1"}, headers=nurlela)).json()[
        "status"
    ] == "paid"
    assert (await client.post(pay, json={}, headers=nurlela)).status_code == 409
    cancel = await client.post(f"/api/withdrawals/{wid}/cancel", json={}, headers=siti)
    assert cancel.status_code == 409
    balance = (await client.get("/api/members/AMB-0001/balance", headers=siti)).json()
    assert (balance["balance_idr"], balance["available_idr"]) == (30_000, 30_000)

    # a deposit voided twice
    made = await client.post(
        "/api/banks/bs-batu-merah/deposits",
        json={"member_no": "AMB-0001", "category": "pet", "net_g": 500, "reason": "manual"},
        headers=nurlela,
    )
    event_id = made.json()["event_id"]
    void = f"/api/deposits/{event_id}/void"
    assert (await client.post(void, json={"reason": "salah"}, headers=nurlela)).status_code == 200
    again = await client.post(void, json={"reason": "salah"}, headers=nurlela)
    assert again.status_code == 409
    assert "sudah dibatalkan" in again.json()["detail"]
    # the same idempotency key again is the same deposit (a safe retry), answered 200
    retry = {"member_no": "AMB-0001", "category": "pet", "net_g": 500, "reason": "r"}
    retry["idempotency_key"] = "hp-nurlela-0001"
    first = await client.post("/api/banks/bs-batu-merah/deposits", json=retry, headers=nurlela)
    second = await client.post("/api/banks/bs-batu-merah/deposits", json=retry, headers=nurlela)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["outcome"] == "duplicate"
    assert second.json()["event_id"] == first.json()["event_id"]
    assert len(_audit(ledger_url, "deposit", first.json()["event_id"])) == 1


async def test_manual_deposit_ids_are_the_servers_and_retries_carry_a_key(
    client: httpx.AsyncClient, ledger_url: str
) -> None:
    """A manual deposit's id is issued by the server (``M-XXXX-XXXX``); a client that sends an
    ``event_id`` is refused and takes nothing, so the scale deposit that later arrives with that
    id is applied. Retries carry an ``idempotency_key``, the author's own."""
    engine = ledger.make_engine(ledger_url)
    with Session(engine) as s:  # Fatma, petugas of the unit bs-rijali
        access.add_user(
            s,
            role="attendant",
            username="petugas-rjl-01",
            secret=PASSWORD,
            hasher=access.password_hasher(auth_settings()),
            actor=access.Actor("test", "cli"),
        )
        s.commit()
    engine.dispose()
    nurlela = await login(client, "petugas-bm-01", PASSWORD)
    fatma = await login(client, "petugas-rjl-01", PASSWORD)
    url = "/api/banks/bs-batu-merah/deposits"
    entry = {"member_no": "AMB-0001", "category": "pet", "net_g": 500, "reason": "scale down"}

    made = await client.post(url, json=entry, headers=nurlela)
    assert made.status_code == 201, made.text
    assert re.fullmatch(ledger.MANUAL_ID_PATTERN, made.json()["event_id"])
    # a device's id, taken by a client: refused, and never stored
    for taken in ("gw-01-77", "gw-01.k3m9q.77", "M-0000-0000"):
        refused = await client.post(url, json=entry | {"event_id": taken}, headers=nurlela)
        assert refused.status_code == 422, refused.text
        assert "event_id is issued by the server; use idempotency_key" in refused.text
    assert _deposit_ids(ledger_url) == {made.json()["event_id"]}
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            (scale,) = ledger.apply_deposits(s, [deposit_event(77)])
            s.commit()
            assert isinstance(scale, ledger.AppliedDeposit), scale
            assert (scale.event_id, scale.outcome) == ("gw-01-77", ledger.Outcome.APPLIED)
    finally:
        engine.dispose()

    # a retry: 200 and the same deposit, nothing new written
    keyed = entry | {"idempotency_key": "tablet-1:2026-11-23:0001"}
    first = await client.post(url, json=keyed, headers=nurlela)
    before = (_count(ledger_url, ledger.Deposit), _count(ledger_url, ledger.JournalEntry))
    second = await client.post(url, json=keyed | {"reason": "resent"}, headers=nurlela)
    assert (first.status_code, second.status_code) == (201, 200), second.text
    assert second.json() == first.json() | {"outcome": "duplicate"}
    assert (_count(ledger_url, ledger.Deposit), _count(ledger_url, ledger.JournalEntry)) == before
    # the same key with another deposit: 409, nothing written
    other = await client.post(url, json=keyed | {"net_g": 600}, headers=nurlela)
    assert other.status_code == 409, other.text
    assert "idempotency_key" in other.json()["detail"]
    assert first.json()["event_id"] in other.json()["detail"]
    assert (_count(ledger_url, ledger.Deposit), _count(ledger_url, ledger.JournalEntry)) == before
    # another attendant's same key is their own
    theirs = await client.post(
        "/api/banks/bs-rijali/deposits",
        json=keyed | {"member_no": "AMB-0201"},
        headers=fatma,
    )
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["event_id"] != first.json()["event_id"]


def _deposit_ids(ledger_url: str) -> set[str]:
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            return set(s.scalars(select(ledger.Deposit.event_id)))
    finally:
        engine.dispose()


async def test_concurrent_withdrawal_requests_never_overdraw(
    client: httpx.AsyncClient, ledger_url: str
) -> None:
    _seed_savings(ledger_url)  # Rp40,000: room for two of Rp15,000, not three
    siti = await login(client, "AMB-0001", PIN)
    w = "/api/members/AMB-0001/withdrawals"
    results = await asyncio.gather(
        *(client.post(w, json={"amount_idr": 15_000}, headers=siti) for _ in range(3))
    )
    assert sorted(r.status_code for r in results) == [201, 201, 409]


async def test_statements_and_receipts_for_the_member_and_their_bank(
    client: httpx.AsyncClient, ledger_url: str
) -> None:
    _seed_savings(ledger_url)
    siti = await login(client, "AMB-0001", PIN)
    dlh = await login(client, "dlh-ambon", PASSWORD)
    url = "/api/members/AMB-0001/statement"
    st = (await client.get(url, headers=siti)).json()
    assert (st["member_no"], st["closing_balance_idr"]) == ("AMB-0001", 40_000)
    pdf = await client.get(url, params={"format": "pdf"}, headers=siti)
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert pdf.headers["cache-control"] == "private, no-store"
    csv = await client.get(url, params={"format": "csv"}, headers=siti)
    assert csv.headers["content-disposition"] == 'attachment; filename="buku-tabungan-AMB-0001.csv"'
    assert (await client.get(url, headers=dlh)).status_code == 403  # it names the member
    backwards = {"date_from": "2026-11-02", "date_to": "2026-11-01"}
    assert (await client.get(url, params=backwards, headers=siti)).status_code == 422

    (deposit,) = (await client.get("/api/members/AMB-0001/transactions", headers=siti)).json()
    receipt = await client.get(
        "/api/receipts",
        params={"event_id": deposit["event_id"], "format": "text", "width": 48},
        headers=siti,
    )
    assert receipt.status_code == 200
    assert max(len(line) for line in receipt.text.splitlines()) <= 48
    other = await login(client, "AMB-0002", OTHER_PIN)
    refused = await client.get(
        "/api/receipts", params={"event_id": deposit["event_id"]}, headers=other
    )
    assert refused.status_code == 404
