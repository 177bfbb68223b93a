"""The city's waste banks for everyone, no login: where each is, when it is open, what it pays
now (wastebank/reports/banks.py). Nothing personal: no member, no attendant, and a phone only
when it is the bank's own public number from the city data file. docs/reports.md, "Daftar bank
sampah publik".

  GET /bank-sampah?city=           the page (Bahasa Indonesia first; ?lang=en)
  GET /api/public/banks?city=      the same as JSON
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api.deps import PagePrincipalDep, SessionDep, StateDep, refusals
from api.web import HTML, content_policy, lang_of, page_responses, refusal, render
from wastebank import formats, ledger, reports

log = logging.getLogger("api.public_banks")
router = APIRouter(tags=["public"])

PublicCity = Annotated[str | None, Query(description="city code (default: the first city)")]

TEXTS: dict[str, tuple[str, str]] = {
    "title": ("Bank sampah", "Waste banks"),
    "in_city": ("Bank sampah di", "Waste banks in"),
    "intro": (
        "Tempat menabung sampah terpilah: harga beli per satuan, berlaku",
        "Where sorted waste is saved: buying prices per unit, in force",
    ),
    "induk": ("Bank sampah induk (BSI)", "Main waste bank (BSI)"),
    "unit": ("Bank sampah unit (BSU)", "Waste bank unit (BSU)"),
    "unit_of": ("unit dari", "unit of"),
    "where": ("Lokasi", "Location"),
    "map": ("Lihat di peta", "See on the map"),
    "hours": ("Jam buka", "Opening hours"),
    "contact": ("Kontak bank", "The bank's contact"),
    "not_entered": ("belum diisi", "not entered"),
    "prices": ("Harga beli", "Buying prices"),
    "prices_from": ("memakai daftar harga", "uses the price list of"),
    "category": ("Jenis sampah", "Waste type"),
    "price": ("Harga", "Price"),
    "no_prices": ("belum ada harga", "no prices yet"),
    "no_banks": ("Belum ada bank sampah.", "No waste banks yet."),
}


def directory(
    session: Session, settings: reports.ReportSettings, city: str | None
) -> reports.BankDirectory:
    """The city's directory now; entries of the city file left out are logged for operators."""
    scope = reports.load_scope(session, city_code=city)
    found, problems = reports.bank_directory(session, scope, datetime.now(UTC), settings)
    for problem in problems:
        log.warning("city data file %s: %s", scope.city_code, problem)
    return found


@router.get(
    "/api/public/banks",
    response_model=reports.BankDirectory,
    responses=refusals(404, 422),
)
def public_banks(
    state: StateDep, session: SessionDep, city: PublicCity = None
) -> reports.BankDirectory:
    """Every waste bank of the city: kind, kelurahan, kecamatan, address, coordinates, opening
    hours, the bank's public contact, and the buying prices in force now."""
    return directory(session, state["settings"].reports, city)


@router.get("/bank-sampah", response_class=Response, responses={200: HTML, **page_responses(404)})
def public_banks_page(
    request: Request,
    state: StateDep,
    session: SessionDep,
    who: PagePrincipalDep,
    city: PublicCity = None,
) -> Response:
    """The page: one card per bank, its prices as a table."""
    try:
        found = directory(session, state["settings"].reports, city)
    except ledger.NotFound:
        return refusal(request, state["signing_key"], who, 404)
    lang = lang_of(request)

    def tx(key: str) -> str:
        return formats.in_lang(TEXTS[key], lang)

    return render(
        request,
        state["signing_key"],
        who,
        "banks_public.html",
        {
            "directory": found,
            "tx": tx,
            "at": formats.tanggal_waktu(found.at, ZoneInfo(found.timezone), lang),
            "unit_price": formats.unit_price,
        },
        headers={"Content-Security-Policy": content_policy(state["settings"].pages)},
    )
