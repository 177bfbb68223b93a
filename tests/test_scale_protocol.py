"""gateway.scale_protocol and gateway.weighing: weight lines, kiosk frames, 7E1 parity, framing,
the decoder interface, stability, tare and zero; and the kiosk simulator's own encoders
(firmware_sim.encoders), round-tripped through the gateway's parser."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.encoders import encode_kiosk, encode_weight, kiosk_checksum, with_even_parity
from gateway.scale_protocol import (
    PROTOCOLS,
    FrameError,
    KioskFrame,
    LineFramer,
    ScaleStatus,
    WeightReading,
    decoder_for,
    parse_line,
)
from gateway.weighing import StabilityDetector, WeighState

# ---- weight lines ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "status", "mode", "grams", "protocol"),
    [
        (b"ST,GS,+0012.34kg", "stable", "gross", 12_340, "gs_nt"),
        (b"US,GS,+0012.30kg", "unstable", "gross", 12_300, "gs_nt"),
        (b"ST,NT,+0003.05kg", "stable", "net", 3_050, "gs_nt"),
        (b"ST,TR,+0000.50kg", "stable", "tare", 500, "gs_nt"),
        (b"US,NT,-0001.56lb", "unstable", "net", -708, "gs_nt"),  # 1.56 lb = 707.6 g
        (b"ST,GS,+0000.00kg", "stable", "gross", 0, "gs_nt"),
        (b"ST,GS,-0000.00kg", "stable", "gross", 0, "gs_nt"),
        (b"ST,GS,+00.0005kg", "stable", "gross", 1, "gs_nt"),  # 0.5 g: half away from zero
        (b"ST,GS,-00.0005kg", "stable", "gross", -1, "gs_nt"),
        (b"ST,GS,+  4.876kg", "stable", "gross", 4_876, "gs_nt"),
        (b"ST,GS,   245.6 g", "stable", "gross", 246, "gs_nt"),
        (b"ST,GS,+0012.34KG", "stable", "gross", 12_340, "gs_nt"),
        (b"OL,GS,+       kg", "overload", "gross", None, "gs_nt"),
        (b"OL,GS,+        ", "overload", "gross", None, "gs_nt"),
        (b"ST,+00012.34  g", "stable", "gross", 12, "and_std"),
        (b"US,-00183.69  g", "unstable", "gross", -184, "and_std"),
        (b"ST,+0001.234 kg", "stable", "gross", 1_234, "and_std"),
        (b"ST,OK,+0001.234 kg", "stable", "gross", 1_234, "and_std"),
        (b"OL,+9999999E+19", "overload", "gross", None, "and_std"),
    ],
)
def test_weight_lines(
    line: bytes, status: str, mode: str, grams: int | None, protocol: str
) -> None:
    reading = parse_line(line)
    assert reading == WeightReading(status, mode, grams, line, protocol)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "empty"),
        (b"hello", "bad_format"),
        (b"XX,GS,+0012.34kg", "bad_format"),
        (b"ST,GS,+00", "bad_format"),  # cut short
        (b"ST,GS,+002.34kg", "bad_format"),  # a digit lost on the line
        (b"ST,GS,+0012.34", "bad_format"),  # no unit
        (b"ST,GS,+00+12.3kg", "bad_format"),
        (b"ST,GS,+12E4.00kg", "bad_format"),
        (b" ST,GS,+0012.34kg", "bad_format"),
        (b"ST,GS,+0012.34kg\x00", "bad_format"),
        (b"ST,GS,+01234567  oz", "unit"),
        (b"QT,+00001234 PC", "unit"),
    ],
)
def test_bad_weight_lines(line: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as err:
        parse_line(line)
    assert err.value.reason == reason
    assert err.value.raw == line


@pytest.mark.parametrize(
    ("grams", "stable", "mode", "line"),
    [
        (12_340, True, "gross", b"ST,GS,+0012.34kg\r\n"),
        (12_345, True, "gross", b"ST,GS,+0012.35kg\r\n"),  # rounded half away to 10 g
        (-5, False, "gross", b"US,GS,-0000.01kg\r\n"),
        (4, False, "gross", b"US,GS,+0000.00kg\r\n"),
        (-4, True, "gross", b"ST,GS,+0000.00kg\r\n"),  # zero is always '+'
        (3_050, True, "net", b"ST,NT,+0003.05kg\r\n"),
        (500, True, "tare", b"ST,TR,+0000.50kg\r\n"),
        (9_999_990, True, "gross", b"ST,GS,+9999.99kg\r\n"),
    ],
)
def test_encode_weight(grams: int, stable: bool, mode: str, line: bytes) -> None:
    assert encode_weight(grams, stable=stable, mode=mode) == line  # type: ignore[arg-type]


def test_encode_overload_and_errors() -> None:
    line = encode_weight(None, stable=False, overload=True)
    assert line == b"OL,GS,+       kg\r\n"
    assert parse_line(line[:-2]).status == "overload"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="grams is required"):
        encode_weight(None, stable=True)
    with pytest.raises(ValueError, match="does not fit"):
        encode_weight(10_000_000, stable=True)


@given(st.integers(min_value=-9_999_994, max_value=9_999_994), st.booleans())
def test_encode_parse_round_trip(grams: int, stable: bool) -> None:
    reading = parse_line(encode_weight(grams, stable=stable)[:-2])
    assert isinstance(reading, WeightReading)
    assert reading.stable is stable
    expected = (abs(grams) + 5) // 10 * 10 * (1 if grams >= 0 else -1)
    assert reading.grams == expected


# ---- kiosk frames ------------------------------------------------------------------------------

# The examples of docs/protocol.md §2, with their checksums worked out by hand there.
DOC_EXAMPLES = [
    (b"#K,17,CARD,04A1B2C3*01", 17, "CARD", "04A1B2C3"),
    (b"#K,18,CAT,plastik*40", 18, "CAT", "plastik"),
    (b"#K,19,OK*47", 19, "OK", ""),
    (b"#K,20,CANCEL*4F", 20, "CANCEL", ""),
]


@pytest.mark.parametrize(("line", "seq", "kind", "value"), DOC_EXAMPLES)
def test_kiosk_doc_examples(line: bytes, seq: int, kind: str, value: str) -> None:
    assert parse_line(line) == KioskFrame(seq, kind, value, line)  # type: ignore[arg-type]
    assert encode_kiosk(seq, kind, value) == line + b"\r\n"


def test_kiosk_checksum_is_xor_between_hash_and_star() -> None:
    body = "K,19,OK"
    expected = 0
    for char in body:
        expected ^= ord(char)
    assert kiosk_checksum(body) == f"{expected:02X}" == "47"


def test_docs_show_the_same_bytes() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "protocol.md").read_text(encoding="utf-8")
    for line, *_ in DOC_EXAMPLES:
        assert line.decode() in doc
        assert (line + b"\r\n").hex(" ") in doc
    for weight in (b"ST,GS,+0012.34kg\r\n", b"US,GS,+0012.30kg\r\n", b"ST,NT,-0001.56kg\r\n"):
        assert weight.hex(" ") in doc
    assert encode_weight(None, stable=False, overload=True).hex(" ") in doc
    assert with_even_parity(b"ST,GS,+0012.34kg\r\n").hex(" ") in doc
    for extra in ("#K,0,OK*7F", "#K,65535,OK*7F", "#K,0,CAT,kertas-campur*2E"):
        assert encode_kiosk(*_fields(extra)) == extra.encode() + b"\r\n"
        assert extra in doc


def _fields(frame: str) -> tuple[int, str, str]:
    _, seq, kind, *value = frame[1:].split("*")[0].split(",")
    return int(seq), kind, value[0] if value else ""


def test_kiosk_lower_case_checksum_accepted() -> None:
    frame = parse_line(b"#K,20,CANCEL*4f")
    assert isinstance(frame, KioskFrame)
    assert frame.kind == "CANCEL"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"#K,19,OK*46", "checksum"),
        (b"#K,17,CARD,04A1B2C4*01", "checksum"),  # one flipped bit in the value
        (b"#K,19,OK", "bad_format"),
        (b"#K,19,OK*4", "bad_format"),
        (b"#K,19,OK*47x", "bad_format"),
        (b"K,19,OK*47", "bad_format"),
        (b"#X,19,OK*" + kiosk_checksum("X,19,OK").encode(), "bad_format"),
        (b"#K,19*" + kiosk_checksum("K,19").encode(), "bad_format"),
        (b"#K,19,OK,x*" + kiosk_checksum("K,19,OK,x").encode(), "bad_format"),
        (b"#K,19,CAT*" + kiosk_checksum("K,19,CAT").encode(), "bad_format"),
        (b"#K,1,2,3,4*" + kiosk_checksum("K,1,2,3,4").encode(), "bad_format"),
        (b"#K,65536,OK*" + kiosk_checksum("K,65536,OK").encode(), "bad_value"),
        (b"#K,007,OK*" + kiosk_checksum("K,007,OK").encode(), "bad_value"),
        (b"#K,-1,OK*" + kiosk_checksum("K,-1,OK").encode(), "bad_value"),
        (b"#K,19,PING*" + kiosk_checksum("K,19,PING").encode(), "bad_value"),
        (b"#K,19,CARD,04a1b2c3*" + kiosk_checksum("K,19,CARD,04a1b2c3").encode(), "bad_value"),
        (b"#K,19,CARD,04A1B2*" + kiosk_checksum("K,19,CARD,04A1B2").encode(), "bad_value"),
        (b"#K,19,CAT,Plastik*" + kiosk_checksum("K,19,CAT,Plastik").encode(), "bad_value"),
    ],
)
def test_bad_kiosk_frames(line: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as err:
        parse_line(line)
    assert err.value.reason == reason


def test_kiosk_seq_bounds() -> None:
    assert parse_line(encode_kiosk(0, "OK")[:-2]) == KioskFrame(0, "OK", "", b"#K,0,OK*7F")
    assert parse_line(encode_kiosk(65535, "OK")[:-2]).seq == 65535  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("seq", "kind", "value"),
    [(65536, "OK", ""), (-1, "OK", ""), (1, "PING", ""), (1, "OK", "x"), (1, "CARD", ""),
     (1, "CAT", "Kaca")],
)  # fmt: skip
def test_encode_kiosk_rejects(seq: int, kind: str, value: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        encode_kiosk(seq, kind, value)


# ---- 7E1 read as 8N1 ---------------------------------------------------------------------------


def test_seven_e1_weight_line_is_unmasked() -> None:
    line = with_even_parity(b"ST,GS,+0012.34kg")
    assert line != b"ST,GS,+0012.34kg"
    assert any(b & 0x80 for b in line)
    reading = parse_line(line)
    assert reading == WeightReading("stable", "gross", 12_340, b"ST,GS,+0012.34kg")


def test_seven_e1_kiosk_frame_is_unmasked() -> None:
    frame = parse_line(with_even_parity(b"#K,17,CARD,04A1B2C3*01"))
    assert frame == KioskFrame(17, "CARD", "04A1B2C3", b"#K,17,CARD,04A1B2C3*01")


def test_even_parity_bit_values() -> None:
    # 'S' 0x53 has four 1-bits (parity 0); 'T' 0x54 has three (parity 1 -> 0xD4).
    assert with_even_parity(b"ST\r\n") == b"S\xd4\x8d\n"


def test_seven_e1_single_bit_error_is_parity() -> None:
    line = bytearray(with_even_parity(b"ST,GS,+0012.34kg"))
    line[9] ^= 0x01  # '1' -> '0' on the wire: parity no longer even
    with pytest.raises(FrameError) as err:
        parse_line(bytes(line))
    assert err.value.reason == "parity"


def test_high_bit_garbage_is_parity() -> None:
    with pytest.raises(FrameError) as err:
        parse_line(b"ST,GS,+0012.34k\xe7\x80")
    assert err.value.reason == "parity"


# ---- framing -----------------------------------------------------------------------------------


def test_framer_crlf_lf_and_chunks() -> None:
    framer = LineFramer()
    assert framer.feed(b"ST,GS,+0012.34kg\r\nUS,GS,+00") == [b"ST,GS,+0012.34kg"]
    assert framer.buffered == len(b"US,GS,+00")
    assert framer.feed(b"01.00kg\n\r\n\n#K,19,OK*47\r") == [b"US,GS,+0001.00kg"]
    assert framer.feed(b"\n") == [b"#K,19,OK*47"]
    assert framer.buffered == 0
    assert framer.dropped_bytes == 0


def test_framer_seven_e1_cr() -> None:
    framer = LineFramer()
    items = framer.feed(with_even_parity(b"ST,GS,+0012.34kg\r\n"))
    assert items == [with_even_parity(b"ST,GS,+0012.34kg")]


def test_framer_overflow_then_resync() -> None:
    framer = LineFramer(max_line=16)
    items = framer.feed(b"x" * 40)
    assert len(items) == 1
    assert isinstance(items[0], FrameError)
    assert items[0].reason == "overflow"
    assert items[0].raw == b"x" * 17
    assert framer.buffered == 0
    assert framer.feed(b"y" * 10) == []  # still the same overlong line
    assert framer.feed(b"zz\r\nST,GS,+0012.34kg\r\n") == [b"ST,GS,+0012.34kg"]
    assert framer.dropped_bytes == 53  # 40 + 10 + "zz\r"


def test_framer_exact_limits() -> None:
    framer = LineFramer(max_line=16)
    assert framer.feed(b"A" * 16 + b"\r") == []
    assert framer.feed(b"\n") == [b"A" * 16]  # the CR is the 17th byte, not content
    items = framer.feed(b"A" * 17 + b"\n")
    assert len(items) == 1
    assert isinstance(items[0], FrameError)
    assert items[0].reason == "overflow"
    assert framer.feed(b"A" * 16 + b"\rB\n")[0] != b"A" * 16  # a CR inside a line counts


def test_framer_garbage_between_lines() -> None:
    framer = LineFramer()
    items = framer.feed(b"\x00\xff\x13garbage\r\nST,GS,+0012.34kg\r\n")
    assert items[1] == b"ST,GS,+0012.34kg"
    with pytest.raises(FrameError):
        parse_line(items[0])  # type: ignore[arg-type]


def test_framer_rejects_bad_max_line() -> None:
    with pytest.raises(ValueError, match="max_line"):
        LineFramer(max_line=0)


@given(
    chunks=st.lists(
        st.one_of(
            st.binary(max_size=300),
            st.sampled_from(
                [b"\r\n", b"\n", b"ST,GS,+0012.34kg\r\n", b"#K,19,OK*47\r\n", b"\x8d\n"]
            ),
        ),
        max_size=40,
    ),
    max_line=st.integers(min_value=1, max_value=160),
)
def test_framer_and_parser_never_crash(chunks: list[bytes], max_line: int) -> None:
    framer = LineFramer(max_line=max_line)
    chunked: list[tuple[str, bytes]] = []
    for chunk in chunks:
        for item in framer.feed(chunk):
            if isinstance(item, FrameError):
                assert item.reason == "overflow"
                assert len(item.raw) <= max_line + 1
                chunked.append(("error", item.raw))
                continue
            assert 0 < len(item) <= max_line
            assert b"\n" not in item
            chunked.append(("line", item))
            outcome = _parse_or_error(item)
            assert isinstance(outcome, WeightReading | KioskFrame | FrameError)
            if isinstance(outcome, FrameError):
                assert outcome.raw == item
        assert framer.buffered <= max_line + 1

    # Chunking must not change the outcome.
    whole = LineFramer(max_line=max_line)
    at_once = [
        ("error", i.raw) if isinstance(i, FrameError) else ("line", i)
        for i in whole.feed(b"".join(chunks))
    ]
    assert at_once == chunked
    assert whole.dropped_bytes == framer.dropped_bytes
    assert whole.buffered == framer.buffered


def _parse_or_error(line: bytes) -> WeightReading | KioskFrame | FrameError:
    """parse_line's result or its FrameError; any other exception fails the test."""
    try:
        return parse_line(line)
    except FrameError as exc:
        return exc


# ---- the decoder interface ---------------------------------------------------------------------


def test_decoder_for_every_protocol() -> None:
    for protocol in PROTOCOLS:
        decoder = decoder_for(protocol)
        assert decoder.protocol == protocol
        assert (decoder.parsed, decoder.dropped_bytes, decoder.partial_frames) == (0, 0, 0)
        assert decoder.rejected == {}
    assert decoder_for("kiosk").protocol == "gs_nt"


def test_kiosk_stream_through_the_decoder_interface() -> None:
    decoder = decoder_for("kiosk")
    stream = (
        b"+0012.3"  # the tail of a line that was on the wire when the port opened
        + encode_weight(12_340, stable=False)
        + encode_kiosk(17, "CARD", "04A1B2C3")
        + encode_kiosk(18, "CAT", "plastik")
        + with_even_parity(encode_weight(12_340, stable=True))
        + encode_kiosk(19, "OK")
        + encode_weight(None, stable=False, overload=True)
    )
    out = decoder.feed(stream)
    assert out == [
        KioskFrame(17, "CARD", "04A1B2C3", b"#K,17,CARD,04A1B2C3*01"),
        KioskFrame(18, "CAT", "plastik", b"#K,18,CAT,plastik*40"),
        WeightReading("stable", "gross", 12_340, b"ST,GS,+0012.34kg", "gs_nt"),
        KioskFrame(19, "OK", "", b"#K,19,OK*47"),
        ScaleStatus("overload", b"OL,GS,+       kg", "gs_nt", "OL"),  # never a weight
    ]
    assert decoder.partial_frames == 1  # "+0012.3US,GS,+0012.30kg": dropped, not parsed
    assert decoder.parsed == 5
    assert decoder.dropped_bytes == len(b"+0012.3US,GS,+0012.30kg\r\n")


def test_parse_line_keeps_its_overload_reading() -> None:
    assert parse_line(b"OL,GS,+       kg") == WeightReading(
        "overload", "gross", None, b"OL,GS,+       kg"
    )


def test_decoder_reset_drops_the_next_partial_line() -> None:
    decoder = decoder_for("gs_nt")
    decoder.feed(b"\nST,GS,+00")
    assert decoder.buffered == len(b"ST,GS,+00")
    decoder.reset()
    assert decoder.buffered == 0
    assert decoder.feed(b"12.34kg\r\nST,GS,+0012.34kg\r\n") == [
        WeightReading("stable", "gross", 12_340, b"ST,GS,+0012.34kg", "gs_nt")
    ]
    assert decoder.partial_frames == 1


def test_decoder_overlong_line() -> None:
    decoder = decoder_for("gs_nt")
    out = decoder.feed(b"\n" + b"x" * 300 + b"\r\nST,GS,+0012.34kg\r\n")
    assert isinstance(out[0], FrameError)
    assert out[0].reason == "overflow"
    assert isinstance(out[1], WeightReading)
    assert decoder.rejected == {"overflow": 1}
    assert decoder.dropped_bytes == 1 + 301  # the sync LF, then the overlong line up to its LF


def test_weight_reading_compatibility() -> None:
    old = WeightReading("stable", "gross", 12_340, b"ST,GS,+0012.34kg", "gs_nt")
    assert (old.tare_g, old.at_zero, old.computed_stability) == (None, None, False)
    assert old.stable is True
    assert old.device_stable is True
    flagless = WeightReading("unknown", "gross", 1_000, b"=0001.000", "yh_fwd")
    assert flagless.stable is False  # never a deposit weight until a detector says so
    assert flagless.device_stable is None


# ---- stability for flagless formats ------------------------------------------------------------


def flagless(grams: int, mode: str = "gross") -> WeightReading:
    return WeightReading("unknown", mode, grams, b"", "yh_fwd")  # type: ignore[arg-type]


def play(detector: StabilityDetector, values: list[int], *, step: float = 0.125) -> list[bool]:
    return [detector.update(flagless(g), i * step).stable for i, g in enumerate(values)]


def test_stability_needs_the_whole_window_within_tolerance() -> None:
    detector = StabilityDetector(window_s=1.0, tolerance_g=10)
    verdicts = play(detector, [0, 500, 1_200, 1_250, *[1_250, 1_255, 1_250, 1_245] * 3])
    assert verdicts[:11] == [False] * 11  # within 10 g from t=0.375: stable once t >= 1.375
    assert verdicts[11:] == [True] * 5
    assert detector.stable is True


def test_stability_resets_on_a_jump_a_gap_a_mode_change() -> None:
    detector = StabilityDetector(window_s=0.5, tolerance_g=10)
    assert play(detector, [100] * 8)[-1] is True
    assert detector.update(flagless(150), 1.0).stable is False  # a jump
    detector = StabilityDetector(window_s=0.5, tolerance_g=10)
    play(detector, [100] * 8)
    assert detector.update(flagless(100), 5.0).stable is False  # silence: start over
    assert detector.update(flagless(100, "net"), 5.1).stable is False
    assert detector.update(flagless(100), 4.0).stable is False  # time went backwards


def test_stability_trusts_a_device_flag_and_leaves_tare_frames_alone() -> None:
    detector = StabilityDetector()
    flagged = WeightReading("unstable", "gross", 100, b"US,GS,+0000.10kg")
    assert detector.update(flagged, 0.0) is flagged
    tare = flagless(500, "tare")
    assert detector.update(tare, 0.0) is tare
    assert detector.stable is None
    computed = detector.update(flagless(100), 0.0)
    assert (computed.status, computed.computed_stability, computed.device_stable) == (
        "unstable",
        True,
        None,
    )


def test_stability_settings() -> None:
    detector = StabilityDetector(window_s=0.25, tolerance_g=50, min_readings=2)
    assert play(detector, [1_000, 1_040, 1_010]) == [False, False, True]
    with pytest.raises(ValueError, match="window_s"):
        StabilityDetector(window_s=0)


# ---- tare and zero -----------------------------------------------------------------------------


def test_net_from_a_tare_frame_and_a_gross_reading() -> None:
    state = WeighState()
    tare = WeightReading("stable", "tare", 500, b"ST,TR,+0000.50kg")
    assert state.update(tare, 0.0) is None
    weighing = state.update(WeightReading("stable", "gross", 2_850, b""), 0.1)
    assert weighing is not None
    assert (weighing.gross_g, weighing.tare_g, weighing.net_g) == (2_850, 500, 2_350)
    net = state.update(WeightReading("stable", "net", 2_350, b""), 0.2)
    assert net is not None
    assert (net.gross_g, net.net_g, net.tare_known) == (2_850, 2_350, True)
    state.clear_tare()
    cleared = state.update(WeightReading("stable", "gross", 2_850, b""), 0.3)
    assert cleared is not None
    assert (cleared.net_g, cleared.tare_known) == (2_850, False)


def test_tare_from_the_toledo_tare_field() -> None:
    state = WeighState()
    frame = WeightReading("stable", "net", 8_700, b"", "toledo_cont", tare_g=5_000)
    weighing = state.update(frame, 0.0)
    assert weighing is not None
    assert (weighing.gross_g, weighing.tare_g, weighing.net_g) == (13_700, 5_000, 8_700)


def test_flagless_readings_get_their_stability_from_the_detector() -> None:
    state = WeighState(stability=StabilityDetector(window_s=0.375, tolerance_g=10))
    results = [state.update(flagless(1_000), i * 0.125) for i in range(5)]
    assert [r.stable for r in results if r is not None] == [False, False, False, True, True]


def test_zero_tracks_slow_drift_while_idle_but_not_a_load() -> None:
    state = WeighState(zero_band_g=20)
    assert (state.zero_g, state.drift_g) == (None, 0)
    for i, grams in enumerate([0, 5, 10, 20, 35, 50]):  # creep of 5-15 g between idle readings
        state.update(WeightReading("stable", "gross", grams, b""), float(i))
    assert (state.zero_g, state.drift_g, state.zero_at) == (50, 50, 5.0)
    state.update(WeightReading("stable", "gross", 2_500, b""), 6.0)  # a deposit
    state.update(WeightReading("unstable", "gross", 60, b""), 7.0)  # moving: not idle
    assert state.zero_g == 50
    state.rezero()  # the operator zeroed the indicator
    assert state.drift_g == 0
    state.update(WeightReading("stable", "gross", 65, b""), 8.0)
    assert state.drift_g == 15


def test_zero_capture_and_the_device_zero_flag() -> None:
    state = WeighState(zero_capture_g=100)
    state.update(WeightReading("stable", "gross", 2_500, b""), 0.0)  # switched on loaded
    assert state.zero_g is None
    state.update(WeightReading("stable", "gross", 400, b"", "cas22", at_zero=True), 1.0)
    assert state.zero_g == 400  # the indicator says centre of zero
    state = WeighState()
    state.update(WeightReading("stable", "net", 0, b""), 0.0)  # net, tare unknown: no gross
    assert state.zero_g is None
    with pytest.raises(ValueError, match="zero bands"):
        WeighState(zero_band_g=-1)


def test_a_kiosk_frame_first_after_opening_is_kept_a_weight_line_is_not() -> None:
    from gateway.scale_protocol import decoder_for

    card = encode_kiosk(5, "CARD", "04A1B2C3D4")
    kept = decoder_for("kiosk").feed(card + b"ST,GS,+0001.25kg\r\n")
    assert [type(i).__name__ for i in kept] == ["KioskFrame", "WeightReading"]
    # The tail of a kiosk frame (no leading "#") is dropped as partial, never read as a card.
    cut = decoder_for("kiosk").feed(card[3:] + card)
    assert [type(i).__name__ for i in cut] == ["KioskFrame"]
    # The first weight line may be a tail: it is dropped as partial, not parsed.
    decoder = decoder_for("kiosk")
    assert decoder.feed(b"ST,GS,+0001.25kg\r\nST,GS,+0001.30kg\r\n")[0].grams == 1300  # type: ignore[union-attr]
    assert decoder.partial_frames == 1
