"""What the ingester writes to the ledger besides deposits: dead letters, system alerts, and
the SMS receipts of the deposits it applied.

Each function works in the caller's session and transaction: the ingester's batch (or the
alert it raises) is the unit of work, and the ingester commits it.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from ingest.clash import Clash
from ingest.items import Item, event_id_of
from ingest.metrics import stored_reason_of
from wastebank import alerts, ledger, sms
from wastebank.broker_events import Refusal

log = logging.getLogger("wastebank.ingest")


def queue_sms_receipts(
    session: Session,
    results: list[ledger.AppliedDeposit | ledger.DepositRejected | ledger.DepositConflict],
) -> None:
    """An SMS receipt for each deposit of the batch the ledger APPLIED (not a duplicate) whose
    member opted in, in the batch's own transaction: a deposit delivered again queues nothing,
    and a batch rolled back takes its receipts with it (wastebank/sms/queue.py)."""
    applied = [
        r.event_id
        for r in results
        if isinstance(r, ledger.AppliedDeposit) and r.outcome is ledger.Outcome.APPLIED
    ]
    if applied:
        sms.queue_deposits(session, applied)


def store_dead_letters(
    session: Session, failed: list[Item], conflicts: dict[int, ledger.DepositConflict]
) -> None:
    """The dead letters of a batch, and for each conflict an alert to the admins (raised once
    per event id), in ``session``'s transaction (the caller commits). A message the broker
    delivers again, byte for byte, while its first copy waits unsettled is counted on that row,
    not stored twice (``ledger.add_dead_letters``)."""
    rows: list[tuple[Item, ledger.NewDeadLetter]] = []
    for item in failed:
        error = item.error or "rejected"
        conflict = conflicts.get(id(item))
        event_id = conflict.event_id if conflict else event_id_of(item.parsed)
        row = ledger.NewDeadLetter(
            item.topic, item.payload, error, stored_reason_of(error), event_id
        )
        rows.append((item, row))
    added = ledger.add_dead_letters(session, [r for _, r in rows])
    told: set[int] = set()
    for (item, _), stored in zip(rows, added, strict=True):
        conflict = conflicts.get(id(item))
        if conflict is None or stored.id in told:
            continue
        told.add(stored.id)
        log.warning(
            "konflik setoran / deposit conflict %s (dead letter %d, %dx): %s",
            conflict.event_id,
            stored.id,
            stored.times_received,
            "; ".join(conflict.differences),
        )
        alerts.raise_alert(
            session,
            alerts.AlertCode.DEPOSIT_CONFLICT,
            conflict.event_id,
            f"Setoran {conflict.event_id} datang lagi dengan isi lain; buku besar tidak "
            f"berubah. Periksa: wastebank deadletter show {stored.id} / deposit "
            f"{conflict.event_id} came again with other content; the ledger is unchanged.",
            {"dead_letter_id": stored.id, "differences": conflict.differences},
        )


def raise_clash_alerts(session: Session, found: list[Clash]) -> None:
    """A ``gateway_clash`` alert for each clash found (once per gateway while it is active)."""
    for clash in found:
        alerts.raise_alert(
            session,
            alerts.AlertCode.GATEWAY_CLASH,
            clash.gateway_id,
            clash.message(),
            {"bank": clash.bank_code, "kind": clash.kind, "ids": list(clash.ids)},
        )


def raise_refusal_alerts(session: Session, refusals: list[Refusal]) -> None:
    """A ``session_takeover`` alert for each refusal the broker reported (once per username and
    client id while it is active)."""
    for r in refusals:
        alerts.raise_alert(
            session,
            alerts.AlertCode.SESSION_TAKEOVER,
            f"{r.username} -> {r.client_id}",
            f"Broker menolak {r.describe()}. Periksa perangkat atau proses itu dan "
            f"kata sandinya (docs/operations.md, Broker identities) / check that "
            f"device or process and its password.",
            {
                "reason": r.reason,
                "username": r.username,
                "client_id": r.client_id,
                "owner": r.owner,
                "address": r.address,
                "at": r.at.isoformat(),
                "count": r.count,
            },
        )
