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

A receipt expires after ``max_age_h`` whether it is still queued or already in SMSD's outbox
(the modem away for days: SMSD would send a week of old receipts the moment it is back); one
in the outbox is taken back from SMSD first (:meth:`GammuFiles.take_back`). An inbox file that
cannot be read or moved aside is said once and left; a pass that fails is said once and the
next one tried (:meth:`Delivery.attempt`): one bad file or an outage of the ledger never stops
the runner, whose receipts would otherwise wait and expire.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, func, select, update
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.errors import SetupError, Unavailable
from wastebank.sms import numbers, texts
from wastebank.sms.gammu import GammuFiles, Inbound
from wastebank.sms.models import InboundOutcome, SmsInbound, SmsKind, SmsMessage, SmsStatus
from wastebank.sms.queue import add_message, opted_in_with, zone_of
from wastebank.sms.settings import SmsOptions

log = logging.getLogger("wastebank.sms")

EXPIRED = "kedaluwarsa: tidak terkirim dalam batas waktu / expired before it could be sent"
GAMMU_ERROR = "Gammu SMSD gagal mengirim (lihat log SMSD) / SMSD could not send it (see its log)"
VANISHED = "berkas hilang dari folder SMSD / its file vanished from SMSD's folders"


Q = TypeVar("Q", bound=Select[Any])


class RunnerBusy(Unavailable):
    """Another `wastebank sms run` holds this SMSD's outbox."""


class UnknownBank(SetupError):
    """``[sms] banks`` names a bank the ledger does not know: its members' receipts would wait
    for a runner that never comes, and expire."""


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
    stuck: int = 0  # inbox files that could not be read or moved aside (said once each)

    def any(self) -> bool:
        return any(self.__dict__.values())

    def words(self) -> str:
        """``1 diserahkan ke SMSD, 2 masuk / 1 handed to SMSD, 2 received``: the counts that are
        not 0, for the log (a repr is not for the operator)."""
        counts = [(getattr(self, field), id_, en) for field, id_, en in WORDS]
        said = [(n, id_, en) for n, id_, en in counts if n]
        if not said:
            return "tidak ada / nothing"
        return (
            ", ".join(f"{n} {id_}" for n, id_, _ in said)
            + " / "
            + ", ".join(f"{n} {en}" for n, _, en in said)
        )


WORDS = (
    ("handed", "diserahkan ke SMSD", "handed to SMSD"),
    ("sent", "terkirim", "sent"),
    ("failed", "gagal", "failed"),
    ("expired", "kedaluwarsa", "expired"),
    ("received", "masuk", "received"),
    ("replied", "dijawab", "answered"),
    ("unanswered", "tidak dijawab", "not answered"),
    ("unreadable", "tak terbaca", "unreadable"),
    ("stuck", "tertahan di kotak masuk", "stuck in the inbox"),
)
"""Each :class:`RunStats` count in words: Indonesian, English."""


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
        self._banks_known = not options.banks
        self._stuck: set[str] = set()  # inbox files said to be stuck, not said again
        self._failing: str | None = None  # the failure the last pass was said to have

    def run_once(self) -> RunStats:
        """One pass; an error is raised (see :meth:`attempt`)."""
        stats = RunStats()
        self._check_banks()
        for item in self.files.received(
            on_error=lambda name, exc: self._stuck_file(
                name, "tidak bisa dibaca", "could not be read", exc, stats
            )
        ):
            self._receive(item, stats)
        self._expire(stats)
        self._take_back(stats)
        self._hand(stats)
        self._settle(stats)
        return stats

    def attempt(self) -> RunStats | None:
        """One pass of the runner's loop: its stats, or None when it failed. A failure is said
        once, in words (no traceback but with --verbose), until a pass works again or fails
        otherwise; the loop goes on, as a dead runner would let every receipt expire. Only an
        :class:`UnknownBank` ends it: a setting to fix, no pass will ever work."""
        try:
            stats = self.run_once()
        except UnknownBank:
            raise
        except Exception as exc:
            # The first line only: a database error's next ones carry the statement and its
            # parameters (members' numbers and texts), not for a log line every pass.
            said = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
            if said != self._failing:
                log.error(
                    "SMS: putaran gagal, dicoba lagi setiap %s detik / pass failed, tried again "
                    "every %s s: %s",
                    self.options.interval_s,
                    self.options.interval_s,
                    said,
                )
                log.debug("SMS: putaran gagal / pass failed", exc_info=True)
            self._failing = said
            return None
        if self._failing is not None:
            log.info("SMS: putaran berhasil lagi / passes work again")
            self._failing = None
        return stats

    def _check_banks(self) -> None:
        """``[sms] banks``, once the ledger answers: every code a bank it knows."""
        if self._banks_known:
            return
        with Session(self.engine) as s:
            known = set(
                s.scalars(select(ledger.Bank.code).where(ledger.Bank.code.in_(self.options.banks)))
            )
        unknown = [code for code in self.options.banks if code not in known]
        if unknown:
            raise UnknownBank(
                "[sms] banks: bank tidak dikenal di buku besar / unknown to the ledger: "
                + ", ".join(unknown)
            )
        self._banks_known = True

    def _mine(self, query: Q) -> Q:
        """``query`` (of :class:`SmsMessage`) narrowed to ``[sms] banks``' members: what this
        runner hands, takes back and settles (another bank's modem has its own runner, whose
        files are not in our folders)."""
        if not self.options.banks:
            return query
        return (
            query.join(ledger.Member, ledger.Member.id == SmsMessage.member_id)
            .join(ledger.Bank, ledger.Bank.id == ledger.Member.bank_id)
            .where(ledger.Bank.code.in_(self.options.banks))
        )

    def _stuck_file(self, name: str, id_: str, en: str, exc: OSError, stats: RunStats) -> None:
        """An inbox file that cannot be read or moved aside: left where it is, said and counted
        once (it is tried again each pass, quietly)."""
        if name in self._stuck:
            return
        self._stuck.add(name)
        stats.stuck += 1
        log.warning(
            "SMS masuk %s %s, dibiarkan di kotak masuk / received SMS %s %s, left in the inbox: %s",
            name,
            id_,
            name,
            en,
            exc.strerror or exc,
        )

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
        try:
            self.files.set_aside(item)
        except OSError as exc:  # recorded already: found again next pass, only moved then
            where = self.files.processed
            self._stuck_file(
                item.name,
                f"tidak bisa dipindahkan ke {where}",
                f"could not be moved to {where}",
                exc,
                stats,
            )
            return
        if item.name in self._stuck:
            self._stuck.discard(item.name)
            log.info(
                "SMS masuk %s kini dipindahkan / received SMS %s now moved", item.name, item.name
            )

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

    def _take_back(self, stats: RunStats) -> None:
        """Messages handed to SMSD and still in its outbox after ``max_age_h`` (the modem away):
        taken back and failed "kedaluwarsa", as a queued one is. One SMSD moved meanwhile is
        left to :meth:`_settle`. Recorded before the taken file is removed: a run that dies in
        between finds it taken on its next pass (never "vanished")."""
        cutoff = ledger.utcnow() - timedelta(hours=self.options.max_age_h)
        with Session(self.engine) as s:
            old = s.scalars(
                self._mine(
                    select(SmsMessage).where(
                        SmsMessage.status == SmsStatus.OUTBOX, SmsMessage.created_at < cutoff
                    )
                ).order_by(SmsMessage.id)
            ).all()
            for msg in old:
                name = msg.gammu_id
                assert name is not None  # set as it was handed
                if not self.files.take_back(name):
                    continue
                msg.status, msg.error = SmsStatus.FAILED, EXPIRED
                s.commit()
                self.files.drop_taken(name)
                stats.expired += 1
                log.warning(
                    "SMS %d kedaluwarsa, diambil kembali dari outbox SMSD / expired, taken back "
                    "from SMSD's outbox",
                    msg.id,
                )

    def _hand(self, stats: RunStats) -> None:
        query = (
            select(SmsMessage)
            .where(SmsMessage.status == SmsStatus.QUEUED)
            .order_by(SmsMessage.id)
            .limit(self.options.batch)
        )
        with Session(self.engine) as s:
            for msg in s.scalars(self._mine(query)).all():
                name = self.files.outbox_name(msg.id, msg.phone, msg.created_at)
                self.files.hand(name, msg.text)
                msg.status, msg.gammu_id = SmsStatus.OUTBOX, name
                s.commit()  # each as it is handed: a crash leaves at most one file to find
                stats.handed += 1

    def _settle(self, stats: RunStats) -> None:
        with Session(self.engine) as s:
            waiting = s.scalars(
                self._mine(select(SmsMessage).where(SmsMessage.status == SmsStatus.OUTBOX))
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
