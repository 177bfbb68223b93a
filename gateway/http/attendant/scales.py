"""An attendant scale from the page: arm it for the next settled load, cancel, watch it live.

POST /petugas/api/scales/{id}/record   {member_no, category_code}: the next settled load
POST /petugas/api/scales/{id}/cancel
GET  /petugas/api/scales/{id}/live     Server-Sent Events: weight, stable, armed, last deposit
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import StreamingResponse

from gateway.http.attendant import auth, views
from gateway.http.attendant.auth import COOKIE
from gateway.http.attendant.service import AttendantService
from gateway.http.attendant.views import LiveView, RecordIn
from gateway.http.routing import Routes, event_stream, parse_input, path_param
from gateway.readers import ScaleReader

routes = Routes(prefix="/petugas")


def attendant_reader(request: Request, service: AttendantService) -> ScaleReader:
    """The attendant scale of the path's ``scale_id`` (404 for a kiosk scale too: not the
    page's)."""
    scale_id = path_param(request, "scale_id")
    reader = service.gw.readers.get(scale_id)
    if reader is None or reader.cfg.flow != "attendant":
        raise HTTPException(404, f"timbangan {scale_id} tidak ada / no such scale")
    return reader


@routes.post("/api/scales/{scale_id}/record")
async def record(request: Request) -> LiveView:
    signed, _, body = await parse_input(request, RecordIn, auth.csrf_checked)
    service = auth.service(request)
    reader = attendant_reader(request, service)
    recorder = service.gw.recorder
    recorder.require_known(body.member_no, body.category_code)
    recorder.arm(reader, body.member_no, body.category_code, signed.who.username)
    return views.live_view(service, reader)


@routes.post("/api/scales/{scale_id}/cancel")
async def cancel(request: Request) -> LiveView:
    signed = await auth.csrf_checked(request)
    service = auth.service(request)
    reader = attendant_reader(request, service)
    service.gw.recorder.cancel(reader, signed.who.username)
    return views.live_view(service, reader)


@routes.get("/api/scales/{scale_id}/live")
async def live(request: Request) -> StreamingResponse:
    # The scale and the login are checked before the stream starts; the stream ends when the
    # session does (a logout, the account disabled).
    service = auth.service(request)
    reader = attendant_reader(request, service)
    signed = auth.signed_in(request)
    if request.method == "HEAD":  # the headers alone: no stream is opened, no slot taken
        return event_stream(_then(None, _ended()))
    cookie = request.cookies.get(COOKIE)
    items = views.live(service, reader, lambda: service.signed_in(cookie) is not None, signed.sid)
    # Its first step is taken here, so a stream over the limits is this request's 429, and
    # the slot it takes is freed whenever the stream goes (read to its end or dropped).
    try:
        first = await anext(items)
    except StopAsyncIteration:
        first = None
    return event_stream(_then(first, items))


async def _then(first: LiveView | None, rest: AsyncIterator[LiveView]) -> AsyncIterator[LiveView]:
    """``first`` (if any), then ``rest``, which is closed with this stream."""
    try:
        if first is not None:
            yield first
        async for item in rest:
            yield item
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()


async def _ended() -> AsyncIterator[LiveView]:
    return
    yield  # an async generator that ends at once
