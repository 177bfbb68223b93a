"""Fill sensors that arrive over MQTT: the Milesight EM310-UDL LoRaWAN payload, a network
server's uplink JSON (ChirpStack v4, The Things Stack v3) around it, and sensors publishing their
own JSON (plain or FIWARE WasteContainer-like). Pure."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from gateway.fill_sensor.samples import MAX_DISTANCE_MM, DistanceSample, FillDecodeError

LoRaWanNetwork = Literal["chirpstack_v4", "ttn_v3"]

# ---- Milesight EM310-UDL -------------------------------------------------------------------------

# (channel, type) -> data length, for the attribute and downlink-response channels the vendor
# decoder skips (Milesight-IoT/SensorDecoders EM310-UDL_Decoder.js).
_EM310_SKIP: Final[dict[tuple[int, int], int]] = {
    (0xFF, 0x01): 1,  # protocol version
    (0xFF, 0x09): 2,  # hardware version
    (0xFF, 0x0A): 2,  # firmware version
    (0xFF, 0xFF): 2,  # TSL version
    (0xFF, 0x16): 8,  # serial number
    (0xFF, 0x0F): 1,  # LoRaWAN class
    (0xFF, 0xFE): 1,  # reset event
    (0xFF, 0x0B): 1,  # device status
    (0xFF, 0x10): 1,  # downlink response: reboot
    (0xFE, 0x10): 1,
    (0xFF, 0x02): 2,  # downlink response: collection interval
    (0xFE, 0x02): 2,
    (0xFF, 0x03): 2,  # downlink response: report interval
    (0xFE, 0x03): 2,
    (0xFF, 0x06): 9,  # downlink response: distance alarm config
    (0xFE, 0x06): 9,
}


@dataclass(frozen=True, slots=True)
class Em310Payload:
    """Decoded EM310-UDL telemetry; fields absent from the uplink are None.

    ``unknown_at`` is the offset of a channel this decoder does not know; like the vendor
    decoder it stops there and keeps what it already decoded.
    """

    battery_pct: int | None
    distance_mm: int | None
    tilt: bool | None
    unknown_at: int | None = None


def decode_em310_udl(payload: bytes | str) -> Em310Payload:
    """Decode the FRMPayload, given as bytes or as the base64 text found in uplink JSON.

    ``01755C 03824408 040001`` -> battery 92 %, distance 2116 mm, tilt. Raises
    :class:`FillDecodeError` for bad base64, a truncated channel or a battery above 100 %.
    """
    data = _b64(payload) if isinstance(payload, str) else bytes(payload)
    battery: int | None = None
    distance: int | None = None
    tilt: bool | None = None
    i = 0
    while i < len(data):
        if len(data) - i < 2:
            raise FillDecodeError("bad_format", data, f"truncated channel header at byte {i}")
        key = (data[i], data[i + 1])
        size = {(0x01, 0x75): 1, (0x03, 0x82): 2, (0x04, 0x00): 1}.get(key, _EM310_SKIP.get(key))
        if size is None:
            return Em310Payload(battery, distance, tilt, unknown_at=i)
        value = data[i + 2 : i + 2 + size]
        if len(value) != size:
            raise FillDecodeError(
                "bad_format", data, f"channel {key[0]:02X} {key[1]:02X} truncated"
            )
        if key == (0x01, 0x75):
            battery = value[0]
            if battery > 100:
                raise FillDecodeError("bad_value", data, f"battery {battery} %")
        elif key == (0x03, 0x82):
            distance = int.from_bytes(value, "little")
        elif key == (0x04, 0x00):
            tilt = value[0] == 1
        i += 2 + size
    return Em310Payload(battery, distance, tilt)


# ---- LoRaWAN network-server uplink JSON ----------------------------------------------------------

_DEV_EUI_RE: Final = re.compile(r"[0-9A-Fa-f]{16}")


@dataclass(frozen=True, slots=True)
class LoRaWanUplink:
    """The parts of a network server's uplink event this project uses.

    ``rssi_dbm``/``snr_db`` come from the gateway that heard the device best (highest RSSI);
    ``dev_eui`` is lower-case hex; ``data`` is the decrypted FRMPayload (empty if absent).
    """

    network: LoRaWanNetwork
    dev_eui: str
    data: bytes
    f_port: int | None
    f_cnt: int | None
    rssi_dbm: int | None
    snr_db: float | None
    received_at: datetime | None


def parse_lorawan_uplink(payload: bytes | str | Mapping[str, Any]) -> LoRaWanUplink:
    """Parse a ChirpStack v4 or TTN v3 uplink event (MQTT JSON) into a :class:`LoRaWanUplink`.

    ChirpStack v4 (``application/{application_id}/device/{dev_eui}/event/up``, protobuf JSON
    mapping of ``integration.UplinkEvent``): ``deviceInfo.devEui``, ``data`` (base64), ``fPort``,
    ``fCnt``, ``rxInfo[].rssi``, ``rxInfo[].snr``, ``time``.

    TTN / The Things Stack v3 (``v3/{app}@{tenant}/devices/{device}/up``):
    ``end_device_ids.dev_eui``,
    ``uplink_message.frm_payload`` (base64), ``uplink_message.f_port``, ``uplink_message.f_cnt``,
    ``uplink_message.rx_metadata[].rssi`` (or ``channel_rssi``), ``...rx_metadata[].snr``,
    ``received_at`` (else ``uplink_message.received_at``).

    Both omit fields whose value is empty, 0 or false, so absent numbers are read as missing.
    """
    raw = _raw_bytes(payload)
    obj = _json_object(payload, raw)
    if "uplink_message" in obj:
        return _parse_ttn(obj, raw)
    if "deviceInfo" in obj:
        return _parse_chirpstack(obj, raw)
    raise FillDecodeError("bad_format", raw, "neither a ChirpStack v4 nor a TTN v3 uplink")


def _parse_chirpstack(obj: Mapping[str, Any], raw: bytes) -> LoRaWanUplink:
    info = _mapping(obj.get("deviceInfo"), "deviceInfo", raw)
    rssi, snr = _best_gateway(obj.get("rxInfo"), "rxInfo", raw)
    data = obj.get("data", "")
    return LoRaWanUplink(
        network="chirpstack_v4",
        dev_eui=_dev_eui(info.get("devEui"), "deviceInfo.devEui", raw),
        data=_b64(_string(data, "data", raw)),
        f_port=_opt_int(obj.get("fPort"), "fPort", raw),
        f_cnt=_opt_int(obj.get("fCnt"), "fCnt", raw),
        rssi_dbm=rssi,
        snr_db=snr,
        received_at=_opt_time(obj.get("time"), "time", raw),
    )


def _parse_ttn(obj: Mapping[str, Any], raw: bytes) -> LoRaWanUplink:
    ids = _mapping(obj.get("end_device_ids"), "end_device_ids", raw)
    up = _mapping(obj.get("uplink_message"), "uplink_message", raw)
    rssi, snr = _best_gateway(up.get("rx_metadata"), "uplink_message.rx_metadata", raw)
    received = obj.get("received_at", up.get("received_at"))
    return LoRaWanUplink(
        network="ttn_v3",
        dev_eui=_dev_eui(ids.get("dev_eui"), "end_device_ids.dev_eui", raw),
        data=_b64(_string(up.get("frm_payload", ""), "uplink_message.frm_payload", raw)),
        f_port=_opt_int(up.get("f_port"), "uplink_message.f_port", raw),
        f_cnt=_opt_int(up.get("f_cnt"), "uplink_message.f_cnt", raw),
        rssi_dbm=rssi,
        snr_db=snr,
        received_at=_opt_time(received, "received_at", raw),
    )


def _best_gateway(value: Any, name: str, raw: bytes) -> tuple[int | None, float | None]:
    if value is None:
        return None, None
    if not isinstance(value, list):
        raise FillDecodeError("bad_format", raw, f"{name} must be a list")
    best: tuple[int, float | None] | None = None
    for i, item in enumerate(value):
        entry = _mapping(item, f"{name}[{i}]", raw)
        rssi_value = entry.get("rssi", entry.get("channel_rssi"))
        rssi = _opt_int(rssi_value, f"{name}[{i}].rssi", raw)
        snr = _opt_float(entry.get("snr"), f"{name}[{i}].snr", raw)
        if rssi is not None and (best is None or rssi > best[0]):
            best = (rssi, snr)
    return (None, None) if best is None else best


def decode_em310_uplink(payload: bytes | str | Mapping[str, Any]) -> DistanceSample:
    """An EM310-UDL sample from a ChirpStack v4 / TTN v3 uplink (battery, tilt, radio carried)."""
    uplink = parse_lorawan_uplink(payload)
    decoded = decode_em310_udl(uplink.data)
    return DistanceSample(
        distance_mm=decoded.distance_mm,
        source="em310_udl",
        raw=uplink.data,
        battery_pct=decoded.battery_pct,
        rssi_dbm=uplink.rssi_dbm,
        snr_db=uplink.snr_db,
        tilt=decoded.tilt,
        device_eui=uplink.dev_eui,
        received_at=uplink.received_at,
    )


# ---- plain JSON ----------------------------------------------------------------------------------


def decode_json_reading(payload: bytes | str | Mapping[str, Any]) -> DistanceSample:
    """A sample from ``{"distance_mm": 812}`` or FIWARE-like ``{"fillingLevel": 0.4}``.

    Optional: ``temperature_c`` (or FIWARE ``temperature``, degC), ``battery_pct``, ``rssi_dbm``,
    ``snr_db``. NGSI-v2 normalized attributes (``{"fillingLevel": {"value": 0.4}}``) work too.
    FIWARE ``fillingLevel: null`` means "unknown" and is rejected as ``bad_value``.
    """
    raw = _raw_bytes(payload)
    obj = _json_object(payload, raw)
    distance = _ngsi(obj.get("distance_mm"))
    level = _ngsi(obj.get("fillingLevel"))
    if distance is None and level is None:
        if "fillingLevel" in obj:
            raise FillDecodeError("bad_value", raw, "fillingLevel is null (unknown)")
        raise FillDecodeError("bad_format", raw, "needs distance_mm or fillingLevel")
    distance_mm: int | None = None
    if distance is not None:
        value = _opt_float(distance, "distance_mm", raw)
        if value is None or not 0 <= value <= MAX_DISTANCE_MM:
            raise FillDecodeError("bad_value", raw, f"distance_mm outside 0..{MAX_DISTANCE_MM}")
        distance_mm = round(value)
    ratio = _opt_float(level, "fillingLevel", raw)
    if ratio is not None and not 0.0 <= ratio <= 1.0:
        raise FillDecodeError("bad_value", raw, "fillingLevel outside 0..1")
    temperature = _opt_float(
        _ngsi(obj.get("temperature_c", obj.get("temperature"))), "temperature_c", raw
    )
    battery = _opt_int(_ngsi(obj.get("battery_pct")), "battery_pct", raw)
    rssi = _opt_int(_ngsi(obj.get("rssi_dbm")), "rssi_dbm", raw)
    snr = _opt_float(_ngsi(obj.get("snr_db")), "snr_db", raw)
    for name, number, low, high in (
        ("temperature_c", temperature, -40, 85),
        ("battery_pct", battery, 0, 100),
        ("rssi_dbm", rssi, -200, 20),
        ("snr_db", snr, -40, 40),
    ):
        if number is not None and not low <= number <= high:
            raise FillDecodeError("bad_value", raw, f"{name} outside {low}..{high}")
    return DistanceSample(
        distance_mm=distance_mm,
        source="json",
        raw=raw,
        fill_ratio=ratio,
        temperature_c=temperature,
        battery_pct=battery,
        rssi_dbm=rssi,
        snr_db=snr,
    )


def _ngsi(value: Any) -> Any:
    """NGSI-v2 normalized ``{"type": ..., "value": x}`` -> x; anything else unchanged."""
    if isinstance(value, Mapping) and "value" in value:
        return value["value"]
    return value


# ---- JSON helpers --------------------------------------------------------------------------------


def _raw_bytes(payload: bytes | str | Mapping[str, Any]) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8", "replace")
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def _json_object(payload: bytes | str | Mapping[str, Any], raw: bytes) -> Mapping[str, Any]:
    if isinstance(payload, Mapping):
        return payload
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):
        raise FillDecodeError("bad_format", raw, "not JSON") from None
    return _mapping(obj, "payload", raw)


def _mapping(value: Any, name: str, raw: bytes) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FillDecodeError("bad_format", raw, f"{name} must be an object")
    return value


def _string(value: Any, name: str, raw: bytes) -> str:
    if not isinstance(value, str):
        raise FillDecodeError("bad_format", raw, f"{name} must be a string")
    return value


def _opt_int(value: Any, name: str, raw: bytes) -> int | None:
    number = _opt_float(value, name, raw)
    if number is None:
        return None
    if number != int(number):
        raise FillDecodeError("bad_value", raw, f"{name} must be an integer")
    return int(number)


def _opt_float(value: Any, name: str, raw: bytes) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FillDecodeError("bad_format", raw, f"{name} must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        raise FillDecodeError("bad_value", raw, f"{name} is out of range") from None
    if not math.isfinite(number):
        raise FillDecodeError("bad_value", raw, f"{name} must be finite")
    return number


def _opt_time(value: Any, name: str, raw: bytes) -> datetime | None:
    if value is None:
        return None
    text = _string(value, name, raw)
    # RFC 3339 with up to nanoseconds ("...:43.383634108Z"); datetime keeps microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FillDecodeError("bad_format", raw, f"{name} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise FillDecodeError("bad_value", raw, f"{name} has no time zone")
    return moment


def _dev_eui(value: Any, name: str, raw: bytes) -> str:
    text = _string(value, name, raw)
    if _DEV_EUI_RE.fullmatch(text) is None:
        raise FillDecodeError("bad_format", raw, f"{name} must be 16 hex digits")
    return text.lower()


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FillDecodeError("bad_format", text.encode("utf-8", "replace"), "bad base64") from None
