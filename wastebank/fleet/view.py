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
  then a clock not synchronized, then ok. Within one condition: more
  problems first, gateways before sensors, then by site and id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

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


class FleetSettings(Settings, kw_only=True):
    """``[fleet]`` (``WASTEBANK_FLEET__*``) of the API's settings, read by the fleet page, GET
    /api/fleet and ``wastebank fleet``."""

    offline_after_s: Annotated[
        float,
        Meta(
            gt=0,
            le=7 * 86400,
            description="a gateway heard from no longer than this is offline: keep it at about "
            "three of its health reports (the gateway's health_interval_s, default 30 s)",
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
    OK = "ok"


RANKING: tuple[Condition, ...] = (Condition.OFFLINE, Condition.FAULT, Condition.CLOCK, Condition.OK)
"""The order of the fleet: the broken ones first."""

FAULT_STATES: frozenset[str] = frozenset(
    {"overload", "underload", "indicator_error", "disconnected", "zero_drift", "undetected"}
)
"""Scale states that are a fault ("ok" and "unsettled", a load being put on, are not)."""

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
    offline: bool, problems: Sequence[Problem], clock_synchronized: bool | None
) -> Condition:
    if offline:
        return Condition.OFFLINE
    if problems:
        return Condition.FAULT
    if clock_synchronized is False:
        return Condition.CLOCK
    return Condition.OK


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
    removed: frozenset[tuple[DeviceKind, str, str]] = frozenset()
    """(kind, site, device id) of the devices removed from the broker's registry: left out,
    with the sensors a removed gateway's report lists."""


def removed_key(registry_kind: str, site: str, device_id: str) -> tuple[DeviceKind, str, str]:
    """A registry entry's device as the fleet names it (the registry says "sensor")."""
    return ("gateway" if registry_kind == "gateway" else "fill_sensor", site, device_id)


def build(inputs: Inputs, now: datetime, settings: FleetSettings) -> Fleet:
    """The fleet at ``now``, ranked (the module's docstring)."""
    if inputs.removed:
        kept = [
            r for r in inputs.reports if (r.device_type, r.site, r.device_id) not in inputs.removed
        ]
        inputs = replace(inputs, reports=kept)
    devices = [
        _gateway(r, inputs, now, settings)
        for r in inputs.reports
        if r.device_type == "gateway" and (inputs.all_sites or r.site in inputs.banks)
    ]
    devices += _sensors(inputs, now, settings)
    devices.sort(key=sort_key)
    counts = Counter(d.condition for d in devices)
    return Fleet(
        generated_at=now,
        offline_after_s=settings.offline_after_s,
        readings_known=inputs.last_readings is not None,
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
    **details: object,
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
        reason is not None, problems, clock.synchronized if isinstance(clock, ClockRow) else None
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
            "offline_after_s": limit,
            "last_seen": last_seen,
            "status": status.state if status else None,
            "version": status.version if status else None,
            "problems": problems,
            **details,
        }
    )


def _gateway(r: Stored, inputs: Inputs, now: datetime, settings: FleetSettings) -> FleetDevice:
    h = r.health
    details: dict[str, object] = {}
    problems: list[Problem] = []
    if h is not None:
        problems = [
            Problem(code=a.code, subject=a.subject, since=a.since, value=a.value) for a in h.active
        ]
        said = {(p.code, p.subject) for p in problems}
        for sc in h.scales:
            state = sc.state or (None if sc.connected else "disconnected")
            if (
                state in FAULT_STATES
                and (_SAME_AS_ALERT.get(state, state), sc.scale_id) not in said
            ):
                problems.append(Problem(code=state, subject=sc.scale_id, since=sc.state_since))
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
        **details,
    )


def _sensors(inputs: Inputs, now: datetime, settings: FleetSettings) -> list[FleetDevice]:
    """Every sensor heard of: by its own status, in a gateway's health report, or by its fill
    readings."""
    own = {(r.site, r.device_id): r for r in inputs.reports if r.device_type == "fill_sensor"}
    served: dict[tuple[str, str], tuple[str, SensorHealth, datetime]] = {}
    for r in inputs.reports:
        if r.device_type == "gateway" and r.health is not None:
            for s in r.health.sensors:
                served.setdefault((s.tps_code, s.sensor_id), (r.device_id, s, r.health.at))
    readings = inputs.last_readings or {}
    alerts: dict[tuple[str, str], list[Problem]] = {}
    for a in inputs.sensor_alerts:
        alerts.setdefault((a.tps, a.sensor_id), []).append(
            Problem(code=a.code, subject=a.sensor_id, since=a.since, value=a.value)
        )
    out: list[FleetDevice] = []
    for tps, sensor in sorted(set(own) | set(served) | set(readings) | set(alerts)):
        site = inputs.tps.get(tps)
        if ("fill_sensor", tps, sensor) in inputs.removed:
            continue
        if site is None and not inputs.all_sites:
            continue
        stored = own.get((tps, sensor))
        via, health, reported_at = served.get((tps, sensor), (None, None, None))
        problems = list(alerts.get((tps, sensor), []))
        if health is not None and health.connected is False:
            problems.append(Problem(code="disconnected", subject=sensor))
        if health is not None and _no_target_long(health, reported_at, settings):
            problems.append(Problem(code="no_target", subject=sensor, since=health.no_target_since))
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
                    stored.status_received_at if stored else None, readings.get((tps, sensor))
                ),
                judge_silence=inputs.last_readings is not None,
                problems=problems,
                via=via,
                no_target=health.no_target if health else None,
                no_target_since=health.no_target_since if health else None,
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


# ---- words --------------------------------------------------------------------------------------

CONDITION_TEXTS: dict[Condition, tuple[str, str, str]] = {
    Condition.OFFLINE: ("⛔", "LURING", "OFFLINE"),
    Condition.FAULT: ("⚠", "GANGGUAN", "FAULT"),
    Condition.CLOCK: ("🕓", "JAM BELUM SINKRON", "CLOCK NOT SYNCED"),
    Condition.OK: ("✓", "BAIK", "OK"),
}
"""A condition's mark and words: the page and the CLI say it in text, never by colour alone."""

TEXTS: dict[str, tuple[str, str]] = {
    # problems: gateway alert codes (messages.AlertCode), scale states, TPS alert codes
    "overload": ("beban berlebih", "overload"),
    "underload": ("di bawah nol", "underload"),
    "indicator_error": ("galat indikator", "indicator error"),
    "disconnected": ("terputus", "disconnected"),
    "zero_drift": ("titik nol bergeser", "zero drift"),
    "undetected": ("protokol belum dikenali", "protocol not detected yet"),
    "scale_offline": ("timbangan tidak terhubung", "scale offline"),
    "outbox_dropped": ("outbox membuang data", "outbox dropped rows"),
    "publish_refused": ("broker menolak kiriman", "broker refused publishes"),
    "fill_high": ("TPS hampir penuh", "TPS nearly full"),
    "sensor_offline": ("sensor tidak terdengar", "sensor silent"),
    "no_target": ("tidak ada target", "no target"),
    "unreadable_report": ("laporan tersimpan tak terbaca", "stored report unreadable"),
    # scale states that are not problems
    "ok": ("normal", "normal"),
    "unsettled": ("belum stabil", "unsettled"),
    # why offline
    "status": ("status: luring", "status: offline"),
    "silent": ("tidak terdengar", "silent"),
    "never": ("belum pernah terdengar", "never heard"),
    "unknown": ("tidak diketahui", "unknown"),
    # the words of a device's description
    "gateway": ("Gateway", "Gateway"),
    "fill_sensor": ("Sensor TPS", "TPS sensor"),
    "via": ("lewat", "via"),
    "not_registered": ("tidak terdaftar", "not registered"),
    "last_seen": ("Terakhir terdengar", "Last seen"),
    "why_offline": ("Sebab luring", "Why offline"),
    "version": ("Versi", "Version"),
    "outbox": ("Outbox", "Outbox"),
    "clock": ("Jam", "Clock"),
    "scales": ("Timbangan", "Scales"),
    "no_target_count": ("Bingkai tanpa target", "No-target frames"),
    "since_gateway_start": ("sejak gateway mulai", "since the gateway started"),
    "all_no_target_since": ("semuanya tanpa target sejak", "every one since"),
    "problems": ("Masalah aktif", "Active problems"),
    "ago": ("lalu", "ago"),
    "queued": ("antre", "queued"),
    "oldest": ("tertua", "oldest"),
    "synced": ("tersinkron", "synchronized"),
    "not_synced": ("belum sinkron", "not synchronized"),
    "offset": ("selisih", "offset"),
    "since": ("sejak", "since"),
}


def say(code: str, lang: Lang) -> str:
    return formats.bilingual(code, lang, TEXTS)


def condition_text(c: Condition, lang: Lang) -> str:
    mark, id_, en = CONDITION_TEXTS[c]
    return f"{mark} {formats.in_lang((id_, en), lang)}"


def duration(seconds: float | None, lang: Lang) -> str:
    """``45 dtk``, ``12 mnt``, ``3 jam 5 mnt``, ``2 hari 4 jam`` (``45 s``, ``3 h 5 min`` in
    English); ``tidak diketahui`` / ``unknown`` for None."""
    if seconds is None:
        return say("unknown", lang)
    s = max(0, int(seconds))
    units = (("hari", "d", 86400), ("jam", "h", 3600), ("mnt", "min", 60), ("dtk", "s", 1))
    for i, (id_, en, size) in enumerate(units):
        if s >= size or size == 1:
            text = f"{s // size} {formats.in_lang((id_, en), lang)}"
            if i + 1 < len(units):
                next_id, next_en, next_size = units[i + 1]
                if rest := (s % size) // next_size:
                    text += f" {rest} {formats.in_lang((next_id, next_en), lang)}"
            return text
    raise AssertionError("unreachable: the last unit is one second")


def problems_text(problems: Iterable[Problem], lang: Lang) -> list[str]:
    """Each problem as one phrase: ``beban berlebih: scale-01``."""
    return [say(p.code, lang) + (f": {p.subject}" if p.subject else "") for p in problems]


@dataclass(frozen=True)
class Described:
    """A device in words, for the page and ``wastebank fleet``: times in its site's zone."""

    condition: str
    last_seen: str
    why_offline: str | None
    version: str
    outbox: str | None  # gateways only
    clock: str | None  # gateways only
    scales: list[tuple[str, str, bool]]  # (scale, its state and since, a fault)
    problems: list[str]
    no_target: str | None = None  # sensors a gateway reports


def describe(d: FleetDevice, now: datetime, lang: Lang) -> Described:
    tz = ZoneInfo(d.timezone)
    unknown = say("unknown", lang)

    def when(at: datetime | None) -> str:
        return unknown if at is None else formats.tanggal_waktu(at, tz, lang)

    def since(at: datetime | None) -> str:
        return f" ({say('since', lang)} {when(at)})" if at is not None else ""

    last_seen = unknown
    if d.last_seen is not None:
        gap = duration((now - d.last_seen).total_seconds(), lang)
        last_seen = f"{when(d.last_seen)} ({gap} {say('ago', lang)})"
    return Described(
        condition=condition_text(d.condition, lang),
        last_seen=last_seen,
        why_offline=say(d.offline_reason, lang) if d.offline_reason else None,
        version=d.version or unknown,
        outbox=_outbox_text(d, lang) if d.kind == "gateway" else None,
        clock=_clock_text(d.clock, lang) if d.kind == "gateway" else None,
        scales=[
            (sc.scale_id, say(sc.state or "unknown", lang) + since(sc.since), _faulty(sc))
            for sc in d.scales
        ],
        problems=[
            text + since(p.since)
            for text, p in zip(problems_text(d.problems, lang), d.problems, strict=True)
        ],
        no_target=None if d.no_target is None else _no_target_text(d, when, lang),
    )


def _no_target_text(d: FleetDevice, when: Callable[[datetime | None], str], lang: Lang) -> str:
    text = f"{formats.thousands(d.no_target or 0)} {say('since_gateway_start', lang)}"
    if d.no_target_since is not None:
        text += f"; {say('all_no_target_since', lang)} {when(d.no_target_since)}"
    return text


def _faulty(sc: ScaleRow) -> bool:
    return (sc.state or ("disconnected" if not sc.connected else "")) in FAULT_STATES


def _outbox_text(d: FleetDevice, lang: Lang) -> str:
    if d.outbox_depth is None:
        return say("unknown", lang)
    text = f"{formats.thousands(d.outbox_depth)} {say('queued', lang)}"
    if d.outbox_oldest_age_s is not None:
        text += f", {say('oldest', lang)} {duration(d.outbox_oldest_age_s, lang)}"
    return text


def _clock_text(clock: ClockRow | None, lang: Lang) -> str:
    if clock is None or clock.synchronized is None:
        text = say("unknown", lang)
    else:
        text = say("synced" if clock.synchronized else "not_synced", lang)
    if clock is not None and clock.source != "unknown":
        text += f" ({clock.source})"
    if clock is not None and clock.offset_ms is not None:
        text += f", {say('offset', lang)} {formats.thousands(clock.offset_ms)} ms"
    return text
