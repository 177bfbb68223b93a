"""Line protocol: the points the ingester writes, each encoded here rather than by a library.

Points are encoded by :func:`line`, not by influxdb-client's ``Point``: importing the client
costs the ingester memory on every Pi and server, and ``Point`` was too slow for one line per
message (docs/scaling.md, "The ingester's hot path"). ``line`` produces the same bytes as
``Point(...).to_line_protocol()`` (tests check it against the library). Timestamps are
nanoseconds: the measurement time in milliseconds with the event's sequence number in the
sub-millisecond digits, so two events in one millisecond never overwrite each other and a
replayed event lands on exactly the same point (InfluxDB then keeps one).
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping
from datetime import datetime
from typing import TypeAlias

from msgspec import UNSET

from wastebank.messages import FillReading, GatewayAlert, GatewayHealth

DEPOSIT = "deposit"
FILL = "fill_level"
GATEWAY_HEALTH = "gateway_health"
SCALE_HEALTH = "scale_health"
ALERT = "gateway_alert"


FieldValue: TypeAlias = bool | int | float | str

# Escaping as the line-protocol reference says, and as influxdb-client's Point does it (the lines
# must stay byte-identical to what Point wrote): measurement names escape comma and space, tag
# keys, tag values and field keys also the equals sign; a tab, newline or carriage return there
# becomes the two characters ``\t``, ``\n``, ``\r``. String field values escape only the double
# quote and the backslash (a newline inside the quotes is legal).
_MEASUREMENT_ESCAPES = str.maketrans(
    {",": r"\,", " ": r"\ ", "\t": r"\t", "\n": r"\n", "\r": r"\r"}
)
_KEY_ESCAPES = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\t": r"\t", "\n": r"\n", "\r": r"\r"}
)
# str.translate with a multi-character table walks the string slowly; a regex that finds nothing
# to escape is much faster (docs/scaling.md), and nearly every name has nothing to escape.
_MEASUREMENT_SPECIAL = re.compile(r"[, \t\n\r]").search
_KEY_SPECIAL = re.compile(r"[,= \t\n\r]").search

# Escaped keys and tag values: a few dozen names and the site's codes (banks, sensors, categories)
# recur in every message. Bounded, so arbitrary input cannot grow it for ever; names past the
# bound are escaped on every call instead.
_escaped: dict[str, str] = {}
_ESCAPED_MAX = 4096


def _escape_key(text: str) -> str:
    """A tag key, tag value or field key, escaped (comma, equals sign, space, tab, CR, LF)."""
    escaped = _escaped.get(text)
    if escaped is None:
        escaped = text if _KEY_SPECIAL(text) is None else text.translate(_KEY_ESCAPES)
        if len(_escaped) < _ESCAPED_MAX:
            _escaped[text] = escaped
    return escaped


def line(
    measurement: str,
    tags: Mapping[str, str | None],
    fields: Mapping[str, FieldValue | None],
    time_ns: int | None = None,
) -> str:
    """One line of line protocol, byte-identical to influxdb-client's ``Point.to_line_protocol``.

    Tags and fields are written sorted by key (as Point does; InfluxDB parses sorted tags
    fastest). None values are left out, as are NaN and infinite floats, and tags whose key or
    value is empty. Integers get the ``i`` suffix; floats are written as ``str`` gives them,
    without a trailing ``.0`` (``1.0`` -> ``1``); bools as ``true``/``false``; subclasses (StrEnum,
    IntEnum) through ``str()``, as Point does. A point without any field cannot be written: the
    result is then ``""`` (as from Point). ``time_ns`` is written as given (the writers send
    ``precision=ns``). A measurement starting with ``#`` raises ValueError: InfluxDB would read
    the line as a comment and drop it silently (Point only warns).

    Called once per message, so it is written for speed: only the keys are sorted (cheaper than
    sorting (key, value) pairs) and escaped names come from a cache.
    """
    if measurement.startswith("#"):
        raise ValueError(f"measurement {measurement!r} starts with '#' (a line-protocol comment)")
    head = _series_key(measurement, tags)
    body = _field_set(fields)
    if not body:
        return ""
    if time_ns is None:
        return f"{head} {body}"
    return f"{head} {body} {time_ns}"


def _series_key(measurement: str, tags: Mapping[str, str | None]) -> str:
    """The measurement and its tags, escaped, sorted by key (the head of a line)."""
    head = (
        measurement
        if _MEASUREMENT_SPECIAL(measurement) is None
        else measurement.translate(_MEASUREMENT_ESCAPES)
    )
    escaped = _escaped
    for key in sorted(tags):
        tag = tags[key]
        if not tag or not key:  # None or empty: Point leaves the tag out
            continue
        text = escaped.get(tag) or _escape_key(tag)
        if text.endswith("\\"):
            # A trailing backslash would escape the separator after it; Point adds a space.
            text += " "
        head += f",{escaped.get(key) or _escape_key(key)}={text}"
    return head


def _field_set(fields: Mapping[str, FieldValue | None]) -> str:
    """The fields, sorted by key, joined by commas; "" when none has a value."""
    escaped = _escaped
    body: list[str] = []
    for key in sorted(fields):
        value = fields[key]
        if value is None:
            continue
        text = _field_value(key, value)
        if text is not None:
            body.append(f"{escaped.get(key) or _escape_key(key)}={text}")
    return ",".join(body)


def _field_value(key: str, value: FieldValue) -> str | None:
    """One field's value as line protocol writes it; None for a NaN or an infinity, which line
    protocol cannot say (the field is left out)."""
    if isinstance(value, str):
        return f'"{_string_field(value if type(value) is str else str(value))}"'
    if isinstance(value, bool):  # before int: a bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value!s}i"
    if isinstance(value, float):
        return _float_text(value) if math.isfinite(value) else None
    raise TypeError(f"field {key!r}: {type(value).__name__} is not a line-protocol value")


def point_time_ns(at: datetime, seq: int) -> int:
    ms = int(at.timestamp() * 1000)
    return ms * 1_000_000 + seq % 1_000_000


def event_seq(event_id: str) -> int:
    """What keeps a deposit's point apart from others in its millisecond (the sub-millisecond
    digits): a CRC of the event id, or, for an id from before installs (``gw-01-15``), its
    sequence number, as those points were stamped. From the id alone, so the ledger can always
    say where a deposit's point is (``wastebank influx rebuild-deposits``)."""
    if _LEGACY_ID(event_id):
        return int(event_id[event_id.rindex("-") + 1 :])
    return zlib.crc32(event_id.encode())


_LEGACY_ID = re.compile(r"^[a-z0-9][a-z0-9-]*-[0-9]{1,15}$").match


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def deposit_line(
    *,
    event_id: str,
    bank: str,
    kecamatan: str,
    category: str,
    net_g: int,
    amount_idr: int,
    gateway: str,
    measured_at: datetime,
    clock_ahead_s: int | None = None,
    clock_synced: bool | None = None,
) -> str:
    """A deposit's point, from what the ledger applied (never from an incoming payload): a
    redelivery writes the same point again, a conflicting message none. ``clock_synced=false``
    (a field: a tag would split every series) marks a time stamped before the gateway's clock
    was synchronized; absent when the gateway did not say."""
    return line(
        DEPOSIT,
        {"bank": bank, "kecamatan": kecamatan, "category": category, "source": "scale"},
        {
            "net_g": net_g,
            "amount_idr": amount_idr,
            "event_id": event_id,
            "gateway": gateway,
            "clock_ahead_s": clock_ahead_s,
            "clock_synced": clock_synced,
        },
        point_time_ns(measured_at, event_seq(event_id)),
    )


def fill_line(reading: FillReading, *, clock_ahead_s: int | None = None) -> str:
    """The reading's point: what :func:`line` gives for it, formatted directly.

    One per fill reading, the bulk of the ingester's traffic, so it skips the general encoder:
    the tags are validated codes and ``reading_id``, ``source`` and ``level_status`` validated
    patterns (nothing to escape), every field's type is known, and the fields are written in
    sorted order by hand. ``tests/test_influx.py`` checks it against :func:`line` for random
    readings.
    """
    r = reading
    parts: list[str] = []
    if r.battery_pct is not None:
        parts.append(f"battery_pct={r.battery_pct}i")
    if clock_ahead_s is not None:
        parts.append(f"clock_ahead_s={clock_ahead_s}i")
    if r.clock_synced is not None:
        parts.append("clock_synced=true" if r.clock_synced else "clock_synced=false")
    parts.append(f"distance_mm={r.distance_mm}i")
    parts.append(f"filling_level={_float_text(float(r.fillingLevel))}")
    if r.level_status is not None:
        parts.append(f'level_status="{r.level_status}"')
    if r.pings is not None:
        parts.append(f"pings={r.pings}i")
    if r.raw is not None:
        parts.append(f'raw="{_string_field(r.raw)}"')
    parts.append(f'reading_id="{r.reading_id}"')
    _add_fill_fields_after_reading_id(r, parts)
    time_ns = point_time_ns(r.measured_at, r.seq)
    return f"{FILL},sensor={r.sensor_id},tps={r.tps_code} {','.join(parts)} {time_ns}"


def _add_fill_fields_after_reading_id(r: FillReading, parts: list[str]) -> None:
    """The fields of a fill reading that sort after ``reading_id`` (sorted order is what
    :func:`line` writes, so the split falls where the alphabet puts it)."""
    if r.rssi_dbm is not None:
        parts.append(f"rssi_dbm={r.rssi_dbm}i")
    if r.snr_db is not None:
        parts.append(f"snr_db={_float_text(float(r.snr_db))}")
    if r.source is not None:
        parts.append(f'source="{r.source}"')
    if r.temperature_c is not None:
        parts.append(f"temperature_c={_float_text(float(r.temperature_c))}")
    if r.tilt is not None:
        parts.append("tilt=true" if r.tilt else "tilt=false")


def _float_text(value: float) -> str:
    """A float as line protocol (and Point) writes it: ``str`` without a trailing ``.0``."""
    text = str(value)
    return text[:-2] if text.endswith(".0") else text


def _string_field(value: str) -> str:
    """A string field value's escapes: backslash, then double quote."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if '"' in value:
        value = value.replace('"', '\\"')
    return value


def health_lines(h: GatewayHealth) -> list[str]:
    """One point for the gateway and one per scale, at the report's time (ms precision)."""
    at = point_time_ns(h.at, 0)
    lines = [
        line(
            GATEWAY_HEALTH,
            {"bank": h.bank_code, "gateway": h.gateway_id},
            {
                "uptime_s": h.uptime_s,
                "outbox_depth": h.outbox_depth,
                "outbox_dropped": h.outbox_dropped,
                "outbox_refused": h.outbox_refused,
                "mqtt_reconnects": h.mqtt_reconnects,
                "deposits_stored": h.deposits_stored,
                "outbox_oldest_age_s": h.outbox_oldest_age_s,
                "clock_synchronized": None if h.clock is None else h.clock.synchronized,
                "clock_offset_ms": None if h.clock is None else h.clock.offset_ms,
                # an older gateway does not say: no field, rather than a 0 it never reported
                # every active alert, those the report left out too
                "alerts_active": None
                if h.alerts_active is UNSET
                else len(h.alerts_active) + h.alerts_left_out,
            },
            at,
        )
    ]
    for sc in h.scales:
        lines.append(
            line(
                SCALE_HEALTH,
                {"bank": h.bank_code, "gateway": h.gateway_id, "scale": sc.scale_id},
                {
                    "protocol": sc.protocol,
                    "connected": sc.connected,
                    "frames_parsed": sc.frames_parsed,
                    "frames_rejected": sc.frames_rejected,
                    "reconnects": sc.reconnects,
                    "zero_drift_g": sc.zero_drift_g,
                    "state": sc.state,
                },
                at,
            )
        )
    return lines


def alert_line(a: GatewayAlert) -> str:
    return line(
        ALERT,
        {"bank": a.bank_code, "gateway": a.gateway_id, "code": a.code},
        {
            "state": a.state,
            "subject": a.subject,
            "message": a.message,
            "alert_id": a.alert_id,
            "value": _optional_float(a.value),
            "threshold": _optional_float(a.threshold),
        },
        point_time_ns(a.at, a.seq),
    )
