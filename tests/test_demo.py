"""`wastebank demo` (wastebank/demo.py) without starting the whole city: the demo city's two
attendants at each bank and a working login for each, the URL list (every attendant page of
each gateway, both logins, the second-person limit, where SMS land), the limit the children
get, and `wastebank sms run` started on a dummy SMSD's folders, handing an opted-in member's
deposit receipt to SMSD's outbox from the demo's ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from api.settings import ApiSettings
from tests.conftest import deposit_event, eventually
from tests.ledger_helpers import apply_deposit
from wastebank import access, demo, ledger, sms
from wastebank.access.passwords import verify_secret
from wastebank.config import load_settings
from wastebank.seed import seed_demo
from wastebank.services import ServicesSettings
from wastebank.sms.gammu import dummy_config

TWO_PER_BANK = {
    "bs-batu-merah": ["petugas-bm-01", "petugas-bm-04"],
    "bs-nusaniwe": ["petugas-nsw-01", "petugas-nsw-02"],
    "bs-rijali": ["petugas-rjl-01", "petugas-rjl-02"],
}
PAGES = ("/petugas", "/petugas/penarikan", "/petugas/nasabah", "/petugas/stok", "/petugas/hari-ini")


@pytest.fixture
def demo_ledger(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    seed_demo(url)
    return url


def test_two_attendants_at_each_bank_each_with_a_login_and_every_page_listed(
    demo_ledger: str, tmp_path: Path
) -> None:
    logins = demo.demo_logins(demo_ledger, "AMB-0001")
    assert {
        bank: [x.username for x in demo.attendants_of(logins, bank)] for bank in TWO_PER_BANK
    } == TWO_PER_BANK
    engine = ledger.make_engine(demo_ledger)
    hasher = access.password_hasher(access.AuthSettings())
    try:
        with Session(engine) as s:
            for bank in TWO_PER_BANK:
                for login in demo.attendants_of(logins, bank):
                    user = access.find_login(s, login.username)
                    assert user is not None
                    assert user.role == access.Role.ATTENDANT
                    assert verify_secret(hasher, user.secret_hash, login.secret)
    finally:
        engine.dispose()

    gateways = [
        (bank, f"http://127.0.0.1:{8081 + n}/petugas") for n, bank in enumerate(TWO_PER_BANK)
    ]
    text = demo._banner(
        "http://127.0.0.1:8000",
        logins,
        gateways,
        tmp_path,
        second_person_idr=50_000,
        sms_sent=tmp_path / "gammu" / "sent",
    )
    for n, bank in enumerate(TWO_PER_BANK):
        for page in PAGES:
            assert f"http://127.0.0.1:{8081 + n}{page} " in text, (bank, page)
        first, second = demo.attendants_of(logins, bank)
        assert f"masuk / log in:      {first.username} / {first.secret}" in text
        assert f"petugas kedua / 2nd: {second.username} / {second.secret}" in text
    assert "withdrawals above Rp50.000 (demo; bawaan / default Rp1.000.000)" in text
    assert str(tmp_path / "gammu" / "sent") in text
    without = demo._banner("http://127.0.0.1:8000", logins, gateways, tmp_path)
    assert "SMS (Gammu" not in without
    assert "Rp50.000" not in without


def test_the_demos_children_have_its_second_person_limit(
    demo_ledger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(demo.SECOND_PERSON_ENV, raising=False)
    for key, value in demo.demo_env(demo_ledger).items():
        monkeypatch.setenv(key, value)
    assert load_settings(ApiSettings).money.second_approval_above_idr == 50_000
    monkeypatch.setenv(demo.SECOND_PERSON_ENV, "2000000")  # the operator's own wins
    assert demo.demo_env(demo_ledger)[demo.SECOND_PERSON_ENV] == "2000000"


def test_without_sms_no_runner_is_started(tmp_path: Path) -> None:
    children: list[demo.Child] = []
    broker = load_settings(ServicesSettings, run_dir=tmp_path, gammu_smsd=False)
    assert asyncio.run(demo._start_sms(broker, {}, tmp_path, children)) is None
    assert children == []


async def test_with_sms_the_runner_hands_an_opted_in_members_receipt_to_smsd(
    demo_ledger: str, tmp_path: Path
) -> None:
    broker = load_settings(ServicesSettings, run_dir=tmp_path, gammu_smsd=True)
    root = tmp_path / "gammu"
    dummy_config(root)  # as `services up --with sms` writes it (SMSD itself is not needed here)
    engine = ledger.make_engine(demo_ledger)
    try:
        with Session(engine) as s:
            member = ledger.get_member(s, "AMB-0001")
            assert member is not None
            member.sms_opt_in = True
            applied = apply_deposit(s, deposit_event(1))
            (queued,) = sms.queue_deposits(s, [applied.event_id])
            text = queued.text
            s.commit()
    finally:
        engine.dispose()
    logs = tmp_path / "logs"
    logs.mkdir()
    children: list[demo.Child] = []
    try:
        sent = await demo._start_sms(broker, demo.demo_env(demo_ledger), logs, children)
        assert sent == root / "sent"
        assert [c.name for c in children] == ["sms"]

        async def handed() -> bool:
            return any((root / "outbox").glob("OUT*.txt"))

        await eventually(handed, timeout=60)
    finally:
        await demo._stop(children)
    (outbox,) = (root / "outbox").glob("OUT*.txt")  # Gammu's name; our id as its note
    assert "6281200000001" in outbox.name  # AMB-0001's phone
    assert outbox.read_text(encoding="utf-16") == text  # SMSD's unicode outbox: UTF-16, a BOM
    assert text.startswith("Bank Sampah Batu Merah Bersih: setoran 1,25 kg")
