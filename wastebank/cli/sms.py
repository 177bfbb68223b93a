"""`wastebank sms`: receipts and balance replies by SMS through Gammu SMSD (wastebank/sms/)."""

from __future__ import annotations

import logging
import threading
from typing import Annotated

import typer

from wastebank.cli._common import ConfigOption, LogFormat, LogFormatOption, setup_logging

sms_app = typer.Typer(
    help="SMS untuk nasabah lewat Gammu SMSD / SMS to members through Gammu SMSD",
    no_args_is_help=True,
)
log = logging.getLogger("wastebank.sms")


@sms_app.command("run")
def sms_run(
    config: ConfigOption = None,
    once: Annotated[bool, typer.Option("--once", help="one pass, then exit")] = False,
    verbose: bool = False,
    log_format: LogFormatOption = LogFormat.text,
) -> None:
    """Answer SALDO, hand queued receipts to Gammu SMSD, record what it sent or could not;
    every `[sms] interval_s` seconds until stopped (Ctrl-C, SIGTERM). One runner per SMSD."""
    import signal

    from wastebank import ledger, sms
    from wastebank.config import load_settings

    setup_logging(verbose, json=log_format is LogFormat.json)
    settings = load_settings(sms.SmsSettings, config)
    files = sms.GammuFiles.from_config(settings.sms.smsdrc, settings.sms.processed_path)
    engine = ledger.make_engine(settings.ledger_url)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with sms.exclusive(files):
            delivery = sms.Delivery(engine, files, settings.sms)
            log.info("SMS berjalan / running on %s", files.config)
            while True:
                stats = delivery.run_once()
                if stats.any():
                    log.info("SMS: %s", stats)
                if once or stop.wait(settings.sms.interval_s):
                    break
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        engine.dispose()


@sms_app.command("list")
def sms_list(
    config: ConfigOption = None,
    status: Annotated[str | None, typer.Option(help="queued, outbox, sent or failed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """The latest SMS to members: id, created, status, member, kind, phone, text (or why it
    failed)."""
    from sqlalchemy import select

    from wastebank import ledger, sms
    from wastebank.config import load_settings

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
    for line in lines:
        typer.echo(line)


@sms_app.command("inbox")
def sms_inbox(
    config: ConfigOption = None, limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50
) -> None:
    """The latest messages the modem received: id, read, sender, outcome, reply id, text."""
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
    for line in lines:
        typer.echo(line)
