"""What a TPS's containers are doing now (fill, offline, last emptied, when full), and the pickups
in a period detected from the readings with their estimated mass."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from wastebank import ledger
from wastebank.influx import Influx
from wastebank.tps.analytics import (
    FillRate,
    PickupRule,
    Prediction,
    Reading,
    detect_pickups,
    fill_rate,
    pickup_mass_kg,
    predict_full,
    since_last_emptied,
)
from wastebank.tps.readings import PICKUP_MARGIN, fill_readings

DEFAULT_RULE = PickupRule()


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
    rule: PickupRule = DEFAULT_RULE,
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


def local_days(items: Iterable[PickupMass], tz_name: str) -> list[tuple[date, int, float]]:
    """(local day, pickups, kg) per day in the city's zone."""
    zone = ZoneInfo(tz_name)
    days: dict[date, tuple[int, float]] = {}
    for p in items:
        d = p.at.astimezone(zone).date()
        n, kg = days.get(d, (0, 0.0))
        days[d] = (n + 1, kg + p.mass_kg)
    return [(d, n, kg) for d, (n, kg) in sorted(days.items())]
