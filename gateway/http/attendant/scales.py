"""An attendant scale from the page: arm it for the next settled load, cancel, watch it live.

POST /petugas/api/scales/{id}/record   {member_no, category_code}: the next settled load
POST /petugas/api/scales/{id}/cancel
GET  /petugas/api/scales/{id}/live     Server-Sent Events: weight, stable, armed, last deposit
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.sse import EventSourceResponse

from gateway.http.attendant import views
from gateway.http.attendant.auth import COOKIE, CsrfDep, Service, SignedInDep
from gateway.http.attendant.views import LiveView, RecordIn
from gateway.readers import ScaleReader

router = APIRouter(prefix="/petugas", tags=["attendant"])


def attendant_reader(scale_id: str, service: Service) -> ScaleReader:
    """The attendant scale ``scale_id`` (404 for a kiosk scale too: not the page's)."""
    reader = service.gw.readers.get(scale_id)
    if reader is None or reader.cfg.flow != "attendant":
        raise HTTPException(404, f"timbangan {scale_id} tidak ada / no such scale")
    return reader


Reader = Annotated[ScaleReader, Depends(attendant_reader)]


@router.post("/api/scales/{scale_id}/record")
async def record(scale_id: str, body: RecordIn, signed: CsrfDep, service: Service) -> LiveView:
    reader = attendant_reader(scale_id, service)
    recorder = service.gw.recorder
    recorder.require_known(body.member_no, body.category_code)
    recorder.arm(reader, body.member_no, body.category_code, signed.who.username)
    return views.live_view(service, reader)


@router.post("/api/scales/{scale_id}/cancel")
async def cancel(scale_id: str, signed: CsrfDep, service: Service) -> LiveView:
    reader = attendant_reader(scale_id, service)
    service.gw.recorder.cancel(reader, signed.who.username)
    return views.live_view(service, reader)


@router.get("/api/scales/{scale_id}/live", response_class=EventSourceResponse)
async def live(
    request: Request, reader: Reader, _: SignedInDep, service: Service
) -> AsyncIterator[LiveView]:
    # The scale and the login are checked (dependencies) before the stream starts; the
    # stream ends when the session does (a logout, the account disabled).
    cookie = request.cookies.get(COOKIE)
    async for view in views.live(service, reader, lambda: service.signed_in(cookie) is not None):
        yield view
