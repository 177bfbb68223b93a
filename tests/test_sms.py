"""SMS for members without a smartphone (wastebank/sms/): the texts and their limits; receipts
queued with the deposit (the real ingester) and the payment (the API), handed to a real
Gammu SMSD on Gammu's dummy phone, once each, for an opted-in member only; SALDO answered to
the one member whose phone it came from, and to nobody else."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiomqtt
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from api.app import create_app
from ingest.main import IngestSettings
from tests.auth_helpers import PASSWORD, PIN, add_users, api_settings, login
from tests.conftest import deposit_event, eventually, mqtt_login
from wastebank import ledger, services, sms
from wastebank.config import MqttSettings, load_settings
from wastebank.formats import MONTHS_ID
from wastebank.messages import DepositEvent, Topics
from wastebank.sms import texts
from wastebank.structs import encode_json

AMBON = ZoneInfo("Asia/Jayapura")
AT = datetime(2026, 12, 6, 0, 30, tzinfo=UTC)  # 09.30 WIT
SITI = "+6281200000001"  # AMB-0001's phone in the demo city (081200000001)
BUDI = "+6281200000002"  # AMB-0002's, who does not opt in
STRANGER = "+6289999999999"


# ---- the texts ---------------------------------------------------------------------------------


def test_the_texts_read_as_the_receipt_in_indonesian() -> None:
    deposit = sms.deposit_text(
        bank="Bank Sampah Batu Merah",
        category="Plastik PET",
        unit="kg",
        net_g=1250,
        quantity=None,
        amount_idr=5000,
        at=AT,
        tz=AMBON,
        balance_idr=125_000,
    )
    assert deposit == (
        "Bank Sampah Batu Merah: setoran 1,25 kg Plastik PET Rp5.000 masuk 6 Des 2026 09.30 WIT. "
        "Saldo Rp125.000."
    )
    paid = sms.withdrawal_text(
        bank="Bank Sampah Batu Merah",
        amount_idr=50_000,
        method="cash",
        at=AT + timedelta(minutes=45),
        tz=ZoneInfo("Asia/Jakarta"),
        balance_idr=75_000,
    )
    assert paid == (
        "Bank Sampah Batu Merah: penarikan Rp50.000 tunai dibayar 6 Des 2026 08.15 WIB. "
        "Saldo Rp75.000."
    )
    balance = sms.balance_text(
        bank="Bank Sampah Batu Merah",
        member_no="AMB-0001",
        balance_idr=125_000,
        available_idr=100_000,
        at=AT,
        tz=ZoneInfo("Asia/Makassar"),
    )
    assert balance == (
        "Bank Sampah Batu Merah: saldo AMB-0001 Rp125.000, dapat ditarik Rp100.000 per "
        "6 Des 2026 08.30 WITA."
    )
    pieces = sms.deposit_text(
        bank="BS",
        category="Galon",
        unit="piece",
        net_g=9000,
        quantity=12,
        amount_idr=6000,
        at=AT,
        tz=AMBON,
        balance_idr=6000,
    )
    assert "setoran 12 pcs Galon Rp6.000" in pieces


def test_every_text_is_one_gsm7_sms_whatever_the_names() -> None:
    """Names of 200 characters, with letters outside GSM-7 and the largest amounts: one SMS of
    GSM-7, the names shortened, the figures and the time whole."""
    long_bank = "Bank Sampah Induk Kota Ambon Sejahtera Bersama Ōtsuki 🌱 " * 4
    long_category = "Plastik campuran – botol, gelas & tutup (ā, ē, ī) " * 4
    big = 9_999_999_999_999
    made = [
        sms.deposit_text(
            bank=long_bank,
            category=long_category,
            unit="kg",
            net_g=500_000,
            quantity=None,
            amount_idr=big,
            at=AT,
            tz=AMBON,
            balance_idr=-big,
        ),
        sms.withdrawal_text(
            bank=long_bank, amount_idr=big, method="ewallet", at=AT, tz=AMBON, balance_idr=big
        ),
        sms.balance_text(
            bank=long_bank,
            member_no="AMB-0001-ÄÖ-ŽŠ",
            balance_idr=big,
            available_idr=big - 1,
            at=AT,
            tz=AMBON,
        ),
    ]
    for text in made:
        assert sms.is_gsm7(text), text
        assert sms.septets(text) <= sms.MAX_SEPTETS == 160, (sms.septets(text), text)
        assert "Rp9.999.999.999.999" in text
        assert "6 Des 2026 09.30 WIT" in text
        assert text.startswith("Bank Sampah Induk")  # shortened, not dropped
    assert "500,00 kg" in made[0]
    assert "Saldo -Rp9.999.999.999.999." in made[0]
    assert "dompet digital" in made[1]
    assert "AMB-0001-ÄÖ-ZS" in made[2]  # Ä and Ö are GSM-7; Ž and Š lose their caron


def test_gsm7_counts_and_refuses() -> None:
    assert sms.septets("Rp5.000 @ £ é") == 13
    assert sms.septets("[€]") == 6  # the extension table: an escape and the character each
    with pytest.raises(ValueError, match="U\\+0101"):
        sms.septets("ā")
    assert sms.gsm7("Jalan Ōtsuki\n🌱 ñ") == "Jalan Otsuki ? ñ"
    assert not sms.is_gsm7("“kutip”")


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("SALDO", True),
        ("saldo", True),
        (" Saldo. ", True),
        ("CEK SALDO", True),
        ("cek   saldo!", True),
        ("Cek saldo?", True),
        ("saldo AMB-0001", False),
        ("ceksaldo", False),
        ("berapa saldo saya", False),
        ("", False),
    ],
)
def test_what_asks_for_the_balance(text: str, asks: bool) -> None:
    assert texts.is_balance_request(text) is asks


@pytest.mark.parametrize(
    ("phone", "normal"),
    [
        ("081200000001", SITI),
        ("6281200000001", SITI),
        ("+6281200000001", SITI),
        ("0812 0000-0001", SITI),
        ("81200000001", None),  # no leading 0 or country code: not guessed
        ("0812", None),
        ("TELKOMSEL", None),
        ("+٦٢٨١٢٠٠٠٠٠٠٠١", None),  # digits, but not ASCII ones
        (None, None),
    ],
)
def test_phone_numbers_in_one_form(phone: str | None, normal: str | None) -> None:
    assert sms.normalize(phone) == normal


def test_the_smsd_config_must_be_files_with_four_folders(tmp_path: Path) -> None:
    config = sms.dummy_config(tmp_path)
    files = sms.GammuFiles.from_config(config)
    assert (files.inbox, files.sent) == (tmp_path / "inbox", tmp_path / "sent")
    assert files.processed == tmp_path / "inbox-processed"
    text = config.read_text()
    for bad, message in [
        (text.replace("service = files", "service = sql"), "Service = sql"),
        (text.replace(f"errorsmspath = {tmp_path}/error/", ""), "errorsmspath is not set"),
        (
            text.replace(f"errorsmspath = {tmp_path}/error/", f"errorsmspath = {tmp_path}/sent/"),
            "must differ",
        ),
        ("[gammu]\nmodel = dummy\n", "no \\[smsd\\]"),
    ]:
        config.write_text(bad)
        with pytest.raises(sms.GammuConfigError, match=message):
            sms.GammuFiles.from_config(config)


# ---- a real Gammu SMSD on its dummy phone ------------------------------------------------------


@pytest.fixture
def smsd(tmp_path: Path) -> Iterator[sms.GammuFiles]:
    """Gammu SMSD (installed from Debian as `services up --with sms` does, if missing) on a
    dummy phone of the test's own."""
    if not sms.GAMMU_SMSD.exists():
        services.install.install_missing(load_settings(services.ServicesSettings), {"gammu-smsd"})
    config = sms.dummy_config(tmp_path / "gammu")
    proc = sms.start_smsd(config)
    try:
        yield sms.GammuFiles.from_config(config)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def receive(files: sms.GammuFiles, sender: str, text: str) -> None:
    """A message arrives at the dummy phone: a Gammu SMS backup file in its inbox folder
    (``phone/sms/1``), which SMSD reads, stores in its inbox and deletes from the phone."""
    folder = files.config.parent / "phone" / "sms" / "1"
    location = 1 + max((int(p.name) for p in folder.iterdir() if p.name.isdigit()), default=0)
    body = [
        "[SMSBackup000]",
        "PDU = Deliver",
        "State = UnRead",
        f'Number = "{sender}"',
        "Coding = Default_No_Compression",
        "Folder = 1",
        f"Text00 = {text.encode('utf-16-be').hex().upper()}",
        f"Length = {len(text)}",
        "",
    ]
    tmp = folder / f"tmp-{location}"  # not a location: the dummy phone sees it only when whole
    tmp.write_text("\n".join(body))
    tmp.replace(folder / str(location))


def sent_texts(files: sms.GammuFiles) -> list[tuple[str, str]]:
    """(number, text) of each file SMSD sent from the dummy phone, by name."""
    out = []
    for path in sorted(files.sent.iterdir()):
        number = re.fullmatch(r"OUTC\d{8}_\d{6}_00_(\+\d+)_wb\d+\.txt", path.name)
        assert number is not None, path.name
        out.append((number.group(1), path.read_bytes().decode("utf-16")))
    return out


async def publish(mqtt: MqttSettings, events: list[DepositEvent]) -> None:
    topic = Topics(mqtt.topic_prefix).deposit("bs-batu-merah", "gw-01")
    async with aiomqtt.Client(mqtt.host, mqtt.port, **mqtt_login(mqtt)) as client:
        for ev in events:
            await client.publish(topic, encode_json(ev), qos=1)


def local(at: datetime) -> str:
    """``6 Des 2026 09.30 WIT``, written out here rather than by wastebank.formats."""
    t = at.astimezone(AMBON)
    return f"{t.day} {MONTHS_ID[t.month - 1]} {t.year} {t:%H}.{t:%M} WIT"


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    made = ledger.make_engine(ledger_url)
    yield made
    made.dispose()


@pytest.fixture
async def api(ingester: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    add_users(ingester.ledger_url, ("attendant_1", "citizen_a"))
    app = create_app(
        api_settings(mqtt=ingester.mqtt, influx=ingester.influx, ledger_url=ingester.ledger_url)
    )
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as c,
    ):
        yield c


@pytest.mark.integration
async def test_receipts_and_balance_reach_gammus_outbox_for_an_opted_in_member_only(
    ingester: IngestSettings, api: httpx.AsyncClient, smsd: sms.GammuFiles, engine: Engine
) -> None:
    petugas = await login(api, "petugas-bm-01", PASSWORD)
    siti = await login(api, "AMB-0001", PIN)

    # Opt-in is set by the bank's attendant, and only with a mobile number.
    answer = await api.patch("/api/members/AMB-0001", json={"sms_opt_in": True}, headers=petugas)
    assert answer.status_code == 200, answer.text
    assert answer.json()["sms_opt_in"] is True
    refused = await api.patch("/api/members/AMB-0001", json={"phone": None}, headers=petugas)
    assert refused.status_code == 422
    assert "SMS perlu nomor HP" in refused.json()["detail"]
    budi = (await api.get("/api/members/AMB-0002", headers=petugas)).json()
    assert budi["sms_opt_in"] is False

    # Deposits through the real ingester: Siti's (opted in) and Budi's (not), then Siti's again
    # (a redelivery) before a last one of Budi's, so when that is in, the replay was seen.
    measured = datetime.now(AMBON).replace(second=0, microsecond=0) - timedelta(hours=1)
    hers = deposit_event(1, net_g=3750, at=measured)  # 3,75 kg PET @ Rp4.000 = Rp15.000
    his = deposit_event(2, net_g=1000, card="04A1B2C3D5", at=measured)
    await publish(ingester.mqtt, [hers, his])
    await publish(ingester.mqtt, [hers, deposit_event(3, card="04A1B2C3D5", at=measured)])

    async def three_deposits() -> bool:
        with Session(engine) as s:
            return s.scalar(select(func.count()).select_from(ledger.Deposit)) == 3

    await eventually(three_deposits)

    # A withdrawal Siti asks for, approved and paid at the bank (the pay sent twice, as a
    # gateway's queue may: one payment, one SMS).
    asked = await api.post(
        "/api/members/AMB-0001/withdrawals", json={"amount_idr": 10_000}, headers=siti
    )
    assert asked.status_code == 201, asked.text
    wid = asked.json()["id"]
    assert (await api.post(f"/api/withdrawals/{wid}/approve", headers=petugas)).status_code == 200
    for _ in range(2):
        paid = await api.post(
            f"/api/withdrawals/{wid}/pay", json={"payout_ref": "KAS-0001"}, headers=petugas
        )
        assert paid.status_code == 200, paid.text

    with Session(engine) as s:
        queued = s.scalars(select(sms.SmsMessage).order_by(sms.SmsMessage.id)).all()
        assert [(m.kind, m.phone, m.status) for m in queued] == [
            ("deposit", SITI, "queued"),
            ("withdrawal", SITI, "queued"),
        ]
        paid_at = s.get(ledger.Withdrawal, wid).paid_at  # type: ignore[union-attr]
        assert paid_at is not None

    # `wastebank sms run`'s pass hands them to SMSD, which sends them from the dummy phone.
    delivery = sms.Delivery(engine, smsd, sms.SmsOptions(smsdrc=smsd.config))

    async def all_sent() -> bool:
        await asyncio.to_thread(delivery.run_once)
        with Session(engine) as s:
            statuses = s.scalars(select(sms.SmsMessage.status)).all()
        return bool(statuses) and set(statuses) == {"sent"}

    await eventually(all_sent)
    assert sent_texts(smsd) == [
        (
            SITI,
            f"Bank Sampah Batu Merah Bersih: setoran 3,75 kg Botol PET bersih Rp15.000 masuk "
            f"{local(measured)}. Saldo Rp15.000.",
        ),
        (
            SITI,
            f"Bank Sampah Batu Merah Bersih: penarikan Rp10.000 tunai dibayar {local(paid_at)}. "
            "Saldo Rp5.000.",
        ),
    ]

    # Inbound: SALDO from Siti's phone is answered; from Budi's (not opted in), from a stranger
    # and anything that is not a command, nothing.
    receive(smsd, SITI, "cek saldo")
    receive(smsd, BUDI, "SALDO")
    receive(smsd, STRANGER, "Saldo")
    receive(smsd, SITI, "halo, ini Siti")

    async def four_answered() -> bool:
        await asyncio.to_thread(delivery.run_once)
        with Session(engine) as s:
            inbound = s.scalar(select(func.count()).select_from(sms.SmsInbound))
            statuses = s.scalars(select(sms.SmsMessage.status)).all()
        return inbound == 4 and len(statuses) == 3 and set(statuses) == {"sent"}

    await eventually(four_answered)
    with Session(engine) as s:
        outcomes = {
            (i.sender, i.text): i.outcome
            for i in s.scalars(select(sms.SmsInbound).order_by(sms.SmsInbound.id))
        }
    assert outcomes == {
        (SITI, "cek saldo"): "balance",
        (BUDI, "SALDO"): "not_opted_in",
        (STRANGER, "Saldo"): "unknown_number",
        (SITI, "halo, ini Siti"): "not_a_command",
    }
    sent = sent_texts(smsd)
    assert [number for number, _ in sent] == [SITI, SITI, SITI]  # Budi and the stranger: none
    reply = re.fullmatch(
        r"Bank Sampah Batu Merah Bersih: saldo AMB-0001 Rp5\.000 per "
        r"\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}\.\d{2} WIT\.",
        sent[2][1],
    )
    assert reply is not None, sent[2][1]
    # The inbox files were read once and kept aside; the inbox itself is empty again.
    assert not list(smsd.inbox.glob("IN*"))
    assert len(list(smsd.processed.glob("IN*"))) == 4

    # The whole replay again, later: the ledger has it; no new SMS.
    await publish(ingester.mqtt, [hers, deposit_event(4, card="04A1B2C3D5", at=measured)])

    async def four_deposits() -> bool:
        with Session(engine) as s:
            return s.scalar(select(func.count()).select_from(ledger.Deposit)) == 4

    await eventually(four_deposits)
    stats = await asyncio.to_thread(delivery.run_once)
    assert stats.handed == 0
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(sms.SmsMessage)) == 3
    assert len(sent_texts(smsd)) == 3


async def test_a_handed_message_is_not_written_twice_after_a_crash(
    engine: Engine, tmp_path: Path
) -> None:
    """A runner that died after writing the outbox file and before its commit: the next pass
    finds the file by its name and does not write it again (no SMSD needed to show it)."""
    files = sms.GammuFiles.from_config(sms.dummy_config(tmp_path))
    with Session(engine) as s:
        member = ledger.get_member(s, "AMB-0001")
        assert member is not None
        member.sms_opt_in = True
        msg = sms.queue.add_message(s, member, sms.SmsKind.BALANCE, "inbound:test", "Saldo.")
        s.commit()
        name = files.outbox_name(msg.id, msg.phone, msg.created_at)
    files.hand(name, "Saldo.")  # the crashed run's file, already moved to sent by SMSD
    shutil.move(files.outbox / name, files.sent / name)
    stats = sms.Delivery(engine, files, sms.SmsOptions(smsdrc=files.config)).run_once()
    assert (stats.handed, stats.sent) == (1, 1)
    assert not list(files.outbox.glob("OUT*"))
    assert [p.name for p in files.sent.iterdir()] == [name]
    with Session(engine) as s:
        assert s.scalars(select(sms.SmsMessage.status)).all() == ["sent"]


async def test_a_receipt_left_queued_too_long_expires_unsent(
    engine: Engine, tmp_path: Path
) -> None:
    files = sms.GammuFiles.from_config(sms.dummy_config(tmp_path))
    with Session(engine) as s:
        member = ledger.get_member(s, "AMB-0001")
        assert member is not None
        member.sms_opt_in = True
        old = sms.queue.add_message(s, member, sms.SmsKind.DEPOSIT, "gw-01-9", "Lama.")
        old.created_at = ledger.utcnow() - timedelta(hours=25)
        member.phone = "81200000001"  # cannot take an SMS: kept as failed, with the reason
        bad = sms.queue.add_message(s, member, sms.SmsKind.DEPOSIT, "gw-01-10", "Baru.")
        s.commit()
        assert (bad.status, bad.error) == ("failed", sms.queue.NO_NUMBER)
    stats = sms.Delivery(engine, files, sms.SmsOptions(smsdrc=files.config)).run_once()
    assert (stats.expired, stats.handed) == (1, 0)
    with Session(engine) as s:
        assert s.scalars(select(sms.SmsMessage.error).order_by(sms.SmsMessage.id)).all() == [
            sms.delivery.EXPIRED,
            sms.queue.NO_NUMBER,
        ]
    assert not list(files.outbox.glob("OUT*"))


def test_services_run_a_dummy_smsd_that_sms_run_sends_through(
    ledger_url: str, engine: Engine, tmp_path: Path
) -> None:
    """`services up --with sms`'s SMSD (its own run dir here), driven by the `wastebank sms`
    commands; a second runner on the same SMSD is refused."""
    from typer.testing import CliRunner

    from tests.conftest import wait_until
    from wastebank.cli import app
    from wastebank.services import gammu_smsd

    settings = load_settings(services.ServicesSettings, run_dir=tmp_path / "run", gammu_smsd=True)
    if not sms.GAMMU_SMSD.exists():
        services.install.install_missing(settings, {"gammu-smsd"})
    gammu_smsd.start_dummy_smsd(settings)
    try:
        assert gammu_smsd.smsd_pid(settings) is not None
        config = gammu_smsd.smsd_dir(settings) / "smsdrc"
        with Session(engine) as s:
            member = ledger.get_member(s, "AMB-0001")
            assert member is not None
            member.sms_opt_in = True
            sms.queue.add_message(s, member, sms.SmsKind.BALANCE, "inbound:cli", "Saldo Rp0.")
            s.commit()
        env = {"WASTEBANK_LEDGER_URL": ledger_url, "WASTEBANK_SMS__SMSDRC": str(config)}
        runner = CliRunner()
        files = sms.GammuFiles.from_config(config)
        with sms.exclusive(files):
            busy = runner.invoke(app, ["sms", "run", "--once"], env=env)
        assert busy.exit_code == 2
        assert "sudah berjalan" in busy.output
        first = runner.invoke(app, ["sms", "run", "--once"], env=env)
        assert first.exit_code == 0, first.output
        wait_until(lambda: any(files.sent.glob("OUT*")))
        assert runner.invoke(app, ["sms", "run", "--once"], env=env).exit_code == 0
        listed = runner.invoke(app, ["sms", "list"], env=env)
        assert listed.exit_code == 0, listed.output
        assert "\tsent\tAMB-0001\tbalance\t+6281200000001\tSaldo Rp0." in listed.output
    finally:
        gammu_smsd.stop_dummy_smsd(settings)
    assert gammu_smsd.smsd_pid(settings) is None
