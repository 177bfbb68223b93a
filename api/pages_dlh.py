"""The DLH dashboard, on the page session cookie (DLH staff of the city, admins).

  GET  /dlh                             tonnage by month, category and kecamatan, the reduction
                                        share against the Jakstrada target, the diversion rate,
                                        TPS status and map, energy and emission estimates
  GET  /dlh/laporan?month=&format=      the monthly report (as /api/dlh/report/monthly)
  GET  /dlh/pltsa?tonnes_per_day=&...   the PLTSa scenario as JSON, for the dashboard's form
                                        (as /api/dlh/wte-scenario, on the page cookie); the
                                        same figures render into /dlh?tonnes_per_day=... too

Its figures come through the functions behind /api/dlh/* and /api/tps (api/dlh.py,
api/tps.py); what every page shares: api/web.py.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal, cast, get_args

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api import dlh as dlh_api
from api import estimates as estimates_api
from api import tps as tps_api
from api.deps import PagePrincipalDep, State, StateDep, refusals
from api.web import (
    HTML,
    TEXTS,
    Lang,
    content_policy,
    lang_of,
    number,
    page_responses,
    refusal,
    render,
    text,
    to_login,
)
from wastebank import access, formats, reports
from wastebank.errors import Invalid
from wastebank.estimates import (
    DEFAULT_REGULATION,
    FIGURES,
    Figure,
    Impact,
    Range,
    Regulation,
    WteScenario,
    sum_impacts,
)
from wastebank.influx import InfluxError

router = APIRouter(tags=["pages"])


def _city_staff(who: access.Principal) -> bool:
    return who.role in (access.Role.DLH, access.Role.ADMIN)


def _month_start(day: date, back: int) -> date:
    """The first day of the month ``back`` months before ``day``'s."""
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def _dlh_data(state: State, p: access.Principal) -> dict[str, Any]:
    """The dashboard's ledger figures, through the functions behind /api/dlh/*."""
    settings = state["settings"].reports

    def work(session: Session, scope: reports.Scope) -> dict[str, Any]:
        today = datetime.now(scope.tz).date()
        start = _month_start(today, 11)
        by_month = reports.tonnage(session, scope, start, today, "category", "month")
        by_kec = reports.tonnage(session, scope, start, today, "kecamatan", "total")
        by_cat = reports.tonnage(session, scope, start, today, "category", "total")
        reduction: reports.Reduction | None = None
        reduction_error = None
        try:
            reduction = reports.reduction(session, scope, today.year, settings)
        except (reports.NoGenerationEstimate, ValueError) as exc:
            reduction_error = str(exc)
        return {
            "scope": scope,
            "today": today,
            "start": start,
            "by_month": by_month,
            "by_kec": by_kec,
            "by_cat": by_cat,
            "reduction": reduction,
            "reduction_error": reduction_error,
        }

    return dlh_api.read_in_city(state, p, None, work)


def _dlh_context(
    data: dict[str, Any], tps_rows: list[tps_api.TpsOut] | None, settings: Any, lang: Lang
) -> dict[str, Any]:
    """The DLH dashboard's template context: the tables, the estimates, the report months and
    the charts' data, from :func:`_dlh_data`'s figures and the TPS overview (None: InfluxDB
    unreachable)."""
    scope: reports.Scope = data["scope"]
    today: date = data["today"]
    names = _CategoryNames(scope, lang)
    months = _MonthTable.of(data["by_month"], data["by_cat"], today, lang)
    kec_rows = sorted(data["by_kec"].rows, key=lambda r: -r.net_g)
    impacts = _Impacts.of(data["by_cat"], names)
    # one unit per table and chart (formats.mass_unit): its largest figure's
    month_unit = formats.mass_unit(max((r["total"] for r in months.rows()), default=0))
    kec_unit = formats.mass_unit(max((r.net_g for r in kec_rows), default=0))
    return {
        "city_name": scope.city_name,
        "zone": formats.zone_label(scope.tz),
        "tz": scope.tz,
        "start": data["start"],
        "end": today,
        "year": today.year,
        "reduction": data["reduction"],
        "reduction_error": data["reduction_error"],
        "month_categories": [{"code": c, "name": names(c)} for c in months.codes],
        "month_table": months.rows(),
        "month_unit": month_unit,
        "kecamatan_rows": kec_rows,
        "kecamatan_unit": kec_unit,
        "impacts": impacts,
        "figures": {k: figure_text(f, lang) for k, f in FIGURES.items()},
        "co2e_unit": _co2e_unit(impacts),
        "range_text": range_text,
        "central_text": central_text,
        "span_text": span_text,
        "tonnage_unit": formats.mass_unit(data["by_cat"].total_g),
        "report_months": [
            {"value": f"{m:%Y-%m}", "label": formats.bulan(m, lang)}
            for m in [_month_start(today, back) for back in range(0, 12)]
        ],
        "tps": tps_rows,
        "needs_vendor": True,
        "chart_data": {
            "locale": "en-GB" if lang == "en" else "id-ID",
            "months": {
                "labels": months.labels,
                "unit": month_unit,
                "datasets": months.datasets(names, month_unit),
            },
            "kecamatan": {
                "title": text("tonnage_kecamatan", lang),
                "labels": [r.name for r in kec_rows],
                "unit": kec_unit,
                "values": [_in(r.net_g, kec_unit) for r in kec_rows],
            },
            "impactCharts": (
                [
                    impacts.chart(f, lang, _co2e_unit(impacts))
                    for f in ("recycling_energy_saved_gj", "net_co2e_kg")
                ]
                if impacts
                else []
            ),
            "tps": _tps_points(tps_rows or []),
            "offlineText": text("offline", lang),
            "tiles": {"url": settings.map_tile_url, "attribution": settings.map_tile_attribution},
            "mapText": {
                "noTiles": text("map_no_tiles", lang),
                "unreachable": text("map_unreachable", lang),
            },
        },
    }


class _CategoryNames:
    """A category's name in the page's language, by its code (the code itself if unknown)."""

    def __init__(self, scope: reports.Scope, lang: Lang) -> None:
        self.by_code = {c.code: c for c in scope.categories.values()}
        self.lang = lang

    def __call__(self, code: str) -> str:
        c = self.by_code.get(code)
        if c is None:
            return code
        return c.name_en if self.lang == "en" else c.name_id


@dataclass(frozen=True)
class _MonthTable:
    """The last twelve months' grams per category, the categories by their total, largest
    first."""

    months: list[date]
    labels: list[str]
    codes: list[str]
    grams: dict[tuple[date, str], int]

    @classmethod
    def of(
        cls, by_month: reports.Tonnage, by_cat: reports.Tonnage, today: date, lang: Lang
    ) -> _MonthTable:
        months = [_month_start(today, back) for back in range(11, -1, -1)]
        grams: dict[tuple[date, str], int] = defaultdict(int)
        for r in by_month.rows:
            grams[r.period_start, r.key] += r.net_g
        return cls(
            months=months,
            labels=[formats.bulan(m, lang) for m in months],
            codes=[r.key for r in sorted(by_cat.rows, key=lambda r: -r.net_g)],
            grams=grams,
        )

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "label": label,
                "cells": [self.grams[m, c] for c in self.codes],
                "total": sum(self.grams[m, c] for c in self.codes),
            }
            for m, label in zip(self.months, self.labels, strict=True)
        ]

    def datasets(self, names: _CategoryNames, unit: str) -> list[dict[str, Any]]:
        return [
            {"label": names(c), "values": [_in(self.grams[m, c], unit) for m in self.months]}
            for c in self.codes
        ]


def _in(grams: int, unit: str) -> float:
    """``grams`` in ``unit`` (kg or t) for a chart."""
    return round(grams / (1_000_000 if unit == "t" else 1000), 3)


@dataclass(frozen=True)
class _Impacts:
    """The estimated impact of what each category diverted (largest first) and their total,
    each figure a range (wastebank.estimates); None without the estimates package."""

    rows: list[tuple[str, int, Impact]]  # (category name, grams, impact)
    total: Impact

    @classmethod
    def of(cls, by_cat: reports.Tonnage, names: _CategoryNames) -> _Impacts | None:
        estimator = reports.default_estimator()
        if estimator is None:
            return None
        rows = []
        for r in sorted(by_cat.rows, key=lambda r: -r.net_g):
            c = names.by_code.get(r.key)
            rows.append(
                (
                    names(r.key),
                    r.net_g,
                    estimator.impact(c.material_class if c else "other", r.net_g),
                )
            )
        return cls(rows, sum_impacts(i for _, _, i in rows))

    def chart(self, field: str, lang: Lang, co2e_unit: str = "kg") -> dict[str, Any]:
        """A chart of one figure by category: the central value and its low..high range (CO2e
        in the page's ``co2e_unit``)."""
        figure = FIGURES[field]
        unit, scale = figure.unit, 1.0
        if unit == "kg CO2e" and co2e_unit == "t":
            unit, scale = "t CO2e", 0.001
        shown = [(name, getattr(i, field)) for name, _, i in self.rows if getattr(i, field)]
        return {
            "title": f"{figure.label.en if lang == 'en' else figure.label.id} ({unit})",
            "unit": unit,
            "labels": [name for name, _ in shown],
            "central": [round(r.central * scale, 3) for _, r in shown],
            "range": [[round(r.low * scale, 3), round(r.high * scale, 3)] for _, r in shown],
            "centralLabel": text("central", lang),
            "rangeLabel": text("range_low_high", lang),
        }


def central_text(r: Range | None, places: int = 1, scale: float = 1.0) -> str:
    """An estimate's central figure (``scale``: 1/1000 for kg in t); an en dash for a figure
    that is not estimated."""
    return "–" if r is None else number(r.central * scale, places)


def span_text(r: Range | None, places: int = 1, scale: float = 1.0) -> str:
    """An estimate's range, ``860,0–1.433,0``."""
    return "–" if r is None else f"{number(r.low * scale, places)}–{number(r.high * scale, places)}"


def range_text(r: Range | None, places: int = 1, scale: float = 1.0) -> str:
    """``1.146,4 (860,0–1.433,0)``: the central figure first, its range after."""
    if r is None:
        return "–"
    mid, span = central_text(r, places, scale), span_text(r, places, scale)
    return mid if span == f"{mid}–{mid}" else f"{mid} ({span})"


def figure_text(figure: Figure, lang: Lang) -> dict[str, str]:
    """A figure's unit, label and basis in the page's language."""
    if lang == "en":
        return {"unit": figure.unit, "label": figure.label.en, "basis": figure.basis.en}
    return {"unit": figure.unit, "label": figure.label.id, "basis": figure.basis.id}


def _co2e_unit(impacts: _Impacts | None) -> Literal["kg", "t"]:
    """kg or t CO2e for the page, by the one mass rule (formats.mass_unit) on the largest
    figure."""
    if impacts is None or impacts.total.net_co2e_kg is None:
        return "kg"
    r = impacts.total.net_co2e_kg
    return formats.mass_unit(round(max(abs(r.low), abs(r.high)) * 1000))


def _tps_points(tps_rows: list[tps_api.TpsOut]) -> list[dict[str, Any]]:
    """The map's markers."""
    return [
        {
            "code": t.code,
            "name": t.name,
            "kecamatan": t.kecamatan,
            "lat": t.lat,
            "lon": t.lon,
            "fill": t.fill,
            "offline": t.offline,
            "alert": bool(t.active_alerts),
            "raise": t.alert_raise_fill,
        }
        for t in tps_rows
    ]


# ---- the PLTSa (WtE) scenario form ---------------------------------------------------------------

WTE_FIELDS = ("tonnes_per_day", "efficiency", "idr_per_usd", "regulation")
WTE_TEXTS: dict[str, tuple[str, str]] = {
    "title": ("Skenario PLTSa (sampah menjadi listrik)", "Waste-to-energy plant (PLTSa) scenario"),
    "intro": (
        "Perkiraan untuk PLTSa yang membakar sampah campuran kota (komposisi SIPSN 2023, kadar "
        "air sampah Indonesia), bukan pengukuran: angka tengah dahulu, lalu rentang "
        "rendah–tinggi.",
        "An estimate for a PLTSa burning the city's mixed waste (SIPSN 2023 composition, "
        "Indonesian moisture), not a measurement: the central figure first, then the low–high "
        "range.",
    ),
    "tonnes": ("Sampah masuk (ton/hari)", "Waste in (tonnes/day)"),
    "default_generation": (
        "Bawaan: perkiraan timbulan kota",
        "Default: the city's estimated generation",
    ),
    "efficiency": (
        "Efisiensi listrik bersih, pecahan dari LHV (mis. 0,22; kosong: nilai data)",
        "Net electrical efficiency, a fraction of LHV (e.g. 0.22; empty: the data file's)",
    ),
    "idr_per_usd": (
        "Kurs, Rp per USD (kosong: pendapatan dalam USD saja)",
        "Exchange rate, Rp per USD (empty: revenue in USD only)",
    ),
    "regulation": ("Aturan tarif listrik", "Electricity tariff regulation"),
    "perpres_35_2018": (
        "Perpres 35/2018 (per kapasitas)",
        "Perpres 35/2018 (by capacity)",
    ),
    "perpres_109_2025": ("Perpres 109/2025 (USD 0,20/kWh)", "Perpres 109/2025 (USD 0,20/kWh)"),
    "compute": ("Hitung", "Calculate"),
    "tonnes_in": ("Sampah masuk", "Waste in"),
    "mix": ("Komposisi", "Composition"),
    "moisture": ("Kadar air campuran", "Moisture of the mix"),
    "lhv": ("Nilai kalor bawah (LHV, saat diterima)", "Lower heating value (LHV, as received)"),
    "efficiency_row": ("Efisiensi listrik bersih", "Net electrical efficiency"),
    "net_mw": ("Listrik bersih (kapasitas)", "Net electricity (capacity)"),
    "mwh": ("Listrik bersih per tahun", "Net electricity a year"),
    "fossil_co2": (
        "CO2 fosil per tahun (IPCC 2006 Pers. 5.2)",
        "Fossil CO2 a year (IPCC 2006 Eq. 5.2)",
    ),
    "fossil_co2_per_mwh": ("CO2 fosil per MWh", "Fossil CO2 per MWh"),
    "tariff_band": ("Golongan tarif", "Tariff band"),
    "tariff": ("Tarif PT PLN", "PT PLN tariff"),
    "revenue_usd": ("Pendapatan listrik per tahun", "Electricity revenue a year"),
    "revenue_idr": ("Pendapatan per tahun (Rupiah)", "Revenue a year (Rupiah)"),
    "warnings": ("Perhatian", "Note"),
    "failed": ("Skenario gagal dimuat", "The scenario could not be loaded"),
}


def wte_text(key: str, lang: Lang) -> str:
    """The PLTSa section's own words, then the pages' (api/web.py)."""
    return formats.bilingual(key, lang, WTE_TEXTS, TEXTS)


REGULATIONS: tuple[str, ...] = get_args(Regulation)


@dataclass(frozen=True)
class WteForm:
    """The PLTSa form as sent: text, checked by :func:`_wte_scenario` (a bad value is a 422
    naming its field, never a page error). Empty optional fields are the API's defaults."""

    tonnes_per_day: str | None = None
    efficiency: str | None = None
    idr_per_usd: str | None = None
    regulation: str | None = None


FormText = Annotated[str | None, Query(max_length=40)]


def wte_form(
    tonnes_per_day: FormText = None,
    efficiency: FormText = None,
    idr_per_usd: FormText = None,
    regulation: FormText = None,
) -> WteForm:
    return WteForm(tonnes_per_day, efficiency, idr_per_usd, regulation)


WteFormDep = Annotated[WteForm, Depends(wte_form)]


class WteRefused(Invalid):
    """A PLTSa form value refused (422): its field (None: the form) and why."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _number(form: WteForm, field: str, kind: type[float] | type[int]) -> Any:
    raw = (getattr(form, field) or "").strip()
    if not raw:
        if field == "tonnes_per_day":
            raise WteRefused(field, "wajib diisi / required")
        return None
    try:
        return kind(raw)
    except ValueError:
        whole = " (bilangan bulat / a whole number)" if kind is int else ""
        raise WteRefused(field, f"bukan angka / not a number{whole}: {raw!r}") from None


async def _wte_scenario(state: State, who: access.Principal, form: WteForm) -> WteScenario:
    """The scenario of GET /api/dlh/wte-scenario (its route, its checks and its 422 messages)
    for the form's values; :class:`WteRefused` naming the field a 422 is about."""
    regulation = form.regulation or DEFAULT_REGULATION
    if regulation not in REGULATIONS:
        raise WteRefused("regulation", f"tidak dikenal / unknown: {regulation!r}")
    values = {
        "tonnes_per_day": _number(form, "tonnes_per_day", float),
        "efficiency": _number(form, "efficiency", float),
        "idr_per_usd": _number(form, "idr_per_usd", int),
    }
    try:
        return await estimates_api.wte_scenario(
            state,
            who,
            mix=None,
            composition=None,
            regulation=cast(Regulation, regulation),  # checked against REGULATIONS above
            city=None,
            **values,
        )
    except HTTPException as exc:
        if exc.status_code != 422:
            raise
        detail = str(exc.detail)
        # the API's checks name the parameter they refuse (wastebank/estimates/wte.py)
        field = next((f for f in WTE_FIELDS if f in detail), None)
        raise WteRefused(field, detail) from None


def wte_shown(w: WteScenario, lang: Lang) -> dict[str, str | list[str]]:
    """The scenario's figures as the page writes them, central first with its range (id-ID
    numbers): the same text on the page rendered by the server and filled in by pages.js."""
    shown: dict[str, str | list[str]] = {
        "tonnes_per_day": f"{number(w.tonnes_per_day, 1)} t/{'day' if lang == 'en' else 'hari'}",
        # a named mix as people write it (sipsn_2023: SIPSN 2023), shares given: their list
        "mix": (w.mix_name or "").replace("_", " ").upper()
        or ", ".join(f"{k} {number(v * 100, 0)} %" for k, v in w.mix.items()),
        "moisture": f"{range_text(w.moisture, 0, 100)} %",
        "lhv": f"{range_text(w.lhv_mj_per_kg, 2)} MJ/kg",
        "efficiency": f"{range_text(w.efficiency, 1, 100)} %",
        "net_mw": f"{range_text(w.net_electric_mw, 2)} MW",
        "mwh": f"{range_text(w.electricity_mwh_per_year, 0)} MWh",
        "fossil_co2": f"{range_text(w.fossil_co2_t_per_year, 0)} t CO2",
        "fossil_co2_per_mwh": f"{range_text(w.fossil_co2_kg_per_mwh, 0)} kg CO2/MWh",
        "tariff_band": w.tariff.band.en if lang == "en" else w.tariff.band.id,
        "tariff": f"{range_text(w.tariff.usd_cents_per_kwh, 2)} "
        + ("US cents/kWh" if lang == "en" else "sen USD/kWh"),
        "revenue_usd": f"USD {range_text(w.revenue_usd_per_year, 0)}",
        "revenue_idr": "–",
        "warnings": [t.en if lang == "en" else t.id for t in w.warnings],
    }
    r = w.revenue_idr_per_year
    if r is not None:
        rp = formats.rupiah
        span = "" if r.low == r.high else f" ({rp(r.low)}–{rp(r.high)})"
        shown["revenue_idr"] = f"{rp(r.central)}{span}"
    return shown


async def _wte_view(
    state: State,
    who: access.Principal,
    form: WteForm,
    lang: Lang,
    reduction: reports.Reduction | None,
) -> dict[str, Any]:
    """The form's values and, when it was sent (``tonnes_per_day`` given), the scenario's
    figures or the field refused. Tonnes a day default to the city's estimated generation
    (its data file's population x rate), when the city has one."""
    default_t = None
    if reduction is not None:
        g = reduction.generation
        default_t = round(g.population * g.kg_per_capita_day / 1000, 1)
    view: dict[str, Any] = {
        "t": lambda key: wte_text(key, lang),
        "default_tonnes": default_t,
        "values": {f: getattr(form, f) for f in WTE_FIELDS},
        "regulations": REGULATIONS,
        "shown": None,
        "error": None,
    }
    if form.tonnes_per_day is None:
        return view
    try:
        view["shown"] = wte_shown(await _wte_scenario(state, who, form), lang)
    except WteRefused as exc:
        view["error"] = {"field": exc.field, "message": exc.message}
    return view


@router.get(
    "/dlh",
    response_class=Response,
    responses={200: HTML, **page_responses(403), **refusals(422)},
)
async def dlh_page(
    request: Request,
    state: StateDep,
    who: PagePrincipalDep,
    wte: WteFormDep,
) -> Response:
    """The DLH dashboard: tonnage by month, category and kecamatan, the reduction share against
    the Jakstrada target, TPS status and map, energy and emission estimates, the monthly report;
    with ``tonnes_per_day`` (the PLTSa form sent without JavaScript), that scenario too.
    """
    if who is None:
        return to_login(request)
    if not _city_staff(who):
        return refusal(request, state["signing_key"], who, 403)
    lang = lang_of(request)
    data = await anyio.to_thread.run_sync(_dlh_data, state, who)
    tps_rows: list[tps_api.TpsOut] | None
    try:
        tps_rows = await tps_api.tps_overview(state, who)
    except HTTPException as exc:
        if exc.status_code != 503:
            raise
        tps_rows = None
    # in a thread: the estimates read their coefficient files the first time
    context = await anyio.to_thread.run_sync(
        _dlh_context, data, tps_rows, state["settings"].pages, lang
    )
    diversion = await _month_diversion(state, who, data["today"])
    context["diversion"] = diversion
    if diversion is not None:
        diverted, tpa = round(diversion.diverted_t * 1e6), round(diversion.tpa_bound_t * 1e6)
        context["diversion_g"] = {
            "diverted": diverted,
            "tpa_bound": tpa,
            "unit": formats.mass_unit(max(diverted, tpa)),
        }
    context["coverage_rule"] = state["settings"].reports.diversion_coverage
    context["share_text"] = share_text
    context["wte"] = await _wte_view(state, who, wte, lang, data["reduction"])
    return render(
        request,
        state["signing_key"],
        who,
        "dlh.html",
        context,
        headers={"Content-Security-Policy": content_policy(state["settings"].pages)},
    )


def share_text(pct: float) -> str:
    """A share in percent with two decimals, ``< 0,01 %`` for a tiny one rather than 0,00."""
    if 0 < pct < 0.005:
        return "< 0,01 %"
    return formats.percent(pct, 2)


async def _month_diversion(
    state: State, who: access.Principal, today: date
) -> dlh_api.Diversion | None:
    """This month's diversion rate so far; None when the fill readings cannot be read."""
    try:
        return await dlh_api.diversion_of(state, who, None, lambda _: (today.replace(day=1), today))
    except InfluxError:
        return None


class WteAnswer(BaseModel):
    scenario: WteScenario  # as GET /api/dlh/wte-scenario answers
    shown: dict[str, str | list[str]]  # each figure as the page writes it (:func:`wte_shown`)


@router.get(
    "/dlh/pltsa",
    responses={
        200: {"model": WteAnswer, "description": "the scenario and its figures as shown"},
        **page_responses(403),
        **refusals(422),
    },
)
async def dlh_wte(
    request: Request,
    state: StateDep,
    who: PagePrincipalDep,
    form: WteFormDep,
) -> Response:
    """The dashboard's PLTSa form, read on the page cookie (a GET: it changes nothing, so no
    CSRF token): ``{"scenario": <as GET /api/dlh/wte-scenario>, "shown": {figure: text}}``; a
    refused value is a 422 ``{"detail": why, "field": the form field or null}``."""
    if who is None:
        return to_login(request)
    if not _city_staff(who):
        return refusal(request, state["signing_key"], who, 403)
    try:
        scenario = await _wte_scenario(state, who, form)
    except WteRefused as exc:
        return JSONResponse({"detail": exc.message, "field": exc.field}, status_code=422)
    return JSONResponse(
        {
            "scenario": scenario.model_dump(mode="json"),
            "shown": wte_shown(scenario, lang_of(request)),
        },
        headers={"Cache-Control": "private, no-store"},
    )


@router.get(
    "/dlh/laporan",
    response_class=Response,
    responses={
        200: {
            "description": "the report file",
            "content": {media: {} for media in reports.MEDIA_TYPES.values()},
        },
        **page_responses(403),
        **refusals(422),
    },
)
async def dlh_report(
    request: Request,
    state: StateDep,
    who: PagePrincipalDep,
    month: dlh_api.MonthQuery,
    format: Annotated[Literal["xlsx", "csv", "pdf"], Query()] = "xlsx",  # noqa: A002
) -> Response:
    """The monthly DLH report from the dashboard (as GET /api/dlh/report/monthly)."""
    if who is None:
        return to_login(request)
    if not _city_staff(who):
        return refusal(request, state["signing_key"], who, 403)
    return await dlh_api.monthly(
        state, who, month, format, csv_dialect="id", orientation="landscape", city=None
    )
