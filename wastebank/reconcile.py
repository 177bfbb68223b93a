"""The ledger against InfluxDB: the same deposits, counted the same, day by day.

(Skeleton: the model is here so that migration 0009 can create its table; the comparison, the
rebuild and the daily run are written in this module.)
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wastebank.ledger import Base, UtcDateTime, utcnow


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
