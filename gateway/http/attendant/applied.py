"""What the ledger credited for each deposit recorded here, learnt from the central API
(``GET /api/banks/{bank}/deposits?event_id=...``, :meth:`gateway.central.Central.applied`) and kept
in the deposit journal, so a receipt shows the ledger's amount and price instead of the gateway's
estimate (:mod:`.deposit_receipt`).

Why ask the central API, and not have the ingester tell the gateway over MQTT: the gateway
already holds an attendant's token and asks the API for members, prices and voids, with the
API's access rules (an attendant reads their own bank only); the answer is idempotent and
survives an outage (what was missed is asked again; a message published while the gateway was
offline would be lost unless the broker kept a session for it); and an MQTT reply would need a
topic per gateway, ACL grants letting the ingester publish to it and the gateway read it (the
ACL that ``wastebank/devices/registry.py`` writes for the broker of
``wastebank/services/mosquitto.py`` lets the ingester read device topics and publish none), and
the ingester to know which gateway to answer. The cost: a request every :data:`RECENT_POLL_S`
while a deposit sent in the last :data:`RECENT_S` is not known applied, and one when a receipt
of such a deposit is opened (bounded by :data:`ON_DEMAND_TIMEOUT_S`).

Needs a token: an attendant who logged in online since the gateway started (as the member sync
and voids do). Until then, and while offline, receipts stay marked as estimates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from gateway.central import Refused, Unreachable
from gateway.http.attendant.formats import day_bounds
from gateway.http.attendant.service import AttendantService

log = logging.getLogger("wastebank.gateway")

RECENT_S: Final = 600.0
"""A deposit sent this recently and not known applied is asked about every :data:`RECENT_POLL_S`
(the ingester applies one within seconds); older ones every ``sync_interval_s`` (one the ledger
refused stays unapplied: it is in the ingester's dead letters, for an operator)."""
RECENT_POLL_S: Final = 5.0
ON_DEMAND_TIMEOUT_S: Final = 2.0
"""How long opening a receipt waits for the central API's answer before showing the estimate."""
BATCH: Final = 100
"""Event ids a request (the API's limit)."""


def _token(service: AttendantService) -> str | None:
    """The newest attendant token (as the sync loop picks it)."""
    return next(reversed(service.tokens.values()), None)


async def check(service: AttendantService, event_ids: Sequence[str], token: str) -> int:
    """Ask the central API about ``event_ids``; keep what the ledger applied; return how many
    journal entries changed (the pages are woken then). :class:`Unreachable`, :class:`Refused`
    from the call go to the caller."""
    central = service.api()
    if central is None or not event_ids:
        return 0
    journal = service.db.journal
    changed = 0
    for start in range(0, len(event_ids), BATCH):
        batch = event_ids[start : start + BATCH]
        got = await central.applied(service.gw.settings.bank_code, batch, token)
        for event_id, a in got.items():
            changed += journal.set_applied(event_id, a.amount_idr, a.price_idr, a.applied_at)
        journal.applied_checked([e for e in batch if e not in got], datetime.now(UTC))
    if changed:
        log.info("jumlah buku besar diterima / ledger amounts learnt: %d", changed)
        service.gw.live.notify()
    return changed


def due(service: AttendantService, now: datetime) -> list[str]:
    """Today's sent deposits not known applied whose turn to be asked about has come."""
    journal = service.db.journal
    start, _ = day_bounds(now.astimezone(service.tz).date(), service.tz)
    recent_since = max(start, now - timedelta(seconds=RECENT_S))
    recent = journal.unapplied(recent_since, now - timedelta(seconds=RECENT_POLL_S))
    older = journal.unapplied(start, now - timedelta(seconds=service.settings.sync_interval_s))
    return list(dict.fromkeys([*recent, *older]))


async def sync_due(service: AttendantService) -> int:
    """One round: ask about the deposits :func:`due` now; never raises for the API's sake."""
    token = _token(service)
    if token is None or service.api() is None:
        return 0
    ids = due(service, datetime.now(UTC))
    if not ids:
        return 0
    try:
        return await check(service, ids, token)
    except Unreachable as exc:
        log.debug("jumlah buku besar ditunda / ledger amounts later: %s", exc)
    except Refused as exc:
        if exc.status_code == 401:  # expired or revoked: not used again (as the sync loop does)
            service.tokens = {u: t for u, t in service.tokens.items() if t != token}
        log.warning("jumlah buku besar ditolak / ledger amounts refused: %s", exc)
    return 0


async def refresh_one(service: AttendantService, event_id: str) -> None:
    """Opening a receipt of a deposit sent but not known applied: ask now, briefly; on no
    answer the receipt shows the estimate (and the loop asks again)."""
    token = _token(service)
    if token is None:
        return
    try:
        async with asyncio.timeout(ON_DEMAND_TIMEOUT_S):
            await check(service, [event_id], token)
    except (TimeoutError, Unreachable, Refused) as exc:
        log.debug("jumlah buku besar belum ada / no ledger amount yet: %s: %s", event_id, exc)


async def run(service: AttendantService) -> None:
    """Ask about due deposits every :data:`RECENT_POLL_S` (a cheap SQLite query when none is
    due) until the gateway stops; never raises."""
    while not service.gw.live.stopped:
        try:
            await sync_due(service)
        except Exception:
            log.exception("jumlah buku besar gagal / ledger amounts failed")
        await asyncio.sleep(RECENT_POLL_S)  # a polling cadence, not a wait for an outcome
