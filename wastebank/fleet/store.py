"""Each device's latest retained reports in the ledger: what the fleet page is built from.

A gateway publishes its health (``GatewayHealth``) and its presence (``GatewayStatus``: online,
or the broker's "offline" will) retained; a TPS fill sensor on MQTT publishes its presence. The
ingester that takes ``health`` keeps the latest of each per device in ``device_report``, one row
per (device type, site, device id), the payload as received (it was validated on the way in).

Which report is the latest: the broker sends every retained message again on each subscription
and QoS 1 may deliver one twice, so a report identical to the stored one changes nothing (its
``received_at`` stays the first time it was heard: the fleet's "last seen"). Within one process
of the device (same ``boot``) a health report is newer when its ``uptime_s`` is larger (its wall
clock may step, back too, at its first time sync). A status carries nothing monotonic, and one
device's statuses come in the order it sent them (one topic, one connection at a time): so a
status saying another state than the stored one wins as it arrives, whatever its ``at`` says (a
clean ``offline`` stamped after the clock stepped back is not lost), and one saying the same
state with an earlier ``at`` is a late copy (a QoS 1 redelivery) and kept out. A report of
another process (another ``boot``) replaces the row as it arrives. A report kept out is logged
and counted (:class:`Kept`), never silent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Integer, String, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from wastebank.ledger import Base, UtcDateTime
from wastebank.messages import GatewayHealth, GatewayStatus
from wastebank.structs import Invalid, decode_json

log = logging.getLogger("wastebank.fleet")

DeviceType = Literal["gateway", "fill_sensor"]


class DeviceReport(Base):
    """One device's latest health report and presence, as the ingester last heard them."""

    __tablename__ = "device_report"
    __table_args__ = (UniqueConstraint("device_type", "site", "device_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_type: Mapped[str] = mapped_column(String(16), doc="'gateway' or 'fill_sensor'")
    site: Mapped[str] = mapped_column(String(64), doc="the bank's or the TPS's code")
    device_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(Text, nullable=True, doc="GatewayStatus JSON")
    status_received_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    health: Mapped[str | None] = mapped_column(Text, nullable=True, doc="GatewayHealth JSON")
    health_received_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


@dataclass(frozen=True)
class Heard:
    """A health report or a status the ingester took, with its topic's identity."""

    device_type: DeviceType
    site: str
    device_id: str
    message: GatewayHealth | GatewayStatus
    payload: bytes

    @property
    def key(self) -> tuple[str, str, str]:
        return self.device_type, self.site, self.device_id


@dataclass(frozen=True)
class Kept:
    """What :func:`keep_latest` did with the reports it was given."""

    changed: int
    """Reports that replaced a row's (or made a new row)."""
    late: int
    """Reports kept out as older than the stored one (logged each; the ingester's
    ``reports_late``); a report identical to the stored one is neither."""


def keep_latest(session: Session, heard: Sequence[Heard], now: datetime) -> Kept:
    """Keep each device's latest report of each kind (in the caller's transaction; nothing is
    committed here). Devices are taken in key order, so two ingesters lock rows in the same
    order."""
    by_key: dict[tuple[str, str, str], list[Heard]] = {}
    for h in heard:
        by_key.setdefault(h.key, []).append(h)
    changed = late = 0
    for key in sorted(by_key):
        row = _row(session, *key)
        for h in by_key[key]:
            text = h.payload.decode()
            if isinstance(h.message, GatewayHealth):
                newer = _newer_health(row.health, text, h.message)
                if newer:
                    row.health, row.health_received_at = text, now
            else:
                newer = _newer_status(row.status, text, h.message)
                if newer:
                    row.status, row.status_received_at = text, now
            if newer:
                changed += 1
            elif newer is None:
                late += 1
                log.warning(
                    "laporan terlambat tidak dipakai / late report kept out: %s %s/%s %s "
                    "(lebih tua dari yang tersimpan / older than the stored one)",
                    *key,
                    h.message.kind,
                )
    session.flush()
    return Kept(changed, late)


def _row(session: Session, device_type: str, site: str, device_id: str) -> DeviceReport:
    """The device's row, locked (PostgreSQL), made if it is new. Two ingesters making it at
    once: one insert wins, the other finds it."""
    query = (
        select(DeviceReport)
        .where(
            DeviceReport.device_type == device_type,
            DeviceReport.site == site,
            DeviceReport.device_id == device_id,
        )
        .with_for_update()
    )
    row = session.scalar(query)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = DeviceReport(device_type=device_type, site=site, device_id=device_id)
            session.add(row)
    except IntegrityError:
        row = session.scalar(query)
        assert row is not None  # the other writer's, committed
    return row


def _newer_health(stored: str | None, text: str, new: GatewayHealth) -> bool | None:
    """True: ``new`` replaces ``stored``; False: the same report; None: an older one (late)."""
    if stored is None:
        return True
    if stored == text:
        return False
    try:
        old = decode_json(stored, GatewayHealth)
    except Invalid:
        return True
    if old.boot is not None and old.boot == new.boot:
        # uptime orders one run's reports (its wall clock may step); within one whole second
        # of uptime (a fault's report right after the periodic one), the later `at`
        return (new.uptime_s, new.at) > (old.uptime_s, old.at) or None
    if old.boot is None and new.boot is None:
        return new.at > old.at or None
    return True


def _newer_status(stored: str | None, text: str, new: GatewayStatus) -> bool | None:
    """As :func:`_newer_health`: True, False (the same status), None (a late copy)."""
    if stored is None:
        return True
    if stored == text:
        return False
    try:
        old = decode_json(stored, GatewayStatus)
    except Invalid:
        return True
    if old.boot is not None and old.boot == new.boot and old.state == new.state:
        if old.at is not None and new.at is not None and new.at < old.at:
            return None
    return True
