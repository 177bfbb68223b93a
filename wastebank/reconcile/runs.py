"""The record of each comparison (``reconciliation_run``) and the daily run inside an ingester
that takes deposits: the last days compared every ``interval_s``, the ``influx_drift`` alert raised
while they disagree and cleared by the first run that finds them equal."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import date, datetime, timedelta

from sqlalchemy import Boolean, Date, Engine, Integer, String, Text, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column

from wastebank.config import InfluxSettings
from wastebank.influx import Influx, InfluxError
from wastebank.ledger import Base, UtcDateTime, utcnow
from wastebank.reconcile.drift import Drift, ledger_zones, local_today, reconcile

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


DETAIL_MAX = 100
"""Differences kept in a run's ``detail`` and an alert's detail."""


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

    zones = await asyncio.to_thread(ledger_zones, engine)
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
