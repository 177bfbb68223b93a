"""The outside review of `wastebank sms` (wastebank/sms/, wastebank/cli/sms.py; docs/attendant.md,
SMS): a receipt handed to SMSD's outbox expires there too; only Indonesian mobile numbers get an
SMS; an inbox file that cannot be moved aside, or a failing pass, does not stop delivery; SMSD's
folders, `--status` and `[sms] banks` are checked; everything said in words, Indonesian first."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import wait_until
from wastebank import ledger, sms
from wastebank.cli import app
from wastebank.sms import delivery, numbers, queue

SITI = "+6281200000001"


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    made = ledger.make_engine(ledger_url)
    yield made
    made.dispose()


def queued(engine: Engine, member_no: str, reference: str, text: str = "Saldo.") -> int:
    """A message for ``member_no`` (opted in here), queued; its id."""
    with Session(engine) as s:
        member = ledger.get_member(s, member_no)
        assert member is not None
        member.sms_opt_in = True
        msg = queue.add_message(s, member, sms.SmsKind.BALANCE, reference, text)
        s.commit()
        return msg.id


def age(engine: Engine, msg_id: int, hours: float) -> None:
    with Session(engine) as s:
        msg = s.get(sms.SmsMessage, msg_id)
        assert msg is not None
        msg.created_at = ledger.utcnow() - timedelta(hours=hours)
        s.commit()


def row(engine: Engine, msg_id: int) -> sms.SmsMessage:
    with Session(engine) as s:
        msg = s.get(sms.SmsMessage, msg_id)
        assert msg is not None
        s.expunge(msg)
        return msg


def options(files: sms.GammuFiles, banks: list[str] | None = None) -> sms.SmsOptions:
    return sms.SmsOptions(smsdrc=files.config, banks=banks or [])


# ---- 1. a receipt in SMSD's outbox expires too --------------------------------------------------


def test_a_receipt_left_in_smsds_outbox_too_long_is_taken_back_and_expires(
    engine: Engine, tmp_path: Path
) -> None:
    """SMSD down: the pass hands the receipt to its outbox; max_age_h later it is still there,
    so it is taken back (its file gone from the outbox) and marked failed "kedaluwarsa". One
    SMSD moved to its sent folder meanwhile is left to be settled as sent; a fresh one stays."""
    files = sms.GammuFiles.from_config(sms.dummy_config(tmp_path))
    old, moved, fresh = (queued(engine, "AMB-0001", f"inbound:{n}") for n in ("a", "b", "c"))
    run = sms.Delivery(engine, files, options(files))
    assert run.run_once().handed == 3
    for msg_id in (old, moved):
        age(engine, msg_id, 25)
    moved_name = row(engine, moved).gammu_id
    assert moved_name is not None
    os.rename(files.outbox / moved_name, files.sent / moved_name)  # SMSD sent it just now

    stats = run.run_once()
    assert (stats.expired, stats.sent) == (1, 1)
    gone = row(engine, old)
    assert (gone.status, gone.error) == ("failed", delivery.EXPIRED)
    assert row(engine, moved).status == "sent"
    assert row(engine, fresh).status == "outbox"
    assert sorted(p.name for p in files.outbox.iterdir() if p.name.startswith("OUT")) == [
        row(engine, fresh).gammu_id
    ]
    assert not [p for p in files.outbox.iterdir() if p.name.startswith(".wb")]  # none left


def test_a_take_back_interrupted_before_its_commit_is_finished_on_the_next_pass(
    engine: Engine, tmp_path: Path
) -> None:
    """The file was taken out of SMSD's sight (renamed to a name it ignores) and the runner died
    before its commit: the next pass finds it taken, not vanished."""
    files = sms.GammuFiles.from_config(sms.dummy_config(tmp_path))
    msg_id = queued(engine, "AMB-0001", "inbound:x")
    run = sms.Delivery(engine, files, options(files))
    run.run_once()
    age(engine, msg_id, 25)
    name = row(engine, msg_id).gammu_id
    assert name is not None
    assert files.take_back(name)
    assert run.run_once().expired == 1
    assert (row(engine, msg_id).status, row(engine, msg_id).error) == ("failed", delivery.EXPIRED)
    assert not list(files.outbox.glob(".wb*"))


@pytest.mark.integration
def test_a_modem_back_after_days_does_not_send_the_old_receipts(
    engine: Engine, tmp_path: Path
) -> None:
    """A real SMSD on its dummy phone, started only after the receipt waited in its outbox past
    max_age_h: the old receipt never goes out; a new one does."""
    config = sms.dummy_config(tmp_path / "gammu")
    files = sms.GammuFiles.from_config(config)
    old = queued(engine, "AMB-0001", "inbound:old", "Lama.")
    run = sms.Delivery(engine, files, options(files))
    assert run.run_once().handed == 1
    age(engine, old, 25)
    assert run.run_once().expired == 1
    new = queued(engine, "AMB-0001", "inbound:new", "Baru.")
    proc = sms.start_smsd(config)
    try:
        run.run_once()
        wait_until(lambda: run.run_once() is not None and row(engine, new).status == "sent")
        # SMSD sends in name order and the old receipt's name (its date) sorts first: the new
        # one sent, with nothing left in the outbox, is the old one never sent, without waiting
        assert list(files.outbox.iterdir()) == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    sent = [p.read_bytes().decode("utf-16") for p in files.sent.iterdir()]
    assert sent == ["Baru."]
    assert row(engine, old).status == "failed"


# ---- 2. only Indonesian mobile numbers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "mobile"),
    [
        ("081200000001", SITI),
        ("6281200000001", SITI),
        ("+62 812-0000-0001", SITI),
        ("0812345678", "+62812345678"),  # 9 digits after the 0: the shortest mobile
        ("+62812345678901", "+62812345678901"),  # 12: the longest
        ("08123456789012", None),  # 13: too long
        ("081234567", None),  # 8: too short
        ("+15551234567", None),  # not Indonesian
        ("0211234567", None),  # a Jakarta landline
        ("6221555123", None),  # a landline written with the country code
        ("08001234567", None),  # 0800: toll free, not a mobile
        ("+6280912345678", None),  # 0809: premium rate
        ("81200000001", None),  # no leading 0 or country code: not guessed
        ("", None),
        (None, None),
    ],
)
def test_only_an_indonesian_mobile_number_takes_an_sms(
    phone: str | None, mobile: str | None
) -> None:
    assert numbers.mobile(phone) == mobile
    assert sms.mobile(phone) == mobile


@pytest.mark.parametrize("phone", ["+15551234567", "0211234567", "6221555123"])
def test_a_member_with_a_landline_or_foreign_number_gets_a_failed_row_and_no_sms(
    engine: Engine, tmp_path: Path, phone: str
) -> None:
    with Session(engine) as s:
        member = ledger.get_member(s, "AMB-0001")
        assert member is not None
        member.phone, member.sms_opt_in = phone, True
        msg = queue.add_message(s, member, sms.SmsKind.DEPOSIT, "gw-01-1", "Saldo Rp5.000.")
        s.commit()
        assert (msg.status, msg.error) == ("failed", queue.NO_NUMBER)
        assert "nomor HP" in queue.NO_NUMBER
    files = sms.GammuFiles.from_config(sms.dummy_config(tmp_path))
    assert sms.Delivery(engine, files, options(files)).run_once().handed == 0
    assert not list(files.outbox.glob("OUT*"))


# ---- 3. an inbox file that cannot be moved aside, a pass that fails -----------------------------


def _inbox_file(files: sms.GammuFiles, name: str, text: str) -> Path:
    path = files.inbox / name
    path.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    return path


def test_an_inbox_file_that_cannot_be_moved_aside_does_not_stop_delivery(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = sms.GammuFiles.from_config(sms.dummy_config(tmp_path))
    stuck = _inbox_file(files, f"IN20261206_103000_00_{SITI}_00.txt", "SALDO")
    moves = _inbox_file(files, f"IN20261206_103100_00_{SITI}_00.txt", "halo")
    (files.processed / stuck.name).mkdir(parents=True)  # os.replace onto it: IsADirectoryError
    receipt = queued(engine, "AMB-0001", "inbound:receipt")
    run = sms.Delivery(engine, files, options(files))
    caplog.set_level(logging.INFO, logger="wastebank.sms")

    stats = run.run_once()
    assert (stats.received, stats.stuck, stats.handed) == (2, 1, 2)  # the receipt and a reply
    assert row(engine, receipt).status == "outbox"
    assert stuck.exists()
    assert not moves.exists()
    warned = [r.getMessage() for r in caplog.records if stuck.name in r.getMessage()]
    assert len(warned) == 2, warned  # received (info), and could not be moved (warning)
    assert "tidak bisa dipindahkan" in warned[1]
    assert "could not be moved" in warned[1]
    assert warned[1].index("tidak bisa") < warned[1].index("could not")

    caplog.clear()
    again = run.run_once()
    assert (again.received, again.stuck, again.handed) == (0, 0, 0)
    assert not [r for r in caplog.records if stuck.name in r.getMessage()]  # said once
    with Session(engine) as s:
        assert len(s.scalars(select(sms.SmsInbound.gammu_id)).all()) == 2  # not recorded twice

    (files.processed / stuck.name).rmdir()  # fixed: the next pass moves it
    run.run_once()
    assert not stuck.exists()
    assert (files.processed / stuck.name).is_file()


def test_a_failing_pass_is_said_once_in_words_and_the_next_one_tried(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = sms.GammuFiles.from_config(sms.dummy_config(tmp_path))
    broken = create_engine(f"sqlite:///{tmp_path}/nowhere/ledger.db")  # no such folder
    run = sms.Delivery(broken, files, options(files))
    caplog.set_level(logging.INFO, logger="wastebank.sms")
    assert run.attempt() is None
    assert run.attempt() is None
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1, [r.getMessage() for r in said]
    assert said[0].getMessage().startswith("SMS: putaran gagal")
    assert "pass failed" in said[0].getMessage()
    assert said[0].exc_info is None  # words, not a traceback
    broken.dispose()

    run.engine = engine  # the ledger is back
    assert run.attempt() is not None
    assert any("berhasil lagi" in r.getMessage() for r in caplog.records)


def test_sms_run_keeps_going_through_failing_passes_until_sigterm(
    tmp_path: Path, ledger_url: str, engine: Engine
) -> None:
    """`wastebank sms run` whose passes fail (SMSD's outbox folder removed under it): no
    traceback, no exit; the failure said once; the passes work again when the folder is back;
    SIGTERM ends it with 0."""
    config = sms.dummy_config(tmp_path / "gammu")
    files = sms.GammuFiles.from_config(config)
    msg_id = queued(engine, "AMB-0001", "inbound:loop")
    env = {
        **os.environ,
        "WASTEBANK_LEDGER_URL": ledger_url,
        "WASTEBANK_SMS__SMSDRC": str(config),
        "WASTEBANK_SMS__INTERVAL_S": "0.1",
    }
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(".venv/bin/wastebank").resolve()), "sms", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: row(engine, msg_id).status == "outbox")
            name = row(engine, msg_id).gammu_id
            assert name is not None
            (files.outbox / name).unlink()
            (files.outbox / ".wastebank-sms.lock").unlink()
            files.outbox.rmdir()  # its file found nowhere, and the folder gone: not "vanished"
            wait_until(lambda: "putaran gagal" in log.read_text())
            time.sleep(1.0)  # about ten more passes
            assert proc.poll() is None, log.read_text()
            assert row(engine, msg_id).status == "outbox"
            files.outbox.mkdir()
            (files.sent / name).write_bytes(b"")  # SMSD sent it meanwhile
            wait_until(lambda: row(engine, msg_id).status == "sent")
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=10)
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text
    assert text.count("putaran gagal") == 1, text
    assert "outboxpath" in text
    assert "putaran berhasil lagi / passes work again" in text


# ---- 4. SMSD's folders checked at start ---------------------------------------------------------


@pytest.mark.parametrize("folder", ["inbox", "outbox", "sent", "error"])
@pytest.mark.parametrize("how", ["missing", "a file"])
def test_sms_run_refuses_a_missing_smsd_folder_at_start(
    tmp_path: Path, ledger_url: str, folder: str, how: str
) -> None:
    config = sms.dummy_config(tmp_path)
    (tmp_path / folder).rmdir()
    if how == "a file":
        (tmp_path / folder).write_text("")
    env = {"WASTEBANK_LEDGER_URL": ledger_url, "WASTEBANK_SMS__SMSDRC": str(config)}
    result = CliRunner().invoke(app, ["sms", "run", "--once"], env=env)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    key = {"inbox": "inboxpath", "outbox": "outboxpath"}.get(folder, f"{folder}smspath")
    assert key in result.output
    assert str(tmp_path / folder) in result.output
    assert "folder SMSD" in result.output  # Indonesian first
    assert "Traceback" not in result.output


def test_a_processed_path_that_is_a_file_is_refused_at_start(tmp_path: Path) -> None:
    config = sms.dummy_config(tmp_path)
    (tmp_path / "inbox-processed").write_text("")
    files = sms.GammuFiles.from_config(config)
    with pytest.raises(sms.GammuConfigError, match="processed_path"):
        files.check()


# ---- 5. sms list --status -----------------------------------------------------------------------


@pytest.mark.parametrize("status", ["gagal", "SENT", "bogus"])
def test_sms_list_refuses_an_unknown_status_naming_the_allowed_ones(
    ledger_url: str, status: str
) -> None:
    env = {"WASTEBANK_LEDGER_URL": ledger_url}
    result = CliRunner().invoke(app, ["sms", "list", "--status", status], env=env)
    assert result.exit_code == 2, result.output
    assert "queued, outbox, sent, failed" in result.output
    assert "tidak dikenal" in result.output
    assert status in result.output


def test_sms_list_and_inbox_say_when_there_is_none(ledger_url: str) -> None:
    env = {"WASTEBANK_LEDGER_URL": ledger_url}
    listed = CliRunner().invoke(app, ["sms", "list", "--status", "failed"], env=env)
    assert (listed.exit_code, listed.output) == (0, "tidak ada SMS / no SMS\n")
    inbox = CliRunner().invoke(app, ["sms", "inbox"], env=env)
    assert (inbox.exit_code, inbox.output) == (0, "tidak ada SMS masuk / no SMS received\n")


# ---- 6. [sms] banks -----------------------------------------------------------------------------


def test_sms_run_refuses_a_bank_the_ledger_does_not_know(tmp_path: Path, ledger_url: str) -> None:
    config = sms.dummy_config(tmp_path)
    env = {
        "WASTEBANK_LEDGER_URL": ledger_url,
        "WASTEBANK_SMS__SMSDRC": str(config),
        "WASTEBANK_SMS__BANKS": '["bs-batu-merah", "bs-nope"]',
    }
    result = CliRunner().invoke(app, ["sms", "run", "--once"], env=env)
    assert result.exit_code == 2, result.output
    assert "bs-nope" in result.output
    assert "bs-batu-merah" not in result.output
    assert "tidak dikenal" in result.output
    assert "unknown" in result.output


def test_a_runner_for_some_banks_settles_only_their_messages(
    engine: Engine, tmp_path: Path
) -> None:
    """Two modems, two runners (a bank each): neither marks the other's handed messages as
    vanished from its own folders."""
    ours = sms.GammuFiles.from_config(sms.dummy_config(tmp_path / "ours"))
    theirs = sms.GammuFiles.from_config(sms.dummy_config(tmp_path / "theirs"))
    mine = queued(engine, "AMB-0001", "inbound:mine")
    other = queued(engine, "AMB-0101", "inbound:other")  # bs-nusaniwe's member
    sms.Delivery(engine, theirs, options(theirs, banks=["bs-nusaniwe"])).run_once()
    sms.Delivery(engine, ours, options(ours, banks=["bs-batu-merah"])).run_once()
    assert (row(engine, mine).status, row(engine, other).status) == ("outbox", "outbox")


# ---- 7. words -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "list", "inbox"])
def test_the_commands_help_is_indonesian_first(command: str) -> None:
    result = CliRunner().invoke(app, ["sms", command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    words = " ".join(result.output.split())
    assert "` interval_s`" not in words
    first = {"run": "Menjawab SALDO", "list": "SMS terakhir", "inbox": "SMS terakhir"}[command]
    english = {"run": "Answers SALDO", "list": "The latest SMS", "inbox": "The latest"}[command]
    assert first in words
    assert english in words
    assert words.index(first) < words.index(english)
    if command == "run":
        assert "satu putaran" in words
        assert "interval_s" in words


def test_smsd_config_errors_are_indonesian_first(tmp_path: Path) -> None:
    config = sms.dummy_config(tmp_path)
    text = config.read_text()
    cases = [
        (None, "tidak terbaca", "cannot be read"),
        (text.replace("service = files", "service = sql"), "perlu Service = files", "needs"),
        (text.replace(f"errorsmspath = {tmp_path}/error/", ""), "belum diisi", "is not set"),
        (
            text.replace(f"errorsmspath = {tmp_path}/error/", f"errorsmspath = {tmp_path}/sent/"),
            "harus berbeda",
            "must differ",
        ),
        ("[gammu]\nmodel = dummy\n", "tidak ada bagian [smsd]", "no [smsd] section"),
    ]
    for body, indonesian, english in cases:
        if body is None:
            path = tmp_path / "missing"
        else:
            config.write_text(body)
            path = config
        with pytest.raises(sms.GammuConfigError) as raised:
            sms.GammuFiles.from_config(path)
        message = str(raised.value)
        assert indonesian in message, message
        assert english in message, message
        assert message.index(indonesian) < message.index(english), message
        assert "[Errno" not in message, message


def test_a_pass_is_logged_in_words_not_a_repr(
    engine: Engine, tmp_path: Path, ledger_url: str
) -> None:
    config = sms.dummy_config(tmp_path)
    queued(engine, "AMB-0001", "inbound:words")
    env = {"WASTEBANK_LEDGER_URL": ledger_url, "WASTEBANK_SMS__SMSDRC": str(config)}
    result = CliRunner().invoke(app, ["sms", "run", "--once"], env=env)
    assert result.exit_code == 0, result.output
    assert "RunStats(" not in result.output
    assert "SMS: 1 diserahkan ke SMSD / 1 handed to SMSD" in result.output
