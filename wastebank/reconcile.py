"""The ledger against InfluxDB: the same deposits, counted the same, day by day.

Every deposit that came from a device (``Deposit.manual`` false) has one point in InfluxDB's
``deposit`` measurement, written by the ingester from what the ledger applied; a voided deposit
keeps its point (a void lives in the ledger only, as do manual deposits). So for every local day
(in the zone of the bank's city), bank and category, the ledger's device deposits, voided ones
included, and the points must agree on three figures: how many, how many grams, how many Rupiah.

* :func:`compare` finds the groups where they do not (a :class:`Drift` each);
  :func:`reconcile` compares again after a pause the groups that differed, so that a deposit
  between its ledger commit and its point is not reported;
* :func:`rebuild_deposits` deletes a range's points and writes them again from the ledger
  (``wastebank influx rebuild-deposits``), then recomputes the hourly roll-up on 1.x;
* :func:`run_daily` runs in an ingester that takes deposits: a comparison of the last days every
  ``interval_s``, a :class:`ReconciliationRun` row each time, and the ``influx_drift`` system
  alert raised while they disagree (cleared by the first run that finds them equal).

The ledger's side is one SQL ``GROUP BY`` per city zone and chunk of at most 31 days, on SQLite
and PostgreSQL alike: each deposit's local day is found by a ``CASE`` over the chunk's local
midnights in UTC (computed here with :mod:`zoneinfo`, as the ledger's daily summary does), so
only the groups come back, never the deposits; the scan is bounded by the index on
``measured_at``. InfluxDB's side is one InfluxQL query per zone
(``GROUP BY time(1d), "bank", "category" fill(none) tz('<zone>')``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import (
    Boolean,
    Date,
    Engine,
    Integer,
    String,
    Text,
    and_,
    case,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column

from wastebank.config import InfluxSettings
from wastebank.influx import (
    DEPOSIT,
    DOWNSAMPLES,
    Influx,
    InfluxError,
    api_for_version,
    classify,
    deposit_line,
    ident,
    influxql_time,
    make_writer,
)
from wastebank.ledger import (
    Bank,
    Base,
    Category,
    City,
    Deposit,
    Kecamatan,
    Kelurahan,
    UtcDateTime,
    utcnow,
)

log = logging.getLogger("wastebank.reconcile")


class ReconciliationRun(Base):
    """One comparison of the ledger with InfluxDB over local days ``[date_from, date_to]``."""

    __tablename__ = "reconciliation_run"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    date_from: Mapped[date] = mapped_column(Date)
    date_to: Mapped[date] = mapped_column(Date)
    ok: Mapped[bool] = mapped_column(Boolean)
    drifts: Mapped[int] = mapped_column(Integer, default=0, doc="day x bank x category groups")
    detail: Mapped[str] = mapped_column(Text, default="[]", doc="JSON: the first differences")
    ran_by: Mapped[str] = mapped_column(String(80), doc="'ingest' (daily) or who ran the CLI")


CHUNK_DAYS = 31
"""Local days per ledger query (the CASE has one branch per day)."""
DETAIL_MAX = 100
"""Differences kept in a run's ``detail`` and an alert's detail."""
WRITE_CHUNK = 5000
"""Lines per InfluxDB write when rebuilding (InfluxDB's advice, as the ingester)."""

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


def _zones(engine: Engine) -> list[Zone]:
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


def record_run(
    session: Session, date_from: date, date_to: date, drifts: list[Drift], ran_by: str
) -> ReconciliationRun:
    """Add a :class:`ReconciliationRun` for a comparison (no commit)."""
    run = ReconciliationRun(
        ran_at=utcnow(),
        date_from=date_from,
        date_to=date_to,
        ok=not drifts,
        drifts=len(drifts),
        detail=json.dumps([d.as_dict() for d in drifts[:DETAIL_MAX]]),
        ran_by=ran_by[:80],
    )
    session.add(run)
    session.flush()
    return run


def last_run(session: Session) -> ReconciliationRun | None:
    """The latest run (CLI or daily)."""
    return session.scalar(select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(1))


# ---- the daily run inside the ingester ----------------------------------------------------------


def alert_subject(settings: InfluxSettings) -> str:
    """The ``influx_drift`` alert's subject: the InfluxDB database the ingester writes."""
    return f"influx:{settings.database}"


async def reconcile_recent(
    engine: Engine,
    influx: Influx,
    *,
    days: int,
    settle_s: float = 0.0,
    ran_by: str = "ingest",
    now: datetime | None = None,
) -> tuple[date, date, list[Drift]]:
    """Compare the last ``days`` local days (today included), record the run, and raise the
    ``influx_drift`` alert on drift or clear it when there is none, in one transaction.
    Returns the days compared and the drift. Raises InfluxError (nothing is recorded then)."""
    from wastebank.alerts import AlertCode, clear_alert, raise_alert

    zones = await asyncio.to_thread(_zones, engine)
    date_to = local_today(zones, now)
    date_from = date_to - timedelta(days=max(1, days) - 1)
    drifts = await reconcile(engine, influx, date_from, date_to, settle_s=settle_s)
    subject = alert_subject(influx.settings)

    def store() -> None:
        with Session(engine) as session:
            record_run(session, date_from, date_to, drifts, ran_by)
            if drifts:
                raise_alert(
                    session,
                    AlertCode.INFLUX_DRIFT,
                    subject=subject,
                    message=(
                        f"InfluxDB tidak sama dengan buku besar: {len(drifts)} selisih "
                        f"(hari x bank x kategori) {date_from}..{date_to} / InfluxDB disagrees "
                        f"with the ledger: {len(drifts)} drifts (day x bank x category); "
                        "`wastebank influx rebuild-deposits` (docs/operations.md)"
                    ),
                    detail={
                        "date_from": date_from.isoformat(),
                        "date_to": date_to.isoformat(),
                        "drifts": len(drifts),
                        "first": [d.as_dict() for d in drifts[:DETAIL_MAX]],
                    },
                )
            else:
                clear_alert(
                    session,
                    AlertCode.INFLUX_DRIFT,
                    subject,
                    by=ran_by,
                    note=f"sama lagi / equal again {date_from}..{date_to}",
                )
            session.commit()

    await asyncio.to_thread(store)
    if drifts:
        log.warning(
            "InfluxDB tidak sama dengan buku besar / InfluxDB disagrees with the ledger: "
            "%d drift(s) %s..%s, e.g. %s",
            len(drifts),
            date_from,
            date_to,
            drifts[0].describe(),
        )
    else:
        log.info(
            "buku besar dan InfluxDB sama / the ledger and InfluxDB agree: %s..%s",
            date_from,
            date_to,
        )
    return date_from, date_to, drifts


async def run_daily(
    engine: Engine,
    influx: Influx,
    *,
    interval_s: float,
    days: int,
    first_delay_s: float,
    settle_s: float,
) -> None:
    """For ever: after ``first_delay_s``, then every ``interval_s``, :func:`reconcile_recent`.
    Never raises (but CancelledError): a run that fails (InfluxDB or the ledger unavailable, or
    a bug) is logged and tried again at the next interval."""
    await asyncio.sleep(first_delay_s)
    while True:
        try:
            await reconcile_recent(engine, influx, days=days, settle_s=settle_s)
        except (InfluxError, OperationalError) as exc:
            log.warning(
                "rekonsiliasi ditunda ke jadwal berikut / reconciliation postponed to the next "
                "interval: %s",
                exc,
            )
        except Exception:
            log.exception(
                "rekonsiliasi gagal / reconciliation failed; trying again at the next interval"
            )
        await asyncio.sleep(interval_s)


# ---- rebuilding the points from the ledger ------------------------------------------------------


class RebuildUnsupported(Exception):
    """The server cannot delete points (InfluxDB 3.x)."""


@dataclass
class RebuildSummary:
    server: str
    start: datetime  # UTC: the points in [start, end) were deleted and written again
    end: datetime
    written: int = 0
    beyond_retention: int = 0
    hours: tuple[datetime, datetime] | None = None  # the hourly roll-up recomputed (1.x)
    notes: list[str] = field(default_factory=list)


Server = Literal["v1", "v2"]


def server_kind(version: str, settings: InfluxSettings) -> Server:
    """How points are deleted: InfluxQL ``DELETE`` (1.x) or ``/api/v2/delete`` (2.x). Unknown
    versions (InfluxDB Cloud sends none) go as the writer does: v2 with a token, else v1.
    Raises :class:`RebuildUnsupported` for 3.x."""
    m = re.match(r"^v?(\d+)\.", version.strip())
    if m is not None and int(m.group(1)) >= 3:
        raise RebuildUnsupported(
            f"InfluxDB {version}: menghapus titik tidak didukung oleh 3.x / deleting points is "
            "not supported on 3.x (no DELETE, no /api/v2/delete); delete the range with the "
            "server's own tools, then write the points again"
        )
    return api_for_version(version if m else None, token=settings.token is not None)


def _rfc3339_ns(ns: int) -> str:
    """Nanoseconds since 1970 as an RFC3339 UTC time, for /api/v2/delete."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    at = datetime.fromtimestamp(seconds, UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


def _ns(at: datetime) -> int:
    delta = at.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


async def _delete_v2(settings: InfluxSettings, start: datetime, end: datetime) -> None:
    """``POST /api/v2/delete`` of the ``deposit`` points in [start, end). Its range is inclusive
    at both ends, so ``stop`` is ``end`` less a nanosecond."""
    headers = {}
    if settings.token is not None:
        headers["Authorization"] = f"Token {settings.token.get_secret_value()}"
    elif settings.username and settings.password:
        headers["Authorization"] = f"Token {settings.username}:"
        headers["Authorization"] += settings.password.get_secret_value()
    body = {
        "start": _rfc3339_ns(_ns(start)),
        "stop": _rfc3339_ns(_ns(end) - 1),
        "predicate": f'_measurement="{DEPOSIT}"',
    }
    params = {"org": settings.org or "-", "bucket": settings.bucket or settings.database}
    async with httpx.AsyncClient(base_url=settings.url, timeout=settings.timeout_s) as client:
        try:
            resp = await client.post("/api/v2/delete", params=params, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise InfluxError(f"delete failed: {exc!r}", status=None, retryable=True) from exc
    if resp.status_code != 204:
        raise classify(resp.status_code, resp.content, what="delete")


def _retention(duration: str) -> timedelta | None:
    """An InfluxQL duration (``90d``, ``12w``, ``48h``); None for ``INF``."""
    if duration == "INF":
        return None
    unit = {"h": 1, "d": 24, "w": 24 * 7}[duration[-1]]
    return timedelta(hours=int(duration[:-1]) * unit)


def _hour_floor(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_ceil(at: datetime) -> datetime:
    floor = _hour_floor(at)
    return floor if floor == at else floor + timedelta(hours=1)


def _count_deposits(engine: Engine, start: datetime, end: datetime) -> int:
    d = Deposit
    with Session(engine) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(d)
                .where(d.manual.is_(False), d.measured_at >= start, d.measured_at < end)
            )
            or 0
        )


def _page(
    engine: Engine,
    start: datetime,
    end: datetime,
    after: tuple[datetime, int] | None,
    limit: int,
    clock_ahead: Callable[[datetime, datetime | None], int | None],
) -> tuple[list[str], tuple[datetime, int] | None]:
    """The next ``limit`` device deposits in [start, end) after ``after`` (measured_at, id), as
    their points; and where the page ended."""
    d = Deposit
    stmt = (
        select(
            d.id,
            d.event_id,
            Bank.code,
            Kecamatan.name,
            Category.code,
            d.net_g,
            d.amount_idr,
            d.gateway_id,
            d.measured_at,
            d.recorded_at,
        )
        .select_from(d)
        .join(Bank, d.bank_id == Bank.id)
        .join(Kelurahan, Bank.kelurahan_id == Kelurahan.id)
        .join(Kecamatan, Kelurahan.kecamatan_id == Kecamatan.id)
        .join(Category, d.category_id == Category.id)
        .where(d.manual.is_(False), d.measured_at >= start, d.measured_at < end)
        .order_by(d.measured_at, d.id)
        .limit(limit)
    )
    if after is not None:
        at, last_id = after
        stmt = stmt.where(or_(d.measured_at > at, and_(d.measured_at == at, d.id > last_id)))
    lines: list[str] = []
    last: tuple[datetime, int] | None = None
    with Session(engine) as session:
        for (
            row_id,
            event_id,
            bank,
            kecamatan,
            category,
            net_g,
            amount,
            gateway,
            at,
            rec,
        ) in session.execute(stmt):
            lines.append(
                deposit_line(
                    event_id=event_id,
                    bank=bank,
                    kecamatan=kecamatan,
                    category=category,
                    net_g=net_g,
                    amount_idr=amount,
                    gateway=gateway,
                    measured_at=at,
                    clock_ahead_s=clock_ahead(at, rec),
                )
            )
            last = (at, row_id)
    return lines, last


async def rebuild_deposits(
    engine: Engine,
    settings: InfluxSettings,
    date_from: date,
    date_to: date,
    *,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = WRITE_CHUNK,
) -> RebuildSummary:
    """Delete the ``deposit`` points of the local days ``[date_from, date_to]`` and write one
    for every device deposit of the ledger in them, as the ingester would have (voided ones
    too); then, on 1.x, recompute the hourly roll-up ``deposit_1h`` of the hours they cover.

    With cities in several zones, the range is from the earliest local midnight to the latest.
    Idempotent: a second run leaves the same points. ``progress(done, total)`` is told after each
    write. Raises :class:`RebuildUnsupported` (3.x) or InfluxError."""
    from ingest.main import CLOCK_AHEAD_TOLERANCE

    def clock_ahead(measured_at: datetime, recorded_at: datetime | None) -> int | None:
        # The ingester's clock-ahead field, from when the ledger recorded the deposit.
        if recorded_at is None or measured_at - recorded_at <= CLOCK_AHEAD_TOLERANCE:
            return None
        return int((measured_at - recorded_at).total_seconds())

    if date_to < date_from:
        raise ValueError(f"{date_to} is before {date_from}")
    zones = await asyncio.to_thread(_zones, engine)
    start, end = day_bounds(zones, date_from, date_to)
    influx = Influx(settings)
    try:
        version = await influx.ping()
        kind = server_kind(version, settings)
        summary = RebuildSummary(server=version, start=start, end=end)
        total = await asyncio.to_thread(_count_deposits, engine, start, end)
        if progress is not None:
            progress(0, total)
        where = f"time >= {influxql_time(start)} AND time < {influxql_time(end)}"
        if kind == "v1":
            await influx.execute(f"DELETE FROM {ident(DEPOSIT)} WHERE {where}")  # noqa: S608
        else:
            await _delete_v2(settings, start, end)
        writer = await make_writer(settings)
        try:
            after: tuple[datetime, int] | None = None
            done = 0
            while True:
                lines, after = await asyncio.to_thread(
                    _page, engine, start, end, after, chunk, clock_ahead
                )
                if not lines:
                    break
                try:
                    await writer.write(lines)
                except InfluxError as exc:
                    if not exc.beyond_retention:
                        raise
                    # 1.x stored the rest of the chunk; the refused ones are past `raw`.
                    summary.beyond_retention += exc.dropped or 0
                summary.written += len(lines)
                done += len(lines)
                if progress is not None:
                    progress(done, max(total, done))
                if len(lines) < chunk:
                    break
        finally:
            await writer.aclose()
        summary.written -= summary.beyond_retention
        if kind == "v1" and _VERSION_1.match(version.strip()):
            await _rollup_hours(influx, settings, start, end, summary)
        elif kind == "v2":
            summary.notes.append(
                "InfluxDB 2.x: ringkasan per jam dihitung task server (jendela 2d) / the hourly "
                "roll-up is the server's task (a 2d window): run it for older days "
                "(docs/protocol.md)"
            )
    finally:
        await influx.aclose()
    return summary


_VERSION_1 = re.compile(r"^v?1\.")


async def _rollup_hours(
    influx: Influx, settings: InfluxSettings, start: datetime, end: datetime, s: RebuildSummary
) -> None:
    """1.x: ``deposit_1h`` again for the whole hours covering [start, end): those hours' rows
    are deleted (an hour left without deposits must lose its row) and the roll-up's
    ``SELECT ... INTO`` (as ``downsample`` runs it) recomputes them. Hours older than the raw
    retention are left alone: their raw points are gone, the roll-up is all there is."""
    lo, hi = _hour_floor(start), _hour_ceil(end)
    keep = _retention(settings.retention_raw)
    if keep is not None:
        oldest = _hour_ceil(datetime.now(UTC) - keep)
        if lo < oldest:
            s.notes.append(
                f"jam sebelum {oldest.isoformat()} tidak dihitung ulang (di luar retensi raw) / "
                "hours before it were not recomputed (beyond the raw retention)"
            )
            lo = oldest
    if lo >= hi:
        return
    where = f"time >= {influxql_time(lo)} AND time < {influxql_time(hi)}"
    for ds in DOWNSAMPLES:
        if ds.source == DEPOSIT:
            await influx.execute(f"DELETE FROM {ident(ds.name)} WHERE {where}")  # noqa: S608
            await influx.execute(ds.select_into(settings.database, where))
    s.hours = (lo, hi)
