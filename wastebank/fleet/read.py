"""The fleet as one caller sees it: the stored reports and the sites from the ledger, each
sensor's latest fill reading from InfluxDB, put together by :func:`wastebank.fleet.view.build`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    active alerts; with what the broker's registry says (the devices removed, the sensors each
    gateway serves) when its files are in ``broker_run_dir``."""
    city = select(ledger.City.code, ledger.City.timezone, ledger.City.id)
    cities = {cid: (code, zone) for code, zone, cid in session.execute(city)}
    bank_query = select(ledger.Bank.code, ledger.Bank.name, ledger.Bank.city_id)
    every_bank = {
        code: (cid, Site(code, name, cities[cid][1], city=cities[cid][0]))
        for code, name, cid in session.execute(bank_query)
    }
    banks = {c: b for c, (cid, b) in every_bank.items() if city_id in (None, cid)}
    others = {c: b for c, (cid, b) in every_bank.items() if c not in banks}
    tps_rows = tps.city_tps(session, city_id)
    sites = {
        t.code: Site(t.code, t.name, t.city.timezone, t.offline_after_min, t.city.code)
        for t in tps_rows
    }
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
    known = registry_facts(broker_run_dir)
    return Inputs(
        reports=reports,
        banks=banks,
        tps=sites,
        sensor_alerts=alerts,
        all_sites=city_id is None,
        default_timezone=default_timezone,
        removed=known.removed,
        serves=known.serves,
        other_banks=others,
        registry_problem=known.problem,
    )


def ledger_has_sites(engine: Engine) -> bool:
    """Whether the ledger has a bank or a TPS: one with neither is not the city's (another
    checkout's, or a URL left unset beside the demo), and an empty fleet from it is no "all
    ok" (``wastebank fleet`` says so, docs/fleet.md)."""
    with Session(engine) as session:
        bank = session.scalar(select(ledger.Bank.id).limit(1))
        return bank is not None or session.scalar(select(ledger.Tps.id).limit(1)) is not None


@dataclass(frozen=True)
class RegistryFacts:
    """What the fleet takes from the broker's registry (docs/fleet.md)."""

    removed: Mapping[tuple[DeviceKind, str, str], datetime] = field(default_factory=dict)
    serves: Mapping[tuple[str, str], frozenset[tuple[str, str]]] | None = None
    """None: the registry was not read (``problem`` says why)."""
    problem: str | None = None


NOT_SET = "WASTEBANK_PAGES__BROKER_RUN_DIR belum diatur / not set: the device registry is not read"


_warned: set[str] = set()


def _warn_once(problem: str) -> None:
    """Log a registry problem once per process: the fleet is built on every page load and
    the page says it each time (to admins), so the log need not."""
    if problem not in _warned:
        _warned.add(problem)
        log.warning("%s", problem)


def registry_facts(broker_run_dir: Path | None) -> RegistryFacts:
    """The devices `wastebank device remove` took out of the registry and the sensors each
    gateway serves, from the registry :func:`wastebank.devices.registry_run_dir` finds from
    ``broker_run_dir``. Not set: nothing known; a directory without a registry or an
    unreadable registry is logged: removes nothing, checks no serving, and says why."""
    if broker_run_dir is None:
        return RegistryFacts(problem=NOT_SET)
    from wastebank import devices  # the broker's files: only where they are (cryptography)

    try:
        run_dir = devices.registry_run_dir(broker_run_dir)
        if run_dir is None:
            problem = (
                f"registri perangkat tidak ditemukan / device registry not found: {broker_run_dir}"
            )
            _warn_once(problem)
            return RegistryFacts(problem=problem)
        registry = devices.Registry(devices.broker_auth_files(run_dir))
        gone, listed = registry.removed(), registry.devices()
    except devices.DeviceError as exc:
        problem = f"registri perangkat tak terbaca / device registry unreadable: {exc}"
        _warn_once(problem)
        return RegistryFacts(problem=problem)
    return RegistryFacts(
        removed={removed_key(r.kind, r.site, r.device_id): r.removed_at for r in gone},
        serves={(d.site, d.device_id): frozenset(d.serves) for d in listed if d.kind == "gateway"},
    )


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
