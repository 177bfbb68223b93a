"""Dead letters: messages the ingester could not apply, kept byte for byte (one over the payload
limit: its first bytes, its size and hash); their repeats, their replays, their resolution by an
operator, and their purge."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from wastebank.ledger.applied import AppliedDeposit
from wastebank.ledger.deposits import References, write_deposit
from wastebank.ledger.errors import DepositRejected, InvalidTransition, NotFound, atomic
from wastebank.ledger.models import DeadLetter, DeadLetterReason, Deposit, utcnow
from wastebank.messages import MAX_PAYLOAD_BYTES, DepositEvent
from wastebank.money_rules import DEFAULT_RULES, MoneyRules
from wastebank.structs import decode_json


class NewDeadLetter(NamedTuple):
    topic: str
    payload: bytes
    error: str
    reason: str = DeadLetterReason.INVALID
    event_id: str | None = None


OVERSIZED_KEPT_BYTES = 4096
"""Of a message over the payload limit (``messages.MAX_PAYLOAD_BYTES``, refused unread) the
row keeps this many first bytes, with the whole size and SHA-256: enough to see what it was,
and a device cannot fill the ledger's disk with one message. A message within the limit is kept
whole (it can be replayed or applied)."""
ERROR_MAX_CHARS = 4000


def add_dead_letters(
    session: Session, rows: Sequence[NewDeadLetter | tuple[str, bytes, str]]
) -> list[DeadLetter]:
    """Add (topic, raw payload, error[, reason, event id]) rows to the caller's transaction;
    returns the row of each, in order. The same message again (topic, bytes and error) while
    its row is neither replayed nor resolved is counted on that row (``times_received``,
    ``last_received_at``), not stored again: a retained message comes at each ingester start.
    Flushes (the rows have their ids); the caller commits."""
    out: list[DeadLetter] = []
    added: dict[tuple[str, str, str], DeadLetter] = {}
    for r in (NewDeadLetter(*row) for row in rows):
        digest = hashlib.sha256(r.payload).hexdigest()
        error = r.error[:ERROR_MAX_CHARS]
        key = (r.topic, digest, error)
        row = added.get(key) or _unsettled(session, *key)
        if row is not None:
            row.times_received += 1
            row.last_received_at = utcnow()
        else:
            kept = (
                r.payload
                if len(r.payload) <= MAX_PAYLOAD_BYTES
                else r.payload[:OVERSIZED_KEPT_BYTES]
            )
            row = added[key] = DeadLetter(
                topic=r.topic,
                payload=kept,
                payload_size=len(r.payload),
                payload_sha256=digest,
                times_received=1,
                error=error,
                reason=str(r.reason),
                event_id=r.event_id[:100] if r.event_id else None,
            )
            session.add(row)
        out.append(row)
    session.flush()
    return out


def _unsettled(session: Session, topic: str, digest: str, error: str) -> DeadLetter | None:
    """The unsettled row of this message (topic, SHA-256, error), if one is stored."""
    return session.scalar(
        select(DeadLetter)
        .where(
            DeadLetter.payload_sha256 == digest,
            DeadLetter.topic == topic,
            DeadLetter.error == error,
            DeadLetter.replayed_at.is_(None),
            DeadLetter.resolved_at.is_(None),
        )
        .order_by(DeadLetter.id)
        .limit(1)
    )


def truncated_text(row: DeadLetter) -> str:
    """Why a truncated row can be neither replayed nor applied."""
    return (
        f"truncated: only the first {len(row.payload)} of its {row.payload_size} bytes are kept "
        f"(sha256 {row.payload_sha256}); over the {MAX_PAYLOAD_BYTES}-byte payload limit it can "
        "be neither replayed nor applied: fix the device, then discard it"
    )


def dead_letters(
    session: Session,
    limit: int | None = 1000,
    *,
    topic_contains: str | None = None,
    since: datetime | None = None,
    replayed: bool | None = None,
    ids: Sequence[int] | None = None,
    newest_first: bool = False,
) -> list[DeadLetter]:
    """Dead letters, oldest (or newest) first, filtered by each criterion that is given."""
    stmt = select(DeadLetter).order_by(DeadLetter.id.desc() if newest_first else DeadLetter.id)
    if topic_contains:
        stmt = stmt.where(DeadLetter.topic.contains(topic_contains, autoescape=True))
    if since is not None:
        stmt = stmt.where(DeadLetter.received_at >= since)
    if replayed is not None:
        stmt = stmt.where(
            DeadLetter.replayed_at.is_not(None) if replayed else DeadLetter.replayed_at.is_(None)
        )
    if ids is not None:
        stmt = stmt.where(DeadLetter.id.in_(list(ids)))
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def get_dead_letter(session: Session, dead_letter_id: int) -> DeadLetter | None:
    return session.get(DeadLetter, dead_letter_id)


RESOLVED_ID_PREFIX = "R-"
"""A conflict applied as a new deposit gets ``R-{dead letter id}``: issued by the server,
upper-case, so no device id can be it, and one dead letter can be applied only once."""


def deposit_by_event_id(session: Session, event_id: str) -> Deposit | None:
    return session.scalar(select(Deposit).where(Deposit.event_id == event_id))


def resolve_dead_letter(
    session: Session,
    dead_letter_id: int,
    *,
    apply: bool,
    reason: str,
    author: str,
    rules: MoneyRules = DEFAULT_RULES,
) -> tuple[DeadLetter, AppliedDeposit | None]:
    """Settle a dead letter that a replay cannot settle, once, with a reason (``author``, an
    operator, is recorded on it; the caller adds the audit entry in the same transaction).

    ``apply``: a ``conflict`` becomes a deposit of its own, ``R-{id}``, priced like any other at
    its own time (and held to its scale's limit in ``rules``), with the reason on the deposit;
    an ``over_limit`` deposit is applied under its own event id, as the scale sent it: the
    operator vouches for the weight, so its scale's limit is not checked again. Otherwise it is
    discarded (any dead letter).
    The deposit its event id already named is never touched. The caller commits, and clears the
    conflict's alert once no other conflict of its event id waits (:func:`unsettled_conflicts`;
    the alerts are built on the ledger, which imports nothing of them); raises :class:`NotFound`,
    :class:`InvalidTransition` (already settled, or applying what is not a conflict) or
    :class:`DepositRejected` (it cannot be applied, e.g. its card is unknown now)."""
    if not reason.strip():
        raise DepositRejected("a resolution needs a reason")
    with atomic(session):
        row = session.get(DeadLetter, dead_letter_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no dead letter #{dead_letter_id}")
        if row.resolved_at is not None or row.replayed_at is not None:
            raise InvalidTransition(f"dead letter #{dead_letter_id} is settled already")
        applied: AppliedDeposit | None = None
        if apply and row.truncated:
            raise InvalidTransition(f"dead letter #{dead_letter_id}: {truncated_text(row)}")
        if apply:
            if row.reason not in (DeadLetterReason.CONFLICT, DeadLetterReason.OVER_LIMIT):
                raise InvalidTransition(
                    f"dead letter #{dead_letter_id} is {row.reason}, not a conflict nor over a "
                    "limit: replay it after a fix, or discard it"
                )
            ev = decode_json(row.payload, DepositEvent)
            ref = References(session, rules)
            if row.reason == DeadLetterReason.CONFLICT:
                new_id = f"{RESOLVED_ID_PREFIX}{row.id}"
                planned, applied = ref.plan(ev, event_id=new_id)
            else:
                new_id = ev.event_id
                if ref.applied([new_id]):
                    raise InvalidTransition(f"deposit {new_id} is in the ledger already")
                planned, applied = ref.plan(ev, check_limits=False)
            planned.update(manual=False, reason=f"{ev.event_id}: {reason}", author=author[:64])
            write_deposit(session, planned, applied)
            row.resolution = f"applied as {new_id}: {reason}"
        else:
            row.resolution = f"discarded: {reason}"
        row.resolved_at, row.resolved_by = utcnow(), author[:80]
        session.flush()
    return row, applied


def unsettled_conflicts(session: Session, event_id: str) -> int:
    """How many ``conflict`` dead letters of ``event_id`` wait for an operator: while any does,
    its ``deposit_conflict`` alert stays."""
    waiting = session.scalar(
        select(func.count())
        .select_from(DeadLetter)
        .where(
            DeadLetter.event_id == event_id,
            DeadLetter.reason == DeadLetterReason.CONFLICT,
            DeadLetter.resolved_at.is_(None),
        )
    )
    return int(waiting or 0)


def mark_replayed(session: Session, ids: Sequence[int], at: datetime | None = None) -> None:
    """Record that the dead letters ``ids`` were applied by a replay. The caller commits."""
    if not ids:
        return
    at = at or utcnow()
    session.execute(
        update(DeadLetter)
        .where(DeadLetter.id.in_(list(ids)))
        .values(
            replayed_at=at,
            last_attempt_at=at,
            replay_attempts=DeadLetter.replay_attempts + 1,
        )
    )


def record_replay_failure(
    session: Session, dead_letter_id: int, error: str, at: datetime | None = None
) -> None:
    """Record that replaying ``dead_letter_id`` failed again, and why. The caller commits."""
    at = at or utcnow()
    session.execute(
        update(DeadLetter)
        .where(DeadLetter.id == dead_letter_id)
        .values(
            last_error=error[:ERROR_MAX_CHARS],
            last_attempt_at=at,
            replay_attempts=DeadLetter.replay_attempts + 1,
        )
    )


def purge_dead_letters(
    session: Session,
    *,
    replayed: bool = False,
    before: datetime | None = None,
    dry_run: bool = False,
) -> int:
    """Delete replayed dead letters and/or those received before ``before``; return how many
    (with ``dry_run``: how many would be deleted, deleting nothing).

    With both criteria a row must meet both. With neither, nothing is deleted (ValueError):
    emptying the table is never a default. The caller commits.
    """
    if not replayed and before is None:
        raise ValueError("purge needs replayed=True and/or before=")
    criteria: list[ColumnElement[bool]] = []
    if replayed:
        criteria.append(DeadLetter.replayed_at.is_not(None))
    if before is not None:
        criteria.append(DeadLetter.received_at < before)
    if dry_run:
        return session.scalar(select(func.count()).select_from(DeadLetter).where(*criteria)) or 0
    stmt = delete(DeadLetter).where(*criteria)
    result = session.execute(stmt, execution_options={"synchronize_session": False})
    count = result.rowcount if isinstance(result, CursorResult) else 0
    return count
