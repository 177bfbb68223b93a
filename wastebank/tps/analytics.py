"""TPS analytics, pure (no I/O; the tests compute their results by hand): pickups detected in a
sensor's fill readings, at once (:func:`detect_pickups`) or incrementally (:class:`PickupWindow`);
the fill rate and when a container is full; a pickup's mass, a density from a weighbridge, the
diversion rate; the alert's hysteresis."""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

FULL = 1.0
"""The fill ratio a prediction aims at: the container is full (FIWARE ``fillingLevel`` 1)."""
Reliability = Literal["high", "medium", "low"]


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
    """diverted / (diverted + TPA-bound); None when nothing was observed going to the TPA
    (TPA-bound zero: no TPS reported, or no pickup), where the banks' tonnage over itself
    would read 100 %."""
    if tpa_bound_t <= 0:
        return None
    return diverted_t / (diverted_t + tpa_bound_t)


def fill_transition(
    active: bool, level: float, raise_at: float, clear_at: float
) -> Literal["raise", "clear"] | None:
    """Hysteresis: raise at level >= ``raise_at``, clear at level <= ``clear_at``."""
    if not active and level >= raise_at:
        return "raise"
    if active and level <= clear_at:
        return "clear"
    return None
