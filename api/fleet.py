"""The fleet for admins and DLH staff: every gateway and TPS fill sensor, the broken ones first
(wastebank/fleet/; docs/fleet.md).

GET /api/fleet          JSON: each device's condition, why offline, last seen, version, outbox,
                        clock, scales, active problems; counts per condition
GET /armada             the same as a page (session cookie), ``?tampil=masalah``: only the
                        devices that are not ok (another value, or two: the page again, 422,
                        saying so)

An admin sees every device, a DLH login those of its city's banks and TPS.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api.deps import PagePrincipalDep, PrincipalDep, State, StateDep, forbidden, refusals
from api.web import HTML, Lang, lang_of, page_responses, refusal, render, to_login
from wastebank import access, fleet, formats

router = APIRouter(tags=["fleet"])

PAGE_TEXTS: dict[str, tuple[str, str]] = {
    "title": ("Armada perangkat", "Device fleet"),
    "intro": (
        "Setiap gateway dan sensor TPS; yang bermasalah di atas: luring, lalu gangguan, lalu jam "
        "belum sinkron, lalu tidak diketahui, lalu baik.",
        "Every gateway and TPS sensor, the broken ones first: offline, then faults, then clocks "
        "not synchronized, then unknown, then ok.",
    ),
    "offline_rule": (
        "Gateway dianggap luring setelah tidak terdengar selama",
        "A gateway counts as offline after a silence of",
    ),
    "readings_unknown": (
        "Pembacaan sensor TPS tidak tersedia (InfluxDB tidak terjangkau): sensor hanya luring "
        "bila statusnya berkata demikian.",
        "TPS sensor readings unavailable (InfluxDB unreachable): a sensor is offline only when "
        "its status says so.",
    ),
    "show": ("Tampilkan", "Show"),
    "all": ("Semua perangkat", "All devices"),
    "problems_only": ("Hanya yang bermasalah", "Only those not ok"),
    "apply": ("Terapkan", "Apply"),
    "none": ("Belum ada perangkat yang terdengar.", "No device heard yet."),
    "json": ("Data JSON", "JSON data"),
    "list_label": ("Perangkat, yang bermasalah lebih dulu", "Devices, the broken ones first"),
    "bad_filter": (
        "Pilihan tampil tidak dikenal: {value} (semua atau masalah); semua perangkat ditampilkan.",
        "Unknown show option: {value} (semua or masalah); every device is shown.",
    ),
    "filter_repeated": (
        "Pilihan tampil diberikan {n} kali: beri satu (semua atau masalah); semua perangkat "
        "ditampilkan.",
        "Show option given {n} times: give one (semua or masalah); every device is shown.",
    ),
}

SHOW = ("semua", "masalah")
"""``?tampil=``: every device, or only those not ok."""


def _scope(p: access.Principal) -> int | None:
    """The city whose devices ``p`` sees (None: every device, an admin)."""
    if p.role == access.Role.ADMIN:
        return None
    if p.role == access.Role.DLH:
        return p.city_id if p.city_id is not None else -1
    raise forbidden("untuk DLH dan admin / for DLH staff and admins")


def _gather(state: State, city_id: int | None) -> fleet.Inputs:
    with Session(state["engine"]) as session:
        return fleet.gather(
            session,
            city_id,
            default_timezone=state["settings"].default_timezone,
            broker_run_dir=state["settings"].pages.broker_run_dir,
        )


async def fleet_of(state: State, p: access.Principal, now: datetime | None = None) -> fleet.Fleet:
    """The fleet ``p`` sees (the ledger in a worker thread, InfluxDB on the loop)."""
    inputs = await anyio.to_thread.run_sync(_gather, state, _scope(p))
    inputs.last_readings = await fleet.last_readings(state["influx"])
    return fleet.build(inputs, now or datetime.now(UTC), state["settings"].fleet)


@router.get("/api/fleet", responses=refusals(401, 403))
async def fleet_api(state: StateDep, p: PrincipalDep) -> fleet.Fleet:
    """Every gateway and TPS fill sensor the caller sees, ranked: offline, fault, clock, ok
    (docs/fleet.md)."""
    return await fleet_of(state, p)


def _view(d: fleet.FleetDevice, now: datetime, lang: Lang) -> dict[str, Any]:
    """What the page says of one device (in words: never by colour alone)."""
    return {
        "d": d,
        "w": fleet.describe(d, now, lang),
        "anchor": f"{d.kind}-{d.site}-{d.device_id}",
        "badge": _BADGES.get(d.condition, ""),
        "kind": _t(d.kind, lang),
    }


_BADGES = {  # the colour beside the words
    fleet.Condition.OFFLINE: "offline",
    fleet.Condition.FAULT: "alert",
    fleet.Condition.CLOCK: "alert",
    fleet.Condition.UNKNOWN: "alert",
}


def _t(key: str, lang: Lang) -> str:
    """The page's own words, then the fleet's (shared with `wastebank fleet`)."""
    return formats.bilingual(key, lang, PAGE_TEXTS, fleet.TEXTS)


@router.get(
    "/armada",
    response_class=Response,
    responses={
        200: HTML,
        **page_responses(403),
        422: {
            "description": "an unknown ?tampil, or one given twice: the page with every "
            "device, saying so",
            **HTML,
        },
    },
)
async def fleet_page(
    request: Request,
    state: StateDep,
    who: PagePrincipalDep,
    tampil: Annotated[
        str,
        Query(description="semua: every device (default); masalah: only those not ok"),
    ] = "semua",
) -> Response:
    """The fleet page: every device the caller sees, the broken ones first."""
    if who is None:
        return to_login(request)
    if who.role not in (access.Role.ADMIN, access.Role.DLH):
        return refusal(request, state["signing_key"], who, 403)
    lang = lang_of(request)
    # a bad value is the page, in words (pydantic's 422 would be English JSON)
    bad_filter = None
    given = request.query_params.getlist("tampil")
    if len(given) > 1:  # whichever came last would win silently
        bad_filter = _t("filter_repeated", lang).format(n=len(given))
        tampil = "semua"
    elif tampil not in SHOW:
        bad_filter = _t("bad_filter", lang).format(value=repr(tampil[:40]))
        tampil = "semua"
    now = datetime.now(UTC)
    found = await fleet_of(state, who, now)
    shown = [d for d in found.devices if tampil == "semua" or d.condition != fleet.Condition.OK]
    context = {
        "fleet": found,
        "devices": [_view(d, now, lang) for d in shown],
        "counts": [
            {
                "condition": c.value,
                "badge": _BADGES.get(c, ""),
                "text": fleet.condition_text(c, lang),
                "n": found.counts[c],
            }
            for c in fleet.RANKING
        ],
        "offline_after": fleet.duration(found.offline_after_s, lang),
        "tampil": tampil,
        "bad_filter": bad_filter,
        "ft": lambda key: _t(key, lang),
    }
    status = 200 if bad_filter is None else 422
    return render(request, state["signing_key"], who, "fleet.html", context, status=status)
