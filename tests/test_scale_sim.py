"""firmware_sim.scales: every indicator model over a real pty, read with pyserial.

The frames are checked with small reference decoders written here from the research notes
(device-protocols.md §1.1-§1.9), not with the simulator's encoders or the gateway's parsers:
the notes' literal example frames go through the same decoders first.
"""

from __future__ import annotations

import asyncio
import os
import re
import termios
import time
import tty
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
import serial
from typer.testing import CliRunner

from firmware_sim.encoders import FrameOptions, Reading, decimals_for, round_to_division
from firmware_sim.scales import (
    MODELS,
    QUIET,
    NoiseSettings,
    ScaleSimulator,
    encode_frame,
    run_scale_scenario,
)
from gateway.scale_protocol import AutoDetector, ScaleStatus, WeightReading, decoder_for
from tests.conftest import eventually
from wastebank.cli import app

DEADLINE_S = 10.0
SPEED = 10.0

Status = Literal["ok", "overload", "underload"]


# ---- reference decoders (from the notes) --------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    grams: int | None  # None for overload / underload frames
    stable: bool | None  # None: the format has no stability flag
    status: Status = "ok"
    mode: str = "gross"
    tare_g: int | None = None
    raw: bytes = b""


class BadFrame(ValueError):
    pass


def _xor(data: bytes) -> int:
    result = 0
    for b in data:
        result ^= b
    return result


def _grams(text: str, sign: str = "") -> int:
    """kg text (``0012.34``, ``-0001.00``, ``00.1000-`` already reversed) -> grams."""
    value = Decimal(text) * 1000
    if value != value.to_integral_value():
        raise BadFrame(f"not whole grams: {text!r}")
    return -int(value) if sign == "-" else int(value)


def _check_hex_pair(pair: bytes, value: int, *, allow_nibble30: bool = False) -> None:
    """30h/37h rule (upper-case hex), or 0x30 + nibble (Yaohua variant) where allowed."""
    hex_form = f"{value:02X}".encode()
    nibble30 = bytes((0x30 + (value >> 4), 0x30 + (value & 15)))
    if pair != hex_form and not (allow_nibble30 and pair == nibble30):
        raise BadFrame(f"checksum {pair!r} != {hex_form!r}")


def dec_yh_stx(f: bytes) -> Frame:
    """§1.1a: STX sign 6 digits dp XH XL ETX; XOR of bytes 2-9."""
    m = re.fullmatch(rb"\x02([+-])(\d{6})([0-4])(..)\x03", f, re.S)
    if m is None:
        raise BadFrame(f"yh_stx layout {f!r}")
    _check_hex_pair(m[4], _xor(f[1:9]), allow_nibble30=True)
    dp = int(m[3])
    return Frame(int(m[2]) * 10 ** (3 - dp) * (-1 if m[1] == b"-" else 1), None, raw=f)


def _yh_forward(text: str) -> Frame:
    m = re.fullmatch(r"([0-])(\d+(?:\.\d+)?)", text)
    if m is None or len(text) != 8:
        raise BadFrame(f"yh = layout {text!r}")
    return Frame(_grams(m[2], "-" if m[1] == "-" else ""), None, raw=text.encode())


def dec_yh_rev(f: bytes) -> Frame:
    """§1.1c format 1: ``=`` + 8 chars lowest digit first: ``=000.3000`` = 3.000."""
    if len(f) != 9 or f[:1] != b"=":
        raise BadFrame(f"yh_rev length {f!r}")
    return _yh_forward(f[1:].decode("ascii")[::-1])


def dec_yh_fwd(f: bytes) -> Frame:
    """§1.1c format 2: ``=0003.000`` / ``=-0001.00``."""
    if len(f) != 9 or f[:1] != b"=":
        raise BadFrame(f"yh_fwd length {f!r}")
    return _yh_forward(f[1:].decode("ascii"))


def dec_a12e_chk(f: bytes) -> Frame:
    """§1.2 manual: 15 bytes, ``WG004.139kg3D`` CR LF; OL/LO; XOR of bytes 1-11."""
    if len(f) != 13:  # CR LF already cut off
        raise BadFrame(f"a12e length {f!r}")
    _check_hex_pair(f[11:13], _xor(f[:11]))
    m = re.fullmatch(rb" {9}(OL|LO)", f[:11])
    if m is not None:
        return Frame(None, None, "overload" if m[1] == b"OL" else "underload", raw=f)
    m = re.fullmatch(rb"W([GN])(-?[\d.]+ ?)kg", f[:11])
    if m is None:
        raise BadFrame(f"a12e layout {f!r}")
    text = m[2].decode().strip()
    sign = "-" if text.startswith("-") else ""
    return Frame(_grams(text.lstrip("-"), sign), None, mode="net" if m[1] == b"N" else "gross")


def dec_a12_ww(f: bytes) -> Frame:
    """§1.2 field: ``ww000.000kg`` / ``wn-0000.1kg`` / ``wt…``; 7-char field here."""
    m = re.fullmatch(rb"w([wnt])(-?[\d.]{6,7})kg", f)
    if m is None or len(m[2]) != 7:
        raise BadFrame(f"a12_ww layout {f!r}")
    text = m[2].decode()
    mode = {b"w": "gross", b"n": "net", b"t": "tare"}[m[1]]
    return Frame(_grams(text.lstrip("-"), "-" if text[0] == "-" else ""), None, mode=mode)


def dec_and_std(f: bytes) -> Frame:
    """§1.3: ``ST,+00012.34␣kg`` (header, comma, sign + 8, unit 3); ``OL,±9999999E+19``."""
    m = re.fullmatch(rb"OL,([+-])9999999E\+19", f)
    if m is not None:
        return Frame(None, False, "overload" if m[1] == b"+" else "underload", raw=f)
    m = re.fullmatch(rb"(ST|US),([+-])([\d.]{8})( kg)", f)
    if m is None:
        raise BadFrame(f"and_std layout {f!r}")
    return Frame(_grams(m[3].decode(), m[2].decode()), m[1] == b"ST", raw=f)


def dec_gs_nt(f: bytes) -> Frame:
    """§1.3 / docs/protocol.md: ``ST,GS,+0012.34kg``; ``OL,GS,+␣×7kg``."""
    m = re.fullmatch(rb"OL,(GS|NT),([+-]) {7}kg", f)
    if m is not None:
        return Frame(None, False, "overload" if m[2] == b"+" else "underload", raw=f)
    m = re.fullmatch(rb"(ST|US),(GS|NT|TR),([+-])([\d.]{7})kg", f)
    if m is None:
        raise BadFrame(f"gs_nt layout {f!r}")
    mode = {b"GS": "gross", b"NT": "net", b"TR": "tare"}[m[2]]
    return Frame(_grams(m[4].decode(), m[3].decode()), m[1] == b"ST", mode=mode, raw=f)


def dec_cas22(f: bytes) -> Frame:
    """§1.4: ``ST,GS,<ID><LAMP>,00013.50␣kg`` (20 + CR LF); lamp bit7 1, 6 stable, 2 gross,
    1 tare, 0 zero."""
    m = re.fullmatch(rb"(ST|US|OL),(GS|NT),(.)(.),(.{8}) kg", f, re.S)
    if m is None or len(f) != 20:
        raise BadFrame(f"cas22 layout {f!r}")
    lamp = m[4][0]
    if not lamp & 0x80 or m[3] != b"1":
        raise BadFrame(f"cas22 lamp/id {f!r}")
    if bool(lamp & 0x04) != (m[2] == b"GS"):
        raise BadFrame("gross lamp disagrees with the header")
    if bool(lamp & 0x40) != (m[1] == b"ST"):
        raise BadFrame("stable lamp disagrees with the header")
    mode = "gross" if m[2] == b"GS" else "net"
    if m[1] == b"OL":
        if m[5].strip():
            raise BadFrame("OL carries data")
        return Frame(None, False, "overload", mode, raw=f)
    text = m[5].decode()
    grams = _grams(text.lstrip("-"), "-" if text[0] == "-" else "")
    if bool(lamp & 0x01) != (grams == 0):
        raise BadFrame("zero lamp disagrees with the value")
    return Frame(grams, m[1] == b"ST", mode=mode, tare_g=1 if lamp & 0x02 else 0, raw=f)


def dec_toledo(f: bytes, checksum: bool) -> Frame:
    """§1.5: STX SWA SWB SWC weight(6) tare(6) CR [CKS]; SWB bit0 net, 1 negative, 2 over,
    3 motion, 4 kg."""
    if len(f) != 17 + checksum or f[0] != 0x02 or f[16] != 0x0D:
        raise BadFrame(f"toledo layout {f!r}")
    if checksum and (sum(f) & 0x7F) != 0:
        raise BadFrame("toledo checksum")
    swa, swb, swc = f[1:4]
    if not swa & swb & swc & 0x20 or not swb & 0x10:
        raise BadFrame("status words: bit 5 and the kg bit must be set")
    dp = (swa & 7) - 2
    if not 0 <= dp <= 3 or not f[4:16].isdigit():
        raise BadFrame(f"toledo digits {f!r}")
    scale = 10 ** (3 - dp)
    weight = int(f[4:10]) * scale * (-1 if swb & 0x02 else 1)
    mode = "net" if swb & 0x01 else "gross"
    tare = int(f[10:16]) * scale
    if swb & 0x04:
        return Frame(None, False, "underload" if swb & 0x02 else "overload", mode, tare, f)
    return Frame(weight, not swb & 0x08, mode=mode, tare_g=tare, raw=f)


def dec_mtsics(f: bytes) -> Frame:
    """§1.6: ``S S     100.00 g`` (weight right-aligned in 10), ``S D`` dynamic, ``S +``/``S -``."""
    if f in (b"S +", b"S -"):
        return Frame(None, False, "overload" if f == b"S +" else "underload", raw=f)
    m = re.fullmatch(rb"S ([SD]) ([ \d.-]{10}) kg", f)
    if m is None or not re.fullmatch(rb" *-?\d+(\.\d+)?", m[2]):
        raise BadFrame(f"mtsics layout {f!r}")
    text = m[2].decode().strip()
    return Frame(_grams(text.lstrip("-"), "-" if text[0] == "-" else ""), m[1] == b"S", raw=f)


def dec_ohaus(f: bytes) -> Frame:
    """§1.7: weight right-justified (11 here), unit, ``?`` when unstable, legend."""
    m = re.fullmatch(rb"([ \d.-]{11}) kg ([ ?])( NET)?", f)
    if m is None or not re.fullmatch(rb" *-?\d+\.\d+", m[1]):
        raise BadFrame(f"ohaus layout {f!r}")
    text = m[1].decode().strip()
    grams = _grams(text.lstrip("-"), "-" if text[0] == "-" else "")
    return Frame(grams, m[2] == b" ", mode="net" if m[3] else "gross", raw=f)


def dec_diy(f: bytes) -> Frame:
    """§1.8 HX711_ADC: ``Load_cell output val: <float>`` (kg, 2 decimals here)."""
    m = re.fullmatch(rb"Load_cell output val: (-?)(\d+\.\d{2})", f)
    if m is None:
        raise BadFrame(f"diy layout {f!r}")
    return Frame(_grams(m[2].decode(), m[1].decode()), None, raw=f)


DECODERS: dict[str, Callable[[bytes], Frame]] = {
    "yh_stx": dec_yh_stx,
    "yh_rev": dec_yh_rev,
    "yh_fwd": dec_yh_fwd,
    "a12e_chk": dec_a12e_chk,
    "a12_ww": dec_a12_ww,
    "and_std": dec_and_std,
    "gs_nt": dec_gs_nt,
    "cas22": dec_cas22,
    "toledo_cont": lambda f: dec_toledo(f, checksum=False),
    "mtsics": dec_mtsics,
    "ohaus": dec_ohaus,
    "diy_hx711": dec_diy,
}


@dataclass
class Decoded:
    frames: list[Frame] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    junk: int = 0  # bytes outside any frame (partial first frame, garbage)
    high_bytes: int = 0  # bytes with bit 7 set (7E1 parity)


def split_stream(
    data: bytes, framing: str, *, seven_e1: bool, toledo_cks: bool = False
) -> tuple[list[bytes], Decoded]:
    """Frames of the stream, the first (possibly partial) one dropped; parity checked."""
    out = Decoded(high_bytes=sum(b >= 0x80 for b in data))
    if seven_e1:
        bad = [b.bit_count() % 2 == 1 for b in data]
        data = bytes(b & 0x7F for b in data)
    else:
        bad = [False] * len(data)
    spans: list[tuple[int, int]] = []  # frame bytes without delimiters/terminators
    if framing == "crlf":
        starts = [m.end() for m in re.finditer(rb"\r\n", data)]
        spans = [(a, b - 2) for a, b in zip(starts, starts[1:], strict=False)]
        out.junk = starts[0] if starts else len(data)
    elif framing == "equals":
        starts = [i for i, b in enumerate(data) if b == ord("=")]
        spans = list(zip(starts, starts[1:], strict=False))
        out.junk = starts[0] if starts else len(data)
    else:
        end_byte = 0x03 if framing == "stx_etx" else 0x0D
        pos = 0
        while (start := data.find(b"\x02", pos)) >= 0:
            end = data.find(bytes([end_byte]), start)
            if end < 0:
                break
            end += 1 + (framing == "stx_cr" and toledo_cks)
            if end > len(data):
                break
            out.junk += start - pos
            spans.append((start, end))
            pos = end
    frames = []
    for a, b in spans:
        if any(bad[a:b]):
            out.errors.append(f"parity {data[a:b]!r}")
        else:
            frames.append(data[a:b])
    return frames, out


def decode_stream(
    model: str, data: bytes, *, seven_e1: bool | None = None, toledo_cks: bool = False
) -> Decoded:
    spec = MODELS[model]
    e1 = spec.seven_e1 if seven_e1 is None else seven_e1
    raw_frames, out = split_stream(data, spec.framing, seven_e1=e1, toledo_cks=toledo_cks)
    decoder = DECODERS[model]
    if model == "toledo_cont":
        decoder = lambda f: dec_toledo(f, checksum=toledo_cks)  # noqa: E731
    for raw in raw_frames:
        try:
            out.frames.append(decoder(raw))
        except (BadFrame, ValueError, ArithmeticError) as exc:
            out.errors.append(str(exc))
    return out


# ---- the notes' example frames through the reference decoders, then the encoders ----------------


NOTES_EXAMPLES: list[tuple[str, bytes, Frame]] = [
    ("yh_stx", bytes.fromhex("022b30303132333432314403"), Frame(12_340, None)),
    ("yh_stx", b"\x02-0001002" + b"1E\x03", Frame(-1_000, None)),
    ("yh_stx", bytes.fromhex("022b30303135363030313903"), Frame(1_560_000, None)),
    ("yh_stx", bytes.fromhex("022b30303030303030314203"), Frame(0, None)),
    ("yh_rev", b"=000.3000", Frame(3_000, None)),
    ("yh_rev", b"=00.1000-", Frame(-1_000, None)),
    ("yh_fwd", b"=0003.000", Frame(3_000, None)),
    ("yh_fwd", b"=-0001.00", Frame(-1_000, None)),
    ("a12e_chk", bytes.fromhex("5747303034 2e313339 6b67 3344"), Frame(4_139, None)),
    ("a12e_chk", b" " * 9 + b"OL23", Frame(None, None, "overload")),
    ("a12e_chk", b" " * 9 + b"LO23", Frame(None, None, "underload")),
    ("a12_ww", b"ww000.000kg", Frame(0, None)),
    ("a12_ww", b"wn-0000.1kg", Frame(-100, None, mode="net")),
    ("and_std", b"ST,+0001.234 kg", Frame(1_234, True)),
    ("and_std", b"OL,+9999999E+19", Frame(None, False, "overload")),
    ("gs_nt", b"ST,GS,+0012.34kg", Frame(12_340, True)),
    ("gs_nt", b"US,NT,-0001.56kg", Frame(-1_560, False, mode="net")),
    ("gs_nt", b"OL,GS,+       kg", Frame(None, False, "overload")),
    ("cas22", b"ST,GS,1\xc4,00013.50 kg", Frame(13_500, True, tare_g=0)),
    ("mtsics", b"S S     100.00 kg", Frame(100_000, True)),
    ("mtsics", b"S +", Frame(None, False, "overload")),
    ("ohaus", b"     192.21 kg  ", Frame(192_210, True)),
    ("ohaus", b"       0.01 kg ?", Frame(10, False)),
    ("diy_hx711", b"Load_cell output val: 1234.56", Frame(1_234_560, None)),
]


@pytest.mark.parametrize(
    ("model", "raw", "expected"),
    NOTES_EXAMPLES,
    ids=[f"{m}-{i}" for i, (m, *_) in enumerate(NOTES_EXAMPLES)],
)
def test_reference_decoders_read_the_notes_examples(
    model: str, raw: bytes, expected: Frame
) -> None:
    got = DECODERS[model](raw)
    assert (got.grams, got.stable, got.status, got.mode) == (
        expected.grams,
        expected.stable,
        expected.status,
        expected.mode,
    )


@pytest.mark.parametrize(
    ("model", "reading", "wire"),
    [
        ("yh_stx", Reading(12_340, 2, True), bytes.fromhex("022b30303132333432314403")),
        ("yh_stx", Reading(-1_000, 2, True), b"\x02-0001002" + b"1E\x03"),
        ("yh_stx", Reading(1_560_000, 0, True), bytes.fromhex("022b30303135363030313903")),
        ("yh_stx", Reading(0, 0, True), bytes.fromhex("022b30303030303030314203")),
        ("yh_rev", Reading(3_000, 3, True), b"=000.3000"),
        ("yh_rev", Reading(-1_000, 2, True), b"=00.1000-"),
        ("yh_fwd", Reading(3_000, 3, True), b"=0003.000"),
        ("yh_fwd", Reading(-1_000, 2, True), b"=-0001.00"),
        ("a12e_chk", Reading(4_139, 3, True), bytes.fromhex("57473030342e3133396b6733440d0a")),
        ("a12e_chk", Reading(0, 2, True, overload=True), b" " * 9 + b"OL23\r\n"),
        ("a12e_chk", Reading(0, 2, True, underload=True), b" " * 9 + b"LO23\r\n"),
        ("a12_ww", Reading(0, 3, True), b"ww000.000kg\r\n"),
        ("a12_ww", Reading(-100, 1, True, mode="net"), b"wn-0000.1kg\r\n"),
        ("and_std", Reading(1_234, 3, True), b"ST,+0001.234 kg\r\n"),
        ("and_std", Reading(0, 2, False, overload=True), b"OL,+9999999E+19\r\n"),
        ("and_std", Reading(0, 2, False, underload=True), b"OL,-9999999E+19\r\n"),
        ("gs_nt", Reading(12_340, 2, True), b"ST,GS,+0012.34kg\r\n"),
        ("gs_nt", Reading(-1_560, 2, False, mode="net"), b"US,NT,-0001.56kg\r\n"),
        ("gs_nt", Reading(0, 2, False, overload=True), b"OL,GS,+       kg\r\n"),
        ("cas22", Reading(13_500, 2, True), b"ST,GS,1\xc4,00013.50 kg\r\n"),
        ("mtsics", Reading(100_000, 2, True), b"S S     100.00 kg\r\n"),
        ("mtsics", Reading(0, 2, False, overload=True), b"S +\r\n"),
        ("mtsics", Reading(0, 2, False, underload=True), b"S -\r\n"),
        ("ohaus", Reading(192_210, 2, True), b"     192.21 kg  \r\n"),
        ("ohaus", Reading(10, 2, False), b"       0.01 kg ?\r\n"),
        ("diy_hx711", Reading(12_340, 2, True), b"Load_cell output val: 12.34\r\n"),
    ],
)
def test_encoders_match_the_notes(model: str, reading: Reading, wire: bytes) -> None:
    assert encode_frame(model, reading) == wire


def test_cas22_is_22_bytes_with_lamp_bits() -> None:
    frame = encode_frame("cas22", Reading(0, 2, True, mode="net", tare_g=5_000))
    assert len(frame) == 22
    assert frame[7] == 0x80 | 0x40 | 0x02 | 0x01  # fixed, stable, tare, zero; not gross
    assert dec_cas22(frame[:-2]) == Frame(0, True, mode="net", tare_g=1, raw=frame[:-2])


def test_yh_stx_nibble30_checksum() -> None:
    frame = encode_frame("yh_stx", Reading(12_340, 2, True), FrameOptions(yh_checksum="nibble30"))
    assert frame[9:11] == b"1=", frame  # XOR 0x1D: high 1, low 0x30 + 13
    assert dec_yh_stx(frame).grams == 12_340


def test_toledo_status_words_and_checksum() -> None:
    opts = FrameOptions(toledo_checksum=True)
    frame = encode_frame(
        "toledo_cont", Reading(-2_340, 2, False, mode="net", tare_g=500, division_g=20), opts
    )
    assert len(frame) == 18
    swa, swb, swc = frame[1:4]
    assert swa == 0x20 | 2 << 3 | 4  # x2 increment, XXXX.XX
    assert swb == 0x20 | 0x10 | 0x08 | 0x02 | 0x01  # kg, motion, negative, net
    assert swc == 0x20
    assert frame[4:16] == b"000234000050"
    assert (sum(frame) & 0x7F) == 0
    over = encode_frame("toledo_cont", Reading(700_000, 2, True, overload=True, division_g=20))
    assert dec_toledo(over, checksum=False).status == "overload"


def test_decimals_for_division() -> None:
    assert [decimals_for(d) for d in (1, 2, 5, 10, 20, 50, 100, 500, 1000, 2000)] == [
        3, 3, 3, 2, 2, 2, 1, 1, 0, 0,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="division"):
        decimals_for(3)


# ---- over the pty ---------------------------------------------------------------------------


class Wire:
    """pyserial on the link, read in a thread; chunks kept with their arrival times."""

    def __init__(self, link: Path, baud: int) -> None:
        self.port = serial.Serial(str(link), baud, timeout=0.02)
        self.data = bytearray()
        self.arrivals: list[tuple[float, int]] = []
        self.error: Exception | None = None
        self._stop = False
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            while not self._stop:
                chunk = await asyncio.to_thread(self.port.read, 4096)
                if chunk:
                    self.data += chunk
                    self.arrivals.append((time.monotonic(), len(chunk)))
                self._changed.set()
        except serial.SerialException as exc:
            self.error = exc
            self._changed.set()

    async def until(self, done: Callable[[], bool], deadline_s: float = DEADLINE_S) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        while not done():
            remaining = deadline - loop.time()
            assert remaining > 0, "timed out waiting for the simulator"
            self._changed.clear()
            if self._task.done() and not done():
                raise AssertionError(f"reader stopped: {self.error!r}")
            await asyncio.wait_for(self._changed.wait(), remaining)

    async def close(self) -> None:
        self._stop = True
        await self._task
        self.port.close()


def _exists(path: Path) -> bool:
    """Anything at ``path``, a dangling symlink included."""
    return path.is_symlink() or path.exists()


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "serial" / "by-id" / "usb-scale-if00"


@pytest.fixture
async def opened(link: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await opened(**sim_kwargs)`` -> (sim, wire); both closed at teardown."""
    stack: list[tuple[ScaleSimulator, Wire]] = []

    async def open_(model: str, **kwargs: Any) -> tuple[ScaleSimulator, Wire]:
        sim = ScaleSimulator(link, model, **kwargs)
        await sim.__aenter__()
        wire = Wire(link, sim.baud)
        stack.append((sim, wire))
        return sim, wire

    yield open_
    for sim, wire in reversed(stack):
        await wire.close()
        await sim.__aexit__(None, None, None)


async def settle(sim: ScaleSimulator, grams: int) -> None:
    await asyncio.wait_for(sim.place(grams), DEADLINE_S)


def frames_since(model: str, wire: Wire, mark: int, **kw: Any) -> Decoded:
    return decode_stream(model, bytes(wire.data[mark:]), **kw)


VARIANTS = [(m, FrameOptions()) for m in MODELS] + [
    ("yh_stx", FrameOptions(yh_checksum="nibble30")),
    ("toledo_cont", FrameOptions(toledo_checksum=True)),
]
VARIANT_IDS = [*MODELS, "yh_stx-nibble30", "toledo_cont-checksum"]


@pytest.mark.parametrize(
    ("model", "options"),
    VARIANTS,
    ids=VARIANT_IDS,
)
async def test_model_stream_load_overload_zero(
    opened: Callable[..., Any], model: str, options: FrameOptions
) -> None:
    spec = MODELS[model]
    sim, wire = await opened(model, seed=11, speed=SPEED, options=options)
    kw = {"toledo_cks": options.toledo_checksum}
    d = sim.division_g

    # a load: the motion first, then a settled value that the reference decoder reads
    load = round_to_division(12_340, d)  # mid-division: the display shows it, ±1 d flicker
    mark = len(wire.data)
    await settle(sim, load)
    moving = frames_since(model, wire, mark, **kw)
    expected = sim.displayed_g
    assert expected == load
    mark = len(wire.data)
    await wire.until(lambda: len(frames_since(model, wire, mark, **kw).frames) >= 10)
    settled = frames_since(model, wire, mark, **kw)
    assert not moving.errors, moving.errors
    assert not settled.errors, settled.errors
    values = [f.grams for f in settled.frames]
    assert Counter(values).most_common(1)[0][0] == expected, values
    assert all(v is not None and abs(v - expected) <= d for v in values), values
    if spec.has_stability_flag:
        assert any(f.stable and f.grams == expected for f in settled.frames)
        assert any(f.stable is False for f in moving.frames), "no unstable frame while moving"
    else:
        assert all(f.stable is None for f in settled.frames)
    if spec.seven_e1:
        assert settled.high_bytes > 0  # the parity really is in bit 7
    elif model != "cas22":  # the CAS lamp byte always has bit 7 set
        assert settled.high_bytes == 0

    # above Max + 9 d: the model's overload frame, or (no such frame) the value goes on
    await settle(sim, sim.capacity_g + 20 * d)
    mark = len(wire.data)
    await wire.until(lambda: len(frames_since(model, wire, mark, **kw).frames) >= 5)
    over = frames_since(model, wire, mark, **kw)
    assert not over.errors, over.errors
    if spec.has_overload_frame:
        assert all(f.status == "overload" and f.grams is None for f in over.frames), over.frames
    else:
        assert all(f.grams is not None and f.grams > sim.capacity_g for f in over.frames)
    if model == "ohaus":
        assert all(f.stable is False for f in over.frames)  # '?' marks it

    # and back to zero
    await settle(sim, 0)
    mark = len(wire.data)
    await wire.until(lambda: len(frames_since(model, wire, mark, **kw).frames) >= 5)
    zero = frames_since(model, wire, mark, **kw)
    assert all(f.grams is not None and abs(f.grams) <= d for f in zero.frames), zero.frames


@pytest.mark.parametrize("model", ["a12e_chk", "mtsics", "and_std", "gs_nt", "toledo_cont"])
async def test_underload_frame(opened: Callable[..., Any], model: str) -> None:
    sim, wire = await opened(model, seed=2, speed=SPEED, noise=QUIET)
    await settle(sim, -30 * sim.division_g)  # a pan taken off after zeroing
    assert sim.status == "underload"
    mark = len(wire.data)
    await wire.until(lambda: len(frames_since(model, wire, mark).frames) >= 3)
    got = frames_since(model, wire, mark)
    assert not got.errors
    assert {f.status for f in got.frames} == {"underload"}


@pytest.mark.parametrize("model", ["a12_ww", "gs_nt", "cas22", "toledo_cont"])
async def test_tare_gives_net_frames(opened: Callable[..., Any], model: str) -> None:
    sim, wire = await opened(model, seed=4, speed=SPEED, noise=QUIET)
    await settle(sim, 2_000)
    mark = len(wire.data)
    await asyncio.wait_for(sim.tare(), DEADLINE_S)
    assert sim.tare_g == 2_000
    assert sim.displayed_g == 0
    await settle(sim, 5_000)
    await wire.until(lambda: any(f.grams == 3_000 for f in frames_since(model, wire, mark).frames))
    got = frames_since(model, wire, mark)
    assert not got.errors
    if MODELS[model].tare_line:
        assert any(f.mode == "tare" and f.grams == 2_000 for f in got.frames)
    net = [f for f in got.frames if f.mode == "net"]
    assert net
    assert net[-1].grams == 3_000
    if model == "toledo_cont":
        assert net[-1].tare_g == 2_000
    if model == "cas22":
        assert net[-1].tare_g == 1  # tare lamp


async def test_baud_rate_limits_the_line(opened: Callable[..., Any]) -> None:
    """a12e_chk is 15 bytes at 10 Hz = 150 B/s, more than a 1200-bd line carries (120 B/s)."""
    sim, wire = await opened("a12e_chk", seed=5, baud=1200, noise=QUIET)
    await wire.until(lambda: len(wire.arrivals) >= 2)
    start = wire.arrivals[-1][0]
    window = 1.2
    await wire.until(lambda: wire.arrivals[-1][0] >= start + window, deadline_s=5.0)
    late = [(t, n) for t, n in wire.arrivals if t > start]
    # bytes that arrived within ``window`` seconds after ``start`` (chunk times are read times)
    carried = sum(n for t, n in late if t <= start + window)
    assert carried <= 120 * window + 24, carried  # 10 bits per byte; slack: one read's worth
    assert carried >= 0.5 * 120 * window, carried  # and the line is busy, not idle
    assert sim.frames_skipped > 0  # the indicator skipped samples it had no line time for
    got = decode_stream("a12e_chk", bytes(wire.data))
    assert not got.errors
    assert got.frames


async def test_fast_line_carries_every_frame(opened: Callable[..., Any]) -> None:
    sim, wire = await opened("a12e_chk", seed=5, baud=115_200, speed=SPEED, noise=QUIET)
    await wire.until(lambda: len(decode_stream("a12e_chk", bytes(wire.data)).frames) >= 40)
    assert sim.frames_skipped == 0


async def test_unplug_and_replug_at_the_same_link(opened: Callable[..., Any], link: Path) -> None:
    sim, wire = await opened("gs_nt", seed=6, speed=SPEED)
    old_slave = sim.slave_name
    assert os.readlink(link) == old_slave
    await wire.until(lambda: len(decode_stream("gs_nt", bytes(wire.data)).frames) >= 3)

    await sim.unplug()
    assert not _exists(link)
    assert not sim.plugged
    assert sim.slave_name == ""
    await wire.until(lambda: wire.error is not None)  # the open port reports the disconnect
    await settle(sim, 4_560)  # the indicator keeps weighing while unplugged

    await sim.replug()
    assert sim.plug_count == 2
    assert os.readlink(link) == sim.slave_name != old_slave  # same path, a new pty
    again = Wire(link, sim.baud)
    try:
        await again.until(lambda: len(decode_stream("gs_nt", bytes(again.data)).frames) >= 5)
        got = decode_stream("gs_nt", bytes(again.data))
        assert not got.errors
        assert {f.grams for f in got.frames} <= {4_550, 4_560, 4_570}
    finally:
        await again.close()


async def test_reboot_garbage_silence_resume(opened: Callable[..., Any]) -> None:
    sim, wire = await opened("yh_stx", seed=7, speed=SPEED, noise=QUIET)
    await settle(sim, 8_000)
    await wire.until(lambda: len(decode_stream("yh_stx", bytes(wire.data)).frames) >= 3)
    mark, ticks, frames = len(wire.data), sim.ticks, sim.frames_sent
    await asyncio.wait_for(sim.reboot(), DEADLINE_S)
    assert sim.reboots == 1
    assert sim.garbage_sent == 1
    assert sim.frames_sent - frames < (sim.ticks - ticks) / 2  # silent while booting
    await wire.until(lambda: len(frames_since("yh_stx", wire, mark).frames) >= 3)
    after = frames_since("yh_stx", wire, mark)
    assert after.junk >= 8 or after.errors  # the burst arrived
    assert after.frames[-1].grams == 8_000


async def test_noisy_line_still_settles(opened: Callable[..., Any]) -> None:
    noise = NoiseSettings(corrupt_rate=0.01, drop_rate=0.01, garbage_rate=0.2)
    sim, wire = await opened("a12e_chk", seed=8, speed=SPEED, noise=noise)
    await settle(sim, 12_340)
    expected = sim.displayed_g
    mark = len(wire.data)
    await wire.until(
        lambda: sum(f.grams == expected for f in frames_since("a12e_chk", wire, mark).frames) >= 5
    )
    await wire.until(lambda: len(frames_since("a12e_chk", wire, 0).errors) >= 1)
    assert sim.bytes_corrupted > 0
    assert sim.bytes_lost > 0
    assert sim.garbage_sent > 0


async def test_partial_first_frame_and_send_raw(opened: Callable[..., Any]) -> None:
    sim, wire = await opened("gs_nt", seed=9, speed=SPEED)
    await wire.until(lambda: len(decode_stream("gs_nt", bytes(wire.data)).frames) >= 2)
    first = bytes(wire.data).split(b"\r\n", 1)[0]
    assert 0 < len(first) < 16  # started mid-frame
    mark = len(wire.data)
    await asyncio.wait_for(sim.send_raw(b"NOISE\r\n"), DEADLINE_S)
    await wire.until(lambda: b"NOISE\r\n" in wire.data[mark:])


async def test_nobody_reading_drops_bytes(link: Path) -> None:
    async with ScaleSimulator(link, "gs_nt", seed=1, speed=20.0, max_backlog=256) as sim:
        await asyncio.wait_for(sim.wait_frames(40), DEADLINE_S)  # ~700 bytes, nobody reading
        assert sim.bytes_dropped > 0
        assert sim.bytes_written > 0


async def test_seven_e1_forced_on_an_8n1_model(opened: Callable[..., Any]) -> None:
    _, wire = await opened("gs_nt", seed=3, speed=SPEED, seven_e1=True)
    await wire.until(
        lambda: len(decode_stream("gs_nt", bytes(wire.data), seven_e1=True).frames) >= 3
    )
    assert wire.data.count(0x8D) >= 3  # CR with its parity bit
    assert not decode_stream("gs_nt", bytes(wire.data), seven_e1=True).errors


async def test_link_removed_on_exit(link: Path) -> None:
    async with ScaleSimulator(link, "ohaus") as sim:
        assert os.readlink(link) == sim.slave_name
    assert not _exists(link)


def test_validation() -> None:
    with pytest.raises(ValueError, match="unknown scale model"):
        ScaleSimulator(Path("/tmp/x"), "nope")
    with pytest.raises(ValueError, match="division"):
        ScaleSimulator(Path("/tmp/x"), "gs_nt", division_g=3)
    with pytest.raises(ValueError, match="capacity"):
        ScaleSimulator(Path("/tmp/x"), "gs_nt", capacity_g=5)
    with pytest.raises(ValueError, match="corrupt_rate"):
        NoiseSettings(corrupt_rate=2)


def test_models_table() -> None:
    assert set(MODELS) == {
        "yh_stx", "yh_rev", "yh_fwd", "a12e_chk", "a12_ww", "and_std",
        "gs_nt", "cas22", "toledo_cont", "mtsics", "ohaus", "diy_hx711",
    }  # fmt: skip
    assert {m for m, s in MODELS.items() if s.seven_e1} == {"and_std", "toledo_cont"}
    for spec in MODELS.values():
        decimals_for(spec.division_g)
        assert spec.baud >= 1200
        assert spec.description


# ---- CLI --------------------------------------------------------------------------------------


def test_cli_sim_scale_help() -> None:
    result = CliRunner().invoke(app, ["sim", "scale", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--link", "--model", "--scenario", "--seed", "--rate", "--baud"):
        assert option in result.output


def test_cli_sim_scale_rejects_unknown_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["sim", "scale", "--link", str(tmp_path / "tty"), "--model", "nope"]
    )
    assert result.exit_code != 0


async def test_steady_scenario_places_loads(link: Path) -> None:
    task = asyncio.create_task(
        run_scale_scenario(
            link=link, model="mtsics", scenario="steady", seed=1, interval_s=2.0, speed=SPEED
        )
    )
    try:

        async def link_ready() -> bool:
            assert not task.done()
            return _exists(link)

        await eventually(link_ready, timeout=DEADLINE_S)
        wire = Wire(link, 9600)
        try:
            await wire.until(
                lambda: any(
                    f.stable and f.grams for f in decode_stream("mtsics", bytes(wire.data)).frames
                )
            )
        finally:
            await wire.close()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# ---- cross-check: the gateway's decoders read what the simulator sends ------------------------


@pytest.mark.parametrize(("model", "options"), VARIANTS, ids=VARIANT_IDS)
async def test_gateway_decoder_reads_the_simulator(
    opened: Callable[..., Any], model: str, options: FrameOptions
) -> None:
    """Two implementations from the same notes: the simulator's bytes through ``decoder_for``."""
    spec = MODELS[model]
    sim, wire = await opened(model, seed=12, speed=2 * SPEED, options=options)
    kw = {"toledo_cks": options.toledo_checksum}
    load = round_to_division(12_340, sim.division_g)
    await settle(sim, load)
    mark = len(wire.data)
    await wire.until(lambda: len(frames_since(model, wire, mark, **kw).frames) >= 10)
    settled_end = len(wire.data)
    await settle(sim, sim.capacity_g + 20 * sim.division_g)
    over_mark = len(wire.data)
    await wire.until(lambda: len(frames_since(model, wire, over_mark, **kw).frames) >= 3)
    data = bytes(wire.data)

    decoder = decoder_for(model)  # fed in pieces, as reads would come
    moving = decoder.feed(data[:mark])
    settled_items = decoder.feed(data[mark:settled_end])
    decoder.feed(data[settled_end:over_mark])
    over_items = decoder.feed(data[over_mark:])
    assert not decoder.rejected, decoder.rejected
    assert decoder.partial_frames <= 1
    readings = [i for i in settled_items if isinstance(i, WeightReading)]
    assert len(readings) == len(settled_items) >= 8

    grams = [r.grams for r in readings]
    assert Counter(grams).most_common(1)[0][0] == load, grams
    if spec.has_stability_flag:
        assert any(r.status == "stable" and r.grams == load for r in readings)
        assert any(isinstance(r, WeightReading) and r.status == "unstable" for r in moving)
    else:
        assert {r.status for r in readings} == {"unknown"}
    assert over_items
    if spec.has_overload_frame:
        assert all(isinstance(i, ScaleStatus) and i.kind == "overload" for i in over_items)
    else:
        assert all(
            isinstance(i, WeightReading) and i.grams is not None and i.grams > sim.capacity_g
            for i in over_items
        )


@pytest.mark.parametrize(("model", "options"), VARIANTS, ids=VARIANT_IDS)
async def test_auto_detect_recognises_each_model(
    opened: Callable[..., Any], model: str, options: FrameOptions
) -> None:
    """`protocol = "auto"`: the attendant need not know the model; the first bytes tell."""
    sim, wire = await opened(model, seed=21, speed=2 * SPEED, options=options)
    load = round_to_division(7_530, sim.division_g)
    await settle(sim, load)
    mark = len(wire.data)
    kw = {"toledo_cks": options.toledo_checksum}
    await wire.until(lambda: len(frames_since(model, wire, mark, **kw).frames) >= 12)
    data = bytes(wire.data)

    detector = AutoDetector()
    items = []
    for start in range(0, len(data), 7):  # in small reads, as a port delivers them
        items.extend(detector.feed(data[start : start + 7]))
    assert detector.protocol == model
    readings = [i for i in items if isinstance(i, WeightReading)]
    assert Counter(r.grams for r in readings[-8:]).most_common(1)[0][0] == load


# ---- what a pty does with a parity setting (docs/protocol.md §1.5) ------------------------------


@pytest.mark.parametrize(("bytesize", "parity"), [(7, "E"), (7, "O"), (8, "E"), (7, "N")])
def test_a_pty_never_applies_parity(bytesize: int, parity: str) -> None:
    """Whether a pty accepts or refuses a parity or 7-bit setting depends on the kernel and
    the call (§1.5); it never applies one: the line stays 8 data bits without parity, and a
    byte with bit 7 set (a 7E1 device's parity bit) arrives as it was written."""
    main, sub = os.openpty()
    tty.setraw(main)
    try:
        try:
            port = serial.Serial(os.ttyname(sub), 9600, bytesize=bytesize, parity=parity, timeout=2)
        except (serial.SerialException, termios.error, OSError):
            return  # refused: nothing applied either
        with port:
            cflag = termios.tcgetattr(port.fileno())[2]
            assert cflag & termios.CSIZE == termios.CS8
            assert not cflag & termios.PARENB
            os.write(main, bytes([0xD4, 0x41]))
            assert port.read(2) == bytes([0xD4, 0x41])
    finally:
        os.close(main)
        os.close(sub)
