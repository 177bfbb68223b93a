"""TPS analytics and alerts: fill rate, time to full, pickups, mass estimates, the TPA-bound
tonnage, the pickup journal, and the ``wastebank tps watch`` process.

The fill readings themselves live in InfluxDB (``fill_level``, written by the ingester); the TPS
registry (container volume, bulk density, alert thresholds), the alerts and the pickup journal
live in the ledger (``tps``, ``tps_alert``: migration 0004; ``tps_pickup``: migration 0008).

The pickup journal (``tps_pickup``) holds each detected pickup's facts, never its mass: TPS,
sensor, ``at`` (the first low reading), the fill ratio before and after the drop. The mass is
computed when read (:func:`tpa_bound_tonnes`: Σ over the period's rows of the TPS's *current*
container volume x fill before x bulk density), so a recalibrated density still applies to the
past. A better pickup rule does too, once ``wastebank tps rebuild-pickups`` has run it over the
readings again (:func:`rebuild_pickups`; also after a watcher outage longer than the broker kept
its session, or readings imported into InfluxDB directly). A year of DLH figures thus reads one
row per pickup (~180,000 for 500 TPS) instead of 17.5 M readings (bench/reports.py,
docs/scaling.md). The alerts' raise and clear must each happen once, and the journal's rows once
per (TPS, sensor, time) (a unique constraint; inserts are ON CONFLICT DO NOTHING).

Pure functions (no I/O; the tests compute their results by hand):

* :func:`detect_pickups`: a pickup is a drop of at least ``min_drop`` from a level of at least
  ``min_before`` (the median of the readings just before, so one false high echo does not make
  a pickup) within ``max_gap``, and the low level must persist for ``persist`` (2) readings, so
  one false low echo (a lost echo reads as empty) is never a pickup; ``tolerate`` (1) false high
  reading among them (a wall echo just after the emptying) does not hide the pickup.
* :class:`PickupWindow`: the same rule run incrementally over a sensor's recent readings (what
  the watcher keeps per sensor).
* :func:`fill_rate`: the least-squares slope of the fill ratio against time over the last
  ``window`` hours since the last emptying, with its standard error.
* :func:`predict_full`: when the fitted line reaches 1.0, with an interval from the slope's 95 %
  confidence bounds (Student's t) and a reliability (``high``/``medium``/``low``, Bintel's
  ``estimated-full-time{reliability}``).
* :func:`pickup_mass_kg` = container volume x fill ratio at pickup x bulk density;
  :func:`density_from_weighbridge` = mass / (volume x fill); :func:`diversion_rate`.

Alerts (``fill_high``: raised at ``alert_raise_fill``, cleared at ``alert_clear_fill``;
``sensor_offline``: no reading for ``offline_after_min`` minutes, cleared by the next reading)
are evaluated by :class:`TpsWatcher` on each reading it receives from the broker (its own
persistent session, QoS 1, each message acknowledged only after its effect is committed) and
periodically for offline sensors. Each transition is a ledger row change first (raised once and
cleared once: a partial unique index allows one active alert per TPS, sensor and code), then an
MQTT publish: the alert's retained state topic and the TPS's event topic
(docs/protocol.md "TPS alerts"). A transition whose publish did not complete is published again
on the next connection (``raised_published`` / ``cleared_published``).

Pickups, in the watcher: it keeps each sensor's readings of the last ``WINDOW`` (12 h) in time
order (:class:`PickupWindow`), runs :func:`detect_pickups` over them on each reading and inserts
every pickup found (ON CONFLICT DO NOTHING) in the same transaction as the reading's alert
effects, before the ack. A pickup is confirmed when its last persisting low reading arrives, and
readings appended after it cannot change that decision (the rule scans forward), so for readings
in order the journal gets exactly what :func:`detect_pickups` finds over the whole series.

* Restart: on start each sensor's window is primed from InfluxDB (its readings in the ``WINDOW``
  before its last reading) and run once, so a pickup confirmed by readings the watcher missed
  is recorded; one recorded before is not recorded again (the unique constraint). Readings the
  broker redelivers are already in the window (same time: kept once).
* Context: a pickup needs the readings before its drop. One within ``max_gap`` (3 h) of the
  oldest reading of a window that does not start at the sensor's first reading (trimmed, or
  primed) is not recorded from that window: it was recorded when it was confirmed, with its full
  context (a truncated one could take a false high echo for the level before).
* Late readings (a store-and-forward backlog, older than the sensor's newest): put in their
  place in time order and the rule run again, so a late reading completes a pickup it belongs
  to (none lost); and since a late reading can also undo one (say, two late high readings
  between its low ones) or change its level before, the sensor's pickups within ``max_gap`` of
  it are deleted and what the rule finds there now inserted, in the same transaction (no false
  pickup, none with stale figures). A reading older than the window is not used for pickups
  (counted in ``too_late``, logged): ``wastebank tps rebuild-pickups`` over its day puts the
  journal right, as after an outage longer than the broker kept. (This assumes a sensor reads
  at least every ``max_gap`` / ``before_n``, 1 h: the readings a pickup's level before is taken
  from then lie within ``max_gap`` of it.)

Why readings from MQTT and not by polling InfluxDB: an alert follows the reading that caused it
within a message's delivery, the broker keeps readings for the watcher while it is down (its
persistent session), and the watcher needs nothing from InfluxDB but each sensor's last time and
recent readings when it starts (so a sensor that went quiet while the watcher was down is still
found offline). A reading older than the alert's last transition (a redelivery, a
store-and-forward backlog) never flips it back.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Final, Literal, NamedTuple, cast
from zoneinfo import ZoneInfo

import aiomqtt
from pydantic import Field, ValidationError
from sqlalchemy import Engine, Table, case, delete, func, or_, select
from sqlalchemy.dialects import postgresql as postgresql_dml
from sqlalchemy.dialects import sqlite as sqlite_dml
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from wastebank import ledger, mqtt
from wastebank.config import InfluxSettings, MqttSettings, WastebankSettings, default_ledger_url
from wastebank.influx import FILL, Influx, InfluxError, influxql_time
from wastebank.messages import FillReading, PayloadTooLarge, Topics, TpsAlert, check_size

log = logging.getLogger("wastebank.tps")

FULL = 1.0
"""The fill ratio a prediction aims at: the container is full (FIWARE ``fillingLevel`` 1)."""
FILL_HIGH: Final = "fill_high"
SENSOR_OFFLINE: Final = "sensor_offline"
AlertCode = Literal["fill_high", "sensor_offline"]
Reliability = Literal["high", "medium", "low"]

TPA_METHOD = (
    "Σ over detected pickups of container volume (m³) × fill ratio before the drop × bulk density "
    "(kg/m³) of the TPS (ledger `tps`; the density in force now, from its source or weighbridge "
    "calibration); pickups are drops of the fill sensor's level (wastebank/tps.py)"
)


# ---- pure analytics ---------------------------------------------------------------------------


class Reading(NamedTuple):
    at: datetime
    level: float


@dataclass(frozen=True)
class PickupRule:
    """What counts as a pickup (the defaults suit arm-roll containers emptied by a truck)."""

    min_drop: float = 0.3
    min_before: float = 0.5
    max_gap: timedelta = timedelta(hours=3)
    persist: int = 2
    tolerate: int = 1
    before_n: int = 3


@dataclass(frozen=True)
class Pickup:
    at: datetime  # the first low reading
    fill_before: float  # median of the readings just before the drop
    fill_after: float  # median of the persisting low readings


def detect_pickups(readings: Sequence[Reading], rule: PickupRule = PickupRule()) -> list[Pickup]:
    """Pickups in ``readings`` (any order; sorted here): at the first low reading, when
    ``rule.persist`` low readings follow it (itself included) with at most ``rule.tolerate``
    others among them. A drop at the end of the data whose low level has not yet lasted
    ``rule.persist`` readings is not (yet) a pickup."""
    rs = sorted(readings)
    out: list[Pickup] = []
    start = 0  # readings before this belong to an earlier fill cycle
    i = 1
    while i < len(rs):
        prev = rs[max(start, i - rule.before_n) : i]
        if not prev or rs[i].at - prev[-1].at > rule.max_gap:
            i += 1
            continue
        before = statistics.median(r.level for r in prev)
        limit = before - rule.min_drop
        low: list[Reading] = []
        misses, j = 0, i
        while before >= rule.min_before and j < len(rs) and len(low) < rule.persist:
            if rs[j].level <= limit:
                low.append(rs[j])
            elif j == i or misses == rule.tolerate:
                break
            else:
                misses += 1  # a false echo among the low readings
            j += 1
        if len(low) == rule.persist:
            after = statistics.median(r.level for r in low)
            out.append(Pickup(at=rs[i].at, fill_before=before, fill_after=after))
            start = i
            i = j
            continue
        i += 1
    return out


WINDOW = timedelta(hours=12)
"""How much of a sensor's recent readings the watcher keeps for pickups (and primes on start)."""


@dataclass(frozen=True)
class PickupUpdate:
    """What one reading does to the journal: the pickups its window's rule finds (inserted
    unless there), and for a late reading the span ``[start, end]`` of the sensor's pickups to
    delete first (those the rule still finds there are inserted again, with their figures as
    the late reading leaves them)."""

    found: Sequence[Pickup] = ()
    forget: tuple[datetime, datetime] | None = None


@dataclass
class PickupWindow:
    """One sensor's readings of the last ``WINDOW``, in time order, and the pickups the rule
    finds in them with their full context (see the module docstring).

    ``truncated``: older readings of the sensor may exist than the window holds (it was
    trimmed, or primed from InfluxDB): pickups within ``rule.max_gap`` of its oldest reading
    are then left out (they lack the readings before their drop)."""

    rule: PickupRule = PickupRule()
    span: timedelta = WINDOW
    readings: list[Reading] = field(default_factory=list)
    truncated: bool = False

    @property
    def newest(self) -> datetime | None:
        return self.readings[-1].at if self.readings else None

    def add(self, r: Reading) -> Literal["new", "late", "duplicate", "too_late"]:
        """Put ``r`` in its place ("late": older than the newest; "too_late": older than the
        window, not kept; "duplicate": a reading at that time is there already) and trim."""
        rs = self.readings
        newest = self.newest
        if newest is not None and r.at < newest - self.span:
            return "too_late"
        k = bisect.bisect_left(rs, r.at, key=lambda x: x.at)
        if k < len(rs) and rs[k].at == r.at:
            return "duplicate"
        rs.insert(k, r)
        late = k < len(rs) - 1
        cut = bisect.bisect_left(rs, rs[-1].at - self.span, key=lambda x: x.at)
        if cut:
            del rs[:cut]
            self.truncated = True
        return "late" if late else "new"

    def pickups(self) -> list[Pickup]:
        """The rule over the window, without the pickups a truncated window lacks context for."""
        found = detect_pickups(self.readings, self.rule)
        if not self.truncated or not self.readings:
            return found
        oldest = self.readings[0].at
        return [p for p in found if p.at - oldest >= self.rule.max_gap]

    def settled_since(self) -> datetime | None:
        """Pickups at or after this time are judged by :meth:`pickups` (None: all are)."""
        if not self.truncated or not self.readings:
            return None
        return self.readings[0].at + self.rule.max_gap

    def update(self, r: Reading) -> PickupUpdate | None:
        """Add ``r`` and return what the journal must do (None: ``r`` is older than the window,
        not used). In order: insert what the rule finds. Late: first delete the sensor's
        pickups within ``max_gap`` of ``r`` (but not before :meth:`settled_since`): the rule's
        findings there replace them."""
        added = self.add(r)
        if added == "too_late":
            return None
        found = self.pickups()
        if added != "late":
            return PickupUpdate(found=found)
        lo = r.at - self.rule.max_gap
        settled = self.settled_since()
        if settled is not None:
            lo = max(lo, settled)
        return PickupUpdate(found=found, forget=(lo, r.at + self.rule.max_gap))


def since_last_emptied(readings: Sequence[Reading], pickups: Sequence[Pickup]) -> list[Reading]:
    rs = sorted(readings)
    if not pickups:
        return rs
    last = max(p.at for p in pickups)
    return [r for r in rs if r.at >= last]


@dataclass(frozen=True)
class FillRate:
    """A least-squares line through (hours, fill ratio)."""

    per_hour: float
    stderr_per_hour: float | None  # None with 2 points (no residual degrees of freedom)
    points: int
    at: datetime  # the last reading
    fitted_level: float  # the line's value at ``at`` (less noisy than the last reading)


def fill_rate(
    readings: Sequence[Reading], *, window: timedelta = timedelta(hours=6), min_points: int = 3
) -> FillRate | None:
    """The fill rate (ratio per hour) of the readings in the last ``window`` before the latest,
    or None with fewer than ``min_points`` (pass the readings since the last emptying)."""
    rs = sorted(readings)
    if not rs:
        return None
    last = rs[-1].at
    rs = [r for r in rs if r.at >= last - window]
    if len(rs) < max(2, min_points):
        return None
    xs = [(r.at - last) / timedelta(hours=1) for r in rs]
    ys = [r.level for r in rs]
    n = len(rs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = my - slope * mx  # at x = 0, the last reading
    stderr = None
    if n > 2:
        sse = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
        stderr = math.sqrt(sse / (n - 2) / sxx)
    return FillRate(
        per_hour=slope, stderr_per_hour=stderr, points=n, at=last, fitted_level=intercept
    )


# Student's t, two-sided 95 %, by degrees of freedom (the largest tabulated df <= df is used).
_T95 = (
    (1, 12.706),
    (2, 4.303),
    (3, 3.182),
    (4, 2.776),
    (5, 2.571),
    (6, 2.447),
    (7, 2.365),
    (8, 2.306),
    (9, 2.262),
    (10, 2.228),
    (12, 2.179),
    (15, 2.131),
    (20, 2.086),
    (25, 2.060),
    (30, 2.042),
    (40, 2.021),
    (60, 2.000),
    (120, 1.980),
)


def t95(df: int) -> float:
    """Student's t for a two-sided 95 % interval with ``df`` degrees of freedom (rounded to the
    table's next lower df, so the interval is never too narrow)."""
    if df < 1:
        return math.inf
    if df >= 1000:
        return 1.960
    return next(t for d, t in reversed(_T95) if df >= d)


@dataclass(frozen=True)
class Prediction:
    """When the container is full: ``full_at`` from the fitted line, ``earliest``/``latest`` from
    the slope's 95 % bounds (``latest`` None: the slope may be 0, no upper bound)."""

    full_at: datetime
    earliest: datetime
    latest: datetime | None
    hours: float
    reliability: Reliability


def predict_full(rate: FillRate, *, full_level: float = FULL) -> Prediction | None:
    """None when the level is not rising."""
    if rate.per_hour <= 0:
        return None
    remaining = max(0.0, full_level - rate.fitted_level)
    hours = remaining / rate.per_hour
    if rate.stderr_per_hour is None:
        margin = math.inf
    else:
        margin = t95(rate.points - 2) * rate.stderr_per_hour
    fast, slow = rate.per_hour + margin, rate.per_hour - margin
    earliest = rate.at + timedelta(hours=remaining / fast) if math.isfinite(fast) else rate.at
    latest = rate.at + timedelta(hours=remaining / slow) if slow > 0 else None
    relative = math.inf if rate.stderr_per_hour is None else rate.stderr_per_hour / rate.per_hour
    reliability: Reliability
    if relative <= 0.1 and rate.points >= 6:
        reliability = "high"
    elif relative <= 0.3 and rate.points >= 4:
        reliability = "medium"
    else:
        reliability = "low"
    return Prediction(
        full_at=rate.at + timedelta(hours=hours),
        earliest=earliest,
        latest=latest,
        hours=hours,
        reliability=reliability,
    )


def pickup_mass_kg(volume_m3: float, fill: float, density_kg_m3: float) -> float:
    """Container volume x fill ratio at pickup (clamped to 0..1) x bulk density."""
    return volume_m3 * min(max(fill, 0.0), 1.0) * density_kg_m3


def density_from_weighbridge(mass_kg: float, volume_m3: float, fill: float) -> float:
    """The bulk density a weighed load implies: mass / (volume x fill ratio)."""
    if mass_kg <= 0 or volume_m3 <= 0 or not 0 < fill <= 1:
        raise ValueError("need mass > 0, volume > 0 and 0 < fill <= 1")
    return mass_kg / (volume_m3 * fill)


def diversion_rate(diverted_t: float, tpa_bound_t: float) -> float | None:
    """diverted / (diverted + TPA-bound); None when both are zero (nothing to divide)."""
    total = diverted_t + tpa_bound_t
    if total <= 0:
        return None
    return diverted_t / total


def fill_transition(
    active: bool, level: float, raise_at: float, clear_at: float
) -> Literal["raise", "clear"] | None:
    """Hysteresis: raise at level >= ``raise_at``, clear at level <= ``clear_at``."""
    if not active and level >= raise_at:
        return "raise"
    if active and level <= clear_at:
        return "clear"
    return None


# ---- the registry -----------------------------------------------------------------------------


def get_tps(session: Session, code: str) -> ledger.Tps | None:
    return session.scalar(
        select(ledger.Tps)
        .where(ledger.Tps.code == code)
        .options(joinedload(ledger.Tps.city), joinedload(ledger.Tps.kelurahan))
    )


def city_tps(session: Session, city_id: int | None = None) -> list[ledger.Tps]:
    """The active TPS of a city (None: of every city), by code."""
    q = select(ledger.Tps).where(ledger.Tps.active.is_(True)).order_by(ledger.Tps.code)
    if city_id is not None:
        q = q.where(ledger.Tps.city_id == city_id)
    return list(
        session.scalars(
            q.options(joinedload(ledger.Tps.city), joinedload(ledger.Tps.kelurahan))
        ).unique()
    )


def calibrate(
    session: Session,
    code: str,
    *,
    density_kg_m3: float,
    source: str,
    at: datetime | None = None,
) -> ledger.Tps:
    """Set a TPS's bulk density and where it came from; commits."""
    if not 20 <= density_kg_m3 <= 1200:
        raise ValueError(f"density {density_kg_m3} kg/m³ is not plausible (20..1200)")
    if not source.strip():
        raise ValueError("say where the density comes from (--source)")
    tps = get_tps(session, code)
    if tps is None:
        raise ledger.NotFound(f"TPS {code}")
    tps.density_kg_m3 = density_kg_m3
    tps.density_source = source.strip()[:300]
    tps.density_calibrated_at = at or datetime.now(UTC)
    session.commit()
    return tps


# ---- readings from InfluxDB -------------------------------------------------------------------

SeriesKey = tuple[str, str]  # (tps, sensor)


def _influx_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def fill_readings(
    influx: Influx, tps_codes: Iterable[str] | None, start: datetime, end: datetime
) -> dict[SeriesKey, list[Reading]]:
    """Readings per (TPS, sensor) in ``[start, end)`` (``tps_codes`` None: every TPS)."""
    where = f"time >= {influxql_time(start)} AND time < {influxql_time(end)}"
    if tps_codes is not None:
        codes = list(tps_codes)
        if not codes:
            return {}
        where += " AND (" + " OR ".join(f'"tps" = {_influx_string(c)}' for c in codes) + ")"
    q = f'SELECT "filling_level" FROM "{FILL}" WHERE {where} GROUP BY "tps", "sensor"'  # noqa: S608
    out: dict[SeriesKey, list[Reading]] = {}
    for s in await influx.query(q):
        key = (s.tags.get("tps", ""), s.tags.get("sensor", ""))
        rows = out.setdefault(key, [])
        for t, level in s.values:
            if level is not None:
                rows.append(Reading(datetime.fromtimestamp(t / 1000, UTC), float(level)))
    return out


async def last_seen(influx: Influx) -> dict[SeriesKey, datetime]:
    """The time of each (TPS, sensor)'s latest reading."""
    q = f'SELECT last("filling_level") FROM "{FILL}" GROUP BY "tps", "sensor"'  # noqa: S608
    out: dict[SeriesKey, datetime] = {}
    for s in await influx.query(q):
        for row in s.values:
            out[s.tags.get("tps", ""), s.tags.get("sensor", "")] = datetime.fromtimestamp(
                row[0] / 1000, UTC
            )
    return out


PRIME_CHUNK = 100  # statements per InfluxDB request


async def prime_windows(
    influx: Influx, last: dict[SeriesKey, datetime], span: timedelta = WINDOW
) -> dict[SeriesKey, list[Reading]]:
    """Each sensor's readings in the ``span`` up to its last one (``last``): one statement per
    sensor, ``PRIME_CHUNK`` a request."""
    keys = sorted(last)
    out: dict[SeriesKey, list[Reading]] = {}
    for k in range(0, len(keys), PRIME_CHUNK):
        q = ";".join(
            f'SELECT "filling_level" FROM "{FILL}" WHERE "tps" = {_influx_string(code)} '  # noqa: S608
            f'AND "sensor" = {_influx_string(sensor)} '
            f"AND time >= {influxql_time(last[code, sensor] - span)} "
            f"AND time <= {influxql_time(last[code, sensor] + timedelta(seconds=1))} "
            'GROUP BY "tps", "sensor"'
            for code, sensor in keys[k : k + PRIME_CHUNK]
        )
        for s in await influx.query(q):
            key = (s.tags.get("tps", ""), s.tags.get("sensor", ""))
            rows = out.setdefault(key, [])
            rows.extend(
                Reading(datetime.fromtimestamp(t / 1000, UTC), float(v))
                for t, v in s.values
                if v is not None
            )
    return out


# ---- status, pickups, tonnage -----------------------------------------------------------------


@dataclass(frozen=True)
class ContainerStatus:
    """One sensor's container at a TPS."""

    sensor_id: str
    measured_at: datetime
    fill: float
    offline: bool
    last_emptied: datetime | None
    rate: FillRate | None
    prediction: Prediction | None


def container_status(
    sensor_id: str,
    readings: Sequence[Reading],
    *,
    now: datetime,
    offline_after: timedelta,
    rule: PickupRule = PickupRule(),
    window: timedelta = timedelta(hours=6),
) -> ContainerStatus | None:
    rs = sorted(readings)
    if not rs:
        return None
    pickups = detect_pickups(rs, rule)
    rate = fill_rate(since_last_emptied(rs, pickups), window=window)
    return ContainerStatus(
        sensor_id=sensor_id,
        measured_at=rs[-1].at,
        fill=rs[-1].level,
        offline=now - rs[-1].at > offline_after,
        last_emptied=pickups[-1].at if pickups else None,
        rate=rate,
        prediction=predict_full(rate) if rate else None,
    )


async def statuses(
    influx: Influx,
    tps: Sequence[ledger.Tps],
    *,
    now: datetime | None = None,
    lookback: timedelta = timedelta(days=3),
) -> dict[str, list[ContainerStatus]]:
    """Each TPS's containers (one per sensor heard in the last ``lookback``), by TPS code."""
    now = now or datetime.now(UTC)
    by_code = {t.code: t for t in tps}
    series = await fill_readings(influx, list(by_code), now - lookback, now + timedelta(minutes=5))
    out: dict[str, list[ContainerStatus]] = {t.code: [] for t in tps}
    for (code, sensor), rs in sorted(series.items()):
        t = by_code.get(code)
        if t is None:
            continue
        st = container_status(
            sensor, rs, now=now, offline_after=timedelta(minutes=t.offline_after_min)
        )
        if st is not None:
            out[code].append(st)
    return out


@dataclass(frozen=True)
class PickupMass:
    tps_code: str
    sensor_id: str
    at: datetime
    fill_before: float
    fill_after: float
    volume_m3: float
    density_kg_m3: float
    mass_kg: float


PICKUP_MARGIN = timedelta(hours=12)
"""Readings read before ``start`` and after ``end``: the level before a drop at ``start`` and the
persisting low readings after one just before ``end``."""


async def pickups(
    influx: Influx, tps: Sequence[ledger.Tps], start: datetime, end: datetime
) -> list[PickupMass]:
    """Pickups in ``[start, end)`` at these TPS, each with its estimated mass."""
    by_code = {t.code: t for t in tps}
    series = await fill_readings(influx, list(by_code), start - PICKUP_MARGIN, end + PICKUP_MARGIN)
    out: list[PickupMass] = []
    for (code, sensor), rs in series.items():
        t = by_code.get(code)
        if t is None:
            continue
        for p in detect_pickups(rs):
            if start <= p.at < end:
                out.append(
                    PickupMass(
                        tps_code=code,
                        sensor_id=sensor,
                        at=p.at,
                        fill_before=p.fill_before,
                        fill_after=p.fill_after,
                        volume_m3=t.container_volume_m3,
                        density_kg_m3=t.density_kg_m3,
                        mass_kg=pickup_mass_kg(
                            t.container_volume_m3, p.fill_before, t.density_kg_m3
                        ),
                    )
                )
    return sorted(out, key=lambda p: (p.at, p.tps_code, p.sensor_id))


@dataclass(frozen=True)
class TpaEstimate:
    """Tonnes bound for the TPA from a city's TPS over ``[start, end)``: an estimate."""

    city: str
    start: datetime
    end: datetime
    tonnes: float
    pickups: int
    per_tps_tonnes: dict[str, float]
    method: str = TPA_METHOD
    basis: Literal["estimated"] = "estimated"
    tps_without_sensor_data: list[str] = field(default_factory=list)


# ---- the pickup journal (ledger ``tps_pickup``) -----------------------------------------------

_PICKUP = cast(Table, ledger.TpsPickup.__table__)
_INSERTS: dict[str, Callable[[Table], sqlite_dml.Insert | postgresql_dml.Insert]] = {
    "sqlite": sqlite_dml.insert,
    "postgresql": postgresql_dml.insert,
}


def record_pickups(
    session: Session,
    tps_id: int,
    sensor: str,
    found: Iterable[Pickup],
    *,
    now: datetime | None = None,
) -> int:
    """Insert ``found`` into the journal, each unless it is there already (ON CONFLICT (TPS,
    sensor, at) DO NOTHING); returns how many were new. Does not commit."""
    make = _INSERTS[session.get_bind().dialect.name]
    stamp = now or datetime.now(UTC)
    new = 0
    for p in found:
        stmt = (
            make(_PICKUP)
            .values(
                tps_id=tps_id,
                sensor_id=sensor,
                at=p.at,
                fill_before=p.fill_before,
                fill_after=p.fill_after,
                detected_at=stamp,
            )
            .on_conflict_do_nothing(
                index_elements=[_PICKUP.c.tps_id, _PICKUP.c.sensor_id, _PICKUP.c.at]
            )
            .returning(_PICKUP.c.id)
        )
        new += len(session.execute(stmt).all())
    return new


def forget_pickups(
    session: Session, tps_id: int, sensor: str, start: datetime, end: datetime
) -> int:
    """Delete the sensor's pickups in ``[start, end]``; does not commit."""
    p = ledger.TpsPickup
    q = delete(p).where(p.tps_id == tps_id, p.sensor_id == sensor, p.at >= start, p.at <= end)
    return max(cast(CursorResult[Any], session.execute(q)).rowcount, 0)


def journal(
    session: Session, tps: Sequence[ledger.Tps], start: datetime, end: datetime
) -> list[ledger.TpsPickup]:
    """The journal's pickups at these TPS in ``[start, end)``, by time."""
    p = ledger.TpsPickup
    ids = [t.id for t in tps]
    if not ids:
        return []
    q = select(p).where(p.tps_id.in_(ids), p.at >= start, p.at < end)
    return list(session.scalars(q.order_by(p.at, p.tps_id, p.sensor_id)))


@dataclass(frozen=True)
class JournalTotal:
    """One TPS's pickups in a period from the journal, with their mass at today's density."""

    tps: ledger.Tps
    pickups: int
    mass_kg: float


def journal_totals(
    session: Session, tps: Sequence[ledger.Tps], start: datetime, end: datetime
) -> dict[str, JournalTotal]:
    """Per TPS code (only those with a pickup in ``[start, end)``): the count and Σ volume x
    fill before (clamped to 0..1, as :func:`pickup_mass_kg`) x density, the volume and density
    the TPS has now. One grouped query on the index (tps_id, at)."""
    p = ledger.TpsPickup
    by_id = {t.id: t for t in tps}
    if not by_id:
        return {}
    fill = case((p.fill_before > 1.0, 1.0), (p.fill_before < 0.0, 0.0), else_=p.fill_before)
    rows = session.execute(
        select(p.tps_id, func.count(), func.sum(fill))
        .where(p.tps_id.in_(list(by_id)), p.at >= start, p.at < end)
        .group_by(p.tps_id)
    )
    out: dict[str, JournalTotal] = {}
    for tps_id, n, fills in rows:
        t = by_id[tps_id]
        mass = t.container_volume_m3 * float(fills or 0.0) * t.density_kg_m3
        out[t.code] = JournalTotal(tps=t, pickups=int(n), mass_kg=mass)
    return out


READINGS_CHECK_CHUNK = 100  # statements per InfluxDB request


async def tps_with_readings(
    influx: Influx, codes: Iterable[str], start: datetime, end: datetime
) -> set[str]:
    """Which of these TPS have at least one reading in ``[start, end)``: one ``LIMIT 1``
    statement per TPS (InfluxDB stops at the first point), ``READINGS_CHECK_CHUNK`` a request."""
    todo = list(codes)
    seen: set[str] = set()
    span = f"time >= {influxql_time(start)} AND time < {influxql_time(end)}"
    for k in range(0, len(todo), READINGS_CHECK_CHUNK):
        q = ";".join(
            f'SELECT "filling_level" FROM "{FILL}" WHERE "tps" = {_influx_string(c)} '  # noqa: S608
            f'AND {span} GROUP BY "tps" LIMIT 1'
            for c in todo[k : k + READINGS_CHECK_CHUNK]
        )
        for series in await influx.query(q):
            if series.values:
                seen.add(series.tags.get("tps", ""))
    return seen


@dataclass(frozen=True)
class RebuildSummary:
    tps: int
    sensors: int
    readings: int
    removed: int
    inserted: int


REBUILD_CHUNK = 10  # TPS whose readings are read at once (a year of 2 sensors: ~70,000 points)


async def rebuild_pickups(
    session: Session,
    influx: Influx,
    start: datetime,
    end: datetime,
    tps_codes: Iterable[str] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> RebuildSummary:
    """Run :func:`detect_pickups` over the readings of ``[start, end)`` (with ``PICKUP_MARGIN``
    either side, as :func:`pickups`) of these TPS (None: every active TPS) and replace the
    journal's rows of the range with what it finds, in one transaction (committed)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must carry a time zone")
    if tps_codes is None:
        tps = city_tps(session)
    else:
        tps = []
        for code in tps_codes:
            t = get_tps(session, code)
            if t is None:
                raise ledger.NotFound(f"TPS {code}")
            tps.append(t)
    ids_by_code = {t.code: t.id for t in tps}
    session.rollback()  # no transaction (nor SQLite's write lock) held while InfluxDB is read
    rows: list[dict[str, Any]] = []
    sensors = readings = 0
    now = datetime.now(UTC)
    codes = sorted(ids_by_code)
    for k in range(0, len(codes), REBUILD_CHUNK):
        chunk = codes[k : k + REBUILD_CHUNK]
        series = await fill_readings(influx, chunk, start - PICKUP_MARGIN, end + PICKUP_MARGIN)
        for (code, sensor), rs in sorted(series.items()):
            tps_id = ids_by_code.get(code)
            if tps_id is None:
                continue
            sensors += 1
            readings += len(rs)
            rows.extend(
                {
                    "tps_id": tps_id,
                    "sensor_id": sensor,
                    "at": p.at,
                    "fill_before": p.fill_before,
                    "fill_after": p.fill_after,
                    "detected_at": now,
                }
                for p in detect_pickups(rs)
                if start <= p.at < end
            )
        if progress is not None:
            progress(min(len(codes), k + REBUILD_CHUNK), len(codes))
    # One short write transaction. A watcher recording the same pickup meanwhile is harmless
    # (ON CONFLICT DO NOTHING: the row is there once).
    p = ledger.TpsPickup
    removed = 0
    ids = sorted(ids_by_code.values())
    for k in range(0, len(ids), 500):
        q = delete(p).where(p.tps_id.in_(ids[k : k + 500]), p.at >= start, p.at < end)
        removed += max(cast(CursorResult[Any], session.execute(q)).rowcount, 0)
    make = _INSERTS[session.get_bind().dialect.name]
    stmt = make(_PICKUP).on_conflict_do_nothing(
        index_elements=[_PICKUP.c.tps_id, _PICKUP.c.sensor_id, _PICKUP.c.at]
    )
    for k in range(0, len(rows), 10_000):
        session.execute(stmt, rows[k : k + 10_000])
    session.commit()
    return RebuildSummary(
        tps=len(tps), sensors=sensors, readings=readings, removed=removed, inserted=len(rows)
    )


async def tpa_bound_tonnes(
    session: Session, influx: Influx, city: ledger.City | str, start: datetime, end: datetime
) -> TpaEstimate:
    """The TPA-bound tonnage of ``city`` (a City or its code) over ``[start, end)`` (aware
    datetimes, e.g. local day bounds): Σ over the journal's pickups at its TPS of the TPS's
    current volume x fill before x density. TPS without any reading in the period are listed
    in ``tps_without_sensor_data`` (their waste is not counted: the estimate is a lower bound
    for them); only TPS without a pickup in the period are asked for (``LIMIT 1`` each)."""
    return await tpa_estimate(influx, tpa_journal(session, city, start, end))


@dataclass(frozen=True)
class TpaJournal:
    """What the ledger says for :func:`tpa_bound_tonnes`: each TPS's tonnes and pickups from
    the journal, and the TPS with no pickup (InfluxDB says whether they had readings)."""

    city: str
    start: datetime
    end: datetime
    per_tps_tonnes: dict[str, float]
    pickups: int
    quiet: list[str]


def tpa_journal(
    session: Session, city: ledger.City | str, start: datetime, end: datetime
) -> TpaJournal:
    """The ledger's half of :func:`tpa_bound_tonnes` (sync: the API runs it in a worker thread,
    then :func:`tpa_estimate` on its event loop)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must carry a time zone")
    if isinstance(city, str):
        found = session.scalar(select(ledger.City).where(ledger.City.code == city))
        if found is None:
            raise ledger.NotFound(f"city {city}")
        city = found
    tps = city_tps(session, city.id)
    totals = journal_totals(session, tps, start, end)
    return TpaJournal(
        city=city.code,
        start=start,
        end=end,
        per_tps_tonnes={
            t.code: (totals[t.code].mass_kg / 1000 if t.code in totals else 0.0) for t in tps
        },
        pickups=sum(x.pickups for x in totals.values()),
        quiet=[t.code for t in tps if t.code not in totals],
    )


async def tpa_estimate(influx: Influx, journal: TpaJournal) -> TpaEstimate:
    """InfluxDB's half of :func:`tpa_bound_tonnes`: which quiet TPS had readings."""
    quiet = journal.quiet
    seen = await tps_with_readings(influx, quiet, journal.start, journal.end) if quiet else set()
    return TpaEstimate(
        city=journal.city,
        start=journal.start,
        end=journal.end,
        tonnes=sum(journal.per_tps_tonnes.values()),
        pickups=journal.pickups,
        per_tps_tonnes=journal.per_tps_tonnes,
        tps_without_sensor_data=sorted(c for c in quiet if c not in seen),
    )


def local_days(items: Iterable[PickupMass], tz_name: str) -> list[tuple[date, int, float]]:
    """(local day, pickups, kg) per day in the city's zone."""
    zone = ZoneInfo(tz_name)
    days: dict[date, tuple[int, float]] = {}
    for p in items:
        d = p.at.astimezone(zone).date()
        n, kg = days.get(d, (0, 0.0))
        days[d] = (n + 1, kg + p.mass_kg)
    return [(d, n, kg) for d, (n, kg) in sorted(days.items())]


# ---- alerts in the ledger ---------------------------------------------------------------------


def active_alerts(session: Session, tps_ids: Iterable[int] | None = None) -> list[ledger.TpsAlert]:
    q = select(ledger.TpsAlert).where(ledger.TpsAlert.cleared_at.is_(None))
    if tps_ids is not None:
        q = q.where(ledger.TpsAlert.tps_id.in_(list(tps_ids)))
    return list(
        session.scalars(q.options(joinedload(ledger.TpsAlert.tps)).order_by(ledger.TpsAlert.id))
    )


def alerts(
    session: Session, tps_ids: Iterable[int] | None, since: datetime
) -> list[ledger.TpsAlert]:
    """Active alerts and those raised or cleared since ``since``, newest first."""
    a = ledger.TpsAlert
    q = select(a).where(or_(a.cleared_at.is_(None), a.raised_at >= since, a.cleared_at >= since))
    if tps_ids is not None:
        q = q.where(a.tps_id.in_(list(tps_ids)))
    return list(session.scalars(q.options(joinedload(a.tps)).order_by(a.raised_at.desc(), a.id)))


def alert_message(row: ledger.TpsAlert, state: Literal["raised", "cleared"]) -> TpsAlert:
    at = row.raised_at if state == "raised" else row.cleared_at
    assert at is not None
    return TpsAlert(
        alert_id=row.id,
        tps_code=row.tps.code,
        sensor_id=row.sensor_id,
        code=FILL_HIGH if row.code == FILL_HIGH else SENSOR_OFFLINE,
        state=state,
        value=row.raised_value if state == "raised" else row.cleared_value,
        threshold=row.threshold,
        raised_at=row.raised_at,
        cleared_at=row.cleared_at,
        at=at,
        message=row.message,
    )


def _latest_alert(session: Session, tps_id: int, sensor: str, code: str) -> ledger.TpsAlert | None:
    a = ledger.TpsAlert
    return session.scalar(
        select(a)
        .where(a.tps_id == tps_id, a.sensor_id == sensor, a.code == code)
        .order_by(a.id.desc())
        .limit(1)
    )


def _raise(
    session: Session,
    tps: ledger.Tps,
    sensor: str,
    code: str,
    at: datetime,
    value: float,
    threshold: float,
    message: str,
) -> ledger.TpsAlert | None:
    row = ledger.TpsAlert(
        tps_id=tps.id,
        sensor_id=sensor,
        code=code,
        raised_at=at,
        raised_value=value,
        threshold=threshold,
        message=message[:300],
    )
    row.tps = tps
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another watcher raised it first: it is raised, once
        return None
    return row


def apply_reading(
    session: Session, reading: FillReading, pickups: PickupUpdate | None = None
) -> list[TpsAlert]:
    """The alert transitions one reading causes: ``fill_high`` by hysteresis, and the clearing
    of ``sensor_offline``; and its ``pickups`` update; committed together. A reading of an
    unknown TPS changes nothing."""
    tps = get_tps(session, reading.tps_code)
    if tps is None or not tps.active:
        return []
    if pickups is not None:
        if pickups.forget is not None:
            lo, hi = pickups.forget
            gone = forget_pickups(session, tps.id, reading.sensor_id, lo, hi)
            back = record_pickups(session, tps.id, reading.sensor_id, pickups.found)
            if gone > back:
                log.info(
                    "pengangkutan dibatalkan oleh bacaan terlambat / pickup undone by a late "
                    "reading at %s/%s: %d",
                    tps.code,
                    reading.sensor_id,
                    gone - back,
                )
        else:
            record_pickups(session, tps.id, reading.sensor_id, pickups.found)
    at = reading.measured_at.astimezone(UTC)
    level = float(reading.fillingLevel)
    out: list[tuple[ledger.TpsAlert, Literal["raised", "cleared"]]] = []
    latest = _latest_alert(session, tps.id, reading.sensor_id, FILL_HIGH)
    last_change = None if latest is None else (latest.cleared_at or latest.raised_at)
    if last_change is None or at > last_change:
        active = latest is not None and latest.cleared_at is None
        step = fill_transition(active, level, tps.alert_raise_fill, tps.alert_clear_fill)
        if step == "raise":
            row = _raise(
                session,
                tps,
                reading.sensor_id,
                FILL_HIGH,
                at,
                level,
                tps.alert_raise_fill,
                f"kontainer hampir penuh / container nearly full: {level:.0%} "
                f"(≥ {tps.alert_raise_fill:.0%}) at {tps.code}/{reading.sensor_id}",
            )
            if row is not None:
                out.append((row, "raised"))
        elif step == "clear" and latest is not None:
            latest.cleared_at = at
            latest.cleared_value = level
            out.append((latest, "cleared"))
    offline = _latest_alert(session, tps.id, reading.sensor_id, SENSOR_OFFLINE)
    fresh = datetime.now(UTC) - at <= timedelta(minutes=tps.offline_after_min)
    if offline is not None and offline.cleared_at is None and fresh:
        offline.cleared_at = max(at, offline.raised_at)
        offline.cleared_value = 0.0
        out.append((offline, "cleared"))
    session.commit()
    return [alert_message(row, state) for row, state in out]


def apply_offline(
    session: Session, seen: dict[SeriesKey, datetime], now: datetime
) -> list[TpsAlert]:
    """Raise ``sensor_offline`` for every sensor of a registered TPS not heard from for its
    ``offline_after_min``; committed."""
    registry = {t.code: t for t in city_tps(session)}
    out: list[TpsAlert] = []
    for (code, sensor), last in sorted(seen.items()):
        tps = registry.get(code)
        if tps is None:
            continue
        quiet = now - last
        if quiet <= timedelta(minutes=tps.offline_after_min):
            continue
        latest = _latest_alert(session, tps.id, sensor, SENSOR_OFFLINE)
        if latest is not None and (latest.cleared_at is None or latest.raised_at > last):
            continue  # raised already for this silence (since ``last``)
        minutes = quiet / timedelta(minutes=1)
        row = _raise(
            session,
            tps,
            sensor,
            SENSOR_OFFLINE,
            now,
            round(minutes, 1),
            float(tps.offline_after_min),
            f"sensor tidak mengirim / sensor silent for {minutes:.0f} min "
            f"(> {tps.offline_after_min}) at {code}/{sensor}",
        )
        if row is not None:
            out.append(alert_message(row, "raised"))
    session.commit()
    return out


def unpublished(session: Session) -> list[tuple[TpsAlert, int]]:
    """Transitions whose MQTT publish did not complete, oldest first: (message, row id)."""
    a = ledger.TpsAlert
    rows = session.scalars(
        select(a)
        .where(
            or_(
                a.raised_published.is_(False),
                a.cleared_at.is_not(None) & a.cleared_published.is_(False),
            )
        )
        .options(joinedload(a.tps))
        .order_by(a.id)
    )
    out: list[tuple[TpsAlert, int]] = []
    for row in rows:
        if not row.raised_published:
            out.append((alert_message(row, "raised"), row.id))
        if row.cleared_at is not None and not row.cleared_published:
            out.append((alert_message(row, "cleared"), row.id))
    return out


def mark_published(session: Session, alert_id: int, state: Literal["raised", "cleared"]) -> None:
    row = session.get(ledger.TpsAlert, alert_id)
    if row is not None:
        if state == "raised":
            row.raised_published = True
        else:
            row.cleared_published = True
        session.commit()


# ---- the watcher ------------------------------------------------------------------------------


class TpsWatchSettings(WastebankSettings):
    """Settings of ``wastebank tps watch``."""

    broker_user: ClassVar[str | None] = "tps"
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    ledger_url: str = Field(default_factory=default_ledger_url)
    client_id: str = Field(
        default="tps-watch",
        pattern=r"^[A-Za-z0-9_.@-]{1,64}$",
        description="its persistent MQTT session: '{username}@{client_id}'",
    )
    check_interval_s: float = Field(
        default=60.0, gt=0, le=3600, description="seconds between offline checks"
    )


class TpsWatcher:
    """Subscribes to fill readings (persistent session, QoS 1), evaluates alerts per reading
    and offline sensors every ``check_interval_s``, records transitions in the ledger and
    publishes them; keeps a :class:`PickupWindow` per sensor (``windows``, primed from InfluxDB
    on start) and records the pickups it finds in the journal with the reading's alert effects.
    ``processed`` counts acknowledged readings (the tests await it)."""

    def __init__(self, settings: TpsWatchSettings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.topics = Topics(settings.mqtt.topic_prefix)
        self.seen: dict[SeriesKey, datetime] = {}
        self.windows: dict[SeriesKey, PickupWindow] = {}
        self.processed = 0
        self.published = 0
        self.too_late = 0  # readings older than their sensor's window: not used for pickups
        self._unprimed = False  # InfluxDB could not be read on start
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()  # one ledger step + publish at a time

    async def seed_last_seen(self) -> None:
        """Each sensor's last time (offline alerts) and its pickup window: the readings of the
        ``WINDOW`` before it, run through the rule once (pickups confirmed by readings the
        watcher missed are recorded; those recorded before are not again)."""
        influx = Influx(self.settings.influx)
        try:
            last = await last_seen(influx)
            for key, at in last.items():
                self.seen[key] = max(at, self.seen.get(key, at))
            primed = await prime_windows(influx, last)
        except InfluxError as exc:
            log.warning("InfluxDB: waktu terakhir sensor tak terbaca / last seen unknown: %s", exc)
            self._unprimed = True  # every window may miss earlier readings
            return
        finally:
            await influx.aclose()
        for key, window in primed.items():
            mine = self.windows.setdefault(key, PickupWindow(truncated=True))
            for r in window:
                mine.add(r)
        await asyncio.to_thread(self._record_primed)

    def _record_primed(self) -> None:
        with self._session() as session:
            registry = {t.code: t for t in city_tps(session)}
            new = 0
            for (code, sensor), window in sorted(self.windows.items()):
                t = registry.get(code)
                if t is not None:
                    new += record_pickups(session, t.id, sensor, window.pickups())
            session.commit()
        if new:
            log.info("pengangkutan dari InfluxDB / pickups found on start: %d", new)

    def _pickup_update(self, reading: FillReading) -> PickupUpdate | None:
        """Put ``reading`` in its sensor's window; the journal update it implies."""
        key = (reading.tps_code, reading.sensor_id)
        window = self.windows.setdefault(key, PickupWindow(truncated=self._unprimed))
        at = reading.measured_at.astimezone(UTC)
        update = window.update(Reading(at, float(reading.fillingLevel)))
        if update is None:
            self.too_late += 1
            log.warning(
                "bacaan lebih tua dari jendela / reading older than the window, not used for "
                "pickups (wastebank tps rebuild-pickups): %s/%s at %s",
                reading.tps_code,
                reading.sensor_id,
                at.isoformat(),
            )
        return update

    def _session(self) -> Session:
        return Session(self.engine)

    def _apply(self, reading: FillReading, pickups: PickupUpdate | None) -> list[TpsAlert]:
        with self._session() as session:
            return apply_reading(session, reading, pickups)

    def _offline(self, now: datetime) -> list[TpsAlert]:
        with self._session() as session:
            return apply_offline(session, dict(self.seen), now)

    def _unpublished(self) -> list[tuple[TpsAlert, int]]:
        with self._session() as session:
            return unpublished(session)

    def _mark(self, alert_id: int, state: Literal["raised", "cleared"]) -> None:
        with self._session() as session:
            mark_published(session, alert_id, state)

    async def _publish(self, client: aiomqtt.Client, messages: Sequence[TpsAlert]) -> None:
        for m in messages:
            payload = m.model_dump_json()
            await client.publish(
                self.topics.tps_alert_state(m.tps_code, m.sensor_id, m.code),
                payload,
                qos=1,
                retain=True,
            )
            await client.publish(self.topics.tps_alert_event(m.tps_code), payload, qos=1)
            await asyncio.to_thread(self._mark, m.alert_id, m.state)
            self.published += 1
            log.info("peringatan TPS / TPS alert %s %s: %s", m.code, m.state, m.message)

    async def check_offline(self, now: datetime | None = None) -> list[TpsAlert]:
        async with self._lock:
            made = await asyncio.to_thread(self._offline, now or datetime.now(UTC))
            if self._client is not None:
                with contextlib.suppress(aiomqtt.MqttError):
                    await self._publish(self._client, made)
        return made

    async def _offline_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.check_interval_s)
            await self.check_offline()

    async def _on_message(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        payload = message.payload
        raw = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
        try:
            check_size(raw)
            reading = FillReading.model_validate_json(raw)
        except (ValidationError, PayloadTooLarge) as exc:
            log.warning("bacaan ditolak / reading refused on %s: %s", message.topic, exc)
            reading = None
        if reading is not None:
            key = (reading.tps_code, reading.sensor_id)
            at = reading.measured_at.astimezone(UTC)
            self.seen[key] = max(at, self.seen.get(key, at))
            async with self._lock:
                update = self._pickup_update(reading)
                made = await asyncio.to_thread(self._apply, reading, update)
                await self._publish(client, made)
        if message.qos > 0:
            client._client.ack(message.mid, message.qos)  # noqa: SLF001 - after the commit
        self.processed += 1

    async def run(self, ready: asyncio.Event | None = None) -> None:
        await self.seed_last_seen()
        s = self.settings
        attempt, lost = 0, False
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._offline_loop(), name="tps-watch.offline")
            while True:
                client = mqtt.client(s.mqtt, identifier=s.client_id, persistent=True)
                client._client.manual_ack_set(True)  # noqa: SLF001 - ack after the ledger
                try:
                    async with client:
                        await client.subscribe(self.topics.fill_filter, qos=1)
                        self._client = client
                        async with self._lock:
                            left = await asyncio.to_thread(self._unpublished)
                            for m, _id in left:
                                await self._publish(client, [m])
                        log.info(
                            "pemantau TPS %s / TPS watcher %s to %s",
                            "tersambung kembali" if lost else "berlangganan",
                            "reconnected" if lost else "subscribed",
                            self.topics.fill_filter,
                        )
                        attempt, lost = 0, False
                        if ready is not None:
                            ready.set()
                        async for message in client.messages:
                            await self._on_message(client, message)
                except aiomqtt.MqttError as exc:
                    self._client = None
                    if not lost:
                        log.warning("broker terputus / broker lost: %s", exc)
                    lost = True
                    attempt += 1
                    await asyncio.sleep(mqtt.backoff(attempt))


async def run(settings: TpsWatchSettings, *, ready: asyncio.Event | None = None) -> None:
    engine = ledger.make_engine(settings.ledger_url)
    try:
        await TpsWatcher(settings, engine).run(ready)
    finally:
        engine.dispose()
