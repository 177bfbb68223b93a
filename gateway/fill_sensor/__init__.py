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

The samples and errors are in ``samples``, the serial decoders in ``serial_frames``, the MQTT
ones in ``uplinks``, the physics and the per-sensor filter in ``processor``; import from this
package, which names the public API.
"""

from gateway.fill_sensor.processor import (
    CALIBRATION_C,
    RAW_EVIDENCE_CHARS,
    SPEED_OF_SOUND_0C,
    SPEED_OF_SOUND_PER_C,
    FillConfig,
    FillEstimate,
    FillProcessor,
    LevelStatus,
    compensate_distance,
    distance_for_fill,
    fill_ratio,
    level_status,
    speed_of_sound,
)
from gateway.fill_sensor.samples import (
    MAX_DISTANCE_MM,
    DistanceSample,
    FillDecodeError,
    FillSource,
    RejectReason,
)
from gateway.fill_sensor.serial_frames import (
    MAXBOTIX_MAX_INCHES,
    MM_PER_INCH,
    MODE2_FRAME_LEN,
    MODE2_HEADER,
    MaxBotixDecoder,
    MaxBotixModel,
    Mode2Decoder,
    decode_mode2_frame,
    mode2_checksum,
)
from gateway.fill_sensor.uplinks import (
    Em310Payload,
    LoRaWanNetwork,
    LoRaWanUplink,
    decode_em310_udl,
    decode_em310_uplink,
    decode_json_reading,
    parse_lorawan_uplink,
)

__all__ = [
    "FillSource",
    "RejectReason",
    "LevelStatus",
    "LoRaWanNetwork",
    "MAX_DISTANCE_MM",
    "RAW_EVIDENCE_CHARS",
    "SPEED_OF_SOUND_0C",
    "SPEED_OF_SOUND_PER_C",
    "CALIBRATION_C",
    "FillDecodeError",
    "DistanceSample",
    "MODE2_HEADER",
    "MODE2_FRAME_LEN",
    "mode2_checksum",
    "decode_mode2_frame",
    "Mode2Decoder",
    "MM_PER_INCH",
    "MAXBOTIX_MAX_INCHES",
    "MaxBotixDecoder",
    "MaxBotixModel",
    "Em310Payload",
    "decode_em310_udl",
    "LoRaWanUplink",
    "parse_lorawan_uplink",
    "decode_em310_uplink",
    "decode_json_reading",
    "speed_of_sound",
    "compensate_distance",
    "fill_ratio",
    "distance_for_fill",
    "level_status",
    "FillConfig",
    "FillEstimate",
    "FillProcessor",
]
