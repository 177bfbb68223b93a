"""Golden frames from the devices' documents (tests/data/golden/), checked against each side apart.

The byte strings were copied by hand from the manufacturers' documents as the research notes
quote them (and from docs/protocol.md for our own kiosk box), each with the meaning it carries.
The gateway's decoders must decode every frame to its meaning; the simulator's encoders
(firmware_sim.encoders, which import nothing from gateway/) must write exactly every frame from
its meaning. A framing mistake made on both sides alike would pass a round trip, not these.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.encoders import (
    FrameOptions,
    Reading,
    encode_em310_udl,
    encode_kiosk,
    encode_maxbotix,
    encode_mode2,
    encode_weight,
    with_even_parity,
)
from firmware_sim.scales import MODELS, encode_frame
from gateway.fill_sensor import (
    DistanceSample,
    Em310Payload,
    FillSource,
    MaxBotixDecoder,
    Mode2Decoder,
    decode_em310_udl,
)
from gateway.scale_protocol import (
    PROTOCOLS,
    Decoded,
    FrameError,
    KioskFrame,
    ScaleStatus,
    WeightReading,
    decoder_for,
)

GOLDEN = Path(__file__).parent / "data" / "golden"
SYNC = b"\r\n"
"""Fed first: line decoders drop everything up to the first line end as a partial frame."""
REPEATS = 3
"""Indicators send continuously; an ``=`` frame only ends where the next one starts."""

Frame = dict[str, Any]


def _load(name: str) -> list[Frame]:
    with (GOLDEN / name).open("rb") as file:
        frames: list[Frame] = tomllib.load(file)["frame"]
    return frames


SCALES = _load("scales.toml")
KIOSK = _load("kiosk.toml")
FILL = _load("fill_sensors.toml")


def _wire(frame: Frame) -> bytes:
    return bytes.fromhex(frame["hex"])


def _simulated(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f.get("simulated", True)]


def _ids(frames: list[Frame], key: str) -> list[str]:
    return [f"{f.get(key) or f.get('item')}-{i}" for i, f in enumerate(frames)]


def _expected(frame: Frame, protocol: str) -> Decoded | str:
    """What the decoder must return for ``frame``; for a reject, the reason."""
    wire = _wire(frame)
    seven = bytes(b & 0x7F for b in wire) if frame.get("parity") == "7E1" else wire
    raw = seven.removesuffix(b"\r\n")
    item = frame["item"]
    if item == "weight":
        return WeightReading(
            frame["status"],
            frame["mode"],
            frame["grams"],
            raw,
            protocol,
            tare_g=frame.get("tare_g"),
            at_zero=frame.get("at_zero"),
        )
    if item == "status":
        return ScaleStatus(frame["kind"], raw, protocol, frame["code"])
    if item == "kiosk":
        return KioskFrame(frame["seq"], frame["kind"], frame["value"], raw)
    assert item == "reject"
    return str(frame["reason"])


def _decode_all(protocol: str, frame: Frame) -> list[Decoded]:
    decoder = decoder_for(protocol, **frame.get("decoder", {}))
    items = decoder.feed(SYNC + _wire(frame) * REPEATS)
    assert decoder.partial_frames == 0
    assert len(items) >= REPEATS - 1, items  # the last "=" frame waits for the next "="
    return items


def _check_decoded(items: list[Decoded], expected: Decoded | str) -> None:
    if isinstance(expected, str):
        assert all(isinstance(i, FrameError) and i.reason == expected for i in items), items
    else:
        assert items == [expected] * len(items)


# ---- the gateway decodes each frame to its meaning ---------------------------------------------


@pytest.mark.parametrize("frame", SCALES, ids=_ids(SCALES, "protocol"))
def test_gateway_decodes_scale_frames(frame: Frame) -> None:
    protocol = frame["protocol"]
    _check_decoded(_decode_all(protocol, frame), _expected(frame, protocol))


@pytest.mark.parametrize("frame", KIOSK, ids=_ids(KIOSK, "kind"))
def test_gateway_decodes_kiosk_frames(frame: Frame) -> None:
    _check_decoded(_decode_all("kiosk", frame), _expected(frame, "gs_nt"))


@pytest.mark.parametrize("frame", FILL, ids=_ids(FILL, "sensor"))
def test_gateway_decodes_fill_sensor_frames(frame: Frame) -> None:
    wire, sensor = _wire(frame), frame["sensor"]
    if sensor == "em310_udl":
        expected = Em310Payload(frame["battery_pct"], frame["distance_mm"], frame["tilt"])
        assert decode_em310_udl(wire) == expected
        return
    decoder = Mode2Decoder() if sensor == "mode2" else MaxBotixDecoder()
    source: FillSource = "jsn_sr04t" if sensor == "mode2" else "maxbotix"
    sample = DistanceSample(frame["distance_mm"], source, wire)
    assert decoder.feed(wire * REPEATS) == [sample] * REPEATS


# ---- the simulator writes each frame from its meaning ------------------------------------------


def _reading(frame: Frame) -> Reading:
    if frame["item"] == "status":
        kind = frame["kind"]
        return Reading(
            0, 0, stable=False, overload=kind == "overload", underload=kind != "overload"
        )
    return Reading(
        frame["grams"],
        frame["dp"],
        stable=frame["status"] == "stable",
        mode=frame["mode"],
        tare_g=frame.get("tare_g", 0),
        division_g=frame.get("division_g", 10),
    )


@pytest.mark.parametrize("frame", _simulated(SCALES), ids=_ids(_simulated(SCALES), "protocol"))
def test_simulator_encodes_scale_frames(frame: Frame) -> None:
    options = FrameOptions(**frame.get("options", {}))
    assert encode_frame(frame["protocol"], _reading(frame), options) == _wire(frame)


@pytest.mark.parametrize("frame", KIOSK, ids=_ids(KIOSK, "kind"))
def test_simulator_encodes_kiosk_frames(frame: Frame) -> None:
    item = frame["item"]
    if item == "kiosk":
        wire = encode_kiosk(frame["seq"], frame["kind"], frame["value"])
    elif item == "status":
        wire = encode_weight(None, stable=False, overload=True)
    else:
        wire = encode_weight(frame["grams"], stable=frame["status"] == "stable", mode=frame["mode"])
    if frame.get("parity") == "7E1":
        wire = with_even_parity(wire)
    assert wire == _wire(frame)


@pytest.mark.parametrize("frame", FILL, ids=_ids(FILL, "sensor"))
def test_simulator_encodes_fill_sensor_frames(frame: Frame) -> None:
    sensor = frame["sensor"]
    if sensor == "mode2":
        wire = encode_mode2(frame["distance_mm"])
    elif sensor == "maxbotix":
        wire = encode_maxbotix(frame["distance_mm"], digits=frame["digits"])
    else:
        wire = encode_em310_udl(
            battery_pct=frame["battery_pct"], distance_mm=frame["distance_mm"], tilt=frame["tilt"]
        )
    assert wire == _wire(frame)


# ---- the golden files themselves ---------------------------------------------------------------


def test_every_simulated_protocol_has_golden_frames_for_both_sides() -> None:
    assert set(MODELS) <= set(PROTOCOLS)
    assert {f["protocol"] for f in _simulated(SCALES)} == set(MODELS)
    assert {f["sensor"] for f in FILL} == {"mode2", "maxbotix", "em310_udl"}
    assert {f["item"] for f in KIOSK} == {"weight", "status", "kiosk"}


def test_every_golden_frame_cites_its_document() -> None:
    for frame in SCALES + KIOSK + FILL:
        assert "§" in frame["source"], frame
        assert frame.get("simulated", True) or frame.get("why"), frame


def test_the_simulators_import_nothing_from_the_gateway() -> None:
    """Until an import-linter contract says it (issue 14): shared encoders would hide a mistake."""
    package = Path(__file__).parents[1] / "firmware_sim"
    imported: list[tuple[str, str]] = []
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.append((module.name, node.module))
            elif isinstance(node, ast.Import):
                imported.extend((module.name, alias.name) for alias in node.names)
    assert ("encoders.py", "wastebank.messages") in imported  # the walk does see imports
    assert [(m, name) for m, name in imported if name.split(".")[0] == "gateway"] == []
