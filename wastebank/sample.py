"""A sample history for the demo city, for the page tests and `make screenshots`: months of scale
deposits by every demo member (through the ledger's own ``apply_deposits``, as the ingester
writes them) and recent fill readings of the demo TPS in InfluxDB.

Deterministic for a given ``now`` and ``seed``, so screenshots and tests see the same figures.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from wastebank import ledger, tps
from wastebank.config import InfluxSettings
from wastebank.influx import Influx, fill_line
from wastebank.messages import DepositEvent, FillReading
from wastebank.seed import SeedSummary

FIRST_PRICED = datetime(2026, 1, 1, tzinfo=UTC)  # the demo city's prices apply from 2026-01-01
# Typical deposits (grams) per category: a bag of bottles, a bundle of cardboard, ...
TYPICAL_G = {
    "pet": (800, 4000),
    "gelas-pp": (300, 2000),
    "kardus": (1500, 9000),
    "kertas-hvs": (500, 5000),
    "kaleng": (300, 2500),
    "aluminium": (100, 1200),
}


def deposit_history(
    ledger_url: str,
    summary: SeedSummary,
    *,
    now: datetime | None = None,
    months: int = 6,
    per_member_per_month: int = 4,
    seed: int = 2026,
) -> tuple[int, int]:
    """Scale deposits by each demo member over the last ``months`` months (none before the
    prices begin); (deposits, grams)."""
    rng = random.Random(seed)
    end = (now or datetime.now(UTC)).replace(microsecond=0) - timedelta(hours=2)
    start = max(end - timedelta(days=30 * months), FIRST_PRICED + timedelta(days=1))
    span = (end - start).total_seconds()
    events: list[DepositEvent] = []
    seq = 0
    # gateways of their own: the demo's live gateways (gw-01, ...) number their events from 1
    gateways = {bank: f"gw-sample-{n:02d}" for n, bank in enumerate(summary.banks, start=1)}
    for member_no, cards in summary.members.items():
        bank = summary.member_banks[member_no]
        for _ in range(per_member_per_month * months):
            seq += 1
            category = rng.choice(list(TYPICAL_G))
            lo, hi = TYPICAL_G[category]
            events.append(
                DepositEvent(
                    event_id=f"{gateways[bank]}-{seq}",
                    gateway_id=gateways[bank],
                    seq=seq,
                    bank_code=bank,
                    scale_id="scale-01",
                    card_uid=cards[0],
                    category_code=category,
                    net_g=rng.randint(lo, hi),
                    stable=True,
                    protocol="gs_nt",
                    measured_at=start + timedelta(seconds=rng.uniform(0, span)),
                    raw_frames=[],
                )
            )
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as session:
            results = ledger.apply_deposits(session, events)
            session.commit()
    finally:
        engine.dispose()
    applied = [ev for ev, r in zip(events, results, strict=True) if not isinstance(r, Exception)]
    return len(applied), sum(ev.net_g for ev in applied)


async def fill_history(
    influx_settings: InfluxSettings,
    *,
    ledger_url: str | None = None,
    now: datetime | None = None,
    hours: int = 12,
    seed: int = 2026,
) -> int:
    """Fill readings every 15 minutes for the demo TPS's sensors over the last ``hours``: the
    market TPS filling past its alert level, the other one half full. With ``ledger_url``, the
    alerts they raise too (as `wastebank tps watch` would). Returns the count."""
    rng = random.Random(seed)
    end = (now or datetime.now(UTC)).replace(microsecond=0) - timedelta(minutes=2)
    # (TPS, sensor, first and last fill, hours since its last reading): us-03, the second
    # container at Benteng, went silent three hours ago (offline after 30 min)
    sensors = [
        ("tps-batu-merah", "us-01", 0.30, 0.86, 0),
        ("tps-benteng", "us-02", 0.20, 0.48, 0),
        ("tps-benteng", "us-03", 0.10, 0.35, 3),
    ]
    readings: list[FillReading] = []
    steps = hours * 4
    for tps_code, sensor, first, last, silent_h in sensors:
        for i in range(steps + 1):
            level = first + (last - first) * i / steps + rng.uniform(-0.01, 0.01)
            level = min(max(level, 0.0), 1.0)
            readings.append(
                FillReading(
                    reading_id=f"{sensor}-{i + 1}",
                    sensor_id=sensor,
                    seq=i + 1,
                    tps_code=tps_code,
                    measured_at=end - timedelta(hours=silent_h, minutes=15 * (steps - i)),
                    distance_mm=round(1400 - level * 1150),
                    fillingLevel=round(level, 3),
                )
            )
    influx = Influx(influx_settings)
    try:
        await influx.ensure_database()
        await influx.write([fill_line(r) for r in readings])
    finally:
        await influx.aclose()
    if ledger_url is not None:
        engine = ledger.make_engine(ledger_url)
        try:
            with Session(engine) as session:
                for r in sorted(readings, key=lambda r: r.measured_at):
                    tps.apply_reading(session, r)
                    session.commit()  # a reading at a time, as the watcher records them
        finally:
            engine.dispose()
    return len(readings)
