"""The fleet: every gateway and TPS fill sensor, what state it is in, the broken ones first.

The rules live here, once, for the page (/armada), the JSON route (GET /api/fleet) and
``wastebank fleet`` (docs/fleet.md says what each means and what to do):

* **offline** (:func:`offline_reason`): the latest thing heard of the device is its retained
  status saying "offline" (its clean stop, or the broker's will when its link died), or nothing
  new has been heard for longer than the device's silence limit (:func:`silence_limit`): a
  gateway's is ``[fleet] offline_after_s`` (default 90 s: three of the gateway's default 30 s
  health reports); a TPS sensor's is its TPS's ``offline_after_min``, the limit the TPS
  watcher's ``sensor_offline`` alert uses (``[fleet] sensor_offline_after_s`` for a sensor of a
  TPS not in the registry);
* **the ranking** (:data:`RANKING`, :func:`condition_of`): offline, then a fault (an active
  alert, a scale overloaded, under zero, in error, disconnected, drifted or not detected, a
  sensor disconnected, a sensor that has seen no target for ``[fleet] no_target_after_s``),
  then a clock not synchronized since boot, then unknown (a sensor whose serving gateway is
  offline), then ok. Within one condition: more problems first, gateways before sensors, then
  by site and id;
* **which gateway speaks for a sensor** (:func:`speaks_for`): the registry's ``serves`` when
  the fleet has the registry; without it, a gateway of a bank in the ledger, in the TPS's city.
  A sensor listed by a gateway that does not serve it is a problem of that gateway
  (``unserved_sensor``), never a sensor of the fleet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, get_args

import msgspec
from msgspec import Meta
from pydantic import BaseModel, Field

from wastebank import formats
from wastebank.config import Settings
from wastebank.messages import GatewayHealth, GatewayStatus, ScaleState, SensorHealth
from wastebank.structs import Invalid, decode_json

Lang = formats.Lang
DeviceKind = Literal["gateway", "fill_sensor"]
OfflineReason = Literal["status", "silent", "never"]
UnknownReason = Literal["via_offline"]
REMOVAL_MARGIN = timedelta(minutes=1)
"""A removed sensor heard this long after its removal is still publishing (a reading's time is
the sensor's clock, a removal's the server's, to the second): listed, not left out."""


class FleetSettings(Settings, kw_only=True):
    """``[fleet]`` (``WASTEBANK_FLEET__*``) of the API's settings, read by the fleet page, GET
    /api/fleet and ``wastebank fleet``."""

    offline_after_s: Annotated[
        float,
        Meta(
            ge=10,
            le=7 * 86400,
            description="a gateway heard from no longer than this is offline (at least 10 s): "
            "keep it at about three of its health reports (the gateway's health_interval_s, "
            "default 30 s, at most 60)",
        ),
    ] = 90.0
    sensor_offline_after_s: Annotated[
        float,
        Meta(
            gt=0,
            le=30 * 86400,
            description="the same for a fill sensor of a TPS not in the registry (a registered "
            "TPS's sensors use its offline_after_min, as the TPS watcher does)",
        ),
    ] = 3600.0
    no_target_after_s: Annotated[
        float,
        Meta(
            gt=0,
            le=7 * 86400,
            description="a fill sensor whose every frame has said 'no target' for at least this "
            "long (its gateway's no_target_since to the report's time) is a fault: mounting, a "
            "fallen sensor, a bin removed",
        ),
    ] = 900.0


class Condition(StrEnum):
    OFFLINE = "offline"
    FAULT = "fault"
    CLOCK = "clock"
    UNKNOWN = "unknown"
    OK = "ok"


RANKING: tuple[Condition, ...] = (
    Condition.OFFLINE,
    Condition.FAULT,
    Condition.CLOCK,
    Condition.UNKNOWN,
    Condition.OK,
)
"""The order of the fleet: the broken ones first."""

FAULT_STATES: frozenset[str] = frozenset(get_args(ScaleState)) - {"ok", "unsettled"}
"""Scale states that are a fault: every one but "ok" and "unsettled" (a load being put on)."""

_SAME_AS_ALERT = {"disconnected": "scale_offline"}  # a state and the alert that says it too


# ---- what the fleet shows -----------------------------------------------------------------------


class Problem(BaseModel):
    """One thing wrong with a device: an active alert or a faulty state."""

    code: str
    subject: str | None = None
    since: datetime | None = None
    value: float | None = None


class ScaleRow(BaseModel):
    scale_id: str
    state: ScaleState | None = Field(description="None: an older gateway, which does not say")
    since: datetime | None
    protocol: str
    connected: bool


class ClockRow(BaseModel):
    synchronized: bool | None = Field(description="None: the gateway cannot tell")
    source: str
    offset_ms: int | None
    synced_at: datetime | None


class FleetDevice(BaseModel):
    kind: DeviceKind
    site: str = Field(description="the bank's code (gateway) or the TPS's (sensor)")
    site_name: str | None = Field(description="None: a site the ledger does not know")
    timezone: str = Field(description="the site's city's zone (times are shown in it)")
    device_id: str
    via: str | None = Field(default=None, description="the gateway that serves this sensor")
    no_target: int | None = Field(
        default=None,
        description="a sensor's frames saying 'no target' since its gateway started (None: no "
        "gateway reports the sensor)",
    )
    no_target_since: datetime | None = Field(
        default=None,
        description="since when every frame of the sensor has said 'no target' (its gateway's "
        "clock); None while it reads distances",
    )
    condition: Condition
    rank: int = Field(description="its condition's place in the ranking, 0 first")
    offline_reason: OfflineReason | None = None
    unknown_reason: UnknownReason | None = Field(
        default=None,
        description="via_offline: a sensor whose serving gateway is offline (its state is not "
        "known: that gateway's last report is old news)",
    )
    offline_after_s: float = Field(description="its silence limit")
    last_seen: datetime | None = Field(description="when something new was last heard of it")
    status: Literal["online", "offline"] | None = None
    version: str | None = None
    uptime_s: int | None = None
    outbox_depth: int | None = None
    outbox_oldest_age_s: int | None = None
    clock: ClockRow | None = None
    scales: list[ScaleRow] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)
    health_at: datetime | None = Field(default=None, description="its latest health report's")


class Fleet(BaseModel):
    generated_at: datetime
    offline_after_s: float
    readings_known: bool = Field(
        description="false: InfluxDB could not be read, so the sensors' last readings are "
        "unknown and a sensor is offline only when its status says so"
    )
    serving_checked: bool = Field(
        description="true: which gateway serves which sensor is the device registry's "
        "(its serves); false: the registry is not read, a gateway of a bank in the ledger "
        "speaks for the sensors of its city's TPS"
    )
    registry_problem: str | None = Field(
        default=None,
        description="admins only: why the device registry was not read (not set, not found at "
        "the path, unreadable)",
    )
    counts: dict[Condition, int]
    devices: list[FleetDevice]


# ---- the rules ----------------------------------------------------------------------------------


def offline_reason(
    status: str | None,
    status_received_at: datetime | None,
    last_seen: datetime | None,
    now: datetime,
    limit: timedelta,
) -> OfflineReason | None:
    """Why a device is offline, or None when it is not (the module's docstring)."""
    if status == "offline" and status_received_at is not None:
        if last_seen is None or status_received_at >= last_seen:
            return "status"
    if last_seen is None:
        return "never"
    if now - last_seen > limit:
        return "silent"
    return None


def condition_of(
    offline: bool,
    problems: Sequence[Problem],
    clock_synchronized: bool | None,
    unknown: bool = False,
) -> Condition:
    """``clock_synchronized``: since boot (:func:`synced_this_boot`); ``unknown``: its state
    cannot be known (a sensor behind an offline gateway)."""
    if offline:
        return Condition.OFFLINE
    if problems:
        return Condition.FAULT
    if clock_synchronized is False:
        return Condition.CLOCK
    if unknown:
        return Condition.UNKNOWN
    return Condition.OK


def synced_this_boot(clock: ClockRow | None) -> bool | None:
    """Whether the gateway's clock has been synchronized since it booted: its events are
    stamped ``clock_synced=false`` only until then. A clock that synced (``synced_at``) and
    whose time source is lost later is still synchronized this boot; None: it cannot tell."""
    if clock is None:
        return None
    if clock.synced_at is not None:
        return True
    return clock.synchronized


def sort_key(d: FleetDevice) -> tuple[int, int, int, str, str]:
    return (d.rank, -len(d.problems), 0 if d.kind == "gateway" else 1, d.site, d.device_id)


def silence_limit(kind: DeviceKind, tps_offline_after_min: int | None, s: FleetSettings) -> float:
    """A device's silence limit in seconds (the module's docstring)."""
    if kind == "gateway":
        return s.offline_after_s
    if tps_offline_after_min is not None:
        return tps_offline_after_min * 60.0
    return s.sensor_offline_after_s


# ---- from the stored reports to the fleet -------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """A bank or TPS as the ledger knows it."""

    code: str
    name: str
    timezone: str
    offline_after_min: int | None = None  # a TPS's
    city: str = ""  # its city's code: a gateway speaks for the sensors of its city's TPS


@dataclass(frozen=True)
class Stored:
    """One ``device_report`` row, read: its reports parsed (None: none, or unreadable)."""

    device_type: DeviceKind
    site: str
    device_id: str
    status: GatewayStatus | None
    status_received_at: datetime | None
    health: GatewayHealth | None
    health_received_at: datetime | None
    unreadable: bool = False

    @classmethod
    def parse(
        cls,
        device_type: DeviceKind,
        site: str,
        device_id: str,
        status: str | None,
        status_received_at: datetime | None,
        health: str | None,
        health_received_at: datetime | None,
    ) -> Stored:
        """A stored payload that no longer reads (a model changed since) is ``unreadable``,
        shown as a problem rather than dropped."""
        unreadable = False
        parsed_status: GatewayStatus | None = None
        parsed_health: GatewayHealth | None = None
        try:
            parsed_status = decode_json(status, GatewayStatus) if status else None
        except Invalid:
            unreadable = True
        try:
            parsed_health = decode_json(health, GatewayHealth) if health else None
        except Invalid:
            unreadable = True
        return cls(
            device_type,
            site,
            device_id,
            parsed_status,
            status_received_at,
            parsed_health,
            health_received_at,
            unreadable,
        )


@dataclass(frozen=True)
class SensorAlert:
    """An active TPS alert (``tps_alert``) of one sensor."""

    tps: str
    sensor_id: str
    code: str
    since: datetime
    value: float | None


@dataclass
class Inputs:
    """What the fleet is built from: the stored reports, the sites the caller sees, the active
    TPS alerts, and each sensor's latest fill reading (None: InfluxDB could not be read)."""

    reports: list[Stored]
    banks: Mapping[str, Site]
    tps: Mapping[str, Site]
    sensor_alerts: list[SensorAlert] = field(default_factory=list)
    last_readings: Mapping[tuple[str, str], datetime] | None = None
    all_sites: bool = False
    """True (an admin): devices of sites the ledger does not know are shown too."""
    default_timezone: str = "Asia/Jakarta"
    removed: Mapping[tuple[DeviceKind, str, str], datetime] = field(default_factory=dict)
    """(kind, site, device id) of the devices removed from the broker's registry, and when:
    left out, with the sensors a removed gateway's report lists; a removed sensor whose own
    readings or status still come after its removal is listed, with ``removed_but_heard``."""
    serves: Mapping[tuple[str, str], frozenset[tuple[str, str]]] | None = None
    """(bank, gateway) -> the (TPS, sensor) it serves, from the broker's registry; None: the
    registry is not read (serving unchecked: :func:`speaks_for`)."""
    other_banks: Mapping[str, Site] = field(default_factory=dict)
    """The ledger's banks the caller does not see (a DLH login: other cities'): a gateway of
    one may serve this city's sensor when the registry says so."""
    registry_problem: str | None = None
    """Why the registry was not read, for an admin (:attr:`Fleet.registry_problem`)."""


def removed_key(registry_kind: str, site: str, device_id: str) -> tuple[DeviceKind, str, str]:
    """A registry entry's device as the fleet names it (the registry says "sensor")."""
    return ("gateway" if registry_kind == "gateway" else "fill_sensor", site, device_id)


def speaks_for(inputs: Inputs, bank: str, gateway: str, tps: str, sensor: str) -> bool:
    """Whether the health report of ``gateway`` (of ``bank``) may say how a sensor is.

    Never a gateway of a bank the ledger does not know (it is hidden from DLH staff, so it names
    no sensor to them). With the broker's registry, the sensors it ``serves`` (as the broker's
    ACL lets it publish their fill readings); without it, any sensor of a TPS in its bank's city
    (not checked against the registry: :attr:`Fleet.serving_checked`)."""
    bank_site = inputs.banks.get(bank) or inputs.other_banks.get(bank)
    if bank_site is None:
        return False
    if inputs.serves is not None:
        return (tps, sensor) in inputs.serves.get((bank, gateway), frozenset())
    tps_site = inputs.tps.get(tps)
    return tps_site is not None and tps_site.city == bank_site.city


@dataclass(frozen=True)
class _Served:
    """A sensor as the gateway that serves it last reported it."""

    gateway: Stored
    health: SensorHealth
    reported_at: datetime  # the report's own time (the gateway's clock)
    heard_at: datetime | None  # when the ingester first heard that report (the server's clock)


def _served(inputs: Inputs) -> tuple[dict[tuple[str, str], _Served], dict[str, list[Problem]]]:
    """Each sensor's serving gateway's latest word on it (of two gateways serving one sensor,
    the report heard last), and per gateway the sensors it lists without serving them."""
    served: dict[tuple[str, str], _Served] = {}
    unserved: dict[str, list[Problem]] = {}
    for r in inputs.reports:
        if r.device_type != "gateway" or r.health is None:
            continue
        for s in r.health.sensors:
            if not speaks_for(inputs, r.site, r.device_id, s.tps_code, s.sensor_id):
                unserved.setdefault(_gateway_key(r), []).append(
                    Problem(code="unserved_sensor", subject=f"{s.tps_code}/{s.sensor_id}")
                )
                continue
            new = _Served(r, s, r.health.at, r.health_received_at)
            old = served.get((s.tps_code, s.sensor_id))
            if old is None or _heard_order(new) > _heard_order(old):
                served[(s.tps_code, s.sensor_id)] = new
    return served, unserved


def _heard_order(s: _Served) -> tuple[datetime, datetime]:
    """Which of two reports is the latest: heard later by the ingester (one clock for every
    gateway), then the later report."""
    return (s.heard_at or datetime.min.replace(tzinfo=s.reported_at.tzinfo), s.reported_at)


def _gateway_key(r: Stored) -> str:
    return f"{r.site}/{r.device_id}"


def build(inputs: Inputs, now: datetime, settings: FleetSettings) -> Fleet:
    """The fleet at ``now``, ranked (the module's docstring)."""
    if inputs.removed:
        kept = [
            r for r in inputs.reports if (r.device_type, r.site, r.device_id) not in inputs.removed
        ]
        inputs = replace(inputs, reports=kept)
    served, unserved = _served(inputs)
    gateways = {
        _gateway_key(r): _gateway(r, inputs, now, settings, unserved.get(_gateway_key(r), []))
        for r in inputs.reports
        if r.device_type == "gateway"
    }
    devices = [
        gateways[_gateway_key(r)]
        for r in inputs.reports
        if r.device_type == "gateway" and (inputs.all_sites or r.site in inputs.banks)
    ]
    devices += _sensors(inputs, now, settings, served, gateways)
    devices.sort(key=sort_key)
    counts = Counter(d.condition for d in devices)
    return Fleet(
        generated_at=now,
        offline_after_s=settings.offline_after_s,
        readings_known=inputs.last_readings is not None,
        serving_checked=inputs.serves is not None,
        registry_problem=inputs.registry_problem if inputs.all_sites else None,
        counts={c: counts.get(c, 0) for c in RANKING},
        devices=devices,
    )


def _latest(*times: datetime | None) -> datetime | None:
    return max((t for t in times if t is not None), default=None)


def _device(
    kind: DeviceKind,
    site_code: str,
    site: Site | None,
    device_id: str,
    *,
    inputs: Inputs,
    now: datetime,
    settings: FleetSettings,
    stored: Stored | None,
    last_seen: datetime | None,
    judge_silence: bool,
    problems: list[Problem],
    unknown_reason: UnknownReason | None = None,
    details: Mapping[str, object],
) -> FleetDevice:
    limit = silence_limit(kind, site.offline_after_min if site else None, settings)
    status = stored.status if stored else None
    status_at = stored.status_received_at if stored else None
    reason = offline_reason(
        status.state if status else None,
        status_at,
        last_seen,
        now,
        timedelta(seconds=limit),
    )
    if reason in ("silent", "never") and not judge_silence:
        reason = None
    if stored is not None and stored.unreadable:
        problems.append(Problem(code="unreadable_report"))
    clock = details.get("clock")
    condition = condition_of(
        reason is not None,
        problems,
        synced_this_boot(clock if isinstance(clock, ClockRow) else None),
        unknown_reason is not None,
    )
    return FleetDevice.model_validate(
        {
            "kind": kind,
            "site": site_code,
            "site_name": site.name if site else None,
            "timezone": site.timezone if site else inputs.default_timezone,
            "device_id": device_id,
            "condition": condition,
            "rank": RANKING.index(condition),
            "offline_reason": reason,
            "unknown_reason": unknown_reason if condition is Condition.UNKNOWN else None,
            "offline_after_s": limit,
            "last_seen": last_seen,
            "status": status.state if status else None,
            "version": status.version if status else None,
            "problems": problems,
            **details,
        }
    )


def _gateway(
    r: Stored,
    inputs: Inputs,
    now: datetime,
    settings: FleetSettings,
    unserved: list[Problem],
) -> FleetDevice:
    h = r.health
    details: dict[str, object] = {}
    problems: list[Problem] = []
    if h is not None:
        # The gateway says scale_offline for any serial port it lost, a TPS sensor's too: for a
        # sensor that is the sensor's "disconnected", not a scale.
        sensors = {s.sensor_id for s in h.sensors}
        problems = [
            Problem(
                code="disconnected"
                if a.code == "scale_offline" and a.subject in sensors
                else a.code,
                subject=a.subject,
                since=a.since,
                value=a.value,
            )
            for a in h.active
        ]
        said = {(p.code, p.subject) for p in problems}
        for sc in h.scales:
            state = sc.state or (None if sc.connected else "disconnected")
            if (
                state in FAULT_STATES
                and (_SAME_AS_ALERT.get(state, state), sc.scale_id) not in said
            ):
                problems.append(Problem(code=state, subject=sc.scale_id, since=sc.state_since))
        problems += unserved
        details = {
            "uptime_s": h.uptime_s,
            "outbox_depth": h.outbox_depth,
            "outbox_oldest_age_s": h.outbox_oldest_age_s,
            "clock": ClockRow(**msgspec.structs.asdict(h.clock)) if h.clock else None,
            "scales": [
                ScaleRow(
                    scale_id=sc.scale_id,
                    state=sc.state,
                    since=sc.state_since,
                    protocol=sc.protocol,
                    connected=sc.connected,
                )
                for sc in h.scales
            ],
            "health_at": h.at,
        }
        if h.version:  # newer than the status's (sent once a connection)
            details["version"] = h.version
    return _device(
        "gateway",
        r.site,
        inputs.banks.get(r.site),
        r.device_id,
        inputs=inputs,
        now=now,
        settings=settings,
        stored=r,
        last_seen=_latest(r.health_received_at, r.status_received_at),
        judge_silence=True,
        problems=problems,
        details=details,
    )


def _served_problems(by: _Served, sensor: str, settings: FleetSettings) -> list[Problem]:
    """What the serving gateway's last report says is wrong with ``sensor``."""
    problems = []
    if by.health.connected is False:
        # the gateway does not say since when: at least since this report
        problems.append(Problem(code="disconnected", subject=sensor, since=by.reported_at))
    if _no_target_long(by.health, by.reported_at, settings):
        problems.append(Problem(code="no_target", subject=sensor, since=by.health.no_target_since))
    return problems


def _sensors(
    inputs: Inputs,
    now: datetime,
    settings: FleetSettings,
    served: Mapping[tuple[str, str], _Served],
    gateways: Mapping[str, FleetDevice],
) -> list[FleetDevice]:
    """Every sensor heard of: by its own status, in its serving gateway's health report, or by
    its fill readings."""
    own = {(r.site, r.device_id): r for r in inputs.reports if r.device_type == "fill_sensor"}
    readings = inputs.last_readings or {}
    alerts: dict[tuple[str, str], list[Problem]] = {}
    for a in inputs.sensor_alerts:
        alerts.setdefault((a.tps, a.sensor_id), []).append(
            Problem(code=a.code, subject=a.sensor_id, since=a.since, value=a.value)
        )
    out: list[FleetDevice] = []
    for tps, sensor in sorted(set(own) | set(served) | set(readings) | set(alerts)):
        site = inputs.tps.get(tps)
        if site is None and not inputs.all_sites:
            continue
        stored = own.get((tps, sensor))
        own_seen = _latest(
            stored.status_received_at if stored else None, readings.get((tps, sensor))
        )
        problems = list(alerts.get((tps, sensor), []))
        removed_at = inputs.removed.get(("fill_sensor", tps, sensor))
        if removed_at is not None:
            if own_seen is None or own_seen <= removed_at + REMOVAL_MARGIN:
                continue
            # Removed, yet its own readings or status still come (another identity publishes
            # them): listed, never silently left out.
            problems.append(Problem(code="removed_but_heard", subject=sensor, since=removed_at))
        by = served.get((tps, sensor))
        health = by.health if by else None
        seen_via: datetime | None = None
        unknown: UnknownReason | None = None
        if by is not None:
            problems += _served_problems(by, sensor, settings)
            if by.health.connected is True:
                seen_via = by.heard_at  # its port open, frames coming: heard of at that report
            limit = silence_limit("fill_sensor", site.offline_after_min if site else None, settings)
            heard_itself = own_seen is not None and (now - own_seen).total_seconds() <= limit
            if (
                gateways[_gateway_key(by.gateway)].condition is Condition.OFFLINE
                and not heard_itself
            ):
                # its state is that gateway's old news, unless it is heard on its own
                # (an MQTT sensor's readings): then those say how it is
                unknown = "via_offline"
        out.append(
            _device(
                "fill_sensor",
                tps,
                site,
                sensor,
                inputs=inputs,
                now=now,
                settings=settings,
                stored=stored,
                last_seen=_latest(
                    stored.status_received_at if stored else None,
                    readings.get((tps, sensor)),
                    seen_via,
                ),
                judge_silence=inputs.last_readings is not None,
                problems=problems,
                unknown_reason=unknown,
                details={
                    "via": by.gateway.device_id if by else None,
                    "no_target": health.no_target if health else None,
                    "no_target_since": health.no_target_since if health else None,
                },
            )
        )
    return out


def _no_target_long(
    health: SensorHealth, reported_at: datetime | None, settings: FleetSettings
) -> bool:
    """Every frame has said "no target" for at least ``no_target_after_s``, measured on the
    gateway's own clock (its report's time), so its offset does not matter."""
    since = health.no_target_since
    if since is None or reported_at is None:
        return False
    return (reported_at - since).total_seconds() >= settings.no_target_after_s
