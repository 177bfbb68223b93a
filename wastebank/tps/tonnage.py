"""The TPA-bound tonnage of a city over a period: Σ over the journal's pickups at its TPS of the
TPS's current container volume x fill before x bulk density (an estimate, a lower bound for TPS
without readings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.influx import Influx
from wastebank.tps.pickup_journal import journal_totals
from wastebank.tps.readings import tps_with_readings
from wastebank.tps.registry import city_tps

TPA_METHOD = (
    "Σ over detected pickups of container volume (m³) × fill ratio before the drop × bulk density "
    "(kg/m³) of the TPS (ledger `tps`; the density in force now, from its source or weighbridge "
    "calibration); pickups are drops of the fill sensor's level (wastebank/tps)"
)


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
