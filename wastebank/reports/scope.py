"""A city as the reports see it: its zone, its banks with their kelurahan and kecamatan, and
every category with its SIPSN and material class; the groups and periods figures come in; and
the coverage a diversion rate needs to be shown as the city's (:func:`diversion_coverage`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from msgspec import Meta
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.config import Settings

Group = Literal["bank", "kelurahan", "kecamatan", "city", "category", "sipsn_class"]
Period = Literal["day", "week", "month", "year", "total"]
Basis = Literal["measured", "estimated", "mixed", "none"]

GROUPS: tuple[str, ...] = ("bank", "kelurahan", "kecamatan", "city", "category", "sipsn_class")
PERIODS: tuple[str, ...] = ("day", "week", "month", "year", "total")

SIPSN_NAMES: dict[str, tuple[str, str]] = {
    ledger.SipsnClass.SISA_MAKANAN: ("Sisa makanan", "Food waste"),
    ledger.SipsnClass.KAYU_RANTING: ("Kayu, ranting, daun", "Wood, twigs, leaves"),
    ledger.SipsnClass.KERTAS_KARTON: ("Kertas, karton", "Paper, cardboard"),
    ledger.SipsnClass.PLASTIK: ("Plastik", "Plastic"),
    ledger.SipsnClass.LOGAM: ("Logam", "Metal"),
    ledger.SipsnClass.KAIN: ("Kain", "Textile"),
    ledger.SipsnClass.KARET_KULIT: ("Karet, kulit", "Rubber, leather"),
    ledger.SipsnClass.KACA: ("Kaca", "Glass"),
    ledger.SipsnClass.LAINNYA: ("Lainnya", "Other"),
}


def sipsn_name(code: str) -> str:
    """``Kertas, karton / Paper, cardboard``: a SIPSN class as a person reads it (the code
    itself if it is none of :data:`SIPSN_NAMES`)."""
    names = SIPSN_NAMES.get(code)
    return code if names is None else f"{names[0]} / {names[1]}"


@dataclass(frozen=True)
class BankInfo:
    code: str
    name: str
    kelurahan: str
    kecamatan: str


@dataclass(frozen=True)
class CategoryInfo:
    code: str
    name_id: str
    name_en: str
    sipsn_class: str
    material_class: str


@dataclass(frozen=True)
class Scope:
    """A city: its zone, its banks (by id) and every category (by id)."""

    city_id: int
    city_code: str
    city_name: str
    timezone: str
    banks: dict[int, BankInfo]
    categories: dict[int, CategoryInfo]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_scope(session: Session, city_id: int | None = None, city_code: str | None = None) -> Scope:
    """The city ``city_id`` (or ``city_code``; neither: the first city). Raises ledger.NotFound."""
    if city_id is not None:
        city = session.get(ledger.City, city_id)
    elif city_code is not None:
        city = session.scalar(select(ledger.City).where(ledger.City.code == city_code))
    else:
        city = ledger.first_city(session)
    if city is None:
        raise ledger.NotFound(f"unknown city {city_code or city_id!r}")
    rows = session.execute(
        select(ledger.Bank.id, ledger.Bank.code, ledger.Bank.name, ledger.Kelurahan.name)
        .add_columns(ledger.Kecamatan.name)
        .join(ledger.Kelurahan, ledger.Bank.kelurahan_id == ledger.Kelurahan.id)
        .join(ledger.Kecamatan, ledger.Kelurahan.kecamatan_id == ledger.Kecamatan.id)
        .where(ledger.Bank.city_id == city.id)
    )
    banks = {r[0]: BankInfo(code=r[1], name=r[2], kelurahan=r[3], kecamatan=r[4]) for r in rows}
    categories = {
        c.id: CategoryInfo(c.code, c.name_id, c.name_en, c.sipsn_class, c.material_class)
        for c in session.scalars(select(ledger.Category))
    }
    return Scope(city.id, city.code, city.name, city.timezone, banks, categories)


# ---- the diversion rate's coverage --------------------------------------------------------------


class CoverageRule(Settings, kw_only=True):
    """``[reports.diversion_coverage]`` (``WASTEBANK_REPORTS__DIVERSION_COVERAGE__*``): when a
    diversion rate (diverted / (diverted + TPA-bound)) may be shown as the city's.

    The TPA-bound half is counted only at TPS whose fill sensor reported in the period, so at a
    share ``c`` of the city's TPS it is about ``c`` x the true tonnage and the rate is too high
    by up to ``1 / c``: at the default 0.8 a rate is at most a quarter above the truth (22,7 %
    shown, at least ~18 % real); at 2 of 20 TPS it could be ten times too high. Below
    ``min_pickups`` one mis-detected drop (a sensor glitch, a half-emptied container) moves the
    TPA-bound tonnage by a tenth or more. docs/dlh.md."""

    min_tps_share: Annotated[
        float,
        Meta(
            gt=0,
            le=1,
            description="the least share of the city's TPS whose sensors reported in the period",
        ),
    ] = 0.8
    min_pickups: Annotated[
        int, Meta(ge=0, le=1_000_000, description="the least pickups observed in the period")
    ] = 10


class Coverage(BaseModel):
    """What a diversion rate covers: the city's TPS with a fill sensor, those whose sensor
    reported in the period, the city's TPS in all (its city data file; None: not entered) and
    the pickups observed; ``enough`` under :class:`CoverageRule`, and why not."""

    tps_with_sensors: int = Field(description="the city's active TPS in the ledger (all have one)")
    tps_reporting: int = Field(description="of these, those with fill readings in the period")
    tps_in_city: int | None = Field(description="every TPS of the city (city data file)")
    tps_in_city_source: str | None = None
    pickups: int
    share: float | None = Field(description="tps_reporting / tps_in_city; None: unknown")
    min_tps_share: float
    min_pickups: int
    enough: bool
    reason: str | None = Field(
        default=None, description="why not enough, Bahasa Indonesia / English; None when enough"
    )


def diversion_coverage(
    *,
    tps_with_sensors: int,
    tps_reporting: int,
    tps_in_city: int | None,
    pickups: int,
    rule: CoverageRule | None = None,
    tps_in_city_source: str | None = None,
) -> Coverage:
    """The coverage of a diversion rate and whether it is :class:`CoverageRule`'s enough: a
    rate below it is "belum cukup data / not enough data", on the page, the API and reports."""
    r = rule or CoverageRule()
    # a city file that counts fewer TPS than the ledger has is out of date: the ledger's count
    total = None if tps_in_city is None else max(tps_in_city, tps_with_sensors)
    share = None if not total else tps_reporting / total
    reasons: list[tuple[str, str]] = []
    if total is None:
        reasons.append(("jumlah TPS kota belum diisi", "the city's number of TPS is not entered"))
    elif share is not None and share < r.min_tps_share:
        need = f"{round(r.min_tps_share * 100)} %"
        reasons.append(
            (
                f"data sensor hanya dari {tps_reporting} dari {total} TPS kota (perlu {need})",
                f"sensor data from only {tps_reporting} of the city's {total} TPS ({need} needed)",
            )
        )
    if pickups < r.min_pickups:
        reasons.append(
            (
                f"{pickups} pengangkutan teramati (perlu {r.min_pickups})",
                f"{pickups} pickups observed ({r.min_pickups} needed)",
            )
        )
    reason = None
    if reasons:
        reason = "; ".join(i for i, _ in reasons) + " / " + "; ".join(e for _, e in reasons)
    return Coverage(
        tps_with_sensors=tps_with_sensors,
        tps_reporting=tps_reporting,
        tps_in_city=total,
        tps_in_city_source=tps_in_city_source,
        pickups=pickups,
        share=share,
        min_tps_share=r.min_tps_share,
        min_pickups=r.min_pickups,
        enough=not reasons,
        reason=reason,
    )
