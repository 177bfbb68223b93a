"""Today's deposits at this gateway, and voids:

GET  /petugas/api/deposits             today's deposits at this gateway
POST /petugas/api/deposits/{id}/void   {reason}: queued for the central API
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException

from gateway.http.attendant import views
from gateway.http.attendant.auth import CsrfDep, Service, SignedInDep
from gateway.http.attendant.views import DepositView, VoidIn

log = logging.getLogger("wastebank.gateway")

router = APIRouter(prefix="/petugas", tags=["attendant"])


@router.get("/api/deposits")
async def deposits(_: SignedInDep, service: Service) -> list[DepositView]:
    start, end = views.today(service)
    return [views.deposit_view(service, e) for e in service.db.journal.between(start, end)]


@router.post("/api/deposits/{event_id}/void")
async def void(event_id: str, body: VoidIn, signed: CsrfDep, service: Service) -> DepositView:
    who = signed.who
    journal = service.db.journal
    try:
        entry = journal.request_void(event_id, body.reason, who.username, datetime.now(UTC))
    except KeyError:
        raise HTTPException(404, f"setoran {event_id} tidak ada / no such deposit") from None
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    log.info("pembatalan diminta / void asked: %s by %s", event_id, who.username)
    service.wake()
    service.gw.live.notify()
    return views.deposit_view(service, entry)
