"""The MQTT messages that gateway, ingest and the simulators share: one definition each.

docs/protocol.md is the human contract; this module is the machine one. Every payload is JSON;
the messages are msgspec Structs, read with :func:`wastebank.structs.decode_json` at the edge
and, where our code builds one, checked with :func:`wastebank.structs.checked` before it is
stored or sent (msgspec checks constraints when it decodes, not in ``__init__``). Weights are
integer grams, money is integer Rupiah, and every timestamp carries a time zone.

Topics (``prefix`` is empty in production; tests use it to isolate themselves)::

    {prefix}wb/v1/{bank}/gateway/{gateway}/deposit     QoS 1, not retained   DepositEvent
    {prefix}wb/v1/{bank}/gateway/{gateway}/status      QoS 1, retained       GatewayStatus
    {prefix}wb/v1/{bank}/gateway/{gateway}/health      QoS 1, retained       GatewayHealth
    {prefix}wb/v1/{bank}/gateway/{gateway}/alert       QoS 1, not retained   GatewayAlert
    {prefix}wb/v1/{tps}/fill_sensor/{sensor}/fill      QoS 1, not retained   FillReading
    {prefix}wb/v1/{tps}/fill_sensor/{sensor}/status    QoS 1, retained       GatewayStatus
    {prefix}wb/v1/{tps}/tps/{sensor}/alert/{code}      QoS 1, retained       TpsAlert (state)
    {prefix}wb/v1/{tps}/tps/events                     QoS 1, not retained   TpsAlert (events)
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, NamedTuple

import msgspec
from msgspec import UNSET, Meta, UnsetType, field

from wastebank.errors import BadInput
from wastebank.structs import Invalid, encode_json

TOPIC_ROOT = "wb/v1"


def whole(pattern: str) -> str:
    """``pattern`` (``^...$``) for a msgspec ``Meta``: Python's ``$`` (msgspec's and jsonschema's
    ``re.search``) also matches before a final newline, which would let ``"gw-01\n"`` through;
    ``(?!\n)`` refuses it and means nothing to a JSON Schema (ECMA-262) validator, where ``$``
    is the end already. Every pattern here is whole, and so is every user's of them (the
    gateway's settings and endpoint, the device registry)."""
    return pattern + r"(?!\n)"


# Codes used in topics: lower-case letters, digits and dashes, so they never contain `/`, `+`, `#`.
CODE_PATTERN = whole(r"^[a-z0-9][a-z0-9-]{0,62}$")
Code = Annotated[str, Meta(pattern=CODE_PATTERN)]
SEQ_MAX = 10**15 - 1
"""Sequence numbers have at most 15 digits: a 63-character id, '-' and the number fit the
ledger's 100-character event id (PostgreSQL refuses longer; SQLite would not notice). A gateway
numbering 100 deposits a second would need 300,000 years to reach it."""


INSTALL_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
"""Crockford's base 32, lower-case: no i, l, o, u, so an id read over the phone is not misheard."""
INSTALL_LENGTH = 5
"""25 bits: two installs of one device share one with a chance of 1 in 33 million per pair."""


def new_install() -> str:
    """A new install (or boot) identity: :data:`INSTALL_LENGTH` random Crockford characters."""
    return "".join(secrets.choice(INSTALL_ALPHABET) for _ in range(INSTALL_LENGTH))


INSTALL_PATTERN = whole(r"^[0-9abcdefghjkmnpqrstvwxyz]{4,12}$")
Install = Annotated[str, Meta(pattern=INSTALL_PATTERN)]
EVENT_ID_PATTERN = whole(r"^[a-z0-9][a-z0-9-]{0,62}(\.[0-9a-z]{4,12})?[.-][0-9]{1,15}$")


def device_event_id(device_id: str, install: str | None, seq: int) -> str:
    """The id a device gives its event: ``{device}.{install}.{seq}``, e.g. ``gw-01.k7q2m.15``.

    ``install`` names the store that numbers the events (a gateway's outbox, a sensor's join
    session, a simulator's run): a new store starts at 1 again under a new install, so no id
    repeats after an SD card is replaced or an image is cloned. The dots keep these ids apart
    from every other namespace: codes have no dots, server-issued ids are upper-case
    (``M-...`` manual, ``R-...`` a resolved conflict), and ids from before installs existed
    (``{device}-{seq}``, kept as they are) have no dot either.
    """
    if install is None:
        return f"{device_id}-{seq}"
    return f"{device_id}.{install}.{seq}"


def alert_event_id(gateway_id: str, install: str, seq: int) -> str:
    """A gateway alert's id: ``{gateway}.{install}-{seq}``, e.g. ``gw-01.k7q2m-3``. Alerts have
    their own sequence, so the deposits' form would repeat a deposit's id; the hyphen before
    the number keeps them apart (a deposit's ``.{seq}``, a pre-0.2 ``{device}-{seq}`` without a
    dot), within :data:`EVENT_ID_PATTERN`."""
    return f"{gateway_id}.{install}-{seq}"


TEXT_PATTERN = whole(r"^[^\x00-\x1f\x7f-\x9f]*$")
"""Free text a device writes (a version, an alert's message, a protocol's or calibration's
name): no control character, C0 (tab and newline too), DEL or C1, which on a terminal or in a
log line would be a command or a forged line (docs/protocol.md, "Limits and strictness").
The evidence fields (``raw_frames``, ``raw``) are exempt: they are the scale's bytes as
received (a Toledo frame starts with STX), shown escaped (``formats.terminal_text``)."""
Text = Annotated[str, Meta(pattern=TEXT_PATTERN)]

AwareDatetime = Annotated[datetime, Meta(tz=True)]
"""An RFC 3339 date-time with its offset; one without is refused, and so is one outside
:data:`TIME_MIN`..:data:`TIME_MAX` (every message checks its own, :func:`check_times`)."""

TIME_MIN = datetime(2000, 1, 1, tzinfo=UTC)
TIME_MAX = datetime(2100, 12, 31, tzinfo=UTC)
"""Every timestamp on the wire lies within these, both included (docs/protocol.md, "Limits and
strictness"): the months the reports cover (2000-01..2100-12, in any city's zone) and well inside
InfluxDB's (1677..2262) and Python's (a year-1 or year-9999 time moved to another zone
overflows). A message with one outside is invalid as a whole (a dead letter naming the field):
never applied to the ledger, stored in the fleet or written to InfluxDB."""


CLOCK_AHEAD_TOLERANCE = timedelta(minutes=2)
"""A device timestamp later than its receiver's clock by more than this is a wrong clock (late
ones may be a backlog delivered after an outage, so only the future is flagged): the InfluxDB
point says it (``clock_ahead_s``, the ingester and ``wastebank influx rebuild-deposits``), and
``ledger verify`` and the monthly report count such deposits (``measured_at`` against the
ledger's ``recorded_at``). Kept as stamped: the money is real."""


def check_times(msg: msgspec.Struct) -> None:
    """Raise :class:`Invalid` naming the first timestamp field of ``msg`` outside
    :data:`TIME_MIN`..:data:`TIME_MAX` (a nested Struct checks its own)."""
    for name in msg.__struct_fields__:
        value = getattr(msg, name)
        if isinstance(value, datetime) and not TIME_MIN <= value <= TIME_MAX:
            raise _across(
                f"{name}: {value.isoformat()} is outside the time range "
                f"{TIME_MIN:%Y-%m-%dT%H:%M:%SZ}..{TIME_MAX:%Y-%m-%dT%H:%M:%SZ}"
            )


# ---- limits (docs/protocol.md, "Limits and strictness") ---------------------------------------

MAX_PAYLOAD_BYTES = 65536
"""The largest payload the ingester parses (64 KiB); a longer one is a dead letter unread. Every
valid message fits: the largest a model allows (GatewayHealth with every list full and every
string at its limit) is well under it (tests/test_contract.py builds it)."""
COUNT_MAX = 10**15 - 1
"""Counters, ages and row ids: at most 15 digits, exact as a JSON number in any language (IEEE
doubles hold every integer up to 2**53) and as an InfluxDB integer."""
NET_G_MAX = 10_000_000
"""A deposit's net weight and tare: 10 t, beyond any waste-bank scale."""
SCALE_G_MAX = 10**12
"""A scale's last weight and zero drift in health reports: beyond anything a decoder accepts
(10**9 of a frame's own unit, at most 4.6 * 10**11 g in lb), so a health report never fails."""
FLOAT_ABS_MAX = 1e15
"""Alert values and thresholds (grams, counts, ratios, minutes): finite and at most this big."""
RAW_FRAMES_MAX = 16
"""A deposit's evidence: at most this many frames..."""
RAW_FRAME_MAX_CHARS = 256
"""...of at most this many characters each (a serial line is at most 129 bytes)."""
SCALES_MAX = 32
"""Scales in one GatewayHealth (a waste bank has one to three)."""
SENSORS_MAX = 96
"""Fill sensors in one GatewayHealth (a LoRaWAN gateway may hear a whole district's TPS)."""

ALERTS_ACTIVE_MAX = 64
"""Active alerts in one GatewayHealth (a scale has at most a few at once)."""
CLOCK_OFFSET_MS_MAX = 10**12
"""A clock offset in health reports: about 31 years either way, beyond any real clock's."""

RawFrame = Annotated[str, Meta(max_length=RAW_FRAME_MAX_CHARS)]
Name = Annotated[str, Meta(pattern=whole(r"^[a-z0-9_]{1,32}$"))]
"""A decoder's or protocol's name ('gs_nt', 'em310_udl'): kept to plain ASCII so the health
report with every list full still fits the payload limit."""
Count = Annotated[int, Meta(ge=0, le=COUNT_MAX)]
AlertNumber = Annotated[float, Meta(ge=-FLOAT_ABS_MAX, le=FLOAT_ABS_MAX)]
Seq = Annotated[int, Meta(ge=0, le=SEQ_MAX)]


class PayloadTooLarge(BadInput, ValueError):
    """A payload over :data:`MAX_PAYLOAD_BYTES`; the text starts with ``oversized:``."""


def check_size(payload: bytes) -> None:
    """Raise :class:`PayloadTooLarge` when ``payload`` is over the limit: checked before parsing,
    so a huge payload costs a length check, not a parse."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(
            f"oversized: payload of {len(payload)} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit"
        )


class _Message(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Strict (msgspec decodes strictly): a JSON number never comes from a string, a boolean is
    not a number, an integer field refuses 1.0, and NaN and Infinity are refused (they are not
    JSON, and 1e400 is out of range). A float field takes a JSON integer (``"fillingLevel": 1``):
    JSON has one number type, and JSON Schema's ``number`` includes the integers. Every
    timestamp is within :data:`TIME_MIN`..:data:`TIME_MAX`; a subclass's own ``__post_init__``
    calls this one first."""

    def __post_init__(self) -> None:
        check_times(self)


def encode_set(msg: _Message) -> bytes:
    """``msg`` as JSON without its null fields (a reading or a status from a device that does not
    know them: the payload stays as short as an older device's)."""
    fields = msgspec.structs.asdict(msg)
    return encode_json({k: v for k, v in fields.items() if v is not None})


def _across(msg: str) -> Invalid:
    """A rule across fields broken (``__post_init__``): :class:`Invalid` from the constructor as
    from :func:`wastebank.structs.checked`, and a located-at-the-message error when decoding."""
    return Invalid([((), msg)])


CLOCK_SYNCED = (
    "false: stamped while the device's clock had not been synchronized since it booted "
    "(measured_at may be wrong); true: synchronized; absent or null: unknown (older devices)"
)

AlertCode = Literal[
    "zero_drift",
    "outbox_dropped",
    "scale_offline",
    "publish_refused",
    "overload",
    "underload",
    "indicator_error",
]
"""What a gateway alert is about (docs/operations.md, "Alert codes")."""

ScaleState = Literal[
    "ok",
    "unsettled",
    "overload",
    "underload",
    "indicator_error",
    "disconnected",
    "zero_drift",
    "undetected",
    "stale",
]
"""A scale's state as the gateway sees it (docs/operations.md, "Scale states")."""


class DepositEvent(_Message, kw_only=True, frozen=True):
    """A weighed deposit, produced by a gateway once card + category + stable weight + confirm."""

    kind: Literal["deposit"] = "deposit"
    event_id: Annotated[
        str,
        Meta(
            pattern=EVENT_ID_PATTERN,
            description="'{gateway_id}.{install}.{seq}' (see device_event_id)",
        ),
    ]
    gateway_id: Code
    install: (
        Annotated[
            Install, Meta(description="the gateway's outbox identity; None only in pre-0.2 events")
        ]
        | None
    ) = None
    seq: Annotated[Seq, Meta(description="the install's sequence number")]
    bank_code: Code
    scale_id: Code
    flow: Annotated[
        Literal["kiosk", "attendant"],
        Meta(
            description="kiosk: the member tapped a card; attendant: the petugas named the member"
        ),
    ] = "kiosk"
    card_uid: (
        Annotated[
            str,
            Meta(pattern=whole(r"^[0-9A-F]{8,20}$"), description="member card UID, upper-case hex"),
        ]
        | None
    ) = None
    member_no: (
        Annotated[
            str,
            Meta(
                pattern=whole(r"^[A-Za-z0-9-]{1,32}$"), description="member number (attendant flow)"
            ),
        ]
        | None
    ) = None
    category_code: Code
    net_g: Annotated[int, Meta(gt=0, le=NET_G_MAX, description="net weight in integer grams")]
    tare_g: Annotated[int, Meta(ge=0, le=NET_G_MAX)] = 0
    stable: bool
    protocol: Annotated[Text, Meta(max_length=32, description="scale protocol id, e.g. 'gs_nt'")]
    measured_at: AwareDatetime
    raw_frames: Annotated[
        list[RawFrame],
        Meta(
            max_length=RAW_FRAMES_MAX,
            description="the evidence: the frames as received, without CR LF",
        ),
    ] = field(default_factory=list)
    calibration_version: (
        Annotated[Text, Meta(max_length=64, description="the scale's calibration record in force")]
        | None
    ) = None
    clock_synced: Annotated[bool | None, Meta(description=CLOCK_SYNCED)] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.event_id != device_event_id(self.gateway_id, self.install, self.seq):
            raise _across("event_id must be '{gateway_id}.{install}.{seq}'")
        if (self.card_uid is None) == (self.member_no is None):
            raise _across("exactly one of card_uid and member_no identifies the member")


class FillReading(_Message, kw_only=True, frozen=True):
    """One (already filtered) reading from a TPS container fill sensor.

    Field names follow FIWARE WasteContainer where one exists: ``fillingLevel`` is a 0..1 ratio.
    """

    kind: Literal["fill"] = "fill"
    reading_id: Annotated[
        str,
        Meta(
            pattern=EVENT_ID_PATTERN,
            description="'{sensor_id}.{install}.{seq}' (device_event_id)",
        ),
    ]
    sensor_id: Code
    install: (
        Annotated[
            Install,
            Meta(
                description="who numbers the readings: the gateway's outbox, or the sensor's own "
                "run or join session; None only in pre-0.2 readings"
            ),
        ]
        | None
    ) = None
    seq: Seq
    tps_code: Code
    measured_at: AwareDatetime
    distance_mm: Annotated[int, Meta(ge=0, le=20_000)]
    fillingLevel: Annotated[float, Meta(ge=0.0, le=1.0)]  # noqa: N815 - FIWARE name
    temperature_c: Annotated[float, Meta(ge=-40, le=85)] | None = None
    battery_pct: Annotated[int, Meta(ge=0, le=100)] | None = None
    # Optional, added for real sensors (gateway/fill_sensor/); absent from older readings.
    rssi_dbm: Annotated[int, Meta(ge=-200, le=20, description="LoRaWAN: best RSSI")] | None = None
    snr_db: Annotated[float, Meta(ge=-40, le=40, description="LoRaWAN: its SNR")] | None = None
    source: (
        Annotated[
            str,
            Meta(
                pattern=whole(r"^[a-z0-9_]{1,32}$"),
                description="decoder: 'jsn_sr04t', 'maxbotix', 'em310_udl', 'json'",
            ),
        ]
        | None
    ) = None
    level_status: Annotated[
        Literal["ok", "over_full", "below_empty"] | None,
        Meta(description="distance nearer than full / beyond empty (ratio clamped)"),
    ] = None
    tilt: Annotated[bool | None, Meta(description="EM310-UDL position channel: tilted")] = None
    pings: Annotated[int, Meta(ge=1, le=1000, description="pings in the median")] | None = None
    raw: Annotated[str, Meta(max_length=256, description="frames, as evidence")] | None = None
    clock_synced: Annotated[bool | None, Meta(description=CLOCK_SYNCED)] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reading_id != device_event_id(self.sensor_id, self.install, self.seq):
            raise _across("reading_id must be '{sensor_id}.{install}.{seq}'")


class GatewayStatus(_Message, kw_only=True, frozen=True):
    """Retained presence of a gateway or device; the broker publishes the 'offline' will."""

    kind: Literal["status"] = "status"
    state: Literal["online", "offline"]
    device_id: Code
    at: AwareDatetime | None = None
    version: Annotated[Text, Meta(max_length=32)] | None = None
    install: Annotated[Install, Meta(description="the device's outbox identity")] | None = None
    boot: Annotated[Install, Meta(description="random per process start")] | None = None


class ScaleHealth(_Message, kw_only=True, frozen=True):
    scale_id: Code
    protocol: Annotated[Name, Meta(description="configured or auto-detected protocol")]
    connected: bool
    frames_parsed: Count
    frames_rejected: Count
    reconnects: Count
    last_g: Annotated[int, Meta(ge=-SCALE_G_MAX, le=SCALE_G_MAX)] | None = None
    stable: bool | None = None
    zero_drift_g: Annotated[int, Meta(ge=-SCALE_G_MAX, le=SCALE_G_MAX)] | None = None
    state: Annotated[
        ScaleState | None,
        Meta(
            description="undetected: protocol 'auto' has not decided yet; "
            "stale: nothing readable for 3 s"
        ),
    ] = None
    state_since: Annotated[AwareDatetime, Meta(description="when state began")] | None = None


class SensorHealth(_Message, kw_only=True, frozen=True):
    sensor_id: Code
    tps_code: Code
    kind: Name
    connected: Annotated[bool | None, Meta(description="serial sensors; None for LoRaWAN ones")]
    samples_accepted: Count
    samples_rejected: Annotated[
        Count, Meta(description="bad frames, out of range, spikes, no target")
    ]
    readings: Annotated[Count, Meta(description="filtered readings stored for publishing")]
    no_target: Annotated[
        Count,
        Meta(
            description="of samples_rejected: frames saying nothing was in range (a MaxBotix "
            "HRXL's R5000 or R9999); absent from older gateways"
        ),
    ] = 0
    no_target_since: (
        Annotated[
            AwareDatetime,
            Meta(
                description="since when every frame has said nothing was in range (the "
                "gateway's clock, as 'at'); null while the latest frame is a distance, absent "
                "from older gateways"
            ),
        ]
        | None
    ) = None


class ClockHealth(_Message, kw_only=True, frozen=True):
    """Whether the gateway's clock can be trusted: the events it stamps before the first
    synchronization since boot carry ``clock_synced=false``."""

    synchronized: Annotated[bool | None, Meta(description="None: the gateway cannot tell")]
    source: Literal["timesyncd", "chrony", "none", "unknown"]
    offset_ms: (
        Annotated[
            int,
            Meta(
                ge=-CLOCK_OFFSET_MS_MAX,
                le=CLOCK_OFFSET_MS_MAX,
                description="the last known offset from the time source",
            ),
        ]
        | None
    ) = None
    synced_at: (
        Annotated[AwareDatetime, Meta(description="the first synchronization seen since boot")]
        | None
    ) = None
    problem: (
        Annotated[
            Text,
            Meta(max_length=200, description="why the probe cannot tell: it could not run"),
        ]
        | None
    ) = None


class ActiveAlert(_Message, kw_only=True, frozen=True):
    """An alert raised and not yet cleared."""

    code: AlertCode
    subject: Annotated[Code, Meta(description="the scale or sensor concerned, or 'outbox'")]
    since: AwareDatetime
    value: AlertNumber | None = None


class GatewayHealth(_Message, kw_only=True, frozen=True):
    """Periodic gateway telemetry (retained): the operator's view of one waste bank's edge."""

    kind: Literal["health"] = "health"
    gateway_id: Code
    bank_code: Code
    install: Annotated[Install, Meta(description="the gateway's outbox identity")] | None = None
    boot: (
        Annotated[
            Install, Meta(description="random per process start: two at once mean two processes")
        ]
        | None
    ) = None
    at: AwareDatetime
    uptime_s: Count
    outbox_depth: Count
    outbox_oldest_age_s: Count | None = None
    outbox_dropped: Annotated[
        Count, Meta(description="rows dropped by the size or age bound, ever")
    ]
    outbox_refused: Annotated[
        Count, Meta(description="rows kept because the broker refused them (MQTT 5 PUBACK)")
    ] = 0
    mqtt_reconnects: Count
    deposits_stored: Count
    scales: Annotated[list[ScaleHealth], Meta(max_length=SCALES_MAX)] = field(default_factory=list)
    sensors: Annotated[list[SensorHealth], Meta(max_length=SENSORS_MAX)] = field(
        default_factory=list
    )
    version: Annotated[Text, Meta(max_length=32, description="gateway software")] | None = None
    clock: ClockHealth | None = None
    alerts_active: (
        Annotated[
            list[ActiveAlert],
            Meta(max_length=ALERTS_ACTIVE_MAX, description="absent from older gateways"),
        ]
        | UnsetType
    ) = UNSET
    """UNSET when an older gateway did not say (not an empty list: it never reported none);
    :attr:`active` reads it as a list."""
    alerts_left_out: Annotated[
        Count,
        Meta(description=f"active alerts beyond the {ALERTS_ACTIVE_MAX} listed (the least urgent)"),
    ] = 0

    @property
    def active(self) -> list[ActiveAlert]:
        """:attr:`alerts_active`, empty when an older gateway did not say."""
        return self.alerts_active or []

    def __post_init__(self) -> None:
        super().__post_init__()
        # one device listed twice has two states: which one the fleet shows could not be told
        scales = [sc.scale_id for sc in self.scales]
        if twice := _twice(scales):
            raise _across(f"scales: each scale_id once; listed twice: {twice}")
        sensors = [f"{s.tps_code}/{s.sensor_id}" for s in self.sensors]
        if twice := _twice(sensors):
            raise _across(f"sensors: each (tps_code, sensor_id) once; listed twice: {twice}")


def _twice(ids: list[str]) -> str:
    """The ids listed more than once, sorted and joined ("" when none is)."""
    return ", ".join(sorted({i for i in ids if ids.count(i) > 1}))


class GatewayAlert(_Message, kw_only=True, frozen=True):
    """Raised once when a condition starts and cleared once when it ends (e.g. zero drift)."""

    kind: Literal["alert"] = "alert"
    alert_id: Annotated[
        str,
        Meta(
            pattern=EVENT_ID_PATTERN,
            description="'{gateway_id}.{install}-{seq}' (alert_event_id); "
            "'{gateway_id}.{install}.{seq}' from older gateways",
        ),
    ]
    gateway_id: Code
    install: Install | None = None
    seq: Seq
    bank_code: Code
    code: AlertCode
    state: Literal["raised", "cleared"]
    subject: Annotated[Text, Meta(max_length=64, description="the scale or sensor concerned")]
    value: AlertNumber | None = None
    threshold: AlertNumber | None = None
    at: AwareDatetime
    message: Annotated[Text, Meta(max_length=300)]

    def __post_init__(self) -> None:
        super().__post_init__()
        forms = {device_event_id(self.gateway_id, self.install, self.seq)}
        if self.install is not None:
            forms.add(alert_event_id(self.gateway_id, self.install, self.seq))
        if self.alert_id not in forms:
            raise _across("alert_id must be '{gateway_id}.{install}-{seq}'")


class TpsAlert(_Message, kw_only=True, frozen=True):
    """A TPS alert's transition (``wastebank tps watch``): raised once, cleared once.

    The same payload goes, retained, to the alert's state topic (its latest transition) and, not
    retained, to the TPS's event topic. ``alert_id`` is the ledger's ``tps_alert`` row.
    """

    kind: Literal["tps_alert"] = "tps_alert"
    alert_id: Annotated[int, Meta(ge=1, le=COUNT_MAX)]
    tps_code: Code
    sensor_id: Code
    code: Literal["fill_high", "sensor_offline"]
    state: Literal["raised", "cleared"]
    value: Annotated[AlertNumber, Meta(description="fill ratio, or minutes since seen")] | None = (
        None
    )
    threshold: AlertNumber | None = None
    raised_at: AwareDatetime
    cleared_at: AwareDatetime | None = None
    at: Annotated[AwareDatetime, Meta(description="this transition's time")]
    message: Annotated[Text, Meta(max_length=300)]


# ---- topics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topics:
    """Builds and parses topics under an optional prefix (which ends with '/' when set)."""

    prefix: str = ""

    def deposit(self, bank: str, gateway: str) -> str:
        return f"{self.prefix}{TOPIC_ROOT}/{bank}/gateway/{gateway}/deposit"

    def gateway_status(self, bank: str, gateway: str) -> str:
        return f"{self.prefix}{TOPIC_ROOT}/{bank}/gateway/{gateway}/status"

    def gateway_health(self, bank: str, gateway: str) -> str:
        return f"{self.prefix}{TOPIC_ROOT}/{bank}/gateway/{gateway}/health"

    def gateway_alert(self, bank: str, gateway: str) -> str:
        return f"{self.prefix}{TOPIC_ROOT}/{bank}/gateway/{gateway}/alert"

    def fill(self, tps: str, sensor: str) -> str:
        return f"{self.prefix}{TOPIC_ROOT}/{tps}/fill_sensor/{sensor}/fill"

    def sensor_status(self, tps: str, sensor: str) -> str:
        return f"{self.prefix}{TOPIC_ROOT}/{tps}/fill_sensor/{sensor}/status"

    def tps_alert_state(self, tps: str, sensor: str, code: str) -> str:
        return f"{self.prefix}{TOPIC_ROOT}/{tps}/tps/{sensor}/alert/{code}"

    def tps_alert_event(self, tps: str) -> str:
        return f"{self.prefix}{TOPIC_ROOT}/{tps}/tps/events"

    @property
    def deposit_filter(self) -> str:
        return f"{self.prefix}{TOPIC_ROOT}/+/gateway/+/deposit"

    @property
    def health_filter(self) -> str:
        return f"{self.prefix}{TOPIC_ROOT}/+/gateway/+/health"

    @property
    def alert_filter(self) -> str:
        return f"{self.prefix}{TOPIC_ROOT}/+/gateway/+/alert"

    @property
    def fill_filter(self) -> str:
        return f"{self.prefix}{TOPIC_ROOT}/+/fill_sensor/+/fill"

    def parse(self, topic: str) -> TopicParts | None:
        """Split a topic into (site, device_type, device_id, kind), or None if it is not ours."""
        if not topic.startswith(self.prefix):
            return None
        match = _TOPIC_RE.match(topic[len(self.prefix) :])
        if match is None:
            return None
        return TopicParts(*match.groups())


class TopicParts(NamedTuple):
    """A topic's parts (a tuple: built for every message the ingester takes)."""

    site: str
    device_type: str
    device_id: str
    kind: str


_TOPIC_RE = re.compile(
    r"^" + re.escape(TOPIC_ROOT) + r"/([a-z0-9-]+)/(gateway|fill_sensor)/([a-z0-9-]+)/([a-z_]+)$"
)
