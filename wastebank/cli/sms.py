"""`wastebank sms`: receipts and balance replies by SMS through Gammu SMSD (wastebank/sms/)."""

from __future__ import annotations

import logging
import threading
from typing import Annotated

import typer

from wastebank.cli._common import ConfigOption, LogFormat, LogFormatOption, setup_logging
from wastebank.process import FAILED

sms_app = typer.Typer(
    help="SMS untuk nasabah lewat Gammu SMSD / SMS to members through Gammu SMSD",
    no_args_is_help=True,
)
log = logging.getLogger("wastebank.sms")

LIMIT_HELP = "paling banyak sekian baris / at most this many lines"


@sms_app.command("run")
def sms_run(
    config: ConfigOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="satu putaran, lalu keluar / one pass, then exit")
    ] = False,
    verbose: Annotated[bool, typer.Option(help="log rinci (debug) / detailed log (debug)")] = False,
    log_format: LogFormatOption = LogFormat.text,
) -> None:
    """Menjawab SALDO, menyerahkan struk antrean ke Gammu SMSD dan mencatat yang terkirim atau
    gagal; setiap interval_s detik (bawaan 5, WASTEBANK_SMS__INTERVAL_S) sampai dihentikan
    (Ctrl-C, SIGTERM). Satu runner per SMSD. / Answers SALDO, hands queued receipts to Gammu
    SMSD and records what it sent or could not; every interval_s seconds (default 5) until
    stopped. One runner per SMSD."""
    import signal

    from sqlalchemy.exc import SQLAlchemyError

    from wastebank import ledger, sms
    from wastebank.config import load_settings
    from wastebank.errors import Unavailable

    setup_logging(verbose, json=log_format is LogFormat.json)
    settings = load_settings(sms.SmsSettings, config)
    files = sms.GammuFiles.from_config(settings.sms.smsdrc, settings.sms.processed_path)
    files.check()  # a folder missing or not ours to write: said now, not as a traceback later
    try:
        engine = ledger.make_engine(settings.ledger_url)
    except SQLAlchemyError as exc:  # at start, before any pass: in words, no traceback
        raise Unavailable(
            "buku besar tidak terjangkau / ledger unreachable: "
            + (str(exc).splitlines() or [""])[0]
        ) from None
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    failed = False
    try:
        with sms.exclusive(files):
            delivery = sms.Delivery(engine, files, settings.sms)
            log.info("SMS berjalan / running on %s", files.config)
            while True:
                stats = delivery.attempt()  # a failed pass is logged; the next one is tried
                failed = stats is None
                if stats is not None and stats.any():
                    log.info("SMS: %s", stats.words())
                if once or stop.wait(settings.sms.interval_s):
                    break
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        engine.dispose()
    if once and failed:  # the one pass failed (logged above): a script must know
        raise typer.Exit(code=1)


@sms_app.command("list")
def sms_list(
    config: ConfigOption = None,
    status: Annotated[
        str | None,
        typer.Option(help="queued, outbox, sent atau failed / queued, outbox, sent or failed"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help=LIMIT_HELP)] = 50,
) -> None:
    """SMS terakhir untuk nasabah: id, dibuat, status, nasabah, jenis, nomor, teks (atau alasan
    gagal). / The latest SMS to members: id, created, status, member, kind, phone, text (or why
    it failed)."""
    from sqlalchemy import select

    from wastebank import ledger, sms
    from wastebank.config import load_settings

    statuses = [s.value for s in sms.SmsStatus]
    if status is not None and status not in statuses:  # it listed nothing, exit 0: a typo hid
        typer.echo(
            f"error: --status: {status!r} tidak dikenal / unknown; salah satu dari / one of: "
            f"{', '.join(statuses)}",
            err=True,
        )
        raise typer.Exit(code=FAILED)
    settings = load_settings(sms.SmsSettings, config)
    engine = ledger.make_engine(settings.ledger_url)
    query = select(sms.SmsMessage).order_by(sms.SmsMessage.id.desc()).limit(limit)
    if status is not None:
        query = query.where(sms.SmsMessage.status == status)
    try:
        with ledger.Session(engine) as s:
            lines = [
                f"{m.id}\t{m.created_at.isoformat(timespec='seconds')}\t{m.status}\t"
                f"{m.member.member_no}\t{m.kind}\t{m.phone}\t{m.error or m.text}"
                for m in s.scalars(query)
            ]
    finally:
        engine.dispose()
    for line in lines or ["tidak ada SMS / no SMS"]:
        typer.echo(line)


@sms_app.command("inbox")
def sms_inbox(
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help=LIMIT_HELP)] = 50,
) -> None:
    """SMS terakhir yang diterima modem: id, dibaca, pengirim, hasil, id balasan, teks. / The
    latest messages the modem received: id, read, sender, outcome, reply id, text."""
    from sqlalchemy import select

    from wastebank import ledger, sms
    from wastebank.config import load_settings

    settings = load_settings(sms.SmsSettings, config)
    engine = ledger.make_engine(settings.ledger_url)
    try:
        with ledger.Session(engine) as s:
            lines = [
                f"{i.id}\t{i.read_at.isoformat(timespec='seconds')}\t{i.sender}\t{i.outcome}\t"
                f"{i.reply_id or '-'}\t{i.text!r}"
                for i in s.scalars(
                    select(sms.SmsInbound).order_by(sms.SmsInbound.id.desc()).limit(limit)
                )
            ]
    finally:
        engine.dispose()
    for line in lines or ["tidak ada SMS masuk / no SMS received"]:
        typer.echo(line)
