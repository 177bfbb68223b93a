"""The fleet as one caller sees it: the stored reports and the sites from the ledger, each
sensor's latest fill reading from InfluxDB, put together by :func:`wastebank.fleet.view.build`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from wastebank import ledger, tps
from wastebank.fleet.store import DeviceReport
from wastebank.fleet.view import (
    DeviceKind,
    Fleet,
    FleetSettings,
    Inputs,
    SensorAlert,
    Site,
    Stored,
    build,
    removed_key,
)
from wastebank.influx import Influx, InfluxError

log = logging.getLogger("wastebank.fleet")


def gather(
    session: Session,
    city_id: int | None,
    *,
    default_timezone: str,
    broker_run_dir: Path | None = None,
) -> Inputs:
    """The ledger's part: every stored report, the banks and TPS of ``city_id`` (None: every
    city, and devices of sites the ledger does not know too: an admin's view), and the TPS's
    active alerts; with the devices removed from the broker's registry when its files are in
    ``broker_run_dir``."""
    city = select(ledger.City.code, ledger.City.timezone, ledger.City.id)
    zones = {cid: zone for _code, zone, cid in session.execute(city)}
    bank_query = select(ledger.Bank.code, ledger.Bank.name, ledger.Bank.city_id)
    if city_id is not None:
        bank_query = bank_query.where(ledger.Bank.city_id == city_id)
    banks = {code: Site(code, name, zones[cid]) for code, name, cid in session.execute(bank_query)}
    tps_rows = tps.city_tps(session, city_id)
    sites = {t.code: Site(t.code, t.name, t.city.timezone, t.offline_after_min) for t in tps_rows}
    alerts = [
        SensorAlert(a.tps.code, a.sensor_id, a.code, a.raised_at, a.raised_value)
        for a in tps.active_alerts(session, [t.id for t in tps_rows])
    ]
    reports = [
        Stored.parse(
            "gateway" if r.device_type == "gateway" else "fill_sensor",
            r.site,
            r.device_id,
            r.status,
            r.status_received_at,
            r.health,
            r.health_received_at,
        )
        for r in session.scalars(select(DeviceReport).order_by(DeviceReport.id))
    ]
    return Inputs(
        reports=reports,
        banks=banks,
        tps=sites,
        sensor_alerts=alerts,
        all_sites=city_id is None,
        default_timezone=default_timezone,
        removed=removed_devices(broker_run_dir),
    )


def removed_devices(broker_run_dir: Path | None) -> frozenset[tuple[DeviceKind, str, str]]:
    """The devices `wastebank device remove` took out of the registry (none without the
    broker's files; an unreadable registry is logged and removes none)."""
    if broker_run_dir is None:
        return frozenset()
    from wastebank import devices  # the broker's files: only where they are (cryptography)

    registry = devices.Registry(devices.broker_auth_files(broker_run_dir))
    try:
        gone = registry.removed()
    except devices.DeviceError as exc:
        log.warning("registri perangkat tak terbaca / device registry unreadable: %s", exc)
        return frozenset()
    return frozenset(removed_key(r.kind, r.site, r.device_id) for r in gone)


async def last_readings(influx: Influx) -> dict[tuple[str, str], datetime] | None:
    """Each (TPS, sensor)'s latest fill reading; None when InfluxDB cannot be read (logged:
    the fleet then says the readings are unknown)."""
    try:
        return await tps.last_seen(influx)
    except InfluxError as exc:
        log.warning("pembacaan sensor tak terbaca / fill readings unreadable: %s", exc)
        return None


async def load(
    engine: Engine,
    influx: Influx,
    settings: FleetSettings,
    city_id: int | None,
    *,
    default_timezone: str,
    broker_run_dir: Path | None = None,
    now: datetime | None = None,
) -> Fleet:
    """The whole fleet for a caller (``city_id`` None: an admin). The ledger is read in this
    thread: call it from a worker thread's event loop or the CLI, or use :func:`gather` in a
    thread and :func:`last_readings` on the loop, as the API does."""
    with Session(engine) as session:
        inputs = gather(
            session, city_id, default_timezone=default_timezone, broker_run_dir=broker_run_dir
        )
    inputs.last_readings = await last_readings(influx)
    return build(inputs, now or datetime.now(UTC), settings)
