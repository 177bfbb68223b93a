"""The ledger's refusals, and the transaction that rolls back whatever a refused operation wrote."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from wastebank import errors
from wastebank.money_rules import Breach

if TYPE_CHECKING:
    from wastebank.ledger.applied import AppliedDeposit


class LedgerError(errors.Refused):
    """A request the ledger refuses; whatever it had written for the request is rolled back (a
    savepoint, :func:`atomic`), and the caller's transaction goes on.

    Each refusal belongs to the family (:mod:`wastebank.errors`) that says what the caller does
    about it, and carries the HTTP status and the bilingual title an answer starts with."""


class NotFound(LedgerError, errors.NotFound):
    pass


class NotAllowed(LedgerError, errors.Forbidden):
    """The author is not an attendant of the bank, or the bank may not do this."""


class AlreadyVoided(LedgerError, errors.Conflict):
    title = errors.ALREADY_VOIDED


class InsufficientBalance(LedgerError, errors.Conflict):
    title = "saldo tidak cukup / insufficient balance"


class InsufficientStock(LedgerError, errors.Conflict):
    title = "stok tidak cukup / insufficient stock"


class BelowMinimum(LedgerError, errors.Invalid):
    title = "di bawah penarikan minimum / below the minimum withdrawal"


class InvalidTransition(LedgerError, errors.Conflict):
    """A withdrawal asked to move to a state its current state does not lead to."""

    title = "status tidak memungkinkan / not possible in this state"


class PriceHistoryLocked(LedgerError, errors.Conflict):
    """A new price would reprice deposits already priced: history is never rewritten."""

    title = "riwayat harga terkunci / price history is locked"


class DepositRejected(LedgerError, errors.Invalid):
    """The deposit is well-formed but cannot be applied (unknown card, no price, ...)."""

    title = "setoran ditolak / deposit refused"


class IdempotencyKeyReused(LedgerError, errors.Conflict):
    """An author's idempotency key came again with another deposit (member, category, weight,
    count, time or bank): the key names the deposit first recorded with it, so the second is
    refused, never taken for a retry nor recorded as a new deposit."""

    title = "idempotency_key sudah dipakai setoran lain / idempotency_key used for another deposit"


class OverLimit(LedgerError, errors.Invalid):
    """A value beyond a money rule (:mod:`wastebank.money_rules`): a price, a manual deposit's
    weight or amount. The message, in Bahasa Indonesia then English, names the setting."""

    title = "di luar batas wajar / beyond a plausibility limit"

    def __init__(self, breach: Breach) -> None:
        super().__init__(breach.message)
        self.breach = breach


class DepositOverLimit(OverLimit, DepositRejected):
    """A deposit beyond a money rule (a scale's or a manual deposit's limit): refused like any
    rejected deposit; the ingester keeps a scale's as an ``over_limit`` dead letter. Answered
    as the limit it breaks (:class:`OverLimit`'s title)."""


class SecondPersonRequired(NotAllowed):
    """A withdrawal above the second-approval amount, approved by the one who asked for it, or
    paid out by the one who asked or approved: someone else must."""

    title = "perlu orang kedua / a second person must do this"


class DepositConflict(LedgerError, errors.Conflict):
    """A deposit whose event id the ledger knows with other content (bank, gateway, member or
    card, category, grams, time): never applied, never merged; the ingester dead-letters it."""

    def __init__(self, event_id: str, existing: AppliedDeposit, differences: list[str]) -> None:
        super().__init__(f"event {event_id} is known with other content: " + "; ".join(differences))
        self.event_id = event_id
        self.existing = existing
        self.differences = differences


@contextmanager
def atomic(session: Session) -> Iterator[None]:
    """Run the block in a savepoint of the caller's transaction: released when the block
    succeeds, rolled back when it raises, so a refused operation leaves nothing of what it wrote
    (on PostgreSQL the row locks it took are released too) and the caller's transaction goes on.

    The ledger never commits: the caller (the API request, the CLI command, the ingester's
    batch, an import) owns the transaction, commits it, or rolls it back on an error."""
    with session.begin_nested():
        yield
