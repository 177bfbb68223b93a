"""Every scale format of docs/protocol.md §1, byte for byte from the research notes.

Frames are written by hand from /work/shared/domain/device-protocols.md §0.1 and §1.1-§1.8 (not
from an encoder), so they cross-check the decoders and the simulator's own encoders.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.encoders import with_even_parity
from gateway.scale_protocol import (
    DETECT_ORDER,
    FRAMES_NEEDED,
    MAX_BUFFER,
    PROTOCOLS,
    Decoded,
    FrameError,
    KioskFrame,
    ScaleStatus,
    ToledoDecoder,
    WeightReading,
    decoder_for,
    toledo_checksum,
)

SYNC = b"\r\n"
"""Fed first: the decoders drop everything up to the first frame start as a partial frame."""


def items(protocol: str, wire: bytes, **options: str) -> list[Decoded]:
    decoder = decoder_for(protocol, **options)  # type: ignore[arg-type]
    out = decoder.feed(SYNC + wire)
    assert decoder.partial_frames == 0
    assert decoder.parsed + sum(decoder.rejected.values()) == len(out)
    return out


def only(protocol: str, wire: bytes, **options: str) -> Decoded:
    out = items(protocol, wire, **options)
    assert len(out) == 1, out
    return out[0]


def reading(protocol: str, wire: bytes, **options: str) -> WeightReading:
    item = only(protocol, wire, **options)
    assert isinstance(item, WeightReading), item
    return item


def reject(protocol: str, wire: bytes, **options: str) -> str:
    item = only(protocol, wire, **options)
    assert isinstance(item, FrameError), item
    return item.reason


def status(protocol: str, wire: bytes) -> tuple[str, str]:
    item = only(protocol, wire)
    assert isinstance(item, ScaleStatus), item
    return item.kind, item.code


# ---- Yaohua XK3190 continuous STX ... ETX (yh_stx, §1.1a) ---------------------------------------

YH_1234 = bytes.fromhex("02 2B 30 30 31 32 33 34 32 31 44 03")  # 12.34, XOR 0x1D


def test_yh_stx_manual_example() -> None:
    assert YH_1234 == b"\x02+0012342" + b"1D\x03"
    assert reading("yh_stx", YH_1234) == WeightReading(
        "unknown", "gross", 12_340, YH_1234, "yh_stx"
    )


@pytest.mark.parametrize(
    ("wire", "grams"),
    [
        (b"\x02-0001002" + b"1E\x03", -1_000),  # -1.00, XOR 0x1E
        (bytes.fromhex("022b30303135363030313903"), 1_560_000),  # weighbridge capture: 1560 kg
        (bytes.fromhex("022b30303030303030314203"), 0),  # capture: 0 kg, XOR 0x1B
        (b"\x02+0012342" + b"1=\x03", 12_340),  # 0x1D with nibbles as 0x30 + n
        (b"\x02+0000000" + b"1;\x03", 0),  # 0x1B as 0x30 + n
        (b"\x02+0012344" + b"1;\x03", 123),  # 0.1234 kg, XOR 0x1B
    ],
)
def test_yh_stx_frames(wire: bytes, grams: int) -> None:
    assert reading("yh_stx", wire).grams == grams


def test_yh_stx_unit_is_configurable() -> None:
    assert reading("yh_stx", YH_1234, unit="g").grams == 12
    assert reading("yh_stx", YH_1234, unit="lb").grams == 5_597  # 12.34 lb = 5597.3 g


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"\x02+0012342" + b"1E\x03", "checksum"),
        (b"\x02+0012352" + b"1D\x03", "checksum"),  # a digit changed
        (b"\x02+0012342" + b"1d\x03", "bad_format"),  # lower case is neither encoding
        (b"\x02+001234" + b"1D\x03", "bad_format"),  # a byte lost: 11 bytes
        (b"\x02+0012345" + b"1A\x03", "bad_format"),  # 5 decimals (XOR 0x1A is right)
        (b"\x02 0012342" + b"16\x03", "bad_format"),  # no sign (XOR 0x16 is right)
    ],
)
def test_yh_stx_rejects(wire: bytes, reason: str) -> None:
    assert reject("yh_stx", wire) == reason


def test_yh_stx_framing() -> None:
    decoder = decoder_for("yh_stx")
    # a partial frame, garbage, a frame cut by the next STX, then two good frames
    out = decoder.feed(b"34" + b"21D\x03junk\x02+0012\x02+0012342" + b"1D\x03")
    assert [type(i) for i in out] == [FrameError, WeightReading]
    assert isinstance(out[0], FrameError)
    assert out[0].raw == b"\x02+0012"
    assert decoder.partial_frames == 1
    assert decoder.dropped_bytes == len(b"3421D\x03junk")
    assert decoder.feed(b"\x02+00123421D") == []
    assert decoder.buffered == 11
    assert decoder.feed(b"\x03") == [reading("yh_stx", YH_1234)]
    overlong = decoder.feed(b"\x02+00123421DXYZ\x03")  # no ETX within 12 bytes
    assert isinstance(overlong[0], FrameError)
    assert decoder.buffered == 0
    assert decoder.rejected == {"bad_format": 2}
    assert decoder.parsed == 2


# ---- Yaohua "=" streams (yh_rev, yh_fwd, §1.1c) ------------------------------------------------


def test_yh_rev_manual_examples() -> None:
    out = items("yh_rev", b"=000.3000=000.3000=00.1000-=00.1000-=")
    assert [i.grams for i in out if isinstance(i, WeightReading)] == [3_000, 3_000, -1_000, -1_000]
    assert all(isinstance(i, WeightReading) and i.status == "unknown" for i in out)
    assert out[0] == WeightReading("unknown", "gross", 3_000, b"=000.3000", "yh_rev")


def test_yh_fwd_manual_examples() -> None:
    out = items("yh_fwd", b"=0003.000=0003.000=-0001.00=")
    assert [i.grams for i in out if isinstance(i, WeightReading)] == [3_000, 3_000, -1_000]


def test_yh_equals_frames_end_at_the_next_equals_sign() -> None:
    decoder = decoder_for("yh_fwd")
    assert decoder.feed(b"0.000=0003.000") == []  # partial frame, then one not yet delimited
    assert decoder.partial_frames == 1
    assert decoder.buffered == 9
    assert [i.grams for i in decoder.feed(b"=") if isinstance(i, WeightReading)] == [3_000]


def test_yh_equals_trailing_cr_clone() -> None:
    out = items("yh_fwd", b"=0003.000\r=0003.120\r\n=-001.500\r")
    assert [i.grams for i in out if isinstance(i, WeightReading)] == [3_000, 3_120, -1_500]
    out = items("yh_rev", b"=000.3000\r=021.3000\r")
    assert [i.grams for i in out if isinstance(i, WeightReading)] == [3_000, 3_120]


def test_yh_equals_clone_capture_from_the_notes_is_not_a_valid_frame() -> None:
    # hahuyquyen/CMA_1 CANTEST.ino: "=   0.00C\r" -- 'C' where the sign belongs in both directions.
    capture = bytes.fromhex("3D 20 20 20 30 2E 30 30 43 0D")
    assert reject("yh_fwd", capture) == "bad_format"
    assert reject("yh_rev", capture) == "bad_format"


@pytest.mark.parametrize(
    ("protocol", "wire"),
    [
        ("yh_fwd", b"=003.000="),  # a byte lost
        ("yh_fwd", b"=+003.000="),  # '+' is not a sign here
        ("yh_fwd", b"=00.03.00="),
        ("yh_fwd", b"=00.1000-="),  # a reversed -1.00 read forward
        ("yh_rev", b"=-0001.00="),  # a forward -1.00 read reversed
        ("yh_rev", b"=0003.125="),  # forward 3.125: reversed, its sign would be "5"
        ("yh_rev", b"=00012.50="),  # forward 12.50 reversed: 5.21000, no indicator shows 5 places
        ("yh_fwd", b"=05.21000="),
    ],
)
def test_yh_equals_rejects(protocol: str, wire: bytes) -> None:
    assert reject(protocol, wire) == "bad_format"


def test_yh_equals_ambiguity() -> None:
    # A forward frame whose last digit is 0 is also a valid reversed frame (of another weight);
    # the auto-detector sorts this out (tests/test_autodetect.py).
    assert reading("yh_fwd", b"=0003.120=").grams == 3_120
    assert reading("yh_rev", b"=0003.120=").grams == 21_300


def test_yh_equals_overlong_frame_resyncs() -> None:
    decoder = decoder_for("yh_fwd")
    out = decoder.feed(b"\r\n=0003.00000000000=0003.000=")
    assert [type(i) for i in out] == [FrameError, WeightReading]
    assert decoder.dropped_bytes == len(b"\r\n") + len(b"0000000")  # sync, overlong tail


# ---- XK3190-A12(E) manual format (a12e_chk, §1.2) ----------------------------------------------

A12E_4139 = bytes.fromhex("57 47 30 30 34 2E 31 33 39 6B 67 33 44 0D 0A")


def test_a12e_manual_example() -> None:
    assert A12E_4139 == b"WG004.139kg3D\r\n"
    assert reading("a12e_chk", A12E_4139) == WeightReading(
        "unknown", "gross", 4_139, b"WG004.139kg3D", "a12e_chk"
    )


@pytest.mark.parametrize(
    ("wire", "kind", "code"),
    [
        (b"         OL23\r\n", "overload", "OL"),
        (b"         LO23\r\n", "underload", "LO"),
    ],
)
def test_a12e_overload_underload(wire: bytes, kind: str, code: str) -> None:
    assert status("a12e_chk", wire) == (kind, code)


@pytest.mark.parametrize(
    ("wire", "mode", "grams"),
    [
        (b"WN-04.139kg29\r\n", "net", -4_139),
        (b"WN004.139kg34\r\n", "net", 4_139),
        (b"WG000413 kg3A\r\n", "gross", 413_000),  # no decimal point: byte 9 blank
        (b"WG000413 kg3:\r\n", "gross", 413_000),  # the same checksum as 0x30 + nibble
        (b"WG004.139kg3=\r\n", "gross", 4_139),
        (b"WG010.000lb31\r\n", "gross", 4_536),  # 10 lb = 4535.9 g
    ],
)
def test_a12e_frames(wire: bytes, mode: str, grams: int) -> None:
    item = reading("a12e_chk", wire)
    assert (item.mode, item.grams) == (mode, grams)


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"WG004.139kgCF\r\n", "checksum"),  # the byte sum, not the XOR
        (b"WG004.138kg3D\r\n", "checksum"),
        (b"WG04.139kg3D\r\n", "bad_format"),  # a byte lost
        (b"WG004.139kg3d\r\n", "bad_format"),
        (b"WX004.139kg3D\r\n", "checksum"),
    ],
)
def test_a12e_rejects(wire: bytes, reason: str) -> None:
    assert reject("a12e_chk", wire) == reason


# ---- A12/A27E/Liden field format (a12_ww, §1.2) ------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([b"ww000.000kg", b"wn000.000kg", b"wt000.000kg"], [("gross", 0), ("net", 0), ("tare", 0)]),
        ([b"ww000.250kg", b"wt000.150kg"], [("gross", 250), ("tare", 150)]),
        ([b"wn-0000.1kg", b"wn00012.3kg"], [("net", -100), ("net", 12_300)]),
        ([b"ww0000.000kg", b"ww-0015.000kg"], [("gross", 0), ("gross", -15_000)]),  # Liden
        ([b"wn-003.17kg", b"wn0003.17kg"], [("net", -3_170), ("net", 3_170)]),  # ESP32 parser
        ([b"ww0010.00lb", b"ww-010.00lb"], [("gross", 4_536), ("gross", -4_536)]),
    ],
)  # fmt: skip
def test_a12_ww_lines(lines: list[bytes], expected: list[tuple[str, int]]) -> None:
    out = items("a12_ww", b"".join(line + b"\r\n" for line in lines))
    assert [(i.mode, i.grams) for i in out if isinstance(i, WeightReading)] == expected
    assert all(isinstance(i, WeightReading) and i.status == "unknown" for i in out)


def test_a12_ww_locks_the_field_width() -> None:
    out = items(
        "a12_ww",
        b"ww012.345kg\r\nww02.345kg\r\nww012.35kg\r\nwn-12.345kg\r\nwn-012.345kg\r\nww012.345kg\r\n",
    )
    summary = [i.grams if isinstance(i, WeightReading) else getattr(i, "reason", i) for i in out]
    assert summary == [12_345, "bad_format", "bad_format", -12_345, -12_345, 12_345]
    decoder = decoder_for("a12_ww")
    decoder.feed(b"\nww012.345kg\r\n")
    decoder.reset()  # another indicator may be on the port now
    assert isinstance(decoder.feed(b"\nww02.34kg\r\n")[0], WeightReading)


@pytest.mark.parametrize(
    "line", [b"wx000.000kg", b"ww000.000oz", b"ww000.000", b"WW000.000kg", b"ww00 0.000kg"]
)
def test_a12_ww_rejects(line: bytes) -> None:
    assert reject("a12_ww", line + b"\r\n") in ("bad_format", "unit")


# ---- A&D standard (and_std, §1.3) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "state", "grams"),
    [
        (b"ST,+00012.34  g", "stable", 12),
        (b"US,-00183.69  g", "unstable", -184),
        (b"ST,+00081.72  g", "stable", 82),
        (b"US,-00183.96  g", "unstable", -184),
        (b"ST,+0001.234 kg", "stable", 1_234),
        (b"ST,OK,+0001.234 kg", "stable", 1_234),  # comparator header
        (b"ST,+00123.45 kg", "stable", 123_450),  # the Experts-Exchange 7E1 platform scale
    ],
)
def test_and_std_lines(line: bytes, state: str, grams: int) -> None:
    assert reading("and_std", line + b"\r\n") == WeightReading(
        state,  # type: ignore[arg-type]
        "gross",
        grams,
        line,
        "and_std",
    )


def test_and_std_status_and_rejects() -> None:
    assert status("and_std", b"OL,+9999999E+19\r\n") == ("overload", "OL")
    assert status("and_std", b"OL,-9999999E+19\r\n") == ("underload", "OL")
    assert reject("and_std", b"QT,+00001234 PC\r\n") == "unit"  # a count is not a weight
    assert reject("and_std", b"ST,GS,+0012.34kg\r\n") == "bad_format"  # that is gs_nt


# ---- the "ST,GS," variant (gs_nt, §1.3) --------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "state", "mode", "grams"),
    [
        (b"ST,GS,+0012.34kg", "stable", "gross", 12_340),
        (b"US,NT,-0001.56lb", "unstable", "net", -708),  # 707.6 g
        (b"ST,NT,+0003.05kg", "stable", "net", 3_050),
        (b"ST,TR,+0000.50kg", "stable", "tare", 500),
        (b"US,GS,+01234.56  lb", "unstable", "gross", 559_987),  # Kern, 559 986.996 g
        (b"ST,GS,   245.6 g", "stable", "gross", 246),  # T-Scale log
        (b"ST,GS,+  4.876kg", "stable", "gross", 4_876),  # test generator
    ],
)
def test_gs_nt_lines(line: bytes, state: str, mode: str, grams: int) -> None:
    assert reading("gs_nt", line + b"\r\n") == WeightReading(
        state,  # type: ignore[arg-type]
        mode,  # type: ignore[arg-type]
        grams,
        line,
        "gs_nt",
    )


def test_gs_nt_status_kiosk_and_rejects() -> None:
    assert status("gs_nt", b"OL,GS,+       kg\r\n") == ("overload", "OL")
    assert reject("gs_nt", b"ST,GS,+01234567  oz\r\n") == "unit"  # Kern in ounces
    assert reject("gs_nt", b"ST,+00012.34  g\r\n") == "bad_format"  # that is and_std
    assert only("kiosk", b"#K,19,OK*47\r\n") == KioskFrame(19, "OK", "", b"#K,19,OK*47")


# ---- CAS 22 bytes (cas22, §1.4) ----------------------------------------------------------------

LAMP_STABLE, LAMP_GROSS, LAMP_TARE, LAMP_ZERO = 0x40, 0x04, 0x02, 0x01


def cas22(head: bytes, head2: bytes, lamp: int, data: bytes, unit: bytes = b"kg") -> bytes:
    """``ST,GS,<ID><LAMP>,<data 8> kg`` CR LF with device ID 1 (0x31); lamp bit 7 is 1."""
    wire = head + b"," + head2 + b",1" + bytes([0x80 | lamp]) + b"," + data + b" " + unit + b"\r\n"
    assert len(wire) == 22
    return wire


def test_cas22_stable_gross() -> None:
    wire = cas22(b"ST", b"GS", LAMP_STABLE | LAMP_GROSS, b"00013.50")
    assert wire == b"ST,GS,1\xc4,00013.50 kg\r\n"
    assert reading("cas22", wire) == WeightReading(
        "stable", "gross", 13_500, wire[:-2], "cas22", at_zero=False
    )


@pytest.mark.parametrize(
    ("head", "head2", "lamp", "data", "expected"),
    [
        (b"ST", b"GS", LAMP_GROSS, b"00013.50", ("unstable", "gross", 13_500, False)),  # no lamp
        (b"US", b"GS", LAMP_STABLE | LAMP_GROSS, b"00013.50", ("unstable", "gross", 13_500, False)),
        (b"ST", b"NT", LAMP_STABLE | LAMP_TARE, b"00002.35", ("stable", "net", 2_350, False)),
        (b"ST", b"GS", LAMP_STABLE | LAMP_ZERO, b"00000.00", ("stable", "gross", 0, True)),
        (b"ST", b"NT", LAMP_STABLE | LAMP_TARE, b"-0001.20", ("stable", "net", -1_200, False)),
    ],
)  # fmt: skip
def test_cas22_lamp(
    head: bytes, head2: bytes, lamp: int, data: bytes, expected: tuple[str, str, int, bool]
) -> None:
    item = reading("cas22", cas22(head, head2, lamp, data))
    assert (item.status, item.mode, item.grams, item.at_zero) == expected


def test_cas22_overload_and_rejects() -> None:
    assert status("cas22", cas22(b"OL", b"GS", LAMP_GROSS, b"        ")) == ("overload", "OL")
    assert reject("cas22", b"ST,GS,1\xc4,0013.50 kg\r\n") == "bad_format"  # 21 bytes
    assert reject("cas22", b"ST,GS,+0012.34kg\r\n") == "bad_format"  # gs_nt
    assert reject("cas22", cas22(b"ST", b"GS", LAMP_STABLE, b"00013.50", b"oz")) == "unit"


# ---- Toledo continuous (toledo_cont, §1.5) -----------------------------------------------------

# SWA 0x2C: bit 5 + increment x1 (bits 3-4 = 01) + decimal code 4 (XXXX.XX).
# SWB 0x30: bit 5 + bit 4 (kg); gross, positive, in range, no motion. SWC 0x20: bit 5.
# The checksum is the two's complement of the 7-bit sum of STX ... CR (see the test below).
TOLEDO_1234 = b"\x02,0 001234000000\r+"  # 12.34 kg gross, checksum 0x2B


def test_toledo_checksum_definition() -> None:
    frame = TOLEDO_1234[:-1]
    assert (sum(frame) + TOLEDO_1234[-1]) % 128 == 0
    assert toledo_checksum(frame) == 0x2B


def test_toledo_gross() -> None:
    assert reading("toledo_cont", TOLEDO_1234) == WeightReading(
        "stable", "gross", 12_340, TOLEDO_1234, "toledo_cont", tare_g=0
    )


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (b"\x02,1 000870000500\r ", ("stable", "net", 8_700, 5_000)),  # SWB bit 0 net, tare 5 kg
        (b"\x02,2 000150000000\r-", ("stable", "gross", -1_500, 0)),  # bit 1 negative
        (b"\x02,8 001234000000\r#", ("unstable", "gross", 12_340, 0)),  # bit 3 motion
        (b"\x02,  001000000000\rD", ("stable", "gross", 4_536, 0)),  # bit 4 = 0: 10.00 lb
        (b"\x02,0!001000000000\r3", ("stable", "gross", 10, 0)),  # SWC code 1: grams
        (b"\x02*0   1230      \r1", ("stable", "gross", 1_230_000, 0)),  # code 2, blanks
        (b"\x02)0 001230000000\r2", ("stable", "gross", 1_230_000, 0)),  # code 1: XXXXX0
        (b"\x02(0 001200000000\r6", ("stable", "gross", 1_200_000, 0)),  # code 0: XXXX00
        (b"\x02+0 012345000000\r'", ("stable", "gross", 1_234_500, 0)),  # code 3: XXXXX.X
        (b"\x02-0 012345000000\r%", ("stable", "gross", 12_345, 0)),  # code 5: XXX.XXX
    ],
)
def test_toledo_status_words(wire: bytes, expected: tuple[str, str, int, int]) -> None:
    item = reading("toledo_cont", wire)
    assert (item.status, item.mode, item.grams, item.tare_g) == expected


def test_toledo_out_of_range() -> None:
    assert status("toledo_cont", b"\x02,4 000000000000\r1") == ("overload", "SWB.2")
    assert status("toledo_cont", b"\x02,6 000000000000\r/") == ("underload", "SWB.2")


def test_toledo_liden_units() -> None:
    # Liden: SWB bit 4 always 1, unit in SWC bit 0 (0 kg, 1 lb).
    lb = b"\x02,0!001000000000\r3"
    assert reading("toledo_cont", lb, toledo_units="liden").grams == 4_536
    assert reading("toledo_cont", TOLEDO_1234, toledo_units="liden").grams == 12_340


def test_toledo_without_checksum_is_learned() -> None:
    frame = TOLEDO_1234[:-1]
    decoder = decoder_for("toledo_cont")
    out = decoder.feed(frame * 3)
    assert [i.grams for i in out if isinstance(i, WeightReading)] == [12_340, 12_340, 12_340]
    assert isinstance(decoder, ToledoDecoder)
    assert decoder.checksum is False
    assert decoder.buffered == 0  # once learned, a frame is complete at its CR


def test_toledo_with_checksum_is_learned_and_checked() -> None:
    decoder = ToledoDecoder()
    out = decoder.feed(TOLEDO_1234 + TOLEDO_1234[:-1] + b"*" + TOLEDO_1234)
    assert [i.reason if isinstance(i, FrameError) else "ok" for i in out] == [
        "ok",
        "checksum",
        "ok",
    ]
    assert decoder.checksum is True


def test_toledo_framing_resyncs_after_a_lost_byte() -> None:
    decoder = ToledoDecoder(checksum=True)
    lost = TOLEDO_1234[:5] + TOLEDO_1234[6:]  # a weight digit lost
    out = decoder.feed(lost + TOLEDO_1234 + b"\x02,0 0012\x02" + TOLEDO_1234[1:])
    summary = [i.reason if isinstance(i, FrameError) else "ok" for i in out]
    assert summary == ["bad_format", "ok", "bad_format", "ok"]


@pytest.mark.parametrize(
    "wire",
    [
        b"\x02,0 0012X4000000\r",  # not a digit
        b"\x02,0       000000\r",  # no weight
        b"\x02,0 001234000000\n",  # LF, not CR
    ],
)
def test_toledo_rejects(wire: bytes) -> None:
    decoder = ToledoDecoder(checksum=False)
    (item,) = decoder.feed(wire)
    assert isinstance(item, FrameError)
    assert item.reason == "bad_format"


# ---- Mettler Toledo MT-SICS (mtsics, §1.6) -----------------------------------------------------


@pytest.mark.parametrize(
    ("line", "state", "mode", "grams"),
    [
        (b"S S     100.00 g", "stable", "gross", 100),
        (b"S D     100.00 g", "unstable", "gross", 100),
        (b"S S12345678.12 g", "stable", "gross", 12_345_678),
        (b"S S    -12.345 kg", "stable", "gross", -12_345),
        (b"S S       -0.5 g", "stable", "gross", -1),  # half away from zero
        (b"S S        2.5 g", "stable", "gross", 3),
        (b"T S      10.00 g", "stable", "tare", 10),
    ],
)
def test_mtsics_weights(line: bytes, state: str, mode: str, grams: int) -> None:
    assert reading("mtsics", line + b"\r\n") == WeightReading(
        state,  # type: ignore[arg-type]
        mode,  # type: ignore[arg-type]
        grams,
        line,
        "mtsics",
    )


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b"S I", "busy"),
        (b"S +", "overload"),
        (b"S -", "underload"),
        (b"ES", "error"),
        (b"ET", "error"),
        (b"EL", "error"),
    ],
)
def test_mtsics_status(line: bytes, kind: str) -> None:
    assert status("mtsics", line + b"\r\n") == (kind, line.decode())


@pytest.mark.parametrize(
    "line", [b'I4 A "1126493049"', b"S X     100.00 g", b"T D     100.00 g", b"S S     100.00"]
)
def test_mtsics_rejects(line: bytes) -> None:
    assert reject("mtsics", line + b"\r\n") == "bad_format"


# ---- Ohaus (ohaus, §1.7) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "state", "mode", "grams"),
    [
        (b"     192.21 g   ", "stable", "gross", 192),
        (b"       0.01 g ?", "unstable", "gross", 0),
        (b"-   12.34 kg   ?NET", "unstable", "net", -12_340),  # Defender 3000 layout
        (b"    12.340 kg    G", "stable", "gross", 12_340),
        (b"     0.500 kg    T", "stable", "tare", 500),
    ],
)
def test_ohaus_lines(line: bytes, state: str, mode: str, grams: int) -> None:
    assert reading("ohaus", line + b"\r\n") == WeightReading(
        state,  # type: ignore[arg-type]
        mode,  # type: ignore[arg-type]
        grams,
        line,
        "ohaus",
    )


def test_ohaus_es_is_a_status_not_a_reject() -> None:
    out = items("ohaus", b"ES\r\nES\r\n     192.21 g   \r\n")
    assert [type(i) for i in out] == [ScaleStatus, ScaleStatus, WeightReading]
    assert out[0] == ScaleStatus("error", b"ES", "ohaus", "ES")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"     192.21 g   00:00:30", "bad_format"),  # interval print
        (b"     192.21 g   TOTAL", "bad_format"),  # an accumulated total is no live weight
        (b"192.21 g", "bad_format"),  # not right-justified
        (b"     192.21 oz", "unit"),
    ],
)
def test_ohaus_rejects(line: bytes, reason: str) -> None:
    assert reject("ohaus", line + b"\r\n") == reason


# ---- HX711 DIY sketches (diy_hx711, §1.8) ------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "grams"),
    [
        (b"Load_cell output val: 1234.56", 1_234_560),  # olkal/HX711_ADC (unit: the default kg)
        (b"one reading:\t12.3\t| average:\t12.4", 12_400),  # bogde/HX711: the average
        (b"01230KG", 1_230_000),  # tpa-supit-urang test generator
        (b'{"weight": 1.234}', 1_234),
        (b'{"weight": 1234, "unit": "g"}', 1_234),
        (b'{"weight_g": 250.5, "stable": true}', 251),
        (b"-0.0025", -3),  # half away from zero
        (b"12.5 g", 13),
    ],
)
def test_hx711_lines(line: bytes, grams: int) -> None:
    assert reading("diy_hx711", line + b"\r\n") == WeightReading(
        "unknown", "gross", grams, line, "diy_hx711"
    )


def test_hx711_default_unit_is_configurable() -> None:
    assert reading("diy_hx711", b"Load_cell output val: 1234.56\r\n", unit="g").grams == 1_235
    assert reading("diy_hx711", b"01230KG\r\n", unit="g").grams == 1_230_000  # explicit unit


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"Tare complete", "bad_format"),
        (b"Load_cell output val: nan", "bad_format"),
        (b'{"weight": NaN}', "bad_format"),
        (b'{"weight": true}', "bad_value"),
        (b'{"weight": "1.2"}', "bad_value"),
        (b"[1.2]", "bad_format"),
        (b'{"mass": 1.2}', "bad_format"),
        (b'{"weight": 1e300}', "bad_value"),
        (b'{"weight": 1, "unit": "oz"}', "unit"),
    ],
)
def test_hx711_rejects(line: bytes, reason: str) -> None:
    assert reject("diy_hx711", line + b"\r\n") == reason


# ---- 7E1 devices read as 8N1: every format -----------------------------------------------------

EXAMPLES: dict[str, bytes] = {
    "yh_stx": YH_1234,
    "yh_rev": b"=000.3000=",
    "yh_fwd": b"=-0001.00=",
    "a12e_chk": A12E_4139,
    "a12_ww": b"wn-0000.1kg\r\n",
    "and_std": b"ST,+00012.34  g\r\n",
    "gs_nt": b"ST,GS,+0012.34kg\r\n",
    "cas22": b"ST,GS,1\xc4,00013.50 kg\r\n",
    "toledo_cont": TOLEDO_1234,
    "mtsics": b"S S     100.00 g\r\n",
    "ohaus": b"       0.01 g ?\r\n",
    "diy_hx711": b"Load_cell output val: 1234.56\r\n",
}


def seven_e1(protocol: str, wire: bytes) -> bytes:
    """``wire`` as a 7E1 device sends it, read as 8N1 (the CAS lamp byte is binary: as is)."""
    if protocol == "cas22":
        return with_even_parity(wire[:7]) + wire[7:8] + with_even_parity(wire[8:])
    return with_even_parity(wire)


def test_examples_cover_every_protocol() -> None:
    assert set(EXAMPLES) == set(PROTOCOLS)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_seven_e1_read_as_8n1_decodes_the_same(protocol: str) -> None:
    wire = EXAMPLES[protocol]
    plain = only(protocol, wire)
    parity = seven_e1(protocol, wire)
    assert parity != wire
    assert only(protocol, parity) == plain


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_seven_e1_single_bit_error_is_parity(protocol: str) -> None:
    wire = bytearray(seven_e1(protocol, EXAMPLES[protocol]))
    digit = next(i for i, b in enumerate(wire) if i > 0 and 0x31 <= b & 0x7F <= 0x39)
    wire[digit] ^= 0x01  # one data bit flipped on the line: parity no longer even
    assert reject(protocol, bytes(wire)) == "parity"


def test_toledo_status_words_may_carry_their_own_parity() -> None:
    # An 8N1 indicator that still sets bit 7 of the status words as their parity bit.
    wire = TOLEDO_1234[:1] + with_even_parity(TOLEDO_1234[1:4]) + TOLEDO_1234[4:]
    assert wire != TOLEDO_1234
    assert only("toledo_cont", wire) == only("toledo_cont", TOLEDO_1234)
    odd = bytearray(wire)
    odd[2] ^= 0x80 if not odd[2] & 0x80 else 0x81  # SWB with bit 7 set and odd parity
    assert reject("toledo_cont", bytes(odd)) == "parity"


# ---- docs/protocol.md §1.6 shows these bytes ---------------------------------------------------

DOC_FRAMES = [
    YH_1234,
    b"\x02+0012342" + b"1=\x03",
    b"=000.3000",
    b"=0003.000",
    A12E_4139,
    b"         OL23\r\n",
    b"wn-0000.1kg\r\n",
    b"ST,+00012.34  g\r\n",
    EXAMPLES["cas22"],
    TOLEDO_1234,
    b"\x02,1 000870000500\r ",
    b"S S     100.00 g\r\n",
    b"       0.01 g ?\r\n",
    b"Load_cell output val: 1234.56\r\n",
]


def test_docs_show_the_same_bytes() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "protocol.md").read_text(encoding="utf-8")
    for frame in DOC_FRAMES:
        assert frame.hex(" ") in doc, frame
    words = " ".join(doc.split())
    assert ", ".join(f"`{p}`" for p in DETECT_ORDER) in words
    assert f"streak of {FRAMES_NEEDED}" in words


# ---- every decoder: properties -----------------------------------------------------------------

FRAMES: dict[str, list[bytes]] = {
    "yh_stx": [YH_1234, b"\x02-0001002" + b"1E\x03", b"\x02+0012342" + b"1=\x03"],
    "yh_rev": [b"=000.3000", b"=00.1000-"],
    "yh_fwd": [b"=0003.000", b"=-0001.00"],
    "a12e_chk": [A12E_4139, b"         OL23\r\n", b"WN-04.139kg29\r\n"],
    "a12_ww": [b"ww000.000kg\r\n", b"wn-000.100kg\r\n", b"wt000.500kg\r\n"],
    "and_std": [b"ST,+00012.34  g\r\n", b"OL,+9999999E+19\r\n", b"#K,19,OK*47\r\n"],
    "gs_nt": [b"ST,GS,+0012.34kg\r\n", b"US,NT,-0001.56lb\r\n", b"#K,17,CARD,04A1B2C3*01\r\n"],
    "cas22": [EXAMPLES["cas22"], b"ST,NT,1\xc2,-0001.20 kg\r\n"],
    "toledo_cont": [TOLEDO_1234, b"\x02,1 000870000500\r ", b"\x02,4 000000000000\r1"],
    "mtsics": [b"S S     100.00 g\r\n", b"S D     100.00 g\r\n", b"S +\r\n", b"ES\r\n"],
    "ohaus": [b"     192.21 g   \r\n", b"       0.01 g ?\r\n", b"ES\r\n"],
    "diy_hx711": [b"Load_cell output val: 1234.56\r\n", b'{"weight": 1.234}\r\n', b"01230KG\r\n"],
}
TAIL: dict[str, bytes] = {"yh_rev": b"=", "yh_fwd": b"=", "toledo_cont": b"\x02"}
"""What delimits the last frame of a stream without an end delimiter: the next frame's start
(a Toledo frame that lost a byte is only known to be short when the next STX comes)."""
DELIMITERS = frozenset({0x02, 0x03, 0x0A, 0x0D, 0x3D})
"""Corruption below never writes these (low 7 bits), so the frame count stays known."""
_SAFE_BYTES = st.integers(0, 255).filter(lambda b: b & 0x7F not in DELIMITERS)


def _interior(protocol: str, frame: bytes) -> range:
    """Indices that are neither a delimiter nor a positional byte (Toledo CR and checksum)."""
    if protocol == "toledo_cont":
        return range(1, 16)
    if protocol in ("yh_stx", "yh_rev", "yh_fwd"):
        return range(1, len(frame) - (protocol == "yh_stx"))
    return range(len(frame) - 2)  # CR LF


@st.composite
def corrupted(draw: st.DrawFn, protocol: str, frame: bytes) -> bytes:
    data = bytearray(frame)
    for _ in range(draw(st.integers(0, 3))):
        where = _interior(protocol, bytes(data))
        if not where:
            break
        index = draw(st.sampled_from(where))
        action = draw(st.sampled_from(["replace", "delete", "insert", "flip7"]))
        if action == "replace":
            data[index] = draw(_SAFE_BYTES)
        elif action == "delete" and len(where) > 1:  # an empty line is no frame
            del data[index]
        elif action == "insert":
            data.insert(index, draw(_SAFE_BYTES))
        else:
            data[index] ^= 0x80
    return bytes(data)


def _summary(out: list[Decoded]) -> list[object]:
    return [("error", i.reason, i.raw) if isinstance(i, FrameError) else i for i in out]


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(
    protocol=st.sampled_from(PROTOCOLS),
    noise=st.binary(max_size=600),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_random_bytes_never_raise_and_every_frame_is_counted(
    protocol: str, noise: bytes, cuts: list[int]
) -> None:
    decoder = decoder_for(protocol)
    out: list[Decoded] = []
    for chunk in _chunks(noise, cuts):
        out += decoder.feed(chunk)
        assert decoder.buffered <= MAX_BUFFER
    assert all(isinstance(i, WeightReading | ScaleStatus | KioskFrame | FrameError) for i in out)
    assert decoder.parsed + sum(decoder.rejected.values()) == len(out)
    whole = decoder_for(protocol)
    assert _summary(whole.feed(noise)) == _summary(out)  # chunking changes nothing
    assert whole.dropped_bytes == decoder.dropped_bytes


@given(data=st.data(), protocol=st.sampled_from(PROTOCOLS))
def test_corrupted_frames_are_each_counted_once(data: st.DataObject, protocol: str) -> None:
    frames = data.draw(st.lists(st.sampled_from(FRAMES[protocol]), min_size=1, max_size=12))
    wire = [data.draw(corrupted(protocol, frame)) for frame in frames]
    stream = SYNC + b"".join(wire) + TAIL.get(protocol, b"")
    decoder = decoder_for(protocol)
    out: list[Decoded] = []
    for chunk in _chunks(stream, data.draw(st.lists(st.integers(min_value=0), max_size=8))):
        out += decoder.feed(chunk)
        assert decoder.buffered <= MAX_BUFFER
    assert len(out) == len(frames)
    assert decoder.parsed + sum(decoder.rejected.values()) == len(frames)
    assert decoder.partial_frames == 0
    for item, sent, original in zip(out, wire, frames, strict=True):
        if sent == original and protocol != "a12_ww":  # a12_ww may lock to a corrupted width
            assert not isinstance(item, FrameError), (item, sent)
