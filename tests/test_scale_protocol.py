"""gateway.scale_protocol: weight lines, kiosk frames, 7E1 parity, framing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.scale_protocol import (
    FrameError,
    KioskFrame,
    LineFramer,
    WeightReading,
    encode_kiosk,
    encode_weight,
    kiosk_checksum,
    parse_line,
    with_even_parity,
)

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
