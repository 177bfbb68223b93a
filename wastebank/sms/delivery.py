"""One pass of `wastebank sms run`: what the modem received, answered; what is queued, handed
to Gammu SMSD; what SMSD did with what it was handed, recorded.

Each step is its own transaction, and each is safe to repeat after a crash: an inbox file is
recorded under its unique name before it is moved aside (found again: only moved), and an
outbox file's name is made from the message's id (found again: not written twice; see
:mod:`wastebank.sms.gammu`). One runner per SMSD: :func:`exclusive` holds a lock in its outbox.

Balance replies (``SALDO``, ``CEK SALDO``) go only to a number that belongs to exactly one
opted-in member, at most ``balance_replies_per_day`` in 24 hours. Any other sender gets no
reply at all: a reply costs the bank, "not registered" would tell a stranger which numbers
are, and two auto-responders could answer each other forever. Every received message is kept
(``sms_inbound``) with its outcome, so an attendant can see who asked.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, joinedload

from wastebank import ledger
from wastebank.errors import Unavailable
from wastebank.sms import numbers, texts
from wastebank.sms.gammu import GammuFiles, Inbound
from wastebank.sms.models import InboundOutcome, SmsInbound, SmsKind, SmsMessage, SmsStatus
from wastebank.sms.queue import add_message, opted_in_with, zone_of
from wastebank.sms.settings import SmsOptions

log = logging.getLogger("wastebank.sms")

EXPIRED = "kedaluwarsa: tidak terkirim dalam batas waktu / expired before it could be sent"
GAMMU_ERROR = "Gammu SMSD gagal mengirim (lihat log SMSD) / SMSD could not send it (see its log)"
VANISHED = "berkas hilang dari folder SMSD / its file vanished from SMSD's folders"


class RunnerBusy(Unavailable):
    """Another `wastebank sms run` holds this SMSD's outbox."""


@dataclass
class RunStats:
    handed: int = 0
    sent: int = 0
    failed: int = 0
    expired: int = 0
    received: int = 0
    replied: int = 0
    unanswered: int = 0  # received, and not answered: not a command, unknown, over the limit
    unreadable: int = 0

    def any(self) -> bool:
        return any(self.__dict__.values())


@contextmanager
def exclusive(files: GammuFiles) -> Iterator[None]:
    """Hold the runner's lock (a file in SMSD's outbox, which SMSD ignores: not ``OUT*``)."""
    with (files.outbox / ".wastebank-sms.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunnerBusy(
                f"`wastebank sms run` sudah berjalan untuk / already runs for {files.config}"
            ) from None
        yield


def answer(
    session: Session, inbound: SmsInbound, *, limit: int, now: datetime
) -> SmsMessage | None:
    """Decide what ``inbound`` gets (its ``outcome``, ``member_id``) and queue the balance
    reply if it gets one."""
    if not texts.is_balance_request(inbound.text):
        inbound.outcome = InboundOutcome.NOT_A_COMMAND
        return None
    phone = numbers.normalize(inbound.sender)
    members, known = opted_in_with(session, phone) if phone else ([], False)
    if len(members) != 1:
        inbound.outcome = (
            InboundOutcome.AMBIGUOUS
            if members
            else InboundOutcome.NOT_OPTED_IN
            if known
            else InboundOutcome.UNKNOWN_NUMBER
        )
        return None
    member = members[0]
    inbound.member_id = member.id
    replies = session.scalar(
        select(func.count())
        .select_from(SmsMessage)
        .where(
            SmsMessage.member_id == member.id,
            SmsMessage.kind == SmsKind.BALANCE,
            SmsMessage.created_at >= now - timedelta(hours=24),
        )
    )
    if (replies or 0) >= limit:
        inbound.outcome = InboundOutcome.OVER_LIMIT
        return None
    account = ledger.member_account_summary(session, member.member_no)
    assert account is not None  # the member was just read
    text = texts.balance_text(
        bank=member.bank.name,
        member_no=member.member_no,
        balance_idr=account.balance_idr,
        available_idr=account.available_idr,
        at=now,
        tz=zone_of(member.bank),
    )
    inbound.outcome = InboundOutcome.BALANCE
    return add_message(session, member, SmsKind.BALANCE, f"inbound:{inbound.id}", text)


class Delivery:
    """The passes of one runner over one ledger and one SMSD."""

    def __init__(self, engine: Engine, files: GammuFiles, options: SmsOptions) -> None:
        self.engine = engine
        self.files = files
        self.options = options

    def run_once(self) -> RunStats:
        stats = RunStats()
        for item in self.files.received():
            self._receive(item, stats)
        self._expire(stats)
        self._hand(stats)
        self._settle(stats)
        return stats

    def _receive(self, item: Inbound, stats: RunStats) -> None:
        with Session(self.engine) as s:
            if s.scalar(select(SmsInbound.id).where(SmsInbound.gammu_id == item.name)) is None:
                inbound = SmsInbound(
                    gammu_id=item.name,
                    sender=item.sender[:64],
                    text=item.text or "",
                    outcome=InboundOutcome.UNREADABLE,
                    read_at=ledger.utcnow(),
                )
                s.add(inbound)
                s.flush()
                reply = None
                if item.text is not None:
                    limit = self.options.balance_replies_per_day
                    reply = answer(s, inbound, limit=limit, now=inbound.read_at)
                inbound.reply_id = reply.id if reply else None
                s.commit()
                self._count(inbound, stats)
        self.files.set_aside(item)

    @staticmethod
    def _count(inbound: SmsInbound, stats: RunStats) -> None:
        stats.received += 1
        if inbound.outcome == InboundOutcome.BALANCE:
            stats.replied += 1
        elif inbound.outcome == InboundOutcome.UNREADABLE:
            stats.unreadable += 1
            log.warning(
                "SMS tak terbaca / unreadable SMS %s from %s", inbound.gammu_id, inbound.sender
            )
        else:
            stats.unanswered += 1
        log.info("SMS masuk / received %s: %s", inbound.gammu_id, inbound.outcome)

    def _expire(self, stats: RunStats) -> None:
        cutoff = ledger.utcnow() - timedelta(hours=self.options.max_age_h)
        with Session(self.engine) as s:
            result = s.execute(
                update(SmsMessage)
                .where(SmsMessage.status == SmsStatus.QUEUED, SmsMessage.created_at < cutoff)
                .values(status=SmsStatus.FAILED, error=EXPIRED)
            )
            s.commit()
        expired = int(getattr(result, "rowcount", 0) or 0)
        if expired:
            log.warning("%d SMS kedaluwarsa / expired unsent", expired)
        stats.expired += expired

    def _hand(self, stats: RunStats) -> None:
        query = (
            select(SmsMessage)
            .where(SmsMessage.status == SmsStatus.QUEUED)
            .order_by(SmsMessage.id)
            .limit(self.options.batch)
        )
        if self.options.banks:
            query = (
                query.join(ledger.Member, ledger.Member.id == SmsMessage.member_id)
                .join(ledger.Bank, ledger.Bank.id == ledger.Member.bank_id)
                .where(ledger.Bank.code.in_(self.options.banks))
            )
        with Session(self.engine) as s:
            for msg in s.scalars(query).all():
                name = self.files.outbox_name(msg.id, msg.phone, msg.created_at)
                self.files.hand(name, msg.text)
                msg.status, msg.gammu_id = SmsStatus.OUTBOX, name
                s.commit()  # each as it is handed: a crash leaves at most one file to find
                stats.handed += 1

    def _settle(self, stats: RunStats) -> None:
        with Session(self.engine) as s:
            waiting = s.scalars(
                select(SmsMessage)
                .where(SmsMessage.status == SmsStatus.OUTBOX)
                .options(joinedload(SmsMessage.member))
            ).all()
            for msg in waiting:
                assert msg.gammu_id is not None
                folder = self.files.where(msg.gammu_id)
                if folder == "sent":
                    msg.status, msg.sent_at = SmsStatus.SENT, self.files.sent_at(msg.gammu_id)
                    stats.sent += 1
                elif folder in ("error", None):
                    msg.status, msg.error = SmsStatus.FAILED, GAMMU_ERROR if folder else VANISHED
                    stats.failed += 1
                    log.warning("SMS %d gagal / failed: %s", msg.id, msg.error)
            s.commit()
