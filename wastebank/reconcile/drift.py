"""Comparing the ledger with InfluxDB: per local day, bank and category, how many device deposits,
how many grams, how many Rupiah on each side, and the groups where they differ."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, case, func, literal_column, select
from sqlalchemy.orm import Session

from wastebank.influx import DEPOSIT, Influx, ident, influxql_time
from wastebank.ledger import Bank, Category, City, Deposit

CHUNK_DAYS = 31
"""Local days per ledger query (the CASE has one branch per day)."""


# ---- what is compared -------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """One group's figures: deposits, grams, Rupiah."""

    deposits: int = 0
    net_g: int = 0
    amount_idr: int = 0

    def as_list(self) -> list[int]:
        return [self.deposits, self.net_g, self.amount_idr]


Key = tuple[date, str, str]  # local day, bank code, category code


@dataclass(frozen=True)
class Drift:
    """A local day x bank x category whose figures differ between the ledger and InfluxDB."""

    day: date
    bank: str
    category: str
    ledger: Totals
    influx: Totals

    @property
    def key(self) -> Key:
        return self.day, self.bank, self.category

    def describe(self) -> str:
        """One line, Indonesian first, then English."""
        where = f"{self.day.isoformat()} {self.bank} {self.category}"
        led, inf = self.ledger, self.influx
        return (
            f"selisih {where}: buku besar {led.deposits} setoran, {led.net_g} g, "
            f"Rp{led.amount_idr}; InfluxDB {inf.deposits} setoran, {inf.net_g} g, "
            f"Rp{inf.amount_idr} / drift {where}: ledger {led.deposits} deposits, {led.net_g} g, "
            f"Rp{led.amount_idr}; InfluxDB {inf.deposits} deposits, {inf.net_g} g, "
            f"Rp{inf.amount_idr}"
        )

    def as_dict(self) -> dict[str, Any]:
        """For a run's and an alert's detail: [deposits, grams, Rupiah] on each side."""
        return {
            "day": self.day.isoformat(),
            "bank": self.bank,
            "category": self.category,
            "ledger": self.ledger.as_list(),
            "influx": self.influx.as_list(),
        }


@dataclass(frozen=True)
class Zone:
    """A time zone of the ledger's cities, with those cities' banks."""

    name: str
    city_ids: tuple[int, ...]
    banks: frozenset[str]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.name)


def city_zones(session: Session) -> list[Zone]:
    """The ledger's zones, in the order of their first city (the first is the default zone, as
    for the API's tonnage); none when the ledger has no city."""
    cities: dict[str, list[int]] = {}
    for city_id, zone in session.execute(select(City.id, City.timezone).order_by(City.id)):
        ZoneInfo(zone)  # an unknown zone fails here, before any query is built with it
        if "'" in zone or "\\" in zone:
            raise ValueError(f"city {city_id}: unusable time zone name {zone!r}")
        cities.setdefault(zone, []).append(city_id)
    banks: dict[int, set[str]] = {}
    for code, city_id in session.execute(select(Bank.code, Bank.city_id)):
        banks.setdefault(city_id, set()).add(code)
    return [
        Zone(name, tuple(ids), frozenset(c for i in ids for c in banks.get(i, ())))
        for name, ids in cities.items()
    ]


def local_today(zones: Iterable[Zone], now: datetime | None = None) -> date:
    """Today in the ledger's zones: the latest of their dates (UTC when there is none)."""
    at = now or datetime.now(UTC)
    return max((at.astimezone(z.tz).date() for z in zones), default=at.date())


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz)


def day_bounds(zones: Iterable[Zone], date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """[first local midnight, last local midnight) of the days in every zone, as UTC times."""
    tzs = [z.tz for z in zones] or [ZoneInfo("UTC")]
    lo = min(_midnight(date_from, tz) for tz in tzs)
    hi = max(_midnight(date_to + timedelta(days=1), tz) for tz in tzs)
    return lo.astimezone(UTC), hi.astimezone(UTC)


def _chunks(date_from: date, date_to: date) -> Iterable[list[date]]:
    day = date_from
    while day <= date_to:
        n = min(CHUNK_DAYS, (date_to - day).days + 1)
        yield [day + timedelta(days=i) for i in range(n)]
        day += timedelta(days=n)


def ledger_totals(
    session: Session, zones: Iterable[Zone], date_from: date, date_to: date
) -> dict[Key, Totals]:
    """Per local day, bank and category: the device deposits (voided ones too) in the ledger.

    One ``GROUP BY`` per zone and chunk of days: the local day of ``measured_at`` is the index
    of the first local midnight after it (a ``CASE`` with one branch per day of the chunk, the
    midnights computed with zoneinfo, so SQLite and PostgreSQL bucket exactly as Python does),
    and only the groups come back."""
    out: dict[Key, Totals] = {}
    d = Deposit
    for zone in zones:
        if not zone.city_ids:
            continue
        for days in _chunks(date_from, date_to):
            ends = [_midnight(day + timedelta(days=1), zone.tz) for day in days]
            start = _midnight(days[0], zone.tz)
            index = case(
                *[(d.measured_at < end, literal_column(str(i))) for i, end in enumerate(ends)]
            )
            rows = (
                select(
                    index.label("day"),
                    Bank.code.label("bank"),
                    Category.code.label("category"),
                    d.net_g.label("net_g"),
                    d.amount_idr.label("amount_idr"),
                )
                .join(Bank, d.bank_id == Bank.id)
                .join(Category, d.category_id == Category.id)
                .where(
                    Bank.city_id.in_(zone.city_ids),
                    d.manual.is_(False),
                    d.measured_at >= start,
                    d.measured_at < ends[-1],
                )
                .subquery()
            )
            groups = select(
                rows.c.day,
                rows.c.bank,
                rows.c.category,
                func.count(),
                func.sum(rows.c.net_g),
                func.sum(rows.c.amount_idr),
            ).group_by(rows.c.day, rows.c.bank, rows.c.category)
            for i, bank, category, n, grams, rupiah in session.execute(groups):
                out[days[int(i)], bank, category] = Totals(int(n), int(grams), int(rupiah))
    return out


async def influx_totals(
    influx: Influx, zones: list[Zone], date_from: date, date_to: date
) -> dict[Key, Totals]:
    """Per local day, bank and category: the ``deposit`` points, one query per zone.

    A bank's points count in its city's zone; points of a bank the ledger does not know count in
    the first zone (the default one)."""
    known = frozenset(code for z in zones for code in z.banks)
    out: dict[Key, Totals] = {}
    for n, zone in enumerate(zones or [Zone("UTC", (), frozenset())]):
        tz = zone.tz
        lo, hi = _midnight(date_from, tz), _midnight(date_to + timedelta(days=1), tz)
        # Constants, RFC3339 times and a zone name the ledger holds, checked by city_zones.
        q = (
            'SELECT count("net_g") AS "deposits", sum("net_g") AS "net_g", '  # noqa: S608
            f'sum("amount_idr") AS "amount_idr" FROM {ident(DEPOSIT)} '
            f"WHERE time >= {influxql_time(lo)} AND time < {influxql_time(hi)} "
            f'GROUP BY time(1d), "bank", "category" fill(none) tz(\'{zone.name}\')'
        )
        for series in await influx.query(q):
            bank = series.tags.get("bank", "")
            category = series.tags.get("category", "")
            if bank not in zone.banks and (bank in known or n > 0):
                continue
            for row in series.rows():
                if not row.get("deposits"):
                    continue
                day = datetime.fromtimestamp(row["time"] / 1000, tz).date()
                out[day, bank, category] = Totals(
                    int(row["deposits"]), int(row["net_g"] or 0), int(row["amount_idr"] or 0)
                )
    return out


def differences(ledger: Mapping[Key, Totals], influx: Mapping[Key, Totals]) -> list[Drift]:
    """The groups whose figures differ, in day, bank, category order."""
    return [
        Drift(*key, ledger.get(key, Totals()), influx.get(key, Totals()))
        for key in sorted(set(ledger) | set(influx))
        if ledger.get(key, Totals()) != influx.get(key, Totals())
    ]


def ledger_zones(engine: Engine) -> list[Zone]:
    """:func:`city_zones`, in a session of its own (for a worker thread)."""
    with Session(engine) as session:
        return city_zones(session)


def _ledger_side(
    engine: Engine, date_from: date, date_to: date
) -> tuple[list[Zone], dict[Key, Totals]]:
    with Session(engine) as session:
        zones = city_zones(session)
        return zones, ledger_totals(session, zones, date_from, date_to)


async def compare(engine: Engine, influx: Influx, date_from: date, date_to: date) -> list[Drift]:
    """The differences between the ledger's device deposits and the ``deposit`` points over the
    local days ``[date_from, date_to]`` (the ledger is read in a thread). Raises InfluxError."""
    if date_to < date_from:
        raise ValueError(f"{date_to} is before {date_from}")
    zones, ledger = await asyncio.to_thread(_ledger_side, engine, date_from, date_to)
    points = await influx_totals(influx, zones, date_from, date_to)
    return differences(ledger, points)


async def reconcile(
    engine: Engine, influx: Influx, date_from: date, date_to: date, *, settle_s: float = 0.0
) -> list[Drift]:
    """:func:`compare`, and when it finds differences and ``settle_s`` > 0, again after
    ``settle_s`` over the days that differed: only groups that differ both times are drift (the
    ingester commits a deposit to the ledger before it writes its point, so a comparison can
    fall between the two). The figures are the second comparison's."""
    drifts = await compare(engine, influx, date_from, date_to)
    if not drifts or settle_s <= 0:
        return drifts
    await asyncio.sleep(settle_s)
    first = {d.key for d in drifts}
    again = await compare(engine, influx, min(d.day for d in drifts), max(d.day for d in drifts))
    return [d for d in again if d.key in first]
