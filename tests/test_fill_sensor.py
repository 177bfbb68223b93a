"""gateway.fill_sensor: decoders byte for byte, uplink JSON shapes, filter and geometry math."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.encoders import encode_em310_udl, encode_maxbotix, encode_mode2
from gateway.fill_sensor import (
    DistanceSample,
    FillConfig,
    FillDecodeError,
    FillEstimate,
    FillProcessor,
    MaxBotixDecoder,
    Mode2Decoder,
    compensate_distance,
    decode_em310_udl,
    decode_em310_uplink,
    decode_json_reading,
    decode_mode2_frame,
    distance_for_fill,
    fill_ratio,
    level_status,
    parse_lorawan_uplink,
    speed_of_sound,
)
from gateway.fill_sensor.serial_frames import MODE2_MAX_MM, MaxBotixModel
from gateway.readers import FillSensorReader
from gateway.settings import GatewaySettings, SensorSettings
from wastebank.config import ConfigError, load_settings
from wastebank.influx import fill_line
from wastebank.messages import FillReading
from wastebank.structs import decode_json, encode_json

WIT = timezone(timedelta(hours=9))


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given (sorted, deduplicated) offsets."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


# ---- JSN-SR04T / A02YYUW mode-2 frames ----------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "mm"),
    [
        # FF 07 A1 A7: 0x07A1 = 7*256 + 161 = 1953 mm; SUM = (0xFF + 0x07 + 0xA1) & 0xFF
        #   = 0x1A7 & 0xFF = 0xA7 (device-protocols.md §2.1, the DFRobot A02YYUW example)
        ("FF 07 A1 A7", 1953),
        # FF 05 DC E0: 0x05DC = 1500 mm; SUM = (0xFF + 0x05 + 0xDC) & 0xFF = 0x1E0 & 0xFF = 0xE0
        ("FF 05 DC E0", 1500),
        ("FF 00 00 FF", 0),  # SUM = 0xFF
        ("FF 00 FF FE", 255),  # L = 0xFF looks like a header; SUM = 0x1FE & 0xFF
    ],
)
def test_mode2_doc_frames_byte_for_byte(frame: str, mm: int) -> None:
    raw = bytes.fromhex(frame)
    assert decode_mode2_frame(raw) == mm
    assert encode_mode2(mm) == raw
    decoder = Mode2Decoder()
    assert decoder.feed(raw) == []  # one frame alone does not show where frames start
    samples = decoder.feed(raw * 2)  # the module sends one every 100 ms
    assert [(s.distance_mm, s.source, s.raw) for s in samples] == [(mm, "jsn_sr04t", raw)] * 3
    assert samples[0].evidence() == frame


@pytest.mark.parametrize(
    ("frame", "reason"),
    [("FF 07 A1 A8", "checksum"), ("FE 07 A1 A7", "bad_format"), ("FF 07 A1", "bad_format")],
)
def test_mode2_single_frame_errors(frame: str, reason: str) -> None:
    with pytest.raises(FillDecodeError) as info:
        decode_mode2_frame(bytes.fromhex(frame))
    assert info.value.reason == reason


@pytest.mark.parametrize("offset", [0, 1, 2, 3])
def test_mode2_a_port_opened_anywhere_in_511_mm_frames_reads_511(offset: int) -> None:
    """511 mm is ``FF 01 FF FF``: opened on its checksum byte, the port shows ``FF FF 01 FF``,
    which checks too (0xFF + 0xFF + 0x01 = 0x1FF) and would read 65,281 mm."""
    stream = (encode_mode2(511) * 6)[offset:]
    assert encode_mode2(511) == bytes.fromhex("FF 01 FF FF")
    for pieces in ([stream], [bytes([b]) for b in stream]):
        decoder = Mode2Decoder()
        samples = [s for piece in pieces for s in decoder.feed(piece)]
        assert [s.distance_mm for s in samples] == [511] * (6 if offset == 0 else 5)
        assert decoder.locked
        assert len(stream) == 4 * decoder.frames + decoder.skipped_bytes + decoder.buffered


def test_mode2_stream_resyncs_and_counts() -> None:
    # 00 12          two bytes before any header                          -> skipped 2
    # FF FF 07 A1    a false header: SUM would be (FF+FF+07)&FF = 05 != A1 -> checksum 1, skip 1
    #    FF 07 A1 A7 FF 07 A1 A7  two frames that check: locked              -> 1953, 1953
    # FF 05 DC E1    bad sum (E0 expected): unlocked                      -> checksum 2, skip 1
    #    05 DC E1    its remaining bytes before the next header           -> skipped 3 (total 7)
    # FF 05 DC E0 FF 05 DC E0    locked again                             -> 1500, 1500
    stream = bytes.fromhex("0012 FFFF07A1A7 FF07A1A7 FF05DCE1 FF05DCE0 FF05DCE0")
    for pieces in ([stream], [bytes([b]) for b in stream], chunked(stream, [3, 9, 10])):
        decoder = Mode2Decoder()
        samples = [s for piece in pieces for s in decoder.feed(piece)]
        assert [s.distance_mm for s in samples] == [1953, 1953, 1500, 1500]
        assert decoder.rejects == {"checksum": 2}
        assert decoder.skipped_bytes == 7
        assert decoder.frames == 4
        assert decoder.buffered == 0
        assert len(stream) == 4 * 4 + 7  # = 4 * frames + skipped + buffered


def test_mode2_beyond_range_is_a_misalignment_not_a_reading() -> None:
    far = encode_mode2(12_000)  # checks, but no mode-2 module ranges that far
    decoder = Mode2Decoder()
    assert decoder.feed(far * 3) == []
    assert decoder.rejects["out_of_range"] == 3
    assert not decoder.locked
    assert [s.distance_mm for s in Mode2Decoder(max_mm=12_000).feed(far * 3)] == [12_000] * 3


def test_mode2_partial_frame_waits_for_the_rest() -> None:
    decoder = Mode2Decoder()
    assert decoder.feed(bytes.fromhex("FF07")) == []
    assert decoder.buffered == 2
    assert decoder.feed(bytes.fromhex("A1A7")) == []  # waits for a second frame to confirm
    assert [s.distance_mm for s in decoder.feed(bytes.fromhex("FF07A1A7"))] == [1953, 1953]
    (sample,) = decoder.feed(bytes.fromhex("FF05DCE0"))  # locked: each frame as it completes
    assert sample.distance_mm == 1500
    decoder.feed(bytes.fromhex("FF05DC"))
    decoder.reset()
    assert decoder.buffered == 0
    assert not decoder.locked


def test_mode2_two_alignments_that_both_check_wait_for_one_to_fail() -> None:
    """Frames ending in FF whose next frame is 1024 mm nearer (4351, 3327, 2303 mm) also check
    two bytes off (``FF 0E FF 0C`` = 3839 mm): while both alignments hold, neither is trusted;
    frames are skipped (counted), never read across two frames."""
    distances = [0x10FF, 0x0CFF, 0x08FF, 0x04FF, 0x00FF, 1000, 1001]
    stream = b"".join(encode_mode2(d) for d in distances)
    assert decode_mode2_frame(stream[2:6]) == 0x0EFF
    decoder = Mode2Decoder()
    assert [s.distance_mm for s in decoder.feed(stream)] == distances[3:]
    assert decoder.skipped_bytes == 12


@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=8))
def test_mode2_random_bytes_never_crash_and_every_byte_is_accounted(
    data: bytes, cuts: list[int]
) -> None:
    decoder = Mode2Decoder()
    samples = []
    for piece in chunked(data, cuts):
        samples += decoder.feed(piece)
        assert decoder.buffered <= 10  # bounded: two frames and a rival's start, at most
    for sample in samples:
        assert sample.distance_mm is not None
        assert sample.distance_mm <= MODE2_MAX_MM
        assert encode_mode2(sample.distance_mm) == sample.raw  # only valid frames come out
    assert len(data) == 4 * decoder.frames + decoder.skipped_bytes + decoder.buffered


@given(
    distances=st.lists(st.integers(0, MODE2_MAX_MM), min_size=3, max_size=40),
    offset=st.integers(0, 3),
    cuts=st.lists(st.integers(0, 200), max_size=8),
)
def test_mode2_any_start_offset_converges_to_the_right_distances(
    distances: list[int], offset: int, cuts: list[int]
) -> None:
    """However the port's first read cuts into the stream, whatever the reads' sizes: the
    frames that arrive whole are read, each as itself, none across two frames."""
    stream = b"".join(encode_mode2(d) for d in distances)[offset:]
    whole = distances[1:] if offset else distances
    decoder = Mode2Decoder()
    got = [s.distance_mm for piece in chunked(stream, cuts) for s in decoder.feed(piece)]
    if len(whole) >= 3:
        assert got == whole
    else:
        assert got == whole[: len(got)]


# ---- MaxBotix -----------------------------------------------------------------------------------


def test_maxbotix_four_and_three_digit_frames() -> None:
    decoder = MaxBotixDecoder()
    samples = decoder.feed(b"R1234\rR0480 \rR048\rR255\r")
    # R1234: HRXL mm -> 1234; R0480 + space (HRUSB style) -> 480;
    # R048: LV-MaxSonar inches, 48 * 25.4 = 1219.2 -> 1219; R255: 255 * 25.4 = 6477.0
    assert [s.distance_mm for s in samples] == [1234, 480, 1219, 6477]
    assert samples[0].raw == b"R1234\r"
    assert samples[0].evidence() == "R1234\\r"
    assert decoder.frames == 4
    assert not decoder.rejects


def test_maxbotix_cm_models() -> None:
    (sample,) = MaxBotixDecoder(four_digit_unit="cm").feed(b"R0123\r")
    assert sample.distance_mm == 1230  # 123 cm (XL-MaxSonar, 1-cm resolution)


def test_maxbotix_rejects_are_counted() -> None:
    decoder = MaxBotixDecoder(max_line=16)
    stream = b"34\r" + b"R256\r" + b"R12x4\r" + b"R" + b"9" * 30 + b"\r" + b"\r\nR0500\r\n"
    samples = decoder.feed(stream)
    assert [s.distance_mm for s in samples] == [500]
    # "34" = the partial line after opening the port; "R12x4" garbage; R256 > 255 inches
    assert decoder.rejects == {"bad_format": 2, "bad_value": 1, "overflow": 1}


def test_maxbotix_encoder_round_trips() -> None:
    assert encode_maxbotix(1234.4) == b"R1234\r"
    assert encode_maxbotix(99_999) == b"R9999\r"
    assert encode_maxbotix(1219.2, digits=3) == b"R048\r"
    assert encode_maxbotix(10_000, digits=3) == b"R255\r"


@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=8))
def test_maxbotix_random_bytes_never_crash(data: bytes, cuts: list[int]) -> None:
    decoder = MaxBotixDecoder()
    samples = []
    for piece in chunked(data, cuts):
        samples += decoder.feed(piece)
        assert decoder.buffered <= decoder.max_line
    assert len(samples) == decoder.frames
    assert all(s.distance_mm is not None and 0 <= s.distance_mm <= 9999 for s in samples)


@pytest.mark.parametrize(
    ("model", "frame", "distance", "reason"),
    [
        # HRXL-MaxSonar-WR datasheet (PD11500): the maximum reported distance, 5000 on the
        # 5 m models and 9999 on the 10 m models, is what they send with nothing in range
        ("hrxl_5m", b"R5000\r", None, "no_target"),
        ("hrxl_5m", b"R9999\r", None, "bad_value"),  # beyond a 5 m model's range
        ("hrxl_5m", b"R4999\r", 4999, None),
        ("hrxl_10m", b"R9999\r", None, "no_target"),
        ("hrxl_10m", b"R5000\r", 5000, None),  # a real 5 m on a 10 m model
        (None, b"R5000\r", None, "no_target"),  # the model not named: both codes
        (None, b"R9999\r", None, "no_target"),
        (None, b"R5001\r", 5001, None),
    ],
)
def test_maxbotix_no_target_codes_per_model(
    model: MaxBotixModel | None, frame: bytes, distance: int | None, reason: str | None
) -> None:
    decoder = MaxBotixDecoder(model=model)
    samples = decoder.feed(frame * 3)
    assert [s.distance_mm for s in samples] == ([distance] * 3 if distance else [])
    assert decoder.rejects == ({reason: 3} if reason else {})
    assert decoder.no_target == (3 if reason == "no_target" else 0)
    assert decoder.frames == len(samples)


def _maxbotix_reader() -> FillSensorReader:
    """A MaxBotix on no port, a reading from each sample."""
    return FillSensorReader(
        SensorSettings(
            id="tps-01-s1",
            tps_code="tps-01",
            kind="maxbotix",
            port=Path("/dev/null"),
            empty_distance_mm=4_900,
            full_distance_mm=400,
            window=1,
            report_interval_s=0.001,
        )
    )


def test_maxbotix_no_target_is_counted_never_a_reading() -> None:
    """A lost echo over an empty bin: the sensor's R5000 neither becomes a 5 m reading (an empty
    container) nor disappears: the gateway's health counts it with the rejects."""
    reader = _maxbotix_reader()
    assert reader.process(b"R5000\r" * 4) == []
    health = reader.health()
    assert (health.samples_accepted, health.samples_rejected, health.readings) == (0, 4, 0)
    assert health.no_target == 4
    assert reader.decoder.rejects == {"no_target": 4}
    (reading,) = reader.process(b"R4800\r")
    assert reading.estimate.distance_mm == 4800


def test_maxbotix_no_target_since_is_the_start_of_an_unbroken_run() -> None:
    """The health says since when every frame has said "no target": set by the first one after a
    distance, kept through more of them and garbled lines, cleared by the next distance."""
    reader = _maxbotix_reader()
    reader.process(b"R4800\r")
    assert reader.health().no_target_since is None
    before = datetime.now(UTC)
    reader.process(b"R4700\rR5000\r")  # a distance, then the run begins
    since = reader.health().no_target_since
    assert since is not None
    assert before <= since <= datetime.now(UTC)
    reader.process(b"R5000\rgarbage\rR5000\r")
    assert reader.health().no_target_since == since
    assert isinstance(reader.decoder, MaxBotixDecoder)
    assert reader.decoder.no_target_run == 3
    reader.process(b"R5000\rR4600\r")  # the run ends with this read's distance
    assert reader.health().no_target_since is None
    assert reader.health().no_target == 4


def test_maxbotix_a_model_is_a_mm_model() -> None:
    with pytest.raises(ValueError, match="reports mm"):
        MaxBotixDecoder(four_digit_unit="cm", model="hrxl_10m")


def _maxbotix_site(tmp_path: Path, extra: str, kind: str = "maxbotix") -> Path:
    site = tmp_path / "site.toml"
    site.write_text(
        'bank_code = "bs-batu-merah"\n'
        "[[sensors]]\n"
        'id = "tps-01-s1"\n'
        'tps_code = "tps-01"\n'
        f'kind = "{kind}"\n'
        'port = "/dev/null"\n'
        "empty_distance_mm = 6000\n"
        "full_distance_mm = 400\n"
        "window = 1\n"
        "report_interval_s = 0.001\n" + extra
    )
    return site


def test_maxbotix_model_is_a_site_file_setting(tmp_path: Path) -> None:
    """A 10 m HRXL named in the site file: its surface at exactly 5 m is a reading, R9999 is
    no target; not named, the same R5000 is no target (both codes)."""
    named = load_settings(GatewaySettings, _maxbotix_site(tmp_path, 'maxbotix_model = "hrxl_10m"'))
    (cfg,) = named.sensors
    reader = FillSensorReader(cfg)
    (reading,) = reader.process(b"R5000\r")
    assert reading.estimate.distance_mm == 5000
    assert reader.process(b"R9999\r" * 2) == []
    assert reader.decoder.rejects == {"no_target": 2}

    (plain,) = load_settings(GatewaySettings, _maxbotix_site(tmp_path, "")).sensors
    assert plain.maxbotix_model is None
    unnamed = FillSensorReader(plain)
    assert unnamed.process(b"R5000\r") == []
    assert unnamed.decoder.rejects == {"no_target": 1}


@pytest.mark.parametrize(
    ("extra", "kind", "error"),
    [
        ('maxbotix_model = "hrxl_5m"', "jsn_sr04t", "maxbotix_model is for maxbotix sensors"),
        ('maxbotix_model = "hrxl_5m"\nmaxbotix_unit = "cm"', "maxbotix", "maxbotix_unit must"),
        ('maxbotix_model = "mb7389"', "maxbotix", r"sensors\.0\.maxbotix_model"),
    ],
)
def test_maxbotix_model_refused_where_it_means_nothing(
    tmp_path: Path, extra: str, kind: str, error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        load_settings(GatewaySettings, _maxbotix_site(tmp_path, extra, kind))


@pytest.mark.parametrize(
    ("extra", "kind"),
    [
        ('maxbotix_unit = "cm"', "jsn_sr04t"),
        ('maxbotix_unit = "mm"', "jsn_sr04t"),  # even the default, said where it means nothing
        ('maxbotix_model = "hrxl_10m"', "jsn_sr04t"),
        ('maxbotix_unit = "cm"\ndev_eui = "24e124713b123456"', "em310_udl"),
    ],
)
def test_a_maxbotix_setting_on_another_kind_names_the_sensor_and_the_field(
    tmp_path: Path, extra: str, kind: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(GatewaySettings, _maxbotix_site(tmp_path, extra, kind))
    field = extra.split(" ", 1)[0]
    (line,) = [ln for ln in str(refused.value).splitlines() if ln.startswith("  ")]
    assert line.startswith(f"  sensors.0.{field} (WASTEBANK_SENSORS__0__{field.upper()}): ")
    assert line.endswith(
        f"sensor tps-01-s1: {field} hanya untuk sensor maxbotix, bukan {kind} / "
        f"{field} is for maxbotix sensors, not {kind}"
    )


def test_a_sensor_without_maxbotix_settings_loads_whatever_its_kind(tmp_path: Path) -> None:
    (cfg,) = load_settings(GatewaySettings, _maxbotix_site(tmp_path, "", "jsn_sr04t")).sensors
    assert (cfg.kind, cfg.maxbotix_unit, cfg.maxbotix_model) == ("jsn_sr04t", "mm", None)


@given(
    st.lists(st.integers(0, 9999).filter(lambda d: d not in (5000, 9999)), max_size=30),
    st.lists(st.integers(0, 200), max_size=8),
)
def test_maxbotix_valid_stream_decodes_whatever_the_chunking(
    distances: list[int], cuts: list[int]
) -> None:
    stream = b"".join(encode_maxbotix(d) for d in distances)
    decoder = MaxBotixDecoder()
    got = [s.distance_mm for piece in chunked(stream, cuts) for s in decoder.feed(piece)]
    assert got == distances


# ---- Milesight EM310-UDL ------------------------------------------------------------------------

DOC_EM310 = bytes.fromhex("01755C 03824408 040001")
"""Milesight's README example: battery 0x5C = 92 %, distance 0x0844 (LE 44 08) = 2116 mm, tilt."""


def test_em310_doc_example_byte_for_byte() -> None:
    decoded = decode_em310_udl(DOC_EM310)
    assert (decoded.battery_pct, decoded.distance_mm, decoded.tilt) == (92, 2116, True)
    assert decoded.unknown_at is None
    assert encode_em310_udl(battery_pct=92, distance_mm=2116, tilt=True) == DOC_EM310
    # the same payload as base64, as found in uplink JSON
    assert base64.b64encode(DOC_EM310) == b"AXVcA4JECAQAAQ=="
    assert decode_em310_udl("AXVcA4JECAQAAQ==") == decoded


def test_em310_skips_attributes_and_stops_at_unknown_channels() -> None:
    # FF 0B FF device status, FF 01 01 protocol version, FF 16 + 8 B serial, then telemetry
    payload = bytes.fromhex("FF0BFF FF0101 FF16 6136C19146800004") + bytes.fromhex("03822C01")
    decoded = decode_em310_udl(payload)
    assert (decoded.battery_pct, decoded.distance_mm, decoded.tilt) == (None, 300, None)
    # an unknown channel (05 99) stops decoding, like the vendor decoder, keeping what it had
    decoded = decode_em310_udl(bytes.fromhex("017550 0599AABB 03822C01"))
    assert (decoded.battery_pct, decoded.distance_mm, decoded.unknown_at) == (80, None, 3)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (bytes.fromhex("038244"), "bad_format"),  # distance cut short
        (bytes.fromhex("01"), "bad_format"),  # half a channel header
        (bytes.fromhex("0175C8"), "bad_value"),  # battery 200 %
        ("not base64!", "bad_format"),
    ],
)
def test_em310_errors(payload: bytes | str, reason: str) -> None:
    with pytest.raises(FillDecodeError) as info:
        decode_em310_udl(payload)
    assert info.value.reason == reason


@given(st.binary(max_size=64))
def test_em310_random_payload_raises_only_decode_errors(data: bytes) -> None:
    try:
        decoded = decode_em310_udl(data)
    except FillDecodeError:
        return
    assert decoded.battery_pct is None or 0 <= decoded.battery_pct <= 100
    assert decoded.distance_mm is None or 0 <= decoded.distance_mm <= 0xFFFF


# ---- LoRaWAN uplink JSON ------------------------------------------------------------------------


def chirpstack_up(data: str | None = "AXVcA4JECAQAAQ==", **extra: Any) -> dict[str, Any]:
    """A ChirpStack v4 ``up`` event (integration.UplinkEvent, protobuf JSON mapping)."""
    event: dict[str, Any] = {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2026-11-23T01:15:00.123456789Z",
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "tenantName": "ChirpStack",
            "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
            "applicationName": "tps-fill",
            "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
            "deviceProfileName": "EM310-UDL",
            "deviceName": "us-07",
            "devEui": "24E124136B502217",
            "tags": {},
        },
        "devAddr": "00189440",
        "adr": True,
        "dr": 5,
        "fCnt": 7,
        "fPort": 85,
        "confirmed": False,
        "rxInfo": [
            {"gatewayId": "0016c001f153a14c", "uplinkId": 4217, "rssi": -110, "snr": -3.5},
            {"gatewayId": "24e124fffef54092", "uplinkId": 933, "rssi": -87, "snr": 7.25},
        ],
        "txInfo": {"frequency": 921400000, "modulation": {"lora": {"spreadingFactor": 7}}},
    }
    if data is not None:
        event["data"] = data
    event.update(extra)
    return event


def ttn_up(**extra: Any) -> dict[str, Any]:
    """A The Things Stack v3 uplink message (as on v3/{app}@ttn/devices/{dev}/up)."""
    event: dict[str, Any] = {
        "end_device_ids": {
            "device_id": "us-07",
            "application_ids": {"application_id": "tps-fill"},
            "dev_eui": "24E124136B502217",
            "join_eui": "24E124C0002A0001",
            "dev_addr": "260BABCD",
        },
        "correlation_ids": ["as:up:01HX6YGQ7E0V83YRZ7K4S5J4ZN"],
        "received_at": "2026-11-23T01:15:00.412345678Z",
        "uplink_message": {
            "session_key_id": "AWNbm/4zfqx0jZ5q1NlBmw==",
            "f_port": 85,
            "f_cnt": 1834,
            "frm_payload": "AXVaA4J4BQQAAA==",  # 01755A 03827805 040000: 90 %, 1400 mm, normal
            "rx_metadata": [
                {"gateway_ids": {"gateway_id": "gw-a"}, "rssi": -101, "channel_rssi": -101},
                {"gateway_ids": {"gateway_id": "gw-b"}, "channel_rssi": -68, "snr": 9.2},
            ],
            "received_at": "2026-11-23T01:15:00.400Z",
        },
    }
    event.update(extra)
    return event


def test_chirpstack_v4_uplink() -> None:
    uplink = parse_lorawan_uplink(json.dumps(chirpstack_up()).encode())
    assert uplink.network == "chirpstack_v4"
    assert uplink.dev_eui == "24e124136b502217"
    assert uplink.data == DOC_EM310
    assert (uplink.f_port, uplink.f_cnt) == (85, 7)
    assert (uplink.rssi_dbm, uplink.snr_db) == (-87, 7.25)  # the gateway that heard it best
    # nanoseconds are cut to microseconds
    assert uplink.received_at == datetime(2026, 11, 23, 1, 15, 0, 123456, tzinfo=UTC)


def test_ttn_v3_uplink() -> None:
    uplink = parse_lorawan_uplink(json.dumps(ttn_up()))
    assert uplink.network == "ttn_v3"
    assert uplink.dev_eui == "24e124136b502217"
    assert uplink.data == bytes.fromhex("01755A03827805040000")
    assert (uplink.f_port, uplink.f_cnt) == (85, 1834)
    assert (uplink.rssi_dbm, uplink.snr_db) == (-68, 9.2)  # channel_rssi when rssi is omitted
    assert uplink.received_at == datetime(2026, 11, 23, 1, 15, 0, 412345, tzinfo=UTC)


def test_em310_sample_from_either_network() -> None:
    chirp = decode_em310_uplink(chirpstack_up())
    assert (chirp.distance_mm, chirp.battery_pct, chirp.tilt) == (2116, 92, True)
    assert (chirp.rssi_dbm, chirp.snr_db, chirp.device_eui) == (-87, 7.25, "24e124136b502217")
    assert chirp.source == "em310_udl"
    assert chirp.evidence() == "01 75 5C 03 82 44 08 04 00 01"
    ttn = decode_em310_uplink(json.dumps(ttn_up()).encode())
    assert (ttn.distance_mm, ttn.battery_pct, ttn.tilt) == (1400, 90, False)


def test_uplink_with_omitted_fields() -> None:
    # proto3 JSON leaves out empty/zero values: no data, no rxInfo, no fPort, no time
    event = chirpstack_up(data=None)
    for key in ("rxInfo", "fPort", "time"):
        del event[key]
    uplink = parse_lorawan_uplink(event)
    assert (uplink.data, uplink.rssi_dbm, uplink.f_port, uplink.received_at) == (
        b"",
        None,
        None,
        None,
    )
    sample = decode_em310_uplink(event)
    assert sample.distance_mm is None


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({"devEUI": "0202020202020202", "data": "AQ=="}),  # ChirpStack v3: not supported
        json.dumps(chirpstack_up(data="%%%")),
        json.dumps(chirpstack_up(rxInfo={"rssi": -80})),
        json.dumps(chirpstack_up(fCnt="7")),
        json.dumps(chirpstack_up(time="yesterday")),
        json.dumps(chirpstack_up(time="2026-11-23T01:15:00")),  # no zone
        json.dumps(ttn_up(end_device_ids={"dev_eui": "24E1"})),
        json.dumps(ttn_up(uplink_message="AQ==")),
    ],
)
def test_bad_uplinks_are_decode_errors(payload: bytes | str) -> None:
    with pytest.raises(FillDecodeError):
        parse_lorawan_uplink(payload)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "deviceInfo": JSON_VALUES | st.fixed_dictionaries({"devEui": JSON_VALUES}),
            "data": JSON_VALUES,
            "fPort": JSON_VALUES,
            "rxInfo": JSON_VALUES
            | st.lists(st.fixed_dictionaries({"rssi": JSON_VALUES, "snr": JSON_VALUES})),
            "time": JSON_VALUES,
            "uplink_message": JSON_VALUES,
            "end_device_ids": JSON_VALUES,
            "distance_mm": JSON_VALUES,
            "fillingLevel": JSON_VALUES,
            "battery_pct": JSON_VALUES,
        },
    )
)
def test_random_json_raises_only_decode_errors(obj: dict[str, Any]) -> None:
    for decode in (parse_lorawan_uplink, decode_em310_uplink, decode_json_reading):
        try:
            decode(obj)
        except FillDecodeError:
            pass


# ---- plain JSON ---------------------------------------------------------------------------------


def test_json_distance_and_fiware_level() -> None:
    sample = decode_json_reading(
        b'{"distance_mm": 812.4, "temperature_c": 31.5, "battery_pct": 77}'
    )
    assert (sample.distance_mm, sample.fill_ratio, sample.source) == (812, None, "json")
    assert (sample.temperature_c, sample.battery_pct) == (31.5, 77)
    assert decode_json_reading('{"fillingLevel": 0.4}').fill_ratio == 0.4
    normalized = {"fillingLevel": {"type": "Number", "value": 0.4}, "temperature": {"value": 30}}
    sample = decode_json_reading(normalized)
    assert (sample.fill_ratio, sample.temperature_c) == (0.4, 30.0)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ('{"fillingLevel": null}', "bad_value"),  # FIWARE: null = unknown
        ('{"temperature_c": 30}', "bad_format"),
        ('{"distance_mm": -1}', "bad_value"),
        ('{"distance_mm": true}', "bad_format"),
        ('{"distance_mm": "812"}', "bad_format"),
        ('{"fillingLevel": 1.2}', "bad_value"),
        ('{"distance_mm": 800, "battery_pct": 101}', "bad_value"),
        ('{"distance_mm": 800, "battery_pct": 50.5}', "bad_value"),
        ('{"distance_mm": 800, "temperature_c": 120}', "bad_value"),
        ('{"distance_mm": 1' + "0" * 400 + "}", "bad_value"),
        ("[]", "bad_format"),
        ("{", "bad_format"),
    ],
)
def test_json_errors(payload: str, reason: str) -> None:
    with pytest.raises(FillDecodeError) as info:
        decode_json_reading(payload)
    assert info.value.reason == reason


# ---- physics and geometry -----------------------------------------------------------------------


def test_speed_of_sound_and_temperature_compensation() -> None:
    # c(T) = 331.3 + 0.606 T:  c(20) = 331.3 + 12.12 = 343.42 m/s;  c(35) = 331.3 + 21.21 = 352.51
    assert speed_of_sound(20) == pytest.approx(343.42)
    assert speed_of_sound(35) == pytest.approx(352.51)
    # calibrated at 20 degC, reporting 1000 mm at 35 degC: 1000 * 352.51 / 343.42 = 1026.469 mm
    assert compensate_distance(1000, 35) == pytest.approx(1026.469, abs=1e-3)
    # at 0 degC: 1000 * 331.3 / 343.42 = 964.708 mm (cold air is slower: the sensor over-reads)
    assert compensate_distance(1000, 0) == pytest.approx(964.708, abs=1e-3)
    assert compensate_distance(1000, 20) == pytest.approx(1000)
    assert compensate_distance(1000, 25, calibrated_at_c=25) == pytest.approx(1000)


@pytest.mark.parametrize(
    ("distance", "ratio", "status"),
    [
        # empty 1400 mm, full 250 mm: ratio = (1400 - d) / (1400 - 250) = (1400 - d) / 1150
        (1400, 0.0, "ok"),
        (250, 1.0, "ok"),
        (825, 0.5, "ok"),  # (1400 - 825) / 1150 = 575 / 1150
        (1170, 0.2, "ok"),  # 230 / 1150
        (100, 1.0, "over_full"),  # 1300 / 1150 = 1.13 -> clamped
        (1550, 0.0, "below_empty"),  # -150 / 1150 -> clamped
    ],
)
def test_fill_ratio_geometry(distance: int, ratio: float, status: str) -> None:
    assert fill_ratio(distance, 1400, 250) == pytest.approx(ratio)
    assert level_status(distance, 1400, 250) == status


def test_distance_for_fill_inverts_fill_ratio() -> None:
    assert distance_for_fill(0.5, 1400, 250) == pytest.approx(825)
    assert fill_ratio(distance_for_fill(0.37, 1400, 250), 1400, 250) == pytest.approx(0.37)
    with pytest.raises(ValueError, match="greater"):
        distance_for_fill(0.5, 250, 1400)


# ---- the processor ------------------------------------------------------------------------------


def jsn(mm: int, **extra: Any) -> DistanceSample:
    return DistanceSample(mm, "jsn_sr04t", encode_mode2(mm), **extra)


def feed(processor: FillProcessor, pings: list[int], **kw: Any) -> list[FillEstimate]:
    return [e for mm in pings if (e := processor.add(jsn(mm), **kw)) is not None]


CONFIG = FillConfig(empty_distance_mm=1400, full_distance_mm=250, calibrated_at_c=None)


def test_median_of_the_window() -> None:
    processor = FillProcessor(CONFIG)
    # sorted: 990 996 1000 1004 1010 -> median 1000; fill (1400 - 1000) / 1150 = 0.3478 -> 0.348
    (estimate,) = feed(processor, [1000, 1004, 996, 1010, 990])
    assert (estimate.distance_mm, estimate.filling_level, estimate.level_status) == (
        1000,
        0.348,
        "ok",
    )
    assert (estimate.pings, estimate.source) == (5, "jsn_sr04t")
    assert estimate.raw.startswith("FF 03 E8 EA | FF 03 EC EE")  # 1000 = 0x03E8, 1004 = 0x03EC
    assert (processor.accepted, processor.estimates) == (5, 1)


def test_spike_is_rejected_and_counted() -> None:
    processor = FillProcessor(CONFIG)
    # reference after 1000, 1002, 998 is their median 1000; 400 is |400 - 1000| = 600 > 150
    # away (a side-wall echo) -> rejected; then 1001, 999 complete the window
    # [1000, 1002, 998, 1001, 999] -> median 1000
    (estimate,) = feed(processor, [1000, 1002, 998, 400, 1001, 999])
    assert estimate.distance_mm == 1000
    assert processor.rejects == {"spike": 1}
    assert processor.readmitted == 0


def test_out_of_range_pings_are_rejected() -> None:
    processor = FillProcessor(CONFIG)
    # 150 < min_valid 200 (blind zone); 1800 > max_valid = empty + 300 = 1700 (lost echo)
    assert feed(processor, [150, 1800, 700, 702, 698, 701, 699]) != []
    assert processor.rejects == {"out_of_range": 2}


def test_a_pickup_is_a_level_shift_not_a_spike() -> None:
    processor = FillProcessor(CONFIG)
    # nearly full (300 mm), then the truck empties it: pings at ~1390 mm are 1090 mm away from
    # the reference -> spikes; the third consecutive one agrees with the other two (spread
    # 1392 - 1388 = 4 <= 150), so the three are re-admitted and become the new reference.
    feed(processor, [300, 302, 298, 301, 299])
    (estimate,) = feed(processor, [1390, 1392, 1388, 1391, 1389])
    assert processor.rejects == {"spike": 3}
    assert processor.readmitted == 3
    # window [1390, 1392, 1388, 1391, 1389] -> median 1390; fill (1400 - 1390) / 1150 = 0.0087
    assert (estimate.distance_mm, estimate.filling_level) == (1390, 0.009)


def test_scattered_false_echoes_do_not_shift_the_level() -> None:
    processor = FillProcessor(CONFIG)
    feed(processor, [1000, 1001, 999])
    # three consecutive spikes that disagree (spread 1650 - 300 > 150): no level shift
    feed(processor, [300, 1650, 500])
    assert processor.readmitted == 0
    assert processor.reference_mm == 1000


def test_temperature_compensation_in_the_processor() -> None:
    config = FillConfig(empty_distance_mm=1400, full_distance_mm=250, window=1)
    processor = FillProcessor(config)
    # reported 1000 mm at 35 degC by a 20 degC-calibrated sensor: 1000 * 352.51 / 343.42
    # = 1026.47 -> 1026 mm; fill (1400 - 1026) / 1150 = 0.3252 -> 0.325
    estimate = processor.add(jsn(1000), temperature_c=35.0)
    assert estimate is not None
    assert (estimate.distance_mm, estimate.filling_level, estimate.temperature_c) == (
        1026,
        0.325,
        35.0,
    )
    # a temperature carried by the sample wins over the one passed in
    estimate = processor.add(jsn(1000, temperature_c=20.0), temperature_c=35.0)
    assert estimate is not None
    assert estimate.distance_mm == 1000


def test_em310_through_the_processor_to_a_reading() -> None:
    config = FillConfig(
        empty_distance_mm=2500, full_distance_mm=300, window=1, spike_mm=None, calibrated_at_c=None
    )
    processor = FillProcessor(config)
    estimate = processor.add(decode_em310_uplink(chirpstack_up()))
    assert estimate is not None
    # (2500 - 2116) / (2500 - 300) = 384 / 2200 = 0.17454 -> 0.175
    assert (estimate.distance_mm, estimate.filling_level) == (2116, 0.175)
    assert (estimate.battery_pct, estimate.rssi_dbm, estimate.snr_db, estimate.tilt) == (
        92,
        -87,
        7.25,
        True,
    )
    reading = estimate.to_reading(
        sensor_id="us-07", tps_code="tps-batu-merah", seq=42, install="k7q2m"
    )
    assert reading.measured_at == datetime(2026, 11, 23, 1, 15, 0, 123456, tzinfo=UTC)
    assert reading.reading_id == "us-07.k7q2m.42"
    assert (reading.source, reading.level_status, reading.pings) == ("em310_udl", "ok", 1)
    assert reading.raw == "01 75 5C 03 82 44 08 04 00 01"
    again = decode_json(encode_json(reading), FillReading)
    assert again == reading
    line = fill_line(reading)
    assert "rssi_dbm=-87i" in line
    assert "snr_db=7.25" in line
    assert 'source="em310_udl"' in line
    assert "tilt=true" in line
    assert 'level_status="ok"' in line
    assert line.startswith("fill_level,sensor=us-07,tps=tps-batu-merah ")  # still two tags


def test_attribute_only_uplink_gives_no_reading() -> None:
    processor = FillProcessor(FillConfig(empty_distance_mm=2500, full_distance_mm=300, window=1))
    assert processor.add(decode_em310_uplink(chirpstack_up(data="/wv/"))) is None  # FF 0B FF
    assert processor.rejects == {"bad_value": 1}


def test_json_filling_level_only_derives_the_distance() -> None:
    processor = FillProcessor(FillConfig(empty_distance_mm=1400, full_distance_mm=250, window=1))
    estimate = processor.add(decode_json_reading('{"fillingLevel": 0.5}'))
    assert estimate is not None
    assert (estimate.distance_mm, estimate.filling_level) == (825, 0.5)  # 1400 - 0.5 * 1150
    with pytest.raises(ValueError, match="measured_at"):
        estimate.to_reading(sensor_id="us-01", tps_code="tps-a", seq=1, install=None)
    at = datetime(2026, 11, 23, 9, 0, tzinfo=WIT)
    reading = estimate.to_reading(
        sensor_id="us-01", tps_code="tps-a", seq=1, install=None, measured_at=at
    )
    assert reading.raw == '{"fillingLevel": 0.5}'
    assert reading.measured_at == at


def test_heaped_container_reports_over_full() -> None:
    processor = FillProcessor(
        FillConfig(empty_distance_mm=1400, full_distance_mm=250, window=1, min_valid_mm=150)
    )
    estimate = processor.add(jsn(210))
    assert estimate is not None
    assert (estimate.filling_level, estimate.level_status) == (1.0, "over_full")


def test_raw_evidence_is_bounded() -> None:
    processor = FillProcessor(FillConfig(empty_distance_mm=1400, full_distance_mm=250, window=40))
    (estimate,) = feed(processor, [1000] * 40)
    assert len(estimate.raw) == 256
    assert estimate.raw.endswith("...")
    estimate.to_reading(
        sensor_id="us-01", tps_code="tps-a", seq=1, install=None, measured_at=datetime.now(UTC)
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"empty_distance_mm": 300, "full_distance_mm": 280},
        {"empty_distance_mm": 1400, "full_distance_mm": 250, "window": 0},
        {"empty_distance_mm": 1400, "full_distance_mm": 250, "spike_mm": 0},
        {"empty_distance_mm": 1400, "full_distance_mm": 250, "min_valid_mm": 2000},
        {"empty_distance_mm": 30_000, "full_distance_mm": 250},
    ],
)
def test_config_validation(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must"):
        FillConfig(**kwargs)


@given(st.lists(st.integers(0, 3000), max_size=60))
def test_processor_estimates_stay_in_range(pings: list[int]) -> None:
    processor = FillProcessor(CONFIG)
    for estimate in feed(processor, pings):
        assert 0.0 <= estimate.filling_level <= 1.0
        assert 200 <= estimate.distance_mm <= 1700
    counted = processor.accepted + processor.rejects["out_of_range"] + processor.rejects["spike"]
    assert counted - processor.readmitted == len(pings)
