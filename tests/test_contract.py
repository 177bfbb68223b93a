"""The wire contract: strict types, every size limit, the payload limit at the ingester, the JSON
Schema files and the examples of docs/protocol.md (issue 12)."""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ingest.main import Ingester, IngestSettings
from tests.conftest import deposit_event
from wastebank import ledger, wire_schema
from wastebank.cli import app
from wastebank.config import InfluxSettings, MqttSettings, load_settings
from wastebank.influx import Influx
from wastebank.messages import (
    ALERTS_ACTIVE_MAX,
    CLOCK_OFFSET_MS_MAX,
    CODE_PATTERN,
    COUNT_MAX,
    EVENT_ID_PATTERN,
    FLOAT_ABS_MAX,
    INSTALL_PATTERN,
    MAX_PAYLOAD_BYTES,
    NET_G_MAX,
    RAW_FRAME_MAX_CHARS,
    RAW_FRAMES_MAX,
    SCALE_G_MAX,
    SCALES_MAX,
    SENSORS_MAX,
    SEQ_MAX,
    ActiveAlert,
    ClockHealth,
    DepositEvent,
    FillReading,
    GatewayAlert,
    GatewayHealth,
    GatewayStatus,
    PayloadTooLarge,
    ScaleHealth,
    SensorHealth,
    Topics,
    TpsAlert,
    check_size,
    device_event_id,
)
from wastebank.structs import Invalid, Loc, checked, decode_json, encode_json, replace

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = ROOT / "docs" / "schema"
PROTOCOL_MD = ROOT / "docs" / "protocol.md"

MODELS: dict[str, type[msgspec.Struct]] = wire_schema.MESSAGES

# ---- valid messages, as JSON objects -----------------------------------------------------------

SCALE = {
    "scale_id": "kiosk-01",
    "protocol": "gs_nt",
    "connected": True,
    "frames_parsed": 864012,
    "frames_rejected": 3,
    "reconnects": 0,
    "last_g": 0,
    "stable": True,
    "zero_drift_g": 0,
    "state": "ok",
    "state_since": "2026-11-23T00:00:05Z",
}
CLOCK = {
    "synchronized": True,
    "source": "timesyncd",
    "offset_ms": -3,
    "synced_at": "2026-11-23T00:00:41Z",
}
ACTIVE_ALERT = {
    "code": "overload",
    "subject": "gudang-01",
    "since": "2026-11-23T00:58:00Z",
    "value": None,
}
SENSOR = {
    "sensor_id": "us-01",
    "tps_code": "tps-batu-merah",
    "kind": "jsn_sr04t",
    "connected": True,
    "samples_accepted": 100,
    "samples_rejected": 2,
    "readings": 20,
}
VALID: dict[str, dict[str, Any]] = {
    "deposit": {
        "kind": "deposit",
        "event_id": "gw-01.k7q2m.15",
        "gateway_id": "gw-01",
        "install": "k7q2m",
        "seq": 15,
        "bank_code": "bs-batu-merah",
        "scale_id": "scale-01",
        "flow": "kiosk",
        "card_uid": "04A1B2C3D4",
        "member_no": None,
        "category_code": "pet",
        "net_g": 1250,
        "tare_g": 0,
        "stable": True,
        "protocol": "gs_nt",
        "measured_at": "2026-11-23T09:15:02.345000+09:00",
        "raw_frames": ["#K,17,CARD,04A1B2C3D4*71", "ST,GS,+0001.25kg", "#K,19,OK*47"],
        "calibration_version": "cal-3",
        "clock_synced": True,
    },
    "fill": {
        "kind": "fill",
        "reading_id": "us-07.m2d5r.88",
        "sensor_id": "us-07",
        "install": "m2d5r",
        "seq": 88,
        "tps_code": "tps-batu-merah",
        "measured_at": "2026-11-24T02:15:00.123456Z",
        "distance_mm": 2116,
        "fillingLevel": 0.175,
        "temperature_c": 24.3,
        "battery_pct": 92,
        "rssi_dbm": -87,
        "snr_db": 7.2,
        "source": "em310_udl",
        "level_status": "ok",
        "tilt": True,
        "pings": 1,
        "raw": "01 75 5C 03 82 44 08 04 00 01",
        "clock_synced": False,
    },
    "status": {
        "kind": "status",
        "state": "online",
        "device_id": "gw-01",
        "at": "2026-11-23T00:15:00Z",
        "version": "0.1.0",
        "install": "k7q2m",
        "boot": "9fz3a",
    },
    "health": {
        "kind": "health",
        "gateway_id": "gw-01",
        "bank_code": "bs-batu-merah",
        "install": "k7q2m",
        "boot": "9fz3a",
        "at": "2026-11-23T01:00:00Z",
        "uptime_s": 86400,
        "outbox_depth": 0,
        "outbox_oldest_age_s": None,
        "outbox_dropped": 0,
        "outbox_refused": 0,
        "mqtt_reconnects": 2,
        "deposits_stored": 57,
        "scales": [SCALE],
        "sensors": [SENSOR],
        "version": "0.1.0",
        "clock": CLOCK,
        "alerts_active": [ACTIVE_ALERT],
    },
    "alert": {
        "kind": "alert",
        "alert_id": "gw-01.k7q2m.7",
        "gateway_id": "gw-01",
        "install": "k7q2m",
        "seq": 7,
        "bank_code": "bs-batu-merah",
        "code": "zero_drift",
        "state": "raised",
        "subject": "gudang-01",
        "value": 40.0,
        "threshold": 30.0,
        "at": "2026-11-23T01:05:00Z",
        "message": "zero drift +40 g on gudang-01",
    },
    "tps_alert": {
        "kind": "tps_alert",
        "alert_id": 12,
        "tps_code": "tps-batu-merah",
        "sensor_id": "us-01",
        "code": "fill_high",
        "state": "raised",
        "value": 0.82,
        "threshold": 0.8,
        "raised_at": "2026-11-23T06:41:00Z",
        "cleared_at": None,
        "at": "2026-11-23T06:41:00+09:00",
        "message": "container nearly full",
    },
}
_ID_FIELDS = {
    "deposit": ("event_id", "gateway_id"),
    "fill": ("reading_id", "sensor_id"),
    "alert": ("alert_id", "gateway_id"),
}

_RAW = "\x00raw\x00"
"""A placeholder replaced by raw JSON text (numbers JSON can write but Python's json cannot
produce from a value of that type: 1250.0 for an int, 1.25e3, NaN)."""


def message(name: str, **changes: Any) -> dict[str, Any]:
    """A valid ``name`` message with ``changes``, its device id recomputed when it has one."""
    msg = copy.deepcopy(VALID[name])
    msg.update(changes)
    if name in _ID_FIELDS and _ID_FIELDS[name][0] not in changes:
        id_field, device_field = _ID_FIELDS[name]
        msg[id_field] = device_event_id(msg[device_field], msg.get("install"), msg["seq"])
    return msg


def encode(msg: dict[str, Any], raw: str | None = None) -> bytes:
    text = json.dumps(msg, ensure_ascii=False, separators=(",", ":"))
    if raw is not None:
        text = text.replace(json.dumps(_RAW), raw)
    return text.encode()


def refused(name: str, payload: bytes) -> Invalid:
    with pytest.raises(Invalid) as caught:
        decode_json(payload, MODELS[name])
    return caught.value


def locations(error: Invalid) -> list[Loc]:
    return [loc for loc, _ in error.problems]


_NOT_JSON = ("NaN", "Infinity", "-Infinity")
"""Not JSON at all: refused as malformed, located at the payload (a parser reads no field)."""


def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(wire_schema.json_schema(name))


# ---- strict types ------------------------------------------------------------------------------


def test_every_valid_message_parses_as_sent() -> None:
    for name in MODELS:
        parsed = decode_json(encode(message(name)), MODELS[name])
        assert isinstance(parsed, MODELS[name])
    deposit = decode_json(encode(message("deposit")), DepositEvent)
    # an aware timestamp from an ISO string, in strict mode, keeps its offset
    assert deposit.measured_at == datetime(
        2026, 11, 23, 9, 15, 2, 345000, tzinfo=timezone(timedelta(hours=9))
    )
    assert deposit.measured_at.utcoffset() == timedelta(hours=9)


COERCIONS = [
    # (message, field, JSON value or _RAW, raw JSON text, JSON Schema refuses it too)
    ("deposit", "net_g", "1234", None, True),
    ("deposit", "net_g", True, None, True),
    ("deposit", "net_g", _RAW, "1250.0", False),  # an integer to JSON Schema, not to us
    ("deposit", "net_g", _RAW, "1.25e3", False),
    ("deposit", "net_g", 1250.5, None, True),
    ("deposit", "seq", "6", None, True),
    ("deposit", "tare_g", "0", None, True),
    ("deposit", "stable", 1, None, True),
    ("deposit", "stable", "true", None, True),
    ("deposit", "measured_at", 1795392902, None, True),
    ("deposit", "measured_at", "2026-11-23T09:15:02", None, False),  # no offset
    ("deposit", "measured_at", "2026-11-23", None, False),
    ("deposit", "raw_frames", ["ok", 5], None, True),
    ("deposit", "flow", "KIOSK", None, True),
    ("fill", "fillingLevel", "0.5", None, True),
    ("fill", "fillingLevel", True, None, True),
    ("fill", "distance_mm", 984.0, None, False),
    ("fill", "distance_mm", "984", None, True),
    ("fill", "battery_pct", "98", None, True),
    ("fill", "temperature_c", _RAW, "NaN", False),
    ("fill", "temperature_c", _RAW, "Infinity", False),
    ("fill", "snr_db", _RAW, "1e400", False),
    ("fill", "tilt", 0, None, True),
    ("fill", "seq", "88", None, True),
    ("status", "state", True, None, True),
    ("status", "version", 1, None, True),
    ("health", "uptime_s", "86400", None, True),
    ("health", "outbox_depth", False, None, True),
    ("health", "scales", [{**SCALE, "frames_parsed": "3"}], None, True),
    ("health", "sensors", [{**SENSOR, "connected": "yes"}], None, True),
    ("health", "sensors", [{**SENSOR, "no_target": "3"}], None, True),
    ("alert", "value", "40", None, True),
    ("alert", "seq", True, None, True),
    ("alert", "threshold", _RAW, "NaN", False),
    ("tps_alert", "alert_id", "12", None, True),
    ("tps_alert", "alert_id", 12.0, None, False),
    ("tps_alert", "value", "0.82", None, True),
    ("tps_alert", "value", _RAW, "-Infinity", False),
]


@pytest.mark.parametrize(
    ("name", "field", "value", "raw", "schema_too"),
    COERCIONS,
    ids=[f"{n}.{f}={r or json.dumps(v)}" for n, f, v, r, _ in COERCIONS],
)
def test_a_coerced_value_is_refused(
    name: str, field: str, value: Any, raw: str | None, schema_too: bool
) -> None:
    # seq is part of the id: keep the id the valid one, so only the type is wrong
    payload = encode(message(name, **{field: value}, **_same_id(name)), raw)
    error = refused(name, payload)
    if raw in _NOT_JSON:
        assert locations(error) == [()], error.problems
        assert error.problems[0][1].startswith("JSON is malformed"), error.problems
    else:
        assert any(loc[:1] == (field,) for loc in locations(error)), error.problems
    if schema_too:
        assert not schema_validator(name).is_valid(json.loads(payload))


def _same_id(name: str) -> dict[str, Any]:
    if name not in _ID_FIELDS:
        return {}
    id_field = _ID_FIELDS[name][0]
    return {id_field: VALID[name][id_field]}


def test_a_sensor_health_from_an_older_gateway_has_no_no_target() -> None:
    """``no_target`` came with issue 16: a health report without it is valid and says 0."""
    assert "no_target" not in SENSOR
    health = decode_json(encode(message("health")), GatewayHealth)
    assert [s.no_target for s in health.sensors] == [0]
    assert schema_validator("health").is_valid(message("health"))
    counted = message("health", sensors=[{**SENSOR, "no_target": 2}])
    assert decode_json(encode(counted), GatewayHealth).sensors[0].no_target == 2


def test_a_float_field_takes_a_json_integer() -> None:
    """JSON has one number type: 1 is 1.0 where a float is declared (and JSON Schema agrees)."""
    reading = decode_json(encode(message("fill", fillingLevel=1, snr_db=7)), FillReading)
    assert reading.fillingLevel == 1.0
    assert isinstance(reading.fillingLevel, float)
    alert = decode_json(encode(message("alert", value=40, threshold=30)), GatewayAlert)
    assert alert.value == 40.0
    assert schema_validator("fill").is_valid(message("fill", fillingLevel=1))


_NOT_AN_INT = st.one_of(
    st.text(max_size=20),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=1, max_value=NET_G_MAX).map(str),
    st.lists(st.integers(), max_size=2),
    st.none(),
)


@settings(max_examples=200, deadline=None)
@given(_NOT_AN_INT)
def test_anything_but_an_integer_is_refused_for_net_g(value: object) -> None:
    """Strings (numeric ones too), booleans, floats (1250.0 as well), lists, null; NaN and
    Infinity (which Python's json writes) are not JSON: refused as malformed, at the payload."""
    payload = json.dumps(message("deposit", net_g=value)).encode()
    error = refused("deposit", payload)
    not_json = isinstance(value, float) and not math.isfinite(value)
    assert locations(error) == [() if not_json else ("net_g",)]


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(max_size=20),
        st.floats(min_value=0, max_value=1).map(str),
        st.booleans(),
        st.none(),
    )
)
def test_anything_but_a_number_is_refused_for_filling_level(value: object) -> None:
    error = refused("fill", json.dumps(message("fill", fillingLevel=value)).encode())
    assert locations(error) == [("fillingLevel",)]


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-(10**20), max_value=10**20))
def test_net_g_takes_exactly_the_integers_in_its_range(value: int) -> None:
    payload = json.dumps(message("deposit", net_g=value)).encode()
    if 1 <= value <= NET_G_MAX:
        assert decode_json(payload, DepositEvent).net_g == value
    else:
        refused("deposit", payload)


def test_python_callers_still_build_messages_from_python_values() -> None:
    """Strict mode in Python: an int where a float is declared, a datetime object, a str enum
    for a Literal all still work (the gateway, the simulators and the TPS watcher do this)."""
    from enum import StrEnum

    class Level(StrEnum):
        ok = "ok"

    now = datetime.now(UTC)
    reading = checked(
        FillReading(
            reading_id="us-01.p4x8d.3",
            sensor_id="us-01",
            install="p4x8d",
            seq=3,
            tps_code="tps-batu-merah",
            measured_at=now,
            distance_mm=900,
            fillingLevel=1,
            temperature_c=25,
            level_status=Level.ok,  # type: ignore[arg-type]  # what this test tries
        )
    )
    assert reading.fillingLevel == 1.0
    assert isinstance(reading.fillingLevel, float)
    assert decode_json(encode_json(reading), FillReading) == reading
    with pytest.raises(Invalid) as caught:
        checked(FillReading(**{**msgspec.structs.asdict(reading), "distance_mm": "900"}))
    assert locations(caught.value) == [("distance_mm",)]


# ---- size limits -------------------------------------------------------------------------------

_CODE_MAX = "a" * 63
LIMITS: list[tuple[str, str, Any, Any]] = [
    # (message, field, the largest (or smallest) value accepted, one past it)
    ("deposit", "protocol", "p" * 32, "p" * 33),
    ("deposit", "calibration_version", "c" * 64, "c" * 65),
    ("deposit", "raw_frames", ["f"] * RAW_FRAMES_MAX, ["f"] * (RAW_FRAMES_MAX + 1)),
    (
        "deposit",
        "raw_frames",
        ["\x02" * RAW_FRAME_MAX_CHARS],
        ["\x02" * (RAW_FRAME_MAX_CHARS + 1)],
    ),
    ("deposit", "net_g", NET_G_MAX, NET_G_MAX + 1),
    ("deposit", "net_g", 1, 0),
    ("deposit", "tare_g", NET_G_MAX, NET_G_MAX + 1),
    ("deposit", "tare_g", 0, -1),
    ("deposit", "seq", SEQ_MAX, SEQ_MAX + 1),
    ("deposit", "seq", 0, -1),
    ("deposit", "bank_code", _CODE_MAX, _CODE_MAX + "a"),
    ("deposit", "category_code", _CODE_MAX, _CODE_MAX + "a"),
    ("deposit", "scale_id", _CODE_MAX, _CODE_MAX + "a"),
    ("deposit", "gateway_id", _CODE_MAX, _CODE_MAX + "a"),
    ("deposit", "install", "z" * 12, "z" * 13),
    ("deposit", "install", "z" * 4, "z" * 3),
    ("deposit", "card_uid", "A" * 20, "A" * 21),
    ("fill", "raw", "r" * 256, "r" * 257),
    ("fill", "source", "s" * 32, "s" * 33),
    ("fill", "distance_mm", 20_000, 20_001),
    ("fill", "fillingLevel", 1.0, 1.001),
    ("fill", "fillingLevel", 0, -0.001),
    ("fill", "temperature_c", 85, 85.1),
    ("fill", "temperature_c", -40, -40.1),
    ("fill", "battery_pct", 100, 101),
    ("fill", "rssi_dbm", -200, -201),
    ("fill", "snr_db", 40, 40.5),
    ("fill", "pings", 1000, 1001),
    ("fill", "sensor_id", _CODE_MAX, _CODE_MAX + "a"),
    ("status", "version", "v" * 32, "v" * 33),
    ("status", "device_id", _CODE_MAX, _CODE_MAX + "a"),
    ("health", "uptime_s", COUNT_MAX, COUNT_MAX + 1),
    ("health", "outbox_oldest_age_s", COUNT_MAX, COUNT_MAX + 1),
    ("health", "deposits_stored", COUNT_MAX, COUNT_MAX + 1),
    (
        "health",
        "scales",
        [{**SCALE, "scale_id": f"scale-{i}"} for i in range(SCALES_MAX)],  # each id once
        [{**SCALE, "scale_id": f"scale-{i}"} for i in range(SCALES_MAX + 1)],
    ),
    (
        "health",
        "sensors",
        [{**SENSOR, "sensor_id": f"us-{i}"} for i in range(SENSORS_MAX)],  # each sensor once
        [{**SENSOR, "sensor_id": f"us-{i}"} for i in range(SENSORS_MAX + 1)],
    ),
    ("health", "scales", [{**SCALE, "protocol": "p" * 32}], [{**SCALE, "protocol": "p" * 33}]),
    ("health", "scales", [{**SCALE, "protocol": "a12_ww"}], [{**SCALE, "protocol": "A12"}]),
    (
        "health",
        "scales",
        [{**SCALE, "last_g": -SCALE_G_MAX, "zero_drift_g": SCALE_G_MAX}],
        [{**SCALE, "last_g": -SCALE_G_MAX - 1}],
    ),
    (
        "health",
        "scales",
        [{**SCALE, "frames_rejected": COUNT_MAX}],
        [{**SCALE, "frames_rejected": COUNT_MAX + 1}],
    ),
    ("health", "sensors", [{**SENSOR, "kind": "k" * 32}], [{**SENSOR, "kind": "k" * 33}]),
    ("health", "sensors", [{**SENSOR, "kind": "em310_udl"}], [{**SENSOR, "kind": "em310 udl"}]),
    ("health", "version", "v" * 32, "v" * 33),
    (
        "health",
        "alerts_active",
        [ACTIVE_ALERT] * ALERTS_ACTIVE_MAX,
        [ACTIVE_ALERT] * (ALERTS_ACTIVE_MAX + 1),
    ),
    (
        "health",
        "alerts_active",
        [{**ACTIVE_ALERT, "subject": _CODE_MAX}],
        [{**ACTIVE_ALERT, "subject": _CODE_MAX + "a"}],
    ),
    (
        "health",
        "clock",
        {**CLOCK, "offset_ms": -CLOCK_OFFSET_MS_MAX},
        {**CLOCK, "offset_ms": CLOCK_OFFSET_MS_MAX + 1},
    ),
    (
        "health",
        "sensors",
        [{**SENSOR, "readings": COUNT_MAX}],
        [{**SENSOR, "readings": COUNT_MAX + 1}],
    ),
    (
        "health",
        "sensors",
        [{**SENSOR, "no_target": COUNT_MAX}],
        [{**SENSOR, "no_target": COUNT_MAX + 1}],
    ),
    ("alert", "subject", "s" * 64, "s" * 65),
    ("alert", "message", "m" * 300, "m" * 301),
    ("alert", "value", FLOAT_ABS_MAX, FLOAT_ABS_MAX * 1.01),
    ("alert", "threshold", -FLOAT_ABS_MAX, -FLOAT_ABS_MAX * 1.01),
    ("tps_alert", "alert_id", COUNT_MAX, COUNT_MAX + 1),
    ("tps_alert", "alert_id", 1, 0),
    ("tps_alert", "message", "m" * 300, "m" * 301),
    ("tps_alert", "value", FLOAT_ABS_MAX, FLOAT_ABS_MAX * 1.01),
]


@pytest.mark.parametrize(
    ("name", "field", "at_limit", "past_limit"),
    LIMITS,
    ids=[f"{n}.{f}-{i}" for i, (n, f, _, _) in enumerate(LIMITS)],
)
def test_each_limit_accepts_its_bound_and_refuses_one_past_it(
    name: str, field: str, at_limit: Any, past_limit: Any
) -> None:
    validator = schema_validator(name)
    accepted = message(name, **{field: at_limit})
    decode_json(encode(accepted), MODELS[name])
    assert validator.is_valid(accepted), list(validator.iter_errors(accepted))
    # past the limit: the id is left as it was valid, so only the limit is broken
    beyond = message(name, **{field: past_limit})
    if field in ("seq", "gateway_id", "sensor_id", "install"):
        beyond = message(name, **{field: past_limit}, **_same_id(name))
    error = refused(name, encode(beyond))
    assert any(loc[:1] == (field,) for loc in locations(error)), error.problems
    assert not validator.is_valid(beyond)


def _largest(name: str) -> msgspec.Struct:
    """The largest ``name`` message the model allows: every list full, every string at its
    limit and made of its widest character: six bytes (``\\u0000``) in the evidence fields, four
    (UTF-8) in free text, which refuses control characters; every number long."""
    wide = "\x00"
    text = "\U0001f600"
    at = datetime(2026, 11, 23, 9, 15, 2, 345678, tzinfo=timezone(-timedelta(hours=23, minutes=59)))
    code = "a" * 63
    install = "z" * 12
    if name == "deposit":
        return DepositEvent(
            event_id=device_event_id(code, install, SEQ_MAX),
            gateway_id=code,
            install=install,
            seq=SEQ_MAX,
            bank_code=code,
            scale_id=code,
            flow="attendant",
            member_no="M" * 32,
            category_code=code,
            net_g=NET_G_MAX,
            tare_g=NET_G_MAX,
            stable=False,
            protocol=text * 32,
            measured_at=at,
            raw_frames=[wide * RAW_FRAME_MAX_CHARS] * RAW_FRAMES_MAX,
            calibration_version=text * 64,
            clock_synced=False,
        )
    if name == "fill":
        return FillReading(
            reading_id=device_event_id(code, install, SEQ_MAX),
            sensor_id=code,
            install=install,
            seq=SEQ_MAX,
            tps_code=code,
            measured_at=at,
            distance_mm=20_000,
            fillingLevel=0.123456789012345,
            temperature_c=-39.123456789012345,
            battery_pct=100,
            rssi_dbm=-200,
            snr_db=-39.123456789012345,
            source="s" * 32,
            level_status="below_empty",
            tilt=False,
            pings=1000,
            raw=wide * 256,
            clock_synced=False,
        )
    if name == "status":
        return GatewayStatus(
            state="offline", device_id=code, at=at, version=text * 32, install=install, boot=install
        )
    if name == "health":
        scale = ScaleHealth(
            scale_id=code,
            protocol="p" * 32,
            connected=False,
            frames_parsed=COUNT_MAX,
            frames_rejected=COUNT_MAX,
            reconnects=COUNT_MAX,
            last_g=-SCALE_G_MAX,
            stable=False,
            zero_drift_g=-SCALE_G_MAX,
            state="indicator_error",
            state_since=at,
        )
        sensor = SensorHealth(
            sensor_id=code,
            tps_code=code,
            kind="k" * 32,
            connected=False,
            samples_accepted=COUNT_MAX,
            samples_rejected=COUNT_MAX,
            readings=COUNT_MAX,
            no_target=COUNT_MAX,
            no_target_since=at,
        )
        return GatewayHealth(
            gateway_id=code,
            bank_code=code,
            install=install,
            boot=install,
            at=at,
            uptime_s=COUNT_MAX,
            outbox_depth=COUNT_MAX,
            outbox_oldest_age_s=COUNT_MAX,
            outbox_dropped=COUNT_MAX,
            outbox_refused=COUNT_MAX,
            mqtt_reconnects=COUNT_MAX,
            deposits_stored=COUNT_MAX,
            scales=[  # each scale_id once, every one as long
                msgspec.structs.replace(scale, scale_id=f"{code[:-2]}{i:02d}")
                for i in range(SCALES_MAX)
            ],
            sensors=[  # each sensor once, every one as long
                msgspec.structs.replace(sensor, sensor_id=f"{code[:-2]}{i:02d}")
                for i in range(SENSORS_MAX)
            ],
            version=text * 32,
            clock=ClockHealth(
                synchronized=False,
                source="timesyncd",
                offset_ms=-CLOCK_OFFSET_MS_MAX,
                synced_at=at,
            ),
            alerts_active=[
                ActiveAlert(
                    code="indicator_error",
                    subject=code,
                    since=at,
                    value=-1.2345678901234567e-300,
                )
            ]
            * ALERTS_ACTIVE_MAX,
        )
    if name == "alert":
        return GatewayAlert(
            alert_id=device_event_id(code, install, SEQ_MAX),
            gateway_id=code,
            install=install,
            seq=SEQ_MAX,
            bank_code=code,
            code="publish_refused",
            state="cleared",
            subject=text * 64,
            value=-1.2345678901234567e-300,
            threshold=-1.2345678901234567e-300,
            at=at,
            message=text * 300,
        )
    assert name == "tps_alert"
    return TpsAlert(
        alert_id=COUNT_MAX,
        tps_code=code,
        sensor_id=code,
        code="sensor_offline",
        state="cleared",
        value=-1.2345678901234567e-300,
        threshold=-1.2345678901234567e-300,
        raised_at=at,
        cleared_at=at,
        at=at,
        message=text * 300,
    )


@pytest.mark.parametrize("name", list(MODELS))
def test_the_largest_valid_message_fits_the_payload_limit(name: str) -> None:
    largest = _largest(name)
    payload = encode_json(largest)
    assert len(payload) <= MAX_PAYLOAD_BYTES
    assert decode_json(payload, type(largest)) == largest
    if name == "health":  # the one that could come near it: keep a margin for new fields
        assert len(payload) < MAX_PAYLOAD_BYTES - 2048, len(payload)


def test_check_size_counts_bytes() -> None:
    check_size(b" " * MAX_PAYLOAD_BYTES)
    with pytest.raises(PayloadTooLarge, match=r"^oversized: payload of 65537 bytes"):
        check_size(b" " * (MAX_PAYLOAD_BYTES + 1))
    # characters are not bytes: 21,846 three-byte characters are 65,538 bytes
    with pytest.raises(PayloadTooLarge):
        check_size(("€" * 21_846).encode())


# ---- the payload limit at the ingester ----------------------------------------------------------


def _padded(payload: bytes, size: int) -> bytes:
    """``payload`` (a JSON object) with blanks before its closing brace, ``size`` bytes long."""
    assert payload.endswith(b"}")
    assert len(payload) <= size
    return payload[:-1] + b" " * (size - len(payload)) + b"}"


@pytest.fixture
async def ingester(ledger_url: str) -> AsyncIterator[Ingester]:
    settings = load_settings(
        IngestSettings,
        mqtt=MqttSettings(topic_prefix=""),
        influx=InfluxSettings(),
        ledger_url=ledger_url,
    )
    influx = Influx(settings.influx)
    ingester = Ingester(settings, ledger.make_engine(ledger_url), influx)
    yield ingester
    ingester.close()
    await influx.aclose()


def _event(seq: int) -> DepositEvent:
    ev = deposit_event(seq)  # AMB-0001's card at bs-batu-merah, priced in the seeded ledger
    return replace(ev, install="k7q2m", event_id=device_event_id("gw-01", "k7q2m", seq))


async def test_a_payload_of_64_kib_is_applied_and_one_byte_more_is_a_dead_letter(
    ingester: Ingester, ledger_url: str
) -> None:
    topic = Topics("").deposit("bs-batu-merah", "gw-01")
    at_limit = _padded(encode_json(_event(1)), MAX_PAYLOAD_BYTES)
    past_limit = _padded(encode_json(_event(2)), MAX_PAYLOAD_BYTES + 1)
    garbage = b"{" + b"x" * MAX_PAYLOAD_BYTES  # not JSON either: refused for its size, unread
    assert (len(at_limit), len(past_limit)) == (65536, 65537)

    lines = await ingester.handle(topic, at_limit)
    assert len(lines) == 1
    assert "gw-01.k7q2m.1" in lines[0]
    assert await ingester.handle(topic, past_limit) == []
    assert await ingester.handle(topic, garbage) == []

    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as session:
            applied = set(session.scalars(select(ledger.Deposit.event_id)))
            dead = ledger.dead_letters(session)
    finally:
        engine.dispose()
    assert "gw-01.k7q2m.1" in applied
    assert "gw-01.k7q2m.2" not in applied
    # over the limit: its first bytes, its size and hash (a device cannot fill the disk)
    kept = ledger.OVERSIZED_KEPT_BYTES
    assert [d.payload for d in dead] == [past_limit[:kept], garbage[:kept]]
    assert [(d.payload_size, d.truncated) for d in dead] == [(65537, True), (65537, True)]
    for d in dead:
        assert d.topic == topic
        assert d.error.startswith("oversized: payload of 6553")
        assert d.reason == ledger.DeadLetterReason.OVERSIZED
    counted = ingester.metrics.registry.get_sample_value(
        "wastebank_ingest_dead_lettered_total", {"reason": "oversized"}
    )
    assert counted == 2


async def test_a_coerced_payload_at_the_ingester_is_an_invalid_dead_letter(
    ingester: Ingester, ledger_url: str
) -> None:
    topic = Topics("").deposit("bs-batu-merah", "gw-01")
    payload = json.loads(encode_json(_event(3)).decode())
    payload["net_g"] = "1234"
    raw = json.dumps(payload).encode()
    assert await ingester.handle(topic, raw) == []
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as session:
            (dead,) = ledger.dead_letters(session)
            applied = set(session.scalars(select(ledger.Deposit.event_id)))
    finally:
        engine.dispose()
    assert "gw-01.k7q2m.3" not in applied
    assert dead.payload == raw
    assert dead.error == "invalid DepositEvent: net_g: Expected `int`, got `str`"
    assert dead.reason == ledger.DeadLetterReason.INVALID


# ---- the JSON Schema files ---------------------------------------------------------------------


def test_schema_export_equals_the_committed_files(tmp_path: Path) -> None:
    """Fails when a model changed and `wastebank schema export` was not run again."""
    result = CliRunner().invoke(app, ["schema", "export", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    exported = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.json")}
    assert sorted(exported) == sorted(f"{n}.json" for n in MODELS)
    assert sorted(committed) == sorted(exported)
    for file, text in exported.items():
        assert committed[file] == text, f"docs/schema/{file} is stale: run wastebank schema export"
    check = CliRunner().invoke(app, ["schema", "export", "--check", "--out", str(SCHEMA_DIR)])
    assert check.exit_code == 0, check.output
    (tmp_path / "fill.json").write_text("{}\n")
    check = CliRunner().invoke(app, ["schema", "export", "--check", "--out", str(tmp_path)])
    assert check.exit_code == 1
    assert "fill.json" in check.output


@pytest.mark.parametrize("name", list(MODELS))
def test_each_schema_file_is_valid_and_shows_its_limits(name: str) -> None:
    text = (SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8")
    assert text.endswith("}\n")
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"urn:wastebank:wb:v1:{name}"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == MODELS[name].__name__
    assert schema["additionalProperties"] is False
    assert str(MAX_PAYLOAD_BYTES) in schema["description"]
    assert '"pattern"' in text
    assert '"maxLength"' in text
    if name == "deposit":
        assert schema["properties"]["raw_frames"]["maxItems"] == RAW_FRAMES_MAX
        assert schema["properties"]["raw_frames"]["items"]["maxLength"] == RAW_FRAME_MAX_CHARS
        assert "{gateway_id}.{install}.{seq}" in schema["description"]
        assert "Exactly one of card_uid" in schema["description"]


# ---- the examples of docs/protocol.md ----------------------------------------------------------

_FENCE = re.compile(r"^```json\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_MARK = re.compile(r"^<!-- schema: ([a-z_]+) -->$")


def protocol_examples() -> list[tuple[int, str, str]]:
    """(line, schema name, JSON text) of every ```json block; each must be marked with
    ``<!-- schema: NAME -->`` on the line before it (``none`` for JSON that is not a message)."""
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        line = text.count("\n", 0, match.start()) + 1
        mark = _MARK.match(before)
        assert mark, f"docs/protocol.md:{line}: mark the example with <!-- schema: NAME -->"
        found.append((line, mark.group(1), match.group(1)))
    return found


def test_every_message_has_an_example_in_the_protocol_document() -> None:
    examples = protocol_examples()
    assert {name for _, name, _ in examples} - {"none"} == set(MODELS)
    assert all(name in (*MODELS, "none") for _, name, _ in examples)


_EXAMPLES = protocol_examples()


@pytest.mark.parametrize(
    ("line", "name", "body"), _EXAMPLES, ids=[f"line{line}-{name}" for line, name, _ in _EXAMPLES]
)
def test_a_protocol_example_passes_its_schema_and_its_model(
    line: int, name: str, body: str
) -> None:
    if name == "none":
        return
    payload = json.loads(body)
    errors = list(schema_validator(name).iter_errors(payload))
    assert not errors, f"docs/protocol.md:{line}: {errors[0].message}"
    decode_json(body, MODELS[name])
    assert len(body.encode()) <= MAX_PAYLOAD_BYTES


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("deposit", "bank_code", "bs-batu-merah\n"),
        ("deposit", "card_uid", "04A1B2C3D4\n"),
        ("deposit", "install", "k7q2m\n"),
        ("fill", "source", "em310_udl\n"),
        ("health", "scales", [{**SCALE, "protocol": "gs_nt\n"}]),
    ],
    ids=["code", "card_uid", "install", "source", "name"],
)
def test_a_pattern_refuses_a_final_newline(name: str, field: str, value: Any) -> None:
    """Python's ``$`` also matches before a final newline: every pattern is ``whole(...)``."""
    error = refused(name, encode(message(name, **{field: value}, **_same_id(name))))
    assert any(loc[:1] == (field,) for loc in locations(error)), error.problems
    assert not schema_validator(name).is_valid(message(name, **{field: value}))


def test_alerts_active_absent_stays_absent() -> None:
    """An older gateway's report without ``alerts_active`` is not one saying it has none: the
    field stays unset (InfluxDB gets no count) and is not written back as ``[]``."""
    older = {k: v for k, v in message("health").items() if k != "alerts_active"}
    health = decode_json(encode(older), GatewayHealth)
    assert health.alerts_active is msgspec.UNSET
    assert health.active == []
    assert "alerts_active" not in json.loads(encode_json(health))
    none = decode_json(encode(message("health", alerts_active=[])), GatewayHealth)
    assert none.alerts_active == []
    assert json.loads(encode_json(none))["alerts_active"] == []


def test_the_exported_patterns_are_whole() -> None:
    """CODE_PATTERN, INSTALL_PATTERN and EVENT_ID_PATTERN serve other modules too (the gateway's
    settings and endpoint, the device registry, the simulators): a final newline is refused
    there as well, with ``re.match`` or a msgspec ``Meta``."""
    for pattern, good in (
        (CODE_PATTERN, "gw-01"),
        (INSTALL_PATTERN, "k7q2m"),
        (EVENT_ID_PATTERN, "gw-01.k7q2m.15"),
    ):
        assert re.match(pattern, good)
        assert not re.match(pattern, good + "\n")
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(good + "\n", Annotated[str, msgspec.Meta(pattern=pattern)])
