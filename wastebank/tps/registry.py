"""The TPS registry in the ledger: a TPS by code, a city's active TPS, a density calibrated."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from wastebank import ledger


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
    session.flush()
    return tps
