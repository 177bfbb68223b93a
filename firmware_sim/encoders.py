"""Every frame the simulators send, built from the device documents, not from the gateway.

The gateway's decoders (``gateway.scale_protocol``, ``gateway.fill_sensor``) and these encoders
are written apart, each from the research notes (/work/shared/domain/device-protocols.md: scale
indicators §1.1-§1.8, fill sensors §2.1 and §2.3) and docs/protocol.md (the kiosk box, §2, and
our kiosk indicator's ``ST,GS,`` line, §1.2). A framing mistake made on one side therefore fails
the tests instead of passing both: ``tests/test_golden_frames.py`` checks each side on its own
against the byte strings of ``tests/data/golden/``, quoted from the manufacturers' documents.

Nothing here imports ``gateway``. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from wastebank.messages import CODE_PATTERN

STX: Final = 0x02
ETX: Final = 0x03
CRLF: Final = b"\r\n"

Mode = Literal["gross", "net", "tare"]


# ---- weighing indicators (device-protocols.md §1) -----------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What the indicator shows for one A/D conversion, ready to be encoded."""

    grams: int
    """Shown value (net when tared, the tare for ``mode="tare"``), a multiple of the division."""
    dp: int
    """Decimals shown in kg (10 g division -> 2)."""
    stable: bool
    overload: bool = False
    underload: bool = False
    mode: Mode = "gross"
    tare_g: int = 0
    division_g: int = 10


@dataclass(frozen=True)
class FrameOptions:
    """Per-device variants of a format."""

    yh_checksum: Literal["hex", "nibble30"] = "hex"
    """``yh_stx`` checksum: upper-case hex, or ``0x30 + nibble`` (``:``..``?`` for 10-15)."""
    toledo_checksum: bool = False
    """``toledo_cont``: append the checksum byte after CR (Liden: off by default)."""
    cas_device_id: int = 1
    """``cas22`` device ID, sent as ``0x30 + id``."""

    def __post_init__(self) -> None:
        if not 0 <= self.cas_device_id <= 9:
            raise ValueError("cas_device_id must be 0..9")


def decimals_for(division_g: int) -> int:
    """Decimals of the kg display for a division of 1, 2 or 5 x 10^k grams."""
    k = 0
    mantissa = division_g
    while mantissa % 10 == 0:
        mantissa //= 10
        k += 1
    if division_g <= 0 or mantissa not in (1, 2, 5):
        raise ValueError(f"division must be 1, 2 or 5 x 10^k g, not {division_g}")
    return max(0, 3 - k)


def round_to_division(grams: float, division_g: int) -> int:
    """Round half away from zero to the display division."""
    divisions = math.floor(abs(grams) / division_g + 0.5)
    return int(math.copysign(divisions * division_g, grams)) if divisions else 0


def xor(data: bytes) -> int:
    result = 0
    for b in data:
        result ^= b
    return result


def with_even_parity(data: bytes) -> bytes:
    """Bit 7 = even parity of the low 7 bits: a 7E1 line read as 8N1."""
    return bytes((b & 0x7F) | (0x80 if (b & 0x7F).bit_count() % 2 else 0) for b in data)


_POW10: Final = (1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)


def _units(grams: int, dp: int) -> int:
    """|grams| in display units (no decimal point), rounded half away from zero."""
    return (abs(grams) * _POW10[dp] + 500) // 1000


def _fixed(units: int, dp: int, width: int) -> str:
    """Zero-padded ``width`` characters including the decimal point; clamps at all nines."""
    digits = width - (1 if dp else 0)
    units = min(units, _POW10[digits] - 1)
    if not dp:
        return f"{units:0{width}d}"
    whole, frac = divmod(units, _POW10[dp])
    return f"{whole:0{width - dp - 1}d}.{frac:0{dp}d}"


def _plain(units: int, dp: int) -> str:
    if not dp:
        return str(units)
    whole, frac = divmod(units, _POW10[dp])
    return f"{whole}.{frac:0{dp}d}"


def _signed_field(r: Reading, width: int) -> str:
    """``width`` characters, a ``-`` replacing the first digit when negative."""
    units = _units(r.grams, r.dp)
    if r.grams < 0:
        return "-" + _fixed(units, r.dp, width - 1)
    return _fixed(units, r.dp, width)


def _hex2(value: int, style: Literal["hex", "nibble30"] = "hex") -> bytes:
    if style == "hex":
        return f"{value:02X}".encode("ascii")
    return bytes((0x30 + (value >> 4), 0x30 + (value & 0x0F)))


def _gn(r: Reading) -> str:
    return {"gross": "GS", "net": "NT", "tare": "TR"}[r.mode]


def encode_yh_stx(r: Reading, opts: FrameOptions) -> bytes:
    """``STX + 0 0 1 2 3 4 2 XH XL ETX``: sign, 6 digits, decimals, XOR of bytes 2-9 (§1.1a)."""
    units = min(_units(r.grams, r.dp), 999_999)
    body = f"{'-' if r.grams < 0 else '+'}{units:06d}{r.dp}".encode("ascii")
    return bytes([STX]) + body + _hex2(xor(body), opts.yh_checksum) + bytes([ETX])


def _yh_forward(r: Reading) -> str:
    """Sign (``0``/``-``) + 7 characters including the decimal point: ``0003.000``."""
    return ("-" if r.grams < 0 else "0") + _fixed(_units(r.grams, r.dp), r.dp, 7)


def encode_yh_fwd(r: Reading, opts: FrameOptions) -> bytes:
    """``=0003.000`` / ``=-0001.00``: no line end, ``=`` is the only delimiter (§1.1c)."""
    return ("=" + _yh_forward(r)).encode("ascii")


def encode_yh_rev(r: Reading, opts: FrameOptions) -> bytes:
    """``=000.3000`` / ``=00.1000-``: the forward characters lowest digit first (§1.1c)."""
    return ("=" + _yh_forward(r)[::-1]).encode("ascii")


def encode_a12e_chk(r: Reading, opts: FrameOptions) -> bytes:
    """``WG004.139kg3D`` CR LF; ``␣×9 OL 23`` / ``␣×9 LO 23``; XOR of bytes 1-11 (§1.2)."""
    if r.overload or r.underload:
        body = (" " * 9 + ("OL" if r.overload else "LO")).encode("ascii")
    else:
        if r.dp:
            weight = _signed_field(r, 7)
        else:  # no decimal point: byte 9 is blank
            units = _units(r.grams, 0)
            weight = (f"-{min(units, 99_999):05d}" if r.grams < 0 else f"{units:06d}") + " "
        body = f"W{'N' if r.mode == 'net' else 'G'}{weight}kg".encode("ascii")
    return body + _hex2(xor(body)) + CRLF


def encode_a12_ww(r: Reading, opts: FrameOptions) -> bytes:
    """``ww000.000kg`` gross / ``wn-0000.1kg`` net / ``wt…`` tare, CR LF, no checksum (§1.2)."""
    prefix = {"gross": "ww", "net": "wn", "tare": "wt"}[r.mode]
    return f"{prefix}{_signed_field(r, 7)}kg".encode("ascii") + CRLF


def encode_and_std(r: Reading, opts: FrameOptions) -> bytes:
    """``ST,+00012.34␣kg`` / ``US,…``; ``OL,+9999999E+19`` / ``OL,-9999999E+19`` (§1.3)."""
    if r.overload or r.underload:
        return f"OL,{'+' if r.overload else '-'}9999999E+19".encode("ascii") + CRLF
    sign = "-" if r.grams < 0 else "+"
    data = _fixed(_units(r.grams, r.dp), r.dp, 8)
    return f"{'ST' if r.stable else 'US'},{sign}{data} kg".encode("ascii") + CRLF


def encode_gs_nt(r: Reading, opts: FrameOptions) -> bytes:
    """``ST,GS,+0012.34kg`` / ``US,NT,-0001.56kg``; ``OL,GS,+␣␣␣␣␣␣␣kg`` (§1.3, protocol.md)."""
    if r.overload or r.underload:
        return f"OL,{_gn(r)},{'+' if r.overload else '-'}{'':7}kg".encode("ascii") + CRLF
    sign = "-" if r.grams < 0 else "+"
    data = _fixed(_units(r.grams, r.dp), r.dp, 7)
    return f"{'ST' if r.stable else 'US'},{_gn(r)},{sign}{data}kg".encode("ascii") + CRLF


CAS_LAMP_FIXED: Final = 0x80
CAS_LAMP_STABLE: Final = 0x40
CAS_LAMP_GROSS: Final = 0x04
CAS_LAMP_TARE: Final = 0x02
CAS_LAMP_ZERO: Final = 0x01


def encode_cas22(r: Reading, opts: FrameOptions) -> bytes:
    """``ST,GS,<ID><LAMP>,00013.50␣kg`` CR LF, 22 bytes; lamp bit6 stable, 2 gross, 1 tare, 0 zero.

    Overload: ``OL`` header, the data field blank (the layout stays 22 bytes).
    """
    lamp = CAS_LAMP_FIXED
    if r.stable and not (r.overload or r.underload):
        lamp |= CAS_LAMP_STABLE
    if r.mode == "gross":
        lamp |= CAS_LAMP_GROSS
    if r.tare_g:
        lamp |= CAS_LAMP_TARE
    if r.grams == 0 and not (r.overload or r.underload):
        lamp |= CAS_LAMP_ZERO
    if r.overload or r.underload:
        head, data = "OL", " " * 8
    else:
        head, data = ("ST" if r.stable else "US"), _signed_field(r, 8)
    ident = bytes([0x30 + opts.cas_device_id, lamp])
    return (
        f"{head},{'NT' if r.mode == 'net' else 'GS'},".encode("ascii")
        + ident
        + f",{data} kg".encode("ascii")
        + CRLF
    )


TOLEDO_ALWAYS: Final = 0x20
"""Bit 5 is always 1 in the MT status words (keeps them printable)."""
SWB_NET: Final = 0x01
SWB_NEGATIVE: Final = 0x02
SWB_OUT_OF_RANGE: Final = 0x04
SWB_MOTION: Final = 0x08
SWB_KG: Final = 0x10


def toledo_checksum(frame: bytes) -> int:
    """Two's complement of the 7-bit sum of STX … CR: ``(sum + cks) & 0x7F == 0``."""
    return -sum(b & 0x7F for b in frame) & 0x7F


def encode_toledo_cont(r: Reading, opts: FrameOptions) -> bytes:
    """``STX SWA SWB SWC dddddd tttttt CR [CKS]`` (§1.5).

    SWA bits 0-2 decimal position (2 = no decimals, 4 = ``dddd.dd``), bits 3-4 increment
    (1 = x1, 2 = x2, 3 = x5); SWB bit0 net, bit1 negative, bit2 out of range, bit3 motion,
    bit4 kg; bit 5 always set. Bit 7 (parity) is added on a 7E1 line, not here.
    """
    leading = r.division_g
    while leading % 10 == 0:
        leading //= 10
    increment = {1: 1, 2: 2, 5: 3}[leading]
    swa = TOLEDO_ALWAYS | increment << 3 | (2 + r.dp)
    swb = TOLEDO_ALWAYS | SWB_KG
    if r.mode == "net":
        swb |= SWB_NET
    if r.grams < 0 or r.underload:
        swb |= SWB_NEGATIVE
    if r.overload or r.underload:
        swb |= SWB_OUT_OF_RANGE
    if not r.stable:
        swb |= SWB_MOTION
    swc = TOLEDO_ALWAYS
    weight = min(_units(r.grams, r.dp), 999_999)
    tare = min(_units(r.tare_g, r.dp), 999_999)
    frame = bytes([STX, swa, swb, swc]) + f"{weight:06d}{tare:06d}".encode("ascii") + bytes([0x0D])
    return frame + bytes([toledo_checksum(frame)]) if opts.toledo_checksum else frame


def encode_mtsics(r: Reading, opts: FrameOptions) -> bytes:
    """SIR stream: ``S␣S␣␣␣␣␣␣12.34␣kg`` (stable) / ``S␣D…`` (dynamic); ``S␣+`` / ``S␣-`` (§1.6)."""
    if r.overload or r.underload:
        return f"S {'+' if r.overload else '-'}".encode("ascii") + CRLF
    number = ("-" if r.grams < 0 else "") + _plain(_units(r.grams, r.dp), r.dp)
    return f"S {'S' if r.stable else 'D'} {number:>10} kg".encode("ascii") + CRLF


def encode_ohaus(r: Reading, opts: FrameOptions) -> bytes:
    """``␣␣␣␣␣␣12.340␣kg␣␣`` stable, ``…␣kg␣?`` unstable, ``…␣NET`` legend when tared (§1.7).

    No overload line is documented: the value goes on, marked ``?``.
    """
    number = ("-" if r.grams < 0 else "") + _plain(_units(r.grams, r.dp), r.dp)
    stab = "?" if not r.stable or r.overload or r.underload else " "
    legend = " NET" if r.mode == "net" else ""
    return f"{number:>11} kg {stab}{legend}".encode("ascii") + CRLF


def encode_diy_hx711(r: Reading, opts: FrameOptions) -> bytes:
    """``Load_cell output val: 12.34`` CR LF (HX711_ADC sketch, kg, Arduino's 2 decimals)."""
    hundredths = (abs(r.grams) + 5) // 10
    number = f"{'-' if r.grams < 0 else ''}{hundredths // 100}.{hundredths % 100:02d}"
    return f"Load_cell output val: {number}".encode("ascii") + CRLF


Encoder = Callable[[Reading, FrameOptions], bytes]


# ---- our kiosk indicator and the kiosk box (docs/protocol.md §1.2, §2) ---------------------------

KIOSK_DIVISION_G: Final = 10
"""The kiosk indicator's display division (0.01 kg, docs/protocol.md §1.2)."""
KIOSK_MAX_G: Final = 9_999_990
"""Largest weight the kiosk line's 7-character kg field holds (``9999.99``)."""
KIOSK_SEQ_MAX: Final = 65535
KIOSK_KINDS: Final = ("CARD", "CAT", "OK", "CANCEL")
_CARD_UID_RE: Final = re.compile(r"[0-9A-F]{8,20}")
_CATEGORY_RE: Final = re.compile(CODE_PATTERN)


def encode_weight(
    grams: int | None,
    *,
    stable: bool,
    mode: Mode = "gross",
    overload: bool = False,
) -> bytes:
    """The kiosk indicator's line: ``ST,GS,+0012.35kg`` CR LF for 12 345 g (10 g division).

    Grams are rounded half away from zero to the division, as the indicator displays them; zero
    is always ``+``. ``overload=True`` (grams ignored) sends ``OL,GS,+`` and 7 blanks.
    """
    if overload:
        return encode_gs_nt(Reading(0, 2, stable=False, overload=True, mode=mode), FrameOptions())
    if grams is None:
        raise ValueError("grams is required unless overload=True")
    shown = round_to_division(grams, KIOSK_DIVISION_G)
    if abs(shown) > KIOSK_MAX_G:
        raise ValueError(f"{grams} g does not fit the 7-character kg field; send overload")
    reading = Reading(shown, 2, stable=stable, mode=mode, division_g=KIOSK_DIVISION_G)
    return encode_gs_nt(reading, FrameOptions())


def kiosk_checksum(body: str) -> str:
    """XOR of every byte between ``#`` and ``*``, as two upper-case hex digits."""
    return f"{xor(body.encode('ascii')):02X}"


def encode_kiosk(seq: int, kind: str, value: str = "") -> bytes:
    """One kiosk frame with CR LF: ``encode_kiosk(19, "OK")`` -> ``b"#K,19,OK*47\\r\\n"``.

    Raises ValueError for a frame the grammar of docs/protocol.md §2 does not allow: the box
    never sends one.
    """
    if not 0 <= seq <= KIOSK_SEQ_MAX:
        raise ValueError(f"seq {seq} outside 0..{KIOSK_SEQ_MAX}")
    if kind not in KIOSK_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KIOSK_KINDS)}")
    if kind == "CARD" and _CARD_UID_RE.fullmatch(value) is None:
        raise ValueError("card UID must be 8-20 upper-case hex digits")
    if kind == "CAT" and _CATEGORY_RE.fullmatch(value) is None:
        raise ValueError("category code must be [a-z0-9-]")
    if kind in ("OK", "CANCEL") and value:
        raise ValueError(f"{kind} takes no value")
    body = f"K,{seq},{kind},{value}" if value else f"K,{seq},{kind}"
    return f"#{body}*{kiosk_checksum(body)}".encode("ascii") + CRLF


# ---- TPS fill sensors (device-protocols.md §2.1, §2.3) -----------------------------------------

MODE2_HEADER: Final = 0xFF
MM_PER_INCH: Final = 25.4
MAXBOTIX_MAX_INCHES: Final = 255
"""LV-MaxSonar: "three ASCII character digits representing the range in inches up to a maximum
of 255" (MB1030 datasheet, §2.1)."""
MAXBOTIX_MAX_4DIGIT: Final = 9999


def encode_mode2(distance_mm: int) -> bytes:
    """JSN-SR04T mode 2 / A02YYUW / ME007YS: ``FF H L SUM``, SUM = low 8 bits of FF + H + L.

    1500 mm -> ``FF 05 DC E0``; 1953 mm -> ``FF 07 A1 A7`` (§2.1).
    """
    if not 0 <= distance_mm <= 0xFFFF:
        raise ValueError("distance_mm must be in 0..65535")
    high, low = distance_mm >> 8, distance_mm & 0xFF
    return bytes((MODE2_HEADER, high, low, (MODE2_HEADER + high + low) & 0xFF))


def encode_maxbotix(distance_mm: float, *, digits: Literal[3, 4] = 4) -> bytes:
    """MaxBotix serial: ``R`` + digits + CR (§2.1), clamped to what the field can show.

    Four digits are millimetres (HRXL-MaxSonar, ``R1234\\r``); three are whole inches
    (LV-MaxSonar, ``R048\\r`` for 1219 mm), at most 255.
    """
    if digits == 3:
        inches = min(MAXBOTIX_MAX_INCHES, max(0, math.floor(distance_mm / MM_PER_INCH + 0.5)))
        return b"R" + f"{inches:03d}".encode("ascii") + b"\r"
    mm = min(MAXBOTIX_MAX_4DIGIT, max(0, math.floor(distance_mm + 0.5)))
    return b"R" + f"{mm:04d}".encode("ascii") + b"\r"


EM310_BATTERY: Final = b"\x01\x75"
EM310_DISTANCE: Final = b"\x03\x82"
EM310_POSITION: Final = b"\x04\x00"


def encode_em310_udl(*, battery_pct: int, distance_mm: int, tilt: bool = False) -> bytes:
    """Milesight EM310-UDL periodic uplink, TLV little-endian (§2.3): battery ``01 75`` (%),
    distance ``03 82`` (mm, 2 bytes), position ``04 00`` (0 normal, 1 tilt).

    92 %, 2116 mm, tilt -> ``01755C 03824408 040001``.
    """
    if not 0 <= battery_pct <= 100:
        raise ValueError("battery_pct must be 0..100")
    if not 0 <= distance_mm <= 0xFFFF:
        raise ValueError("distance_mm must be 0..65535")
    return (
        EM310_BATTERY
        + bytes([battery_pct])
        + EM310_DISTANCE
        + distance_mm.to_bytes(2, "little")
        + EM310_POSITION
        + bytes([int(tilt)])
    )
