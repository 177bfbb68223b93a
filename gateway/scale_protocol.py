"""Scale and kiosk serial protocol: bytes in, typed readings out. Pure: no I/O, no clock.

One serial line carries two kinds of ASCII lines (docs/protocol.md §1-2):

* weight lines from the indicator, A&D "ST,GS," variant (``ST,GS,+0012.34kg``) or plain A&D
  (``ST,+00012.34  g``) -> :class:`WeightReading`;
* kiosk events from the card reader / keypad (``#K,17,CARD,04A1B2C3*01``) -> :class:`KioskFrame`.

:class:`LineFramer` cuts a byte stream into lines with a bounded buffer; :func:`parse_line` turns
one line into a reading or raises :class:`FrameError`. Lines from a 7E1 device read as 8N1 carry
the parity bit in bit 7; :func:`parse_line` checks and strips it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final, Literal, get_args

from wastebank.messages import CODE_PATTERN

WeightStatus = Literal["stable", "unstable", "overload"]
WeightMode = Literal["gross", "net", "tare"]
KioskKind = Literal["CARD", "CAT", "OK", "CANCEL"]
FrameReason = Literal["empty", "bad_format", "bad_value", "checksum", "overflow", "parity", "unit"]

KIOSK_KINDS: Final[tuple[KioskKind, ...]] = get_args(KioskKind)
_KIND_BY_NAME: Final[dict[str, KioskKind]] = {kind: kind for kind in KIOSK_KINDS}
SEQ_MAX: Final = 65535
DIVISION_G: Final = 10
"""The simulated indicator's display division (0.01 kg); :func:`encode_weight` rounds to it."""
MAX_ENCODED_G: Final = 9_999_990
"""Largest weight :func:`encode_weight` can write in its 7-character kg field (9999.99 kg)."""

DATA_WIDTH: Final = (8, 11)
"""Characters between the header comma and the unit (sign, digits, point, blanks): 8 in
``ST,GS,+0012.34kg``, 11 in A&D's ``ST,+00012.34  g``. A line that lost a byte is rejected."""

_UNIT_GRAMS: Final[dict[str, Decimal]] = {
    "kg": Decimal(1000),
    "g": Decimal(1),
    "lb": Decimal("453.59237"),
}
_HEADER_STATUS: Final[dict[str, WeightStatus]] = {
    "ST": "stable",
    "US": "unstable",
    "OL": "overload",
}
_MODE_CODES: Final[dict[str, WeightMode]] = {"GS": "gross", "NT": "net", "TR": "tare"}
_MODE_HEADERS: Final[dict[WeightMode, str]] = {v: k for k, v in _MODE_CODES.items()}

# Header, optional second header (GS/NT/TR = the "ST,GS," variant; LO/OK/HI/-- = A&D comparator),
# data (sign, digits, point, blanks; E for A&D's OL,+9999999E+19), unit, trailing blanks.
_WEIGHT_RE: Final = re.compile(
    r"(?P<head>ST|US|OL|QT),(?:(?P<head2>GS|NT|TR|LO|OK|HI|--),)?"
    r"(?P<data>[ 0-9.E+-]*?)(?P<unit>[A-Za-z]*) *"
)
_NUMBER_RE: Final = re.compile(
    r" *(?P<sign>[+-]?) *(?P<num>[0-9]{1,9}(?:\.[0-9]{0,6})?|\.[0-9]{1,6}) *"
)
_KIOSK_RE: Final = re.compile(r"#(?P<body>[^*]*)\*(?P<checksum>[0-9A-Fa-f]{2})")
_SEQ_RE: Final = re.compile(r"0|[1-9][0-9]{0,4}")
_CARD_RE: Final = re.compile(r"[0-9A-F]{8,20}")
_CODE_RE: Final = re.compile(CODE_PATTERN)


class FrameError(ValueError):
    """A line (or part of the stream) that is not a valid frame.

    ``reason`` is a short machine id for counting rejects: ``empty``, ``bad_format``,
    ``bad_value``, ``checksum``, ``overflow``, ``parity`` or ``unit``. ``raw`` holds the
    offending bytes as received (at most ``max_line + 1`` bytes for ``overflow``).
    """

    def __init__(self, reason: FrameReason, raw: bytes, detail: str = "") -> None:
        self.reason: FrameReason = reason
        self.raw = raw
        self.detail = detail
        text = f"{reason}: {raw[:64]!r}"
        super().__init__(f"{text} ({detail})" if detail else text)


@dataclass(frozen=True, slots=True)
class WeightReading:
    """One weight line. ``grams`` is None only for ``overload``; ``raw`` is the 7-bit line."""

    status: WeightStatus
    mode: WeightMode
    grams: int | None
    raw: bytes
    protocol: str = "gs_nt"

    @property
    def stable(self) -> bool:
        return self.status == "stable"


@dataclass(frozen=True, slots=True)
class KioskFrame:
    """One kiosk event: a member card, a waste category, confirm (OK) or CANCEL."""

    seq: int
    kind: KioskKind
    value: str
    raw: bytes


# ---- parity ------------------------------------------------------------------------------------


def _parity_odd(byte: int) -> bool:
    return (byte & 0x7F).bit_count() % 2 == 1


def with_even_parity(data: bytes) -> bytes:
    """Put the even-parity bit of each 7-bit byte into bit 7 (a 7E1 line as 8N1 shows it)."""
    return bytes((b & 0x7F) | (0x80 if _parity_odd(b) else 0) for b in data)


def _strip_parity(line: bytes) -> bytes:
    if all(b < 0x80 for b in line):
        return line
    if all(b.bit_count() % 2 == 0 for b in line):
        return bytes(b & 0x7F for b in line)
    raise FrameError("parity", line, "bit 7 set but not even parity")


# ---- parsing -----------------------------------------------------------------------------------


def parse_line(line: bytes) -> WeightReading | KioskFrame:
    """Parse one line (without CR/LF) into a weight reading or a kiosk frame.

    Raises :class:`FrameError` for anything else; never another exception.
    """
    if not line:
        raise FrameError("empty", line)
    text_bytes = _strip_parity(line)
    try:
        text = text_bytes.decode("ascii")
    except UnicodeDecodeError:  # pragma: no cover - _strip_parity leaves only 7-bit bytes
        raise FrameError("bad_format", line, "not ASCII") from None
    if text.startswith("#"):
        return _parse_kiosk(text, text_bytes, line)
    return _parse_weight(text, text_bytes, line)


def _parse_weight(text: str, raw: bytes, line: bytes) -> WeightReading:
    match = _WEIGHT_RE.fullmatch(text)
    if match is None:
        raise FrameError("bad_format", line)
    head, head2 = match["head"], match["head2"]
    unit = match["unit"].lower()
    if head == "QT":
        raise FrameError("unit", line, "count (QT) is not a weight")
    protocol = "gs_nt" if head2 in _MODE_CODES else "and_std"
    mode = _MODE_CODES.get(head2 or "", "gross")
    status = _HEADER_STATUS[head]
    if status == "overload":
        return WeightReading(status, mode, None, raw, protocol)
    data = match["data"]
    number = _NUMBER_RE.fullmatch(data)
    if number is None or not unit:
        raise FrameError("bad_format", line, "weight field")
    if not DATA_WIDTH[0] <= len(data) <= DATA_WIDTH[1]:  # e.g. a byte lost on the line
        raise FrameError("bad_format", line, f"weight field is {len(data)} characters")
    factor = _UNIT_GRAMS.get(unit)
    if factor is None:
        raise FrameError("unit", line, f"unit {match['unit']!r}")
    try:
        magnitude = Decimal(number["num"]) * factor
    except InvalidOperation:  # pragma: no cover - the regex admits only plain decimals
        raise FrameError("bad_format", line, "weight field") from None
    grams = int(magnitude.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if number["sign"] == "-":
        grams = -grams
    return WeightReading(status, mode, grams, raw, protocol)


def _xor(data: bytes) -> int:
    checksum = 0
    for b in data:
        checksum ^= b
    return checksum


def _field_problem(seq: int, kind: str, value: str) -> tuple[FrameReason, str] | None:
    if not 0 <= seq <= SEQ_MAX:
        return "bad_value", f"seq {seq} outside 0..{SEQ_MAX}"
    if kind not in _KIND_BY_NAME:
        return "bad_value", f"kind {kind!r}"
    if kind == "CARD" and _CARD_RE.fullmatch(value) is None:
        return "bad_value", "card UID must be 8-20 upper-case hex digits"
    if kind == "CAT" and _CODE_RE.fullmatch(value) is None:
        return "bad_value", "category code must be [a-z0-9-]"
    if kind in ("OK", "CANCEL") and value:
        return "bad_format", f"{kind} takes no value"
    return None


def _parse_kiosk(text: str, raw: bytes, line: bytes) -> KioskFrame:
    match = _KIOSK_RE.fullmatch(text)
    if match is None:
        raise FrameError("bad_format", line)
    body = match["body"]
    if _xor(body.encode("ascii")) != int(match["checksum"], 16):
        raise FrameError("checksum", line)
    fields = body.split(",")
    if fields[0] != "K" or len(fields) not in (3, 4):
        raise FrameError("bad_format", line, "expected K,<seq>,<KIND>[,<value>]")
    if _SEQ_RE.fullmatch(fields[1]) is None:
        raise FrameError("bad_value", line, "seq")
    seq, kind = int(fields[1]), fields[2]
    value = fields[3] if len(fields) == 4 else ""
    if kind in ("CARD", "CAT") and len(fields) != 4:
        raise FrameError("bad_format", line, f"{kind} needs a value")
    if (problem := _field_problem(seq, kind, value)) is not None:
        raise FrameError(problem[0], line, problem[1])
    return KioskFrame(seq, _KIND_BY_NAME[kind], value, raw)


# ---- encoding (simulators, tests) --------------------------------------------------------------


def _round_half_away(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def encode_weight(
    grams: int | None,
    *,
    stable: bool,
    mode: WeightMode = "gross",
    overload: bool = False,
) -> bytes:
    """One "ST,GS," weight line with CR LF, in kg with 2 decimals (10 g division).

    ``encode_weight(12345, stable=True)`` -> ``b"ST,GS,+0012.35kg\\r\\n"``; grams are rounded
    half away from zero to the division. ``overload=True`` (grams ignored) ->
    ``b"OL,GS,+       kg\\r\\n"``.
    """
    head2 = _MODE_HEADERS[mode]
    if overload:
        return f"OL,{head2},+{'':7}kg\r\n".encode("ascii")
    if grams is None:
        raise ValueError("grams is required unless overload=True")
    divisions = _round_half_away(Decimal(grams) / DIVISION_G)
    if abs(divisions) * DIVISION_G > MAX_ENCODED_G:
        raise ValueError(f"{grams} g does not fit the 7-character kg field; send overload")
    sign = "-" if divisions < 0 else "+"
    kg = f"{abs(divisions) // 100:04d}.{abs(divisions) % 100:02d}"
    head = "ST" if stable else "US"
    return f"{head},{head2},{sign}{kg}kg\r\n".encode("ascii")


def kiosk_checksum(body: str) -> str:
    """XOR of the bytes between ``#`` and ``*`` as two upper-case hex digits."""
    return f"{_xor(body.encode('ascii')):02X}"


def encode_kiosk(seq: int, kind: str, value: str = "") -> bytes:
    """One kiosk frame with CR LF: ``encode_kiosk(19, "OK")`` -> ``b"#K,19,OK*47\\r\\n"``."""
    if (problem := _field_problem(seq, kind, value)) is not None:
        raise ValueError(problem[1])
    body = f"K,{seq},{kind},{value}" if value else f"K,{seq},{kind}"
    return f"#{body}*{kiosk_checksum(body)}\r\n".encode("ascii")


# ---- framing -----------------------------------------------------------------------------------


def _is_cr(byte: int) -> bool:
    return byte & 0x7F == 0x0D  # CR is 0x8D on a 7E1 line read as 8N1


class LineFramer:
    """Cut a byte stream into lines at LF (a CR before the LF is dropped), with a bounded buffer.

    :meth:`feed` returns complete lines without CR/LF, skipping empty ones. A line longer than
    ``max_line`` yields one ``FrameError("overflow")`` carrying its first ``max_line + 1`` bytes;
    the rest of that line is discarded up to the next LF, after which framing resumes. The
    result does not depend on how the stream is chunked. ``dropped_bytes`` counts bytes of
    overflowed lines.
    """

    def __init__(self, max_line: int = 128) -> None:
        if max_line < 1:
            raise ValueError("max_line must be >= 1")
        self.max_line = max_line
        self.dropped_bytes = 0
        self._buf = bytearray()
        self._discarding = False

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished line; never more than ``max_line + 1``."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget any partial line (e.g. after reopening the port)."""
        self._buf.clear()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | FrameError]:
        out: list[bytes | FrameError] = []
        limit = self.max_line + 1  # room for a CR that may turn out to precede the LF
        start, size = 0, len(data)
        while start < size:
            newline = data.find(b"\n", start)
            end = size if newline < 0 else newline
            segment = data[start:end]
            if self._discarding:
                self.dropped_bytes += len(segment)
                self._discarding = newline < 0
            elif len(self._buf) + len(segment) > limit:
                self._overflow(out, segment)
                self._discarding = newline < 0
            elif newline < 0:
                self._buf += segment
            else:
                line = bytes(self._buf) + segment
                self._buf.clear()
                if line and _is_cr(line[-1]):
                    line = line[:-1]
                if len(line) > self.max_line:
                    self._buf += line  # exactly max_line + 1 bytes, no CR: still an overflow
                    self._overflow(out, b"")
                elif line:
                    out.append(line)
            if newline < 0:
                break
            start = newline + 1
        return out

    def _overflow(self, out: list[bytes | FrameError], segment: bytes) -> None:
        head = bytes(self._buf) + segment[: self.max_line + 1 - len(self._buf)]
        self.dropped_bytes += len(self._buf) + len(segment)
        self._buf.clear()
        out.append(FrameError("overflow", head, f"line longer than {self.max_line} bytes"))
