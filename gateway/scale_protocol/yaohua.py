"""Yaohua XK3190 indicators and their clones (docs/protocol.md §1.6.1-4): ``yh_stx``
(STX … ETX), ``yh_rev``/``yh_fwd`` (``=`` streams), ``a12e_chk`` (the A12E manual format with
its checksum) and ``a12_ww`` (the field-observed ``ww000.000kg`` lines). No stability flag in
any of them. Pure."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from gateway.scale_protocol.frames import (
    CR,
    EQUALS,
    ETX,
    LF,
    STX,
    FrameError,
    Parsed,
    ScaleStatus,
    StatusKind,
    Unit,
    WeightMode,
    WeightReading,
    ascii_text,
    seven_bit,
    signed,
    to_grams,
    xor,
)
from gateway.scale_protocol.framing import ByteDecoder, LineDecoder


def _nibble(char: int) -> int | None:
    """A Yaohua checksum digit: upper-case hex, or the ``0x30 + n`` form (``:`` … ``?``)."""
    if 0x30 <= char <= 0x3F:
        return char - 0x30
    if 0x41 <= char <= 0x46:
        return char - 0x37
    return None


def _yaohua_checksum(chars: bytes) -> int | None:
    if len(chars) != 2:
        return None
    high, low = _nibble(chars[0]), _nibble(chars[1])
    if high is None or low is None:
        return None
    return high << 4 | low


_A12E_WEIGHT_RE: Final = re.compile(
    r"W(?P<mode>[GN])(?P<field> *(?P<sign>-?) *(?P<num>[0-9]+(?:\.[0-9]+)?) ?)(?P<unit>kg|lb)"
)
_A12E_LIMITS: Final[dict[str, StatusKind]] = {"OL": "overload", "LO": "underload"}


class A12eChkDecoder(LineDecoder):
    """XK3190-A12(E) manual format ``WG004.139kg3D`` CR LF; XOR of bytes 1-11 as 2 hex chars.

    ``␣×9 OL 23`` is overload, ``␣×9 LO 23`` underload. No stability flag.
    """

    protocol = "a12e_chk"

    def _parse_text(self, seven: bytes, frame: bytes) -> Parsed:
        if len(seven) != 13:
            raise FrameError("bad_format", frame, f"{len(seven) + 2} bytes, not 15")
        checksum = _yaohua_checksum(seven[11:13])
        if checksum is None:
            raise FrameError("bad_format", frame, "checksum characters")
        if xor(seven[:11]) != checksum:
            raise FrameError("checksum", frame)
        text = ascii_text(seven[:11], frame)
        if text[:9] == " " * 9 and text[9:] in _A12E_LIMITS:
            return ScaleStatus(_A12E_LIMITS[text[9:]], seven, self.protocol, text[9:])
        match = _A12E_WEIGHT_RE.fullmatch(text)
        if match is None or len(match["field"]) != 7:
            raise FrameError("bad_format", frame)
        grams = to_grams(signed(match["sign"], match["num"]), match["unit"], frame)
        mode: WeightMode = "gross" if match["mode"] == "G" else "net"
        return WeightReading("unknown", mode, grams, seven, self.protocol)


_A12_WW_RE: Final = re.compile(
    r"w(?P<mode>[wnt])(?P<sign>-?)(?P<int>[0-9]{1,8})(?:\.(?P<frac>[0-9]{1,6}))?(?P<unit>kg|lb)",
    re.IGNORECASE,
)
_A12_MODES: Final[dict[str, WeightMode]] = {"w": "gross", "n": "net", "t": "tare"}


class A12WwDecoder(LineDecoder):
    """Field-observed A12/A27E/Liden lines ``ww000.000kg``, ``wn-0000.1kg``, ``wt…``, ``…lb``.

    Widths vary by model, so a regex reads them; the decoder then locks the number of decimals
    and the unsigned digit count of the first frames, so a line that lost a digit (no checksum
    here) is rejected instead of read as a different weight. A minus sign may replace a leading
    digit or come on top. No stability flag.
    """

    protocol = "a12_ww"

    def __init__(self) -> None:
        super().__init__()
        self._decimals: int | None = None
        self._int_digits: int | None = None

    def reset(self) -> None:
        super().reset()
        self._decimals = self._int_digits = None

    def _parse_text(self, seven: bytes, frame: bytes) -> Parsed:
        match = _A12_WW_RE.fullmatch(ascii_text(seven, frame))
        if match is None or match[0][:1] != "w":
            raise FrameError("bad_format", frame)
        frac = match["frac"] or ""
        digits, negative = len(match["int"]), match["sign"] == "-"
        if self._decimals is not None and len(frac) != self._decimals:
            raise FrameError("bad_format", frame, f"{len(frac)} decimals, not {self._decimals}")
        if self._int_digits is not None and not (
            digits == self._int_digits or (negative and digits == self._int_digits - 1)
        ):
            raise FrameError("bad_format", frame, "field width changed")
        value = signed(match["sign"], f"{match['int']}.{frac}" if frac else match["int"])
        grams = to_grams(value, match["unit"], frame)
        self._decimals = len(frac)
        if not negative:
            self._int_digits = digits
        mode = _A12_MODES[match["mode"].lower()]
        return WeightReading("unknown", mode, grams, seven, self.protocol)


# ---- Yaohua STX … ETX --------------------------------------------------------------------------

_YH_STX_LEN: Final = 12


class YhStxDecoder(ByteDecoder):
    """Yaohua XK3190 continuous (tF=0): ``STX + 001234 2 1D ETX``, 12 bytes, no CR LF.

    Sign, 6 digits, decimal places (0-4), XOR of bytes 2-9 as 2 characters (upper-case hex or
    ``0x30 + nibble``). No stability flag; the unit is not sent (``unit``, default kg).
    A new STX before the ETX rejects the truncated frame and starts the next one.
    """

    protocol = "yh_stx"

    def __init__(self, unit: Unit = "kg") -> None:
        super().__init__()
        self.unit: Unit = unit

    def _split(self, data: bytes) -> list[bytes | FrameError]:
        out: list[bytes | FrameError] = []
        buf = self._buf
        for byte in data:
            low = byte & 0x7F
            if low == STX:
                if buf:
                    out.append(FrameError("bad_format", bytes(buf), "truncated: STX before ETX"))
                    buf.clear()
                self._sync()
                buf.append(byte)
            elif not buf:
                self._skip(byte)
            else:
                buf.append(byte)
                if low == ETX:
                    out.append(bytes(buf))
                    buf.clear()
                elif len(buf) >= _YH_STX_LEN:
                    out.append(FrameError("bad_format", bytes(buf), "no ETX in 12 bytes"))
                    buf.clear()
        return out

    def parse_frame(self, frame: bytes) -> Parsed:
        """``STX`` … ``ETX`` inclusive."""
        seven = seven_bit(frame)
        if len(seven) != _YH_STX_LEN or seven[0] != STX or seven[-1] != ETX:
            raise FrameError("bad_format", frame, f"{len(seven)} bytes, not 12")
        body = seven[1:-1]
        checksum = _yaohua_checksum(body[8:10])
        if checksum is None:
            raise FrameError("bad_format", frame, "checksum characters")
        if xor(body[:8]) != checksum:
            raise FrameError("checksum", frame)
        sign, digits, places = body[0:1], body[1:7], body[7:8]
        if sign not in (b"+", b"-") or not digits.isdigit() or places not in b"01234":
            raise FrameError("bad_format", frame)
        value = Decimal(int(digits)).scaleb(-int(places))
        grams = to_grams(-value if sign == b"-" else value, self.unit, frame)
        return WeightReading("unknown", "gross", grams, seven, self.protocol)


# ---- Yaohua "=" streams ------------------------------------------------------------------------

_YH_EQ_LEN: Final = 9
_YH_EQ_VALUE_RE: Final = re.compile(r" *(?P<num>[0-9]+\.?[0-9]*|\.[0-9]+)")
YH_MAX_DECIMALS: Final = 4
"""The indicators' decimal point setting is 0-4 places (A26 manual, continuous format 0: "decimal
points digits from right to left (0~4)"): an "=" value with more is not one they display."""


class _YhEqualsDecoder(ByteDecoder):
    """``=`` + 8 characters, back to back, no CR LF: ``=`` is the only delimiter.

    A frame ends at the next ``=`` (so it is returned when the next one starts) or at a CR/LF
    that some clones append. Sign ``0`` (positive) or ``-``. No stability flag, no unit. A value
    with more than :data:`YH_MAX_DECIMALS` decimals is ``bad_format``.
    """

    reverse = False

    def __init__(self, unit: Unit = "kg") -> None:
        super().__init__()
        self.unit: Unit = unit

    def _split(self, data: bytes) -> list[bytes | FrameError]:
        out: list[bytes | FrameError] = []
        buf = self._buf
        for byte in data:
            low = byte & 0x7F
            if low == EQUALS:
                if buf:
                    out.append(bytes(buf))
                    buf.clear()
                self._sync()
                buf.append(byte)
            elif low in (CR, LF):
                if buf:
                    out.append(bytes(buf))
                    buf.clear()
                elif not self._synced:
                    self._skip(byte)
            elif not buf:
                self._skip(byte)
            else:
                buf.append(byte)
                if len(buf) > _YH_EQ_LEN:
                    out.append(FrameError("bad_format", bytes(buf), "no '=' after 8 characters"))
                    buf.clear()
        return out

    def parse_frame(self, frame: bytes) -> Parsed:
        """``=`` and the 8 characters after it."""
        seven = seven_bit(frame)
        if len(seven) != _YH_EQ_LEN or seven[0] != EQUALS:
            raise FrameError("bad_format", frame, f"{len(seven)} bytes, not 9")
        body = ascii_text(seven[1:], frame)
        if self.reverse:
            body = body[::-1]
        sign, rest = body[0], body[1:]
        match = _YH_EQ_VALUE_RE.fullmatch(rest)
        if sign not in "0-" or match is None:
            raise FrameError("bad_format", frame)
        _, point, decimals = match["num"].partition(".")
        if point and len(decimals) > YH_MAX_DECIMALS:
            raise FrameError("bad_format", frame, f"{len(decimals)} decimals, at most 4")
        grams = to_grams(signed(sign, match["num"]), self.unit, frame)
        return WeightReading("unknown", "gross", grams, seven, self.protocol)


class YhRevDecoder(_YhEqualsDecoder):
    """The reversed stream (A26 "format 1", A23P "format 2"): ``=000.3000`` = 3.000,
    ``=00.1000-`` = -1.00."""

    protocol = "yh_rev"
    reverse = True


class YhFwdDecoder(_YhEqualsDecoder):
    """The forward stream (A26 "format 2"; docs/protocol.md §1.6.2 for the A23P's numbering):
    ``=0003.000`` = 3.000, ``=-0001.00`` = -1.00."""

    protocol = "yh_fwd"
