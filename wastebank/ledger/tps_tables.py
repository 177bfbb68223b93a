"""The TPS tables (waste collection points): the registry, its alerts and its pickups, read and
written by :mod:`wastebank.tps`; on the ledger's :class:`~wastebank.ledger.models.Base` so they
are in the ledger's database, its migrations and its backups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from wastebank.ledger.models import Base, City, Kelurahan, UtcDateTime, utcnow


class Tps(Base):
    """A TPS (tempat penampungan sementara): containers a fill sensor looks into.

    ``code`` is the ``tps_code`` of its fill readings. Masses are estimated as container volume x
    fill ratio x bulk density (docs/methods.md §6: about 200-300 kg/m3 for
    loose MSW in TPS containers, never 1,000); ``density_source`` says where the density came
    from (a default, a study, a weighbridge calibration) and ``density_calibrated_at`` when it
    was set. Alerts: ``fill_high`` raised at ``alert_raise_fill`` and cleared at
    ``alert_clear_fill`` (hysteresis), ``sensor_offline`` after ``offline_after_min`` minutes
    without a reading.
    """

    __tablename__ = "tps"
    __table_args__ = (
        CheckConstraint("container_volume_m3 > 0", name="ck_tps_volume_positive"),
        CheckConstraint("container_count >= 1", name="ck_tps_container_count"),
        CheckConstraint("density_kg_m3 > 0", name="ck_tps_density_positive"),
        CheckConstraint("alert_clear_fill < alert_raise_fill", name="ck_tps_alert_hysteresis"),
        CheckConstraint("offline_after_min > 0", name="ck_tps_offline_after"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    city_id: Mapped[int] = mapped_column(ForeignKey("city.id"), index=True)
    kelurahan_id: Mapped[int | None] = mapped_column(ForeignKey("kelurahan.id"), nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    container_volume_m3: Mapped[float] = mapped_column(Float, doc="one container's volume")
    container_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    density_kg_m3: Mapped[float] = mapped_column(Float)
    density_source: Mapped[str] = mapped_column(String(300))
    density_calibrated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    alert_raise_fill: Mapped[float] = mapped_column(Float, default=0.8, server_default="0.8")
    alert_clear_fill: Mapped[float] = mapped_column(Float, default=0.6, server_default="0.6")
    offline_after_min: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    city: Mapped[City] = relationship()
    kelurahan: Mapped[Kelurahan | None] = relationship()


class TpsAlert(Base):
    """One alert of one TPS sensor: raised once, cleared once (``cleared_at`` None: active).

    At most one active alert per (TPS, sensor, code): a partial unique index on PostgreSQL and
    SQLite alike. ``raised_published`` / ``cleared_published`` say whether the transition's MQTT
    event was acknowledged by the broker; the watcher publishes what is left on (re)connect.
    """

    __tablename__ = "tps_alert"
    __table_args__ = (
        Index(
            "uq_tps_alert_active",
            "tps_id",
            "sensor_id",
            "code",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
        Index("ix_tps_alert_raised_at", "raised_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tps_id: Mapped[int] = mapped_column(ForeignKey("tps.id"), index=True)
    sensor_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32))
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    raised_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    cleared_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    message: Mapped[str] = mapped_column(String(300), default="")
    raised_published: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    cleared_published: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    tps: Mapped[Tps] = relationship()


class TpsPickup(Base):
    """One pickup (a container emptied) detected from a TPS sensor's fill readings: the journal
    the TPA-bound tonnage reads (wastebank/tps/, migration 0008).

    The detection's facts only, never a mass: ``at`` (the first low reading), ``fill_before``
    (median of the readings just before the drop) and ``fill_after`` (median of the persisting
    low readings). The mass is computed when read, from the TPS's current container volume and
    bulk density, so a recalibrated density applies to past pickups too. Unique per (TPS,
    sensor, time): the watcher inserts with ON CONFLICT DO NOTHING, so a redelivered reading or
    a restart never counts a pickup twice; ``wastebank tps rebuild-pickups`` replaces a range.
    """

    __tablename__ = "tps_pickup"
    __table_args__ = (
        UniqueConstraint("tps_id", "sensor_id", "at"),
        Index("ix_tps_pickup_tps_id_at", "tps_id", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tps_id: Mapped[int] = mapped_column(ForeignKey("tps.id"))
    sensor_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    fill_before: Mapped[float] = mapped_column(Float)
    fill_after: Mapped[float] = mapped_column(Float)
    detected_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
