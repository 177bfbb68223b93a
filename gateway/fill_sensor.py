"""TPS container fill sensors: bytes or uplink JSON in, fill readings out. Pure: no I/O, no clock.

An ultrasonic sensor looks down into the container; the distance to the waste surface shrinks as
it fills (docs/protocol.md §3). This module turns what the sensors send into
:class:`DistanceSample` objects, and a per-sensor :class:`FillProcessor` turns samples into
:class:`FillEstimate` objects (median, spike rejection, temperature compensation, fill ratio),
which become :class:`wastebank.messages.FillReading` once the caller adds ``seq`` and a time.

Decoders (each counts what it rejects; none raises on line noise):

* :class:`Mode2Decoder` -- the 4-byte binary frame ``FF H L SUM`` (distance = H*256+L mm, SUM = low
  8 bits of 0xFF+H+L) of the JSN-SR04T in mode 2 (R27 = 47 kOhm, 9600 8N1, one frame per 100 ms)
  and the reply to ``0x55`` in its serial-triggered mode, DFRobot A02YYUW / SEN0312 and DYP-ME007YS.
* :class:`MaxBotixDecoder` -- ASCII ``R`` + digits + CR. Three digits are inches (LV-MaxSonar-EZ
  MB1000-MB1040, "up to a maximum of 255"); four digits are millimetres on HRXL-MaxSonar
  (MB736x/MB738x) and HRUSB-MaxSonar, centimetres on the 1-cm XL-MaxSonar (e.g. MB7066, MB7092):
  choose with ``four_digit_unit``.
* :func:`decode_em310_udl` -- the Milesight EM310-UDL LoRaWAN payload (TLV, little-endian:
  battery ``01 75``, distance ``03 82`` in mm, position ``04 00``; Milesight-IoT/SensorDecoders).
* :func:`parse_lorawan_uplink` -- a network server's MQTT uplink JSON: ChirpStack v4 and The Things
  Stack (TTN) v3; :func:`decode_em310_uplink` combines the two.
* :func:`decode_json_reading` -- plain JSON ``{"distance_mm": 812}`` or FIWARE WasteContainer-like
  ``{"fillingLevel": 0.4}`` (keyValues or NGSI-v2 normalized ``{"value": 0.4}``).

Errors are :class:`FillDecodeError` with a short ``reason`` for counting.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import statistics
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, TypeVar

from wastebank.messages import FillReading, device_event_id

FillSource = Literal["jsn_sr04t", "maxbotix", "em310_udl", "json"]
RejectReason = Literal["checksum", "bad_format", "bad_value", "overflow", "out_of_range", "spike"]
LevelStatus = Literal["ok", "over_full", "below_empty"]
LoRaWanNetwork = Literal["chirpstack_v4", "ttn_v3"]
_T = TypeVar("_T")

MAX_DISTANCE_MM: Final = 20_000
"""Largest distance a :class:`FillReading` can carry."""
RAW_EVIDENCE_CHARS: Final = 256
"""``FillReading.raw`` keeps at most this many characters of the frames behind a reading."""

SPEED_OF_SOUND_0C: Final = 331.3
"""Speed of sound in dry air at 0 degC, m/s."""
SPEED_OF_SOUND_PER_C: Final = 0.606
"""Increase of the speed of sound per degC, m/s (linear approximation, good to about +-30 degC)."""
CALIBRATION_C: Final = 20.0
"""Temperature at which a sensor that does not compensate is assumed to be calibrated."""


class FillDecodeError(ValueError):
    """Input that is not a valid sensor frame or uplink.

    ``reason`` is a short machine id for counting rejects (``checksum``, ``bad_format``,
    ``bad_value``, ``overflow``); ``raw`` holds (the start of) the offending input.
    """

    def __init__(self, reason: RejectReason, raw: bytes, detail: str = "") -> None:
        self.reason: RejectReason = reason
        self.raw = raw
        self.detail = detail
        text = f"{reason}: {raw[:64]!r}"
        super().__init__(f"{text} ({detail})" if detail else text)


@dataclass(frozen=True, slots=True)
class DistanceSample:
    """One measurement as the sensor reported it, before any filtering.

    ``distance_mm`` is None when the input carries no distance (an EM310 uplink with attributes
    only, or JSON with ``fillingLevel`` only, which is then in ``fill_ratio``).
    """

    distance_mm: int | None
    source: FillSource
    raw: bytes
    fill_ratio: float | None = None
    temperature_c: float | None = None
    battery_pct: int | None = None
    rssi_dbm: int | None = None
    snr_db: float | None = None
    tilt: bool | None = None
    device_eui: str | None = None
    received_at: datetime | None = None

    def evidence(self) -> str:
        """The raw input as text: hex bytes for binary frames, the text itself otherwise."""
        if self.source in ("jsn_sr04t", "em310_udl"):
            return self.raw.hex(" ").upper()
        return self.raw.decode("ascii", "backslashreplace").replace("\r", "\\r")


# ---- JSN-SR04T / A02YYUW / ME007YS binary frames -------------------------------------------------

MODE2_HEADER: Final = 0xFF
MODE2_FRAME_LEN: Final = 4


def mode2_checksum(high: int, low: int) -> int:
    """SUM byte of a mode-2 frame: the low 8 bits of 0xFF + H + L."""
    return (MODE2_HEADER + high + low) & 0xFF


def decode_mode2_frame(frame: bytes) -> int:
    """Distance in mm from exactly one frame; raises :class:`FillDecodeError`."""
    if len(frame) != MODE2_FRAME_LEN or frame[0] != MODE2_HEADER:
        raise FillDecodeError("bad_format", frame, "not FF H L SUM")
    if mode2_checksum(frame[1], frame[2]) != frame[3]:
        raise FillDecodeError("checksum", frame)
    return frame[1] * 256 + frame[2]


class Mode2Decoder:
    """Stream decoder for ``FF H L SUM`` frames.

    It looks for the 0xFF header and checks the sum; on a bad sum it counts a ``checksum`` reject
    and resynchronises on the next 0xFF *after* that header, so a frame hidden behind a false
    header (``FF FF 07 A1 A7``) is still found. Bytes before a header are counted in
    ``skipped_bytes``. Between calls the buffer holds at most 3 bytes (an incomplete frame), so
    it is bounded whatever arrives; the result does not depend on how the stream is chunked.
    Invariant: bytes fed = 4 * frames + rejects["checksum"] + skipped_bytes + buffered.
    """

    def __init__(self, source: FillSource = "jsn_sr04t") -> None:
        self.source: FillSource = source
        self.frames = 0
        self.skipped_bytes = 0
        self.rejects: Counter[RejectReason] = Counter()
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        """Forget a partial frame (e.g. after reopening the port)."""
        self._buf.clear()

    def feed(self, data: bytes) -> list[DistanceSample]:
        buf = self._buf
        buf += data
        out: list[DistanceSample] = []
        pos, size = 0, len(buf)
        while pos < size:
            start = buf.find(MODE2_HEADER, pos)
            if start < 0:
                self.skipped_bytes += size - pos
                pos = size
                break
            self.skipped_bytes += start - pos
            pos = start
            if size - start < MODE2_FRAME_LEN:
                break
            high, low, total = buf[start + 1], buf[start + 2], buf[start + 3]
            if mode2_checksum(high, low) != total:
                self.rejects["checksum"] += 1
                pos = start + 1
                continue
            frame = bytes(buf[start : start + MODE2_FRAME_LEN])
            out.append(DistanceSample(high * 256 + low, self.source, frame))
            self.frames += 1
            pos = start + MODE2_FRAME_LEN
        del buf[:pos]
        return out


# ---- MaxBotix ASCII ------------------------------------------------------------------------------

MM_PER_INCH: Final = 25.4
MAXBOTIX_MAX_INCHES: Final = 255
_MAXBOTIX_RE: Final = re.compile(rb"R([0-9]{3,4}) ?")


class MaxBotixDecoder:
    """Stream decoder for MaxBotix serial output ``R`` + 3 or 4 digits (+ optional space) + CR.

    Three digits are inches (converted to mm); four digits are mm, or cm when
    ``four_digit_unit="cm"`` (XL-MaxSonar). A line that does not match (e.g. the partial line
    seen right after opening the port, or bytes from an inverted RS-232 output read as TTL) is
    a ``bad_format`` reject; more than ``max_line`` bytes without CR is one ``overflow`` reject
    and the rest of that line is dropped. LF is ignored.
    """

    def __init__(self, *, four_digit_unit: Literal["mm", "cm"] = "mm", max_line: int = 16) -> None:
        if max_line < 6:
            raise ValueError("max_line must be >= 6")
        self.four_digit_unit = four_digit_unit
        self.max_line = max_line
        self.frames = 0
        self.dropped_bytes = 0
        self.rejects: Counter[RejectReason] = Counter()
        self._buf = bytearray()
        self._discarding = False

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()
        self._discarding = False

    def feed(self, data: bytes) -> list[DistanceSample]:
        out: list[DistanceSample] = []
        for chunk_end, piece in _split_keep_end(data.replace(b"\n", b""), b"\r"):
            if self._discarding:
                self.dropped_bytes += len(piece)
                self._discarding = not chunk_end
                continue
            self._buf += piece
            if len(self._buf) > self.max_line:
                self.rejects["overflow"] += 1
                self.dropped_bytes += len(self._buf)
                self._buf.clear()
                self._discarding = not chunk_end
                continue
            if chunk_end:
                line = bytes(self._buf)
                self._buf.clear()
                sample = self._parse(line)
                if sample is not None:
                    out.append(sample)
        return out

    def _parse(self, line: bytes) -> DistanceSample | None:
        if not line:
            return None
        match = _MAXBOTIX_RE.fullmatch(line)
        if match is None:
            self.rejects["bad_format"] += 1
            return None
        digits = match[1]
        value = int(digits)
        if len(digits) == 3:
            if value > MAXBOTIX_MAX_INCHES:
                self.rejects["bad_value"] += 1
                return None
            distance = round(value * MM_PER_INCH)
        else:
            distance = value * 10 if self.four_digit_unit == "cm" else value
        self.frames += 1
        return DistanceSample(distance, "maxbotix", line + b"\r")


def _split_keep_end(data: bytes, sep: bytes) -> list[tuple[bool, bytes]]:
    """Pieces of ``data`` split at ``sep``; True marks pieces that ended with ``sep``."""
    parts = data.split(sep)
    return [
        (i < len(parts) - 1, part) for i, part in enumerate(parts) if part or i < len(parts) - 1
    ]


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


# ---- physics and geometry ------------------------------------------------------------------------


def speed_of_sound(temperature_c: float) -> float:
    """c = 331.3 + 0.606 * T  (m/s, T in degC)."""
    return SPEED_OF_SOUND_0C + SPEED_OF_SOUND_PER_C * temperature_c


def compensate_distance(
    reported_mm: float, temperature_c: float, calibrated_at_c: float = CALIBRATION_C
) -> float:
    """True distance from one reported by a sensor that assumes the speed of sound at
    ``calibrated_at_c``: d_true = d_reported * c(T) / c(T_cal). The echo time is fixed, so in
    warmer (faster) air the sensor under-reads: at 35 degC a reported 1000 mm is 1026.5 mm."""
    return reported_mm * speed_of_sound(temperature_c) / speed_of_sound(calibrated_at_c)


def fill_ratio(distance_mm: float, empty_mm: float, full_mm: float) -> float:
    """FIWARE ``fillingLevel``: (empty - d) / (empty - full), clamped to 0..1."""
    if empty_mm <= full_mm:
        raise ValueError("empty_mm must be greater than full_mm")
    return min(1.0, max(0.0, (empty_mm - distance_mm) / (empty_mm - full_mm)))


def distance_for_fill(ratio: float, empty_mm: float, full_mm: float) -> float:
    """Inverse of :func:`fill_ratio` for 0 <= ratio <= 1."""
    if empty_mm <= full_mm:
        raise ValueError("empty_mm must be greater than full_mm")
    return empty_mm - ratio * (empty_mm - full_mm)


def level_status(distance_mm: float, empty_mm: float, full_mm: float) -> LevelStatus:
    """``over_full`` nearer than the full mark (heaped), ``below_empty`` beyond the floor."""
    if distance_mm < full_mm:
        return "over_full"
    if distance_mm > empty_mm:
        return "below_empty"
    return "ok"


# ---- the per-sensor processor --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillConfig:
    """Geometry and filter parameters of one sensor on one container.

    Args:
        empty_distance_mm: sensor -> container floor (the calibrated empty reading).
        full_distance_mm: distance that counts as full (at or beyond the blind zone).
        window: pings per reading; the reading is their median (1 = pass through, for
            LoRaWAN sensors that filter on board).
        min_valid_mm: pings nearer than this are in the blind zone: rejected ``out_of_range``.
        max_valid_mm: pings farther are lost echoes / beyond the floor (default
            ``empty_distance_mm + 300``): rejected ``out_of_range``.
        spike_mm: a ping farther than this from the median of the last ``spike_history``
            accepted pings is a spike (None = no spike rejection).
        spike_history: accepted pings the spike reference is the median of.
        spike_run: this many consecutive spikes that agree with each other (within
            ``spike_mm``) are a real change (a pickup, a cart tipped in): re-admitted.
        calibrated_at_c: the temperature the sensor's speed of sound assumes; None = the
            sensor compensates itself (or no compensation wanted).
    """

    empty_distance_mm: int
    full_distance_mm: int
    window: int = 5
    min_valid_mm: int = 200
    max_valid_mm: int | None = None
    spike_mm: int | None = 150
    spike_history: int = 9
    spike_run: int = 3
    calibrated_at_c: float | None = CALIBRATION_C

    def __post_init__(self) -> None:
        if self.empty_distance_mm - self.full_distance_mm < 50:
            raise ValueError("empty_distance_mm must exceed full_distance_mm by at least 50 mm")
        if not 0 <= self.full_distance_mm or self.empty_distance_mm > MAX_DISTANCE_MM:
            raise ValueError(f"distances must be within 0..{MAX_DISTANCE_MM} mm")
        if self.window < 1 or self.spike_history < 1 or self.spike_run < 1:
            raise ValueError("window, spike_history and spike_run must be >= 1")
        if self.spike_mm is not None and self.spike_mm < 1:
            raise ValueError("spike_mm must be >= 1 (or None)")
        if self.min_valid_mm < 0 or self.max_range_mm <= self.min_valid_mm:
            raise ValueError("min_valid_mm must be >= 0 and below max_valid_mm")

    @property
    def max_range_mm(self) -> int:
        if self.max_valid_mm is not None:
            return self.max_valid_mm
        return self.empty_distance_mm + 300


@dataclass(frozen=True, slots=True)
class FillEstimate:
    """A filtered reading, ready to become a :class:`FillReading` once it has ``seq`` and a time."""

    distance_mm: int
    filling_level: float
    level_status: LevelStatus
    source: FillSource
    pings: int
    raw: str
    temperature_c: float | None = None
    battery_pct: int | None = None
    rssi_dbm: int | None = None
    snr_db: float | None = None
    tilt: bool | None = None
    device_eui: str | None = None
    received_at: datetime | None = None

    def to_reading(
        self,
        *,
        sensor_id: str,
        tps_code: str,
        seq: int,
        install: str | None,
        measured_at: datetime | None = None,
    ) -> FillReading:
        """The message; ``measured_at`` defaults to the network server's ``received_at``."""
        when = measured_at or self.received_at
        if when is None:
            raise ValueError("measured_at is required when the sample has no received_at")
        return FillReading(
            reading_id=device_event_id(sensor_id, install, seq),
            sensor_id=sensor_id,
            install=install,
            seq=seq,
            tps_code=tps_code,
            measured_at=when,
            distance_mm=self.distance_mm,
            fillingLevel=self.filling_level,
            temperature_c=self.temperature_c,
            battery_pct=self.battery_pct,
            rssi_dbm=self.rssi_dbm,
            snr_db=self.snr_db,
            source=self.source,
            level_status=self.level_status,
            tilt=self.tilt,
            pings=self.pings,
            raw=self.raw or None,
        )


@dataclass
class _Ping:
    distance: float
    sample: DistanceSample


@dataclass
class FillProcessor:
    """Raw samples of one sensor in, :class:`FillEstimate` out (one per ``window`` accepted pings).

    Per sample: derive a distance from ``fill_ratio`` if that is all it has; reject it as
    ``out_of_range`` outside [min_valid_mm, max_valid_mm] (checked on the reported value: blind
    zone and maximum range are properties of the sensor); compensate for temperature
    (:func:`compensate_distance`, using the sample's temperature, else the one passed to
    :meth:`add`); reject it as ``spike`` if it is more than ``spike_mm`` from the running median;
    otherwise add it to the window. A full window gives an estimate: the median distance, its
    fill ratio (clamped) and :func:`level_status`; battery, temperature, radio and tilt are the
    latest the window's samples carried. A sample with neither distance nor ratio (an EM310
    uplink with attributes only) counts as ``bad_value``. Counters: ``accepted``,
    ``estimates``, ``readmitted`` and ``rejects`` by reason.
    """

    config: FillConfig
    accepted: int = field(default=0, init=False)
    estimates: int = field(default=0, init=False)
    readmitted: int = field(default=0, init=False)
    rejects: Counter[RejectReason] = field(default_factory=Counter, init=False)
    _window: list[_Ping] = field(default_factory=list, init=False)
    _history: deque[float] = field(init=False)
    _suspects: deque[_Ping] = field(init=False)

    def __post_init__(self) -> None:
        self._history = deque(maxlen=self.config.spike_history)
        self._suspects = deque(maxlen=self.config.spike_run)

    @property
    def reference_mm(self) -> float | None:
        """Median of recent accepted pings (the spike reference), None before any."""
        return statistics.median(self._history) if self._history else None

    def reset(self) -> None:
        """Forget the window and the spike reference (e.g. after the sensor was moved)."""
        self._window.clear()
        self._history.clear()
        self._suspects.clear()

    def add(
        self, sample: DistanceSample, *, temperature_c: float | None = None
    ) -> FillEstimate | None:
        """Take one sample; return an estimate when it completes the window."""
        cfg = self.config
        reported = self._reported_mm(sample)
        if reported is None:
            return None
        if not cfg.min_valid_mm <= reported <= cfg.max_range_mm:
            self.rejects["out_of_range"] += 1
            return None
        temperature = sample.temperature_c if sample.temperature_c is not None else temperature_c
        distance = float(reported)
        if cfg.calibrated_at_c is not None and temperature is not None:
            distance = compensate_distance(reported, temperature, cfg.calibrated_at_c)
        ping = _Ping(distance, sample)
        if self._is_spike(distance):
            self.rejects["spike"] += 1
            self._suspects.append(ping)
            if self._level_shifted():
                self._readmit()
            return self._maybe_estimate(temperature)
        self._suspects.clear()
        self._accept(ping)
        return self._maybe_estimate(temperature)

    def _reported_mm(self, sample: DistanceSample) -> float | None:
        if sample.distance_mm is not None:
            return float(sample.distance_mm)
        if sample.fill_ratio is not None:
            cfg = self.config
            return distance_for_fill(sample.fill_ratio, cfg.empty_distance_mm, cfg.full_distance_mm)
        self.rejects["bad_value"] += 1  # e.g. an EM310 uplink with attributes only
        return None

    def _is_spike(self, distance: float) -> bool:
        limit = self.config.spike_mm
        reference = self.reference_mm
        if (
            limit is None
            or reference is None
            or len(self._history) < min(3, self.config.spike_history)
        ):
            return False  # no reference yet: accept while warming up
        return abs(distance - reference) > limit

    def _level_shifted(self) -> bool:
        suspects = [p.distance for p in self._suspects]
        limit = self.config.spike_mm or 0
        return len(suspects) == self.config.spike_run and max(suspects) - min(suspects) <= limit

    def _readmit(self) -> None:
        """Consecutive, mutually consistent 'spikes': the level really changed; start over."""
        self.readmitted += len(self._suspects)
        self._window.clear()
        self._history.clear()
        for ping in self._suspects:
            self._accept(ping)
        self._suspects.clear()

    def _accept(self, ping: _Ping) -> None:
        self.accepted += 1
        self._history.append(ping.distance)
        self._window.append(ping)

    def _maybe_estimate(self, temperature: float | None) -> FillEstimate | None:
        cfg = self.config
        if len(self._window) < cfg.window:
            return None
        window, self._window = self._window, []
        distance = round(statistics.median(p.distance for p in window))
        distance = max(0, min(MAX_DISTANCE_MM, distance))
        samples = [p.sample for p in window]
        self.estimates += 1
        return FillEstimate(
            distance_mm=distance,
            filling_level=round(
                fill_ratio(distance, cfg.empty_distance_mm, cfg.full_distance_mm), 3
            ),
            level_status=level_status(distance, cfg.empty_distance_mm, cfg.full_distance_mm),
            source=samples[-1].source,
            pings=len(window),
            raw=_evidence(samples),
            temperature_c=None if temperature is None else round(temperature, 1),
            battery_pct=_latest(s.battery_pct for s in samples),
            rssi_dbm=_latest(s.rssi_dbm for s in samples),
            snr_db=_latest(s.snr_db for s in samples),
            tilt=_latest(s.tilt for s in samples),
            device_eui=_latest(s.device_eui for s in samples),
            received_at=_latest(s.received_at for s in samples),
        )


def _latest(values: Iterable[_T | None]) -> _T | None:
    """The last value that is not None."""
    found: _T | None = None
    for value in values:
        if value is not None:
            found = value
    return found


def _evidence(samples: Sequence[DistanceSample]) -> str:
    text = " | ".join(s.evidence() for s in samples)
    return text if len(text) <= RAW_EVIDENCE_CHARS else text[: RAW_EVIDENCE_CHARS - 3] + "..."
