"""The SMS tables, in the ledger's database (migration 0013) so that a receipt is queued in the
very transaction that applies its deposit or pays its withdrawal.

- ``sms_message``: one text to one member's phone, unique per (kind, reference): a deposit's
  event id, ``withdrawal:<id>``, ``inbound:<id>``. A deposit delivered again is a duplicate
  to the ledger and queues nothing; were it ever asked twice, the unique key refuses the second.
- ``sms_inbound``: every message the modem received, kept with what was done with it.

They live on the ledger's ``Base`` (so :func:`wastebank.tables.metadata` has them), but the
ledger imports nothing of this package: the edges (the ingester's batch, the API's pay route,
`wastebank sms run`) call it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from wastebank.ledger import Base, Member, UtcDateTime, utcnow


class SmsKind(StrEnum):
    DEPOSIT = "deposit"  # a deposit's receipt (setoran)
    WITHDRAWAL = "withdrawal"  # a withdrawal paid out (penarikan)
    BALANCE = "balance"  # the answer to an inbound SALDO


class SmsStatus(StrEnum):
    """queued -> outbox -> sent | failed; queued -> failed (expired, or no usable number)."""

    QUEUED = "queued"  # in the ledger, not yet handed to Gammu
    OUTBOX = "outbox"  # a file in Gammu SMSD's outbox: the modem has not sent it yet
    SENT = "sent"  # Gammu moved it to its sent folder: the network took it
    FAILED = "failed"  # Gammu moved it to its error folder, or it was never handed (``error``)


class InboundOutcome(StrEnum):
    """What was done with a received message; only ``balance`` got a reply."""

    BALANCE = "balance"  # SALDO from the phone of exactly one opted-in member: answered
    NOT_A_COMMAND = "not_a_command"  # any other text
    UNKNOWN_NUMBER = "unknown_number"  # SALDO from a number no member has
    NOT_OPTED_IN = "not_opted_in"  # SALDO from a member's number, but SMS is off for them
    AMBIGUOUS = "ambiguous"  # SALDO from a number two or more opted-in members share
    OVER_LIMIT = "over_limit"  # the member had their replies for the last 24 hours
    UNREADABLE = "unreadable"  # an 8-bit message, or text that does not decode


class SmsMessage(Base):
    __tablename__ = "sms_message"
    __table_args__ = (
        UniqueConstraint("kind", "reference"),
        Index("ix_sms_message_status_id", "status", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(120), doc="event id, withdrawal:<id>, ...")
    phone: Mapped[str] = mapped_column(String(32), doc="as sent: +62..., or the member's own")
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=SmsStatus.QUEUED)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    gammu_id: Mapped[str | None] = mapped_column(
        String(200), nullable=True, doc="the file name in Gammu SMSD's outbox/sent/error"
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    member: Mapped[Member] = relationship()


class SmsInbound(Base):
    __tablename__ = "sms_inbound"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gammu_id: Mapped[str] = mapped_column(String(200), unique=True, doc="Gammu's inbox file")
    sender: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    read_at: Mapped[datetime] = mapped_column(
        UtcDateTime, default=utcnow, doc="when `wastebank sms run` took it from the inbox"
    )
    outcome: Mapped[str] = mapped_column(String(24))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), nullable=True)
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("sms_message.id"), nullable=True)
