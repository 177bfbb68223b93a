"""Today's deposits at this gateway, and voids:

GET  /petugas/api/deposits             today's deposits at this gateway
POST /petugas/api/deposits/{id}/void   {reason}: queued for the central API
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request

from gateway.http.attendant import auth, views
from gateway.http.attendant.views import DepositView, VoidIn
from gateway.http.routing import Routes, parse_input, path_param

log = logging.getLogger("wastebank.gateway")

routes = Routes(prefix="/petugas")


@routes.get("/api/deposits")
async def deposits(request: Request) -> list[DepositView]:
    auth.signed_in(request)
    service = auth.service(request)
    start, end = views.today(service)
    return [views.deposit_view(service, e) for e in service.db.journal.between(start, end)]


@routes.post("/api/deposits/{event_id}/void")
async def void(request: Request) -> DepositView:
    signed, _, body = await parse_input(request, VoidIn, auth.csrf_checked)
    event_id = path_param(request, "event_id")
    service = auth.service(request)
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
