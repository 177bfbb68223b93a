"""What the page starts from, and the member directory it searches:

GET  /petugas/api/state                who, the scales, the price list, the directory's age
GET  /petugas/api/members?q=           search the directory (name, number or card UID)
GET  /petugas/api/cards/{uid}          the member holding a card
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request

from gateway.http.attendant import auth
from gateway.http.attendant.formats import rupiah, tanggal
from gateway.http.attendant.views import (
    MemberView,
    PriceView,
    ScaleChoice,
    StateView,
    WhoView,
    member_view,
)
from gateway.http.routing import Routes, path_param, query_param

routes = Routes(prefix="/petugas")


@routes.get("/api/state")
async def state(request: Request) -> StateView:
    signed, service = auth.signed_in(request), auth.service(request)
    who, gw = signed.who, service.gw
    d = service.db.directory
    members_at, prices_at = d.synced_at("members"), d.synced_at("prices")
    return StateView(
        who=WhoView(username=who.username, name=who.name, role=who.role, offline=who.offline),
        gateway_id=gw.settings.gateway_id,
        bank_code=gw.settings.bank_code,
        timezone=service.settings.timezone,
        today_text=tanggal(datetime.now(UTC), service.tz).rsplit(" ", 2)[0],
        scales=[
            ScaleChoice(scale_id=x.cfg.id, connected=x.connected)
            for x in gw.readers.values()
            if x.cfg.flow == "attendant"
        ],
        prices=[
            PriceView(
                category_code=p.category_code,
                category_name=p.category_name,
                unit=p.unit,
                price_idr=p.price_idr,
                price_text=f"{rupiah(p.price_idr)}/{p.unit}",
            )
            for p in d.prices()
        ],
        members=d.count(),
        members_synced_text=None if members_at is None else tanggal(members_at, service.tz),
        prices_synced_text=None if prices_at is None else tanggal(prices_at, service.tz),
        central_configured=gw.settings.api_url is not None,
        central_online=service.central_online,
    )


@routes.get("/api/members")
async def members(request: Request) -> list[MemberView]:
    auth.signed_in(request)
    # longer than any number, name or card UID: refused (422), never cut to fit
    q: str = query_param(request, "q", default="", max_length=64)
    return [member_view(m) for m in auth.service(request).db.directory.search(q)]


@routes.get("/api/cards/{uid}")
async def card(request: Request) -> MemberView:
    auth.signed_in(request)
    uid = path_param(request, "uid", max_length=32)
    m = auth.service(request).db.directory.by_card(uid)
    if m is None:
        raise HTTPException(404, f"kartu {uid} tidak dikenal / unknown card")
    return member_view(m)
