"""Scale and kiosk serial protocols: bytes in, typed readings out. Pure: no I/O, no clock.

Every weighing indicator a waste bank owns speaks one of the formats of docs/protocol.md §1
(Yaohua ``yh_stx``/``yh_rev``/``yh_fwd``/``a12e_chk``/``a12_ww``, A&D ``and_std``, the
``gs_nt`` "ST,GS," variant, CAS ``cas22``, ``toledo_cont``, Mettler ``mtsics``, ``ohaus`` and
DIY ``diy_hx711``). :func:`decoder_for` returns one :class:`ScaleDecoder` per protocol: it frames
the byte stream its own way (STX…ETX, CR LF, ``=``, STX…CR), keeps a bounded buffer, drops the
partial frame after (re)opening, and turns each frame into

* :class:`WeightReading` (integer grams; ``status`` ``"unknown"`` when the format has no
  stability flag), or
* :class:`ScaleStatus` (overload, underload, device error, busy: never a weight), or
* :class:`KioskFrame` (the kiosk box's ``#K,...*XX`` lines, on every CR LF format), or
* :class:`FrameError` (a typed reject; it is returned, never raised, by ``feed``).

``decoder_for("auto")`` returns an :class:`AutoDetector` that works out the protocol from the
stream itself. Bytes from a 7E1 device read as 8N1 carry the parity bit in bit 7; every decoder
checks and strips it.

The first module-level API (:func:`parse_line`, :class:`LineFramer`) is the original
"ST,GS," + kiosk path. Nothing here encodes: the simulators write their frames with code of their
own (``firmware_sim.encoders``), so the two sides are checked apart (tests/data/golden/).
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final, Literal, Protocol, get_args

from wastebank.messages import CODE_PATTERN

WeightStatus = Literal["stable", "unstable", "overload", "unknown"]
"""``unknown``: the format has no stability flag (see ``gateway.weighing.StabilityDetector``).
``overload`` only comes from the original :func:`parse_line`; decoders send :class:`ScaleStatus`."""
WeightMode = Literal["gross", "net", "tare"]
StatusKind = Literal["overload", "underload", "error", "busy"]
KioskKind = Literal["CARD", "CAT", "OK", "CANCEL"]
FrameReason = Literal["empty", "bad_format", "bad_value", "checksum", "overflow", "parity", "unit"]
Unit = Literal["kg", "g", "lb"]
ToledoUnits = Literal["fairbanks", "liden"]
ProtocolId = Literal[
    "yh_stx",
    "yh_rev",
    "yh_fwd",
    "a12e_chk",
    "a12_ww",
    "and_std",
    "gs_nt",
    "cas22",
    "toledo_cont",
    "mtsics",
    "ohaus",
    "diy_hx711",
]

PROTOCOLS: Final[tuple[ProtocolId, ...]] = get_args(ProtocolId)
"""Every concrete protocol id; :func:`decoder_for` also takes ``"kiosk"`` and ``"auto"``."""
KIOSK_KINDS: Final[tuple[KioskKind, ...]] = get_args(KioskKind)
_KIND_BY_NAME: Final[dict[str, KioskKind]] = {kind: kind for kind in KIOSK_KINDS}
SEQ_MAX: Final = 65535
DIVISION_G: Final = 10
"""The kiosk indicator's display division (0.01 kg, docs/protocol.md §1.2)."""
MAX_LINE: Final = 128
"""Longest CR LF line a decoder accepts (without the terminator)."""
MAX_BUFFER: Final = 256
"""No decoder ever holds more than this many bytes of an unfinished frame."""
FRAMES_NEEDED: Final = 4
"""Consecutive valid weight frames the :class:`AutoDetector` needs before it decides."""

DATA_WIDTH: Final = (8, 11)
"""Characters between the header comma and the unit (sign, digits, point, blanks): 8 in
``ST,GS,+0012.34kg``, 11 in A&D's ``ST,+00012.34  g``. A line that lost a byte is rejected."""

STX: Final = 0x02
ETX: Final = 0x03
CR: Final = 0x0D
LF: Final = 0x0A
EQUALS: Final = 0x3D

_UNIT_GRAMS: Final[dict[str, Decimal]] = {
    "kg": Decimal(1000),
    "g": Decimal(1),
    "lb": Decimal("453.59237"),
}
_MAX_VALUE: Final = Decimal(10) ** 9
"""Largest magnitude accepted in a frame's own unit; anything bigger is garbage."""
_HEADER_STATUS: Final[dict[str, WeightStatus]] = {
    "ST": "stable",
    "US": "unstable",
    "OL": "overload",
}
_MODE_CODES: Final[dict[str, WeightMode]] = {"GS": "gross", "NT": "net", "TR": "tare"}

_NUM: Final = r"[0-9]{1,9}(?:\.[0-9]{0,6})?|\.[0-9]{1,6}"
"""An unsigned decimal as scales print it: ``12``, ``12.``, ``12.34``, ``.5``."""

# Header, optional second header (GS/NT/TR = the "ST,GS," variant; LO/OK/HI/-- = A&D comparator),
# data (sign, digits, point, blanks; E for A&D's OL,+9999999E+19), unit, trailing blanks.
_WEIGHT_RE: Final = re.compile(
    r"(?P<head>ST|US|OL|QT),(?:(?P<head2>GS|NT|TR|LO|OK|HI|--),)?"
    r"(?P<data>[ 0-9.E+-]*?)(?P<unit>[A-Za-z]*) *"
)
_NUMBER_RE: Final = re.compile(rf" *(?P<sign>[+-]?) *(?P<num>{_NUM}) *")
_KIOSK_RE: Final = re.compile(r"#(?P<body>[^*]*)\*(?P<checksum>[0-9A-Fa-f]{2})")
_SEQ_RE: Final = re.compile(r"0|[1-9][0-9]{0,4}")
_CARD_RE: Final = re.compile(r"[0-9A-F]{8,20}")
_CODE_RE: Final = re.compile(CODE_PATTERN)


class FrameError(ValueError):
    """A frame (or part of the stream) that is not valid.

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
    """One weight frame. ``raw`` is the frame with any 7E1 parity bit removed.

    ``grams`` is None only for the original :func:`parse_line`'s ``overload`` readings.
    ``tare_g`` is the tare the frame itself reports (Toledo's tare field), else None; tare
    frames (``TR``, ``wt``, MT-SICS ``T S``) are readings with ``mode="tare"``. ``at_zero`` is the
    indicator's centre-of-zero flag where the format has one (CAS lamp bit 0).
    ``computed_stability`` is True when ``status`` was worked out by a ``StabilityDetector``
    because the format has no flag.
    """

    status: WeightStatus
    mode: WeightMode
    grams: int | None
    raw: bytes
    protocol: str = "gs_nt"
    tare_g: int | None = None
    at_zero: bool | None = None
    computed_stability: bool = False

    @property
    def stable(self) -> bool:
        """True only for a stable reading (device flag or computed); False when unknown."""
        return self.status == "stable"

    @property
    def device_stable(self) -> bool | None:
        """The device's own stability flag; None when the format has none."""
        if self.computed_stability or self.status == "unknown":
            return None
        return self.status == "stable"


@dataclass(frozen=True, slots=True)
class ScaleStatus:
    """A frame that carries no weight: overload, underload, a device error or "busy".

    ``code`` is the device's own word for it (``OL``, ``LO``, ``S +``, ``S I``, ``ES``…).
    """

    kind: StatusKind
    raw: bytes
    protocol: str
    code: str = ""


@dataclass(frozen=True, slots=True)
class KioskFrame:
    """One kiosk event: a member card, a waste category, confirm (OK) or CANCEL."""

    seq: int
    kind: KioskKind
    value: str
    raw: bytes


Parsed = WeightReading | ScaleStatus | KioskFrame
Decoded = WeightReading | ScaleStatus | KioskFrame | FrameError


# ---- parity ------------------------------------------------------------------------------------


def _seven_bit(
    frame: bytes, *, binary: Collection[int] = (), own_parity: Collection[int] = ()
) -> bytes:
    """The frame without 7E1 parity bits, or :class:`FrameError` ``parity``.

    If no text byte has bit 7 set the frame is plain 8N1 text. Otherwise every text byte must
    have an even number of 1-bits (bit 7 = the parity of the low 7 bits), and bit 7 is removed.
    ``binary`` positions hold binary data (CAS lamp byte): not checked, left as they are.
    ``own_parity`` positions (Toledo status words, checksum) carry their own parity bit: checked
    whenever their bit 7 is set or the frame is 7E1, and masked.
    """
    if not binary and not own_parity and max(frame, default=0) < 0x80:
        return frame
    text = [b for i, b in enumerate(frame) if i not in binary and i not in own_parity]
    high = any(b & 0x80 for b in text)
    if high and any(b.bit_count() % 2 for b in text):
        raise FrameError("parity", frame, "bit 7 set but not even parity")
    for i in own_parity:
        if i < len(frame) and (high or frame[i] & 0x80) and frame[i].bit_count() % 2:
            raise FrameError("parity", frame, f"byte {i} has odd parity")
    return bytes(b if i in binary else b & 0x7F for i, b in enumerate(frame))


def _strip_parity(line: bytes) -> bytes:
    return _seven_bit(line)


def _ascii(seven: bytes, raw: bytes) -> str:
    try:
        return seven.decode("ascii")
    except UnicodeDecodeError:  # only a binary position can still hold a byte >= 0x80
        raise FrameError("bad_format", raw, "not ASCII") from None


# ---- values ------------------------------------------------------------------------------------


def _round_half_away(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _to_grams(value: Decimal, unit: str, raw: bytes) -> int:
    """``value`` in ``unit`` (kg, g, lb; any case) as integer grams, rounded half away from 0."""
    factor = _UNIT_GRAMS.get(unit.lower())
    if factor is None:
        raise FrameError("unit", raw, f"unit {unit!r}")
    if not value.is_finite() or abs(value) > _MAX_VALUE:
        raise FrameError("bad_value", raw, "weight out of range")
    return _round_half_away(value * factor)


def _signed(sign: str, number: str) -> Decimal:
    """A regex-checked decimal (``12``, ``12.``, ``.5``) with its sign."""
    value = Decimal(number)
    return -value if sign == "-" else value


def _xor(data: bytes) -> int:
    checksum = 0
    for b in data:
        checksum ^= b
    return checksum


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


def toledo_checksum(frame: bytes) -> int:
    """Toledo continuous checksum: two's complement of the 7-bit sum of STX … CR, in 7 bits."""
    return -sum(b & 0x7F for b in frame) & 0x7F


# ---- the original line parser (ST,GS, variant, A&D standard, kiosk) ----------------------------


@dataclass(frozen=True, slots=True)
class _AdLine:
    status: WeightStatus
    mode: WeightMode
    grams: int | None
    negative: bool
    protocol: Literal["gs_nt", "and_std"]


def parse_line(line: bytes) -> WeightReading | KioskFrame:
    """Parse one line (without CR/LF) into a weight reading or a kiosk frame.

    The original "ST,GS," + A&D + kiosk parser; ``OL`` lines come back as ``overload``
    readings with ``grams=None``. Raises :class:`FrameError` for anything else; never another
    exception.
    """
    if not line:
        raise FrameError("empty", line)
    text_bytes = _strip_parity(line)
    text = _ascii(text_bytes, line)
    if text.startswith("#"):
        return _parse_kiosk(text, text_bytes, line)
    return _parse_weight(text, text_bytes, line)


def _ad_line(text: str, line: bytes) -> _AdLine:
    match = _WEIGHT_RE.fullmatch(text)
    if match is None:
        raise FrameError("bad_format", line)
    head, head2 = match["head"], match["head2"]
    unit = match["unit"].lower()
    if head == "QT":
        raise FrameError("unit", line, "count (QT) is not a weight")
    protocol: Literal["gs_nt", "and_std"] = "gs_nt" if head2 in _MODE_CODES else "and_std"
    mode = _MODE_CODES.get(head2 or "", "gross")
    status = _HEADER_STATUS[head]
    data = match["data"]
    if status == "overload":
        return _AdLine(status, mode, None, data.lstrip(" ").startswith("-"), protocol)
    number = _NUMBER_RE.fullmatch(data)
    if number is None or not unit:
        raise FrameError("bad_format", line, "weight field")
    if not DATA_WIDTH[0] <= len(data) <= DATA_WIDTH[1]:  # e.g. a byte lost on the line
        raise FrameError("bad_format", line, f"weight field is {len(data)} characters")
    grams = _to_grams(_signed(number["sign"], number["num"]), match["unit"], line)
    return _AdLine(status, mode, grams, number["sign"] == "-", protocol)


def _parse_weight(text: str, raw: bytes, line: bytes) -> WeightReading:
    ad = _ad_line(text, line)
    return WeightReading(ad.status, ad.mode, ad.grams, raw, ad.protocol)


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


# ---- line framing ------------------------------------------------------------------------------


def _is_cr(byte: int) -> bool:
    return byte & 0x7F == CR  # CR is 0x8D on a 7E1 line read as 8N1


class LineFramer:
    """Cut a byte stream into lines at LF (a CR before the LF is dropped), with a bounded buffer.

    :meth:`feed` returns complete lines without CR/LF, skipping empty ones. A line longer than
    ``max_line`` yields one ``FrameError("overflow")`` carrying its first ``max_line + 1`` bytes;
    the rest of that line is discarded up to the next LF, after which framing resumes. The
    result does not depend on how the stream is chunked. ``dropped_bytes`` counts bytes of
    overflowed lines.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
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


# ---- decoders: the common interface ------------------------------------------------------------


class ScaleDecoder(Protocol):
    """Bytes from one serial port in, typed items out; one implementation per protocol.

    ``feed`` never raises: a bad frame comes back as a :class:`FrameError` item. Counters:
    ``parsed`` (frames that became a reading, status or kiosk frame), ``rejected`` (per
    reason; one per returned :class:`FrameError`), ``dropped_bytes`` (bytes outside any frame:
    the partial frame after opening, garbage between frames, the discarded tail of an overlong
    line) and ``partial_frames`` (partial frames dropped after opening). ``reset`` is for a
    reopened port: it forgets the buffer and drops the next partial frame again. ``protocol``
    is the protocol id; None only for an :class:`AutoDetector` that has not decided yet.
    """

    @property
    def protocol(self) -> str | None: ...
    @property
    def parsed(self) -> int: ...
    @property
    def rejected(self) -> Mapping[FrameReason, int]: ...
    @property
    def dropped_bytes(self) -> int: ...
    @property
    def partial_frames(self) -> int: ...
    @property
    def buffered(self) -> int: ...
    def feed(self, data: bytes) -> list[Decoded]: ...
    def reset(self) -> None: ...


class _Decoder(ABC):
    """Counters, the partial-frame rule and the frame -> item loop; subclasses frame and parse."""

    protocol: str = ""

    def __init__(self) -> None:
        self.parsed = 0
        self.rejected: Counter[FrameReason] = Counter()
        self.dropped_bytes = 0
        self.partial_frames = 0
        self._synced = False
        self._skipped_content = False

    @property
    @abstractmethod
    def buffered(self) -> int: ...

    def reset(self) -> None:
        self._synced = False
        self._skipped_content = False
        self._clear_buffer()

    def feed(self, data: bytes) -> list[Decoded]:
        out: list[Decoded] = []
        for piece in self._split(data):
            item: Decoded
            if isinstance(piece, FrameError):
                item = piece
            else:
                try:
                    item = self.parse_frame(piece)
                except FrameError as exc:
                    item = exc
            if isinstance(item, FrameError):
                self.rejected[item.reason] += 1
            else:
                self.parsed += 1
            out.append(item)
        return out

    @abstractmethod
    def parse_frame(self, frame: bytes) -> Parsed:
        """One delimited frame as this decoder frames it; raises :class:`FrameError`."""

    @abstractmethod
    def _split(self, data: bytes) -> list[bytes | FrameError]:
        """Frames (and framing errors) completed by ``data``; bytes outside frames skipped."""

    @abstractmethod
    def _clear_buffer(self) -> None: ...

    def _skip(self, byte: int) -> None:
        """A byte outside any frame."""
        self.dropped_bytes += 1
        if not self._synced and byte & 0x7F not in (CR, LF):
            self._skipped_content = True

    def _sync(self) -> None:
        """The first frame start after (re)opening: what came before was a partial frame."""
        if not self._synced:
            self._synced = True
            if self._skipped_content:
                self.partial_frames += 1
            self._skipped_content = False


class _ByteDecoder(_Decoder):
    """A decoder that frames raw bytes itself (STX…ETX, ``=``, STX…CR) in its own buffer."""

    def __init__(self) -> None:
        super().__init__()
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _clear_buffer(self) -> None:
        self._buf.clear()


# ---- CR LF line formats ------------------------------------------------------------------------


class _LineDecoder(_Decoder):
    """CR LF (or LF) lines; the first line after (re)opening is dropped as partial unless it
    starts with ``#`` (a kiosk frame, which its checksum protects).

    Lines starting with ``#`` are kiosk frames (docs/protocol.md §2) on every line format.
    """

    def __init__(self) -> None:
        super().__init__()
        self._framer = LineFramer(MAX_LINE)
        self._first_byte = True

    def reset(self) -> None:
        super().reset()
        self._first_byte = True

    @property
    def buffered(self) -> int:
        return self._framer.buffered

    def _clear_buffer(self) -> None:
        self._framer.reset()

    def _split(self, data: bytes) -> list[bytes | FrameError]:
        if not self._synced and data and self._first_byte:
            # The very first byte after (re)opening: if it is '#', a whole kiosk frame begins
            # here (it carries a checksum, so a truncated one could never pass): keep it. A card
            # tap right after the port opens must not be lost; a partial weight line is dropped
            # instead (the next arrives within 100 ms).
            self._first_byte = False
            if data[0] & 0x7F == ord("#"):
                self._sync()
        if not self._synced:
            newline = data.find(b"\n")
            head = data if newline < 0 else data[: newline + 1]
            for byte in head:
                self._skip(byte)
            if newline < 0:
                return []
            self._sync()
            data = data[newline + 1 :]
        before = self._framer.dropped_bytes
        pieces = self._framer.feed(data)
        self.dropped_bytes += self._framer.dropped_bytes - before
        return pieces

    def parse_frame(self, frame: bytes) -> Parsed:
        """One line without CR LF."""
        if not frame:
            raise FrameError("empty", frame)
        seven = _seven_bit(frame, binary=self._binary_positions(frame))
        if seven[:1] == b"#":
            return _parse_kiosk(_ascii(seven, frame), seven, frame)
        return self._parse_text(seven, frame)

    def _binary_positions(self, frame: bytes) -> Collection[int]:
        return ()

    @abstractmethod
    def _parse_text(self, seven: bytes, frame: bytes) -> Parsed:
        """A line without CR LF: ``seven`` with parity bits removed, ``frame`` as received."""


def _ad_item(ad: _AdLine, raw: bytes) -> WeightReading | ScaleStatus:
    if ad.status == "overload":
        return ScaleStatus("underload" if ad.negative else "overload", raw, ad.protocol, "OL")
    return WeightReading(ad.status, ad.mode, ad.grams, raw, ad.protocol)


class GsNtDecoder(_LineDecoder):
    """``ST,GS,+0012.34kg``: ST/US/OL + GS/NT/TR; also the kiosk line (``"kiosk"``)."""

    protocol = "gs_nt"

    def _parse_text(self, seven: bytes, frame: bytes) -> Parsed:
        ad = _ad_line(_ascii(seven, frame), frame)
        if ad.protocol != "gs_nt":
            raise FrameError("bad_format", frame, "no GS/NT/TR header (an and_std line?)")
        return _ad_item(ad, seven)


class AndStdDecoder(_LineDecoder):
    """A&D standard ``ST,+00012.34  g``: ST/US/OL (QT rejected as ``unit``), comparator ok."""

    protocol = "and_std"

    def _parse_text(self, seven: bytes, frame: bytes) -> Parsed:
        ad = _ad_line(_ascii(seven, frame), frame)
        if ad.protocol != "and_std":
            raise FrameError("bad_format", frame, "GS/NT/TR header (a gs_nt line?)")
        return _ad_item(ad, seven)


_CAS22_RE: Final = re.compile(
    r"(?P<head>ST|US|OL),(?P<head2>GS|NT|TR),[\x20-\x7e]\?,"  # the lamp byte is replaced by "?"
    r"(?P<data>[ 0-9.+-]{8}) (?P<unit>[ A-Za-z]{2})"
)
_CAS_LAMP: Final = 7
_LAMP_STABLE: Final = 0x40
_LAMP_ZERO: Final = 0x01


class Cas22Decoder(_LineDecoder):
    """CAS 22 bytes: ``ST,GS,<ID><LAMP>,00013.50 kg`` CR LF; the lamp byte is binary.

    Stable only when the header says ``ST`` *and* lamp bit 6 is set; lamp bit 0 (centre of zero)
    becomes ``at_zero``. The gross/tare lamps (bits 2, 1) repeat the GS/NT header, which wins.
    """

    protocol = "cas22"

    def _binary_positions(self, frame: bytes) -> Collection[int]:
        return (_CAS_LAMP,) if len(frame) > _CAS_LAMP and frame[0] & 0x7F != ord("#") else ()

    def _parse_text(self, seven: bytes, frame: bytes) -> Parsed:
        if len(seven) != 20:
            raise FrameError("bad_format", frame, f"{len(seven) + 2} bytes, not 22")
        lamp = seven[_CAS_LAMP]
        match = _CAS22_RE.fullmatch(
            _ascii(seven[:_CAS_LAMP] + b"?" + seven[_CAS_LAMP + 1 :], frame)
        )
        if match is None:
            raise FrameError("bad_format", frame)
        data = match["data"]
        if match["head"] == "OL":
            kind: StatusKind = "underload" if data.lstrip(" ").startswith("-") else "overload"
            return ScaleStatus(kind, seven, self.protocol, "OL")
        number = _NUMBER_RE.fullmatch(data)
        unit = match["unit"].strip()
        if number is None or not unit:
            raise FrameError("bad_format", frame, "weight field")
        grams = _to_grams(_signed(number["sign"], number["num"]), unit, frame)
        stable = match["head"] == "ST" and bool(lamp & _LAMP_STABLE)
        return WeightReading(
            "stable" if stable else "unstable",
            _MODE_CODES[match["head2"]],
            grams,
            seven,
            self.protocol,
            at_zero=bool(lamp & _LAMP_ZERO),
        )


_A12E_WEIGHT_RE: Final = re.compile(
    r"W(?P<mode>[GN])(?P<field> *(?P<sign>-?) *(?P<num>[0-9]+(?:\.[0-9]+)?) ?)(?P<unit>kg|lb)"
)
_A12E_LIMITS: Final[dict[str, StatusKind]] = {"OL": "overload", "LO": "underload"}


class A12eChkDecoder(_LineDecoder):
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
        if _xor(seven[:11]) != checksum:
            raise FrameError("checksum", frame)
        text = _ascii(seven[:11], frame)
        if text[:9] == " " * 9 and text[9:] in _A12E_LIMITS:
            return ScaleStatus(_A12E_LIMITS[text[9:]], seven, self.protocol, text[9:])
        match = _A12E_WEIGHT_RE.fullmatch(text)
        if match is None or len(match["field"]) != 7:
            raise FrameError("bad_format", frame)
        grams = _to_grams(_signed(match["sign"], match["num"]), match["unit"], frame)
        mode: WeightMode = "gross" if match["mode"] == "G" else "net"
        return WeightReading("unknown", mode, grams, seven, self.protocol)


_A12_WW_RE: Final = re.compile(
    r"w(?P<mode>[wnt])(?P<sign>-?)(?P<int>[0-9]{1,8})(?:\.(?P<frac>[0-9]{1,6}))?(?P<unit>kg|lb)",
    re.IGNORECASE,
)
_A12_MODES: Final[dict[str, WeightMode]] = {"w": "gross", "n": "net", "t": "tare"}


class A12WwDecoder(_LineDecoder):
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
        match = _A12_WW_RE.fullmatch(_ascii(seven, frame))
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
        value = _signed(match["sign"], f"{match['int']}.{frac}" if frac else match["int"])
        grams = _to_grams(value, match["unit"], frame)
        self._decimals = len(frac)
        if not negative:
            self._int_digits = digits
        mode = _A12_MODES[match["mode"].lower()]
        return WeightReading("unknown", mode, grams, seven, self.protocol)


_MTSICS_WEIGHT_RE: Final = re.compile(
    rf"(?P<cmd>[ST]) (?P<state>[SD]) *(?P<sign>-?) *(?P<num>{_NUM}) +(?P<unit>[A-Za-z]{{1,5}})"
)
_MTSICS_STATUS: Final[dict[str, StatusKind]] = {
    "S I": "busy",
    "S +": "overload",
    "S -": "underload",
    "ES": "error",
    "ET": "error",
    "EL": "error",
}


class MtSicsDecoder(_LineDecoder):
    """Mettler Toledo MT-SICS: ``S S     100.00 g`` stable, ``S D …`` dynamic, ``T S …`` tare.

    ``S I`` busy, ``S +``/``S -`` over/underload, ``ES``/``ET``/``EL`` errors.
    """

    protocol = "mtsics"

    def _parse_text(self, seven: bytes, frame: bytes) -> Parsed:
        text = _ascii(seven, frame).rstrip(" ")
        if text in _MTSICS_STATUS:
            return ScaleStatus(_MTSICS_STATUS[text], seven, self.protocol, text)
        match = _MTSICS_WEIGHT_RE.fullmatch(text)
        if match is None or (match["cmd"] == "T" and match["state"] != "S"):
            raise FrameError("bad_format", frame)
        grams = _to_grams(_signed(match["sign"], match["num"]), match["unit"], frame)
        status: WeightStatus = "stable" if match["state"] == "S" else "unstable"
        mode: WeightMode = "tare" if match["cmd"] == "T" else "gross"
        return WeightReading(status, mode, grams, seven, self.protocol)


_OHAUS_RE: Final = re.compile(
    rf"(?P<pad> *(?P<sign>-?) *)(?P<num>{_NUM}) (?P<unit>[A-Za-z]{{1,5}})"
    r" *(?P<unstable>\?)? *(?P<legend>G|NET|T)? *"
)
_OHAUS_FIELD: Final = 9
"""The weight is right-justified: polarity + blank + 7 (Defender) or 10 characters (Explorer)."""
_OHAUS_LEGENDS: Final[dict[str, WeightMode]] = {
    "": "gross",
    "G": "gross",
    "NET": "net",
    "T": "tare",
}


class OhausDecoder(_LineDecoder):
    """Ohaus print/continuous ``     192.21 g   ``: ``?`` = unstable, legend G/NET/T.

    The weight field must be right-justified (at least 9 characters up to the last digit);
    ``ES`` lines (Ohaus repeats them after a print) come back as ``ScaleStatus("error")``.
    """

    protocol = "ohaus"

    def _parse_text(self, seven: bytes, frame: bytes) -> Parsed:
        text = _ascii(seven, frame)
        if text.strip(" ") == "ES":
            return ScaleStatus("error", seven, self.protocol, "ES")
        match = _OHAUS_RE.fullmatch(text)
        if match is None or len(match["pad"]) + len(match["num"]) < _OHAUS_FIELD:
            raise FrameError("bad_format", frame)
        grams = _to_grams(_signed(match["sign"], match["num"]), match["unit"], frame)
        status: WeightStatus = "unstable" if match["unstable"] else "stable"
        mode = _OHAUS_LEGENDS[match["legend"] or ""]
        return WeightReading(status, mode, grams, seven, self.protocol)


_SNUM: Final = rf"[+-]?(?:{_NUM})"
_HX711_PATTERNS: Final = (
    re.compile(rf"Load_cell output val: *(?P<num>{_SNUM})"),
    re.compile(rf"one reading:\s*{_SNUM}\s*\|\s*average:\s*(?P<num>{_SNUM})"),
    re.compile(rf"(?P<num>{_SNUM}) *(?P<unit>kg|g|lb)", re.IGNORECASE),
    re.compile(rf"(?P<num>{_SNUM})"),
)
_HX711_JSON_KEYS: Final[tuple[tuple[str, Unit | None], ...]] = (
    ("weight", None),
    ("weight_kg", "kg"),
    ("weight_g", "g"),
    ("weight_lb", "lb"),
    ("kg", "kg"),
    ("g", "g"),
    ("lb", "lb"),
)


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not a weight")


class Hx711Decoder(_LineDecoder):
    """DIY HX711 sketches: ``Load_cell output val: 1234.56``, ``one reading:\\t12.3\\t| average:\\t
    12.4`` (the average is used), ``01230KG``, a plain number, or JSON ``{"weight": 1.234}``
    (optional ``"unit"``; also ``weight_kg``/``kg``/``weight_g``/``g``…).

    Numbers without a unit are in ``unit`` (default kg). No flags at all.
    """

    protocol = "diy_hx711"

    def __init__(self, unit: Unit = "kg") -> None:
        super().__init__()
        self.unit: Unit = unit

    def _parse_text(self, seven: bytes, frame: bytes) -> Parsed:
        text = _ascii(seven, frame).strip()
        if text.startswith("{"):
            value, unit = self._json(text, frame)
        else:
            for pattern in _HX711_PATTERNS:
                if (match := pattern.fullmatch(text)) is not None:
                    break
            else:
                raise FrameError("bad_format", frame)
            groups = match.groupdict()
            value, unit = Decimal(groups["num"]), groups.get("unit") or self.unit
        grams = _to_grams(value, unit, frame)
        return WeightReading("unknown", "gross", grams, seven, self.protocol)

    def _json(self, text: str, frame: bytes) -> tuple[Decimal, str]:
        try:
            obj = json.loads(
                text, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_constants
            )
        except ValueError:
            raise FrameError("bad_format", frame, "JSON") from None
        if not isinstance(obj, dict):
            raise FrameError("bad_format", frame, "JSON is not an object")
        for key, key_unit in _HX711_JSON_KEYS:
            if key not in obj:
                continue
            value, unit = obj[key], key_unit or obj.get("unit", self.unit)
            if not isinstance(value, Decimal) or not isinstance(unit, str):
                raise FrameError("bad_value", frame, f"JSON {key!r}")
            return value, unit
        raise FrameError("bad_format", frame, "JSON without a weight key")


# ---- Yaohua STX … ETX --------------------------------------------------------------------------

_YH_STX_LEN: Final = 12


class YhStxDecoder(_ByteDecoder):
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
        seven = _seven_bit(frame)
        if len(seven) != _YH_STX_LEN or seven[0] != STX or seven[-1] != ETX:
            raise FrameError("bad_format", frame, f"{len(seven)} bytes, not 12")
        body = seven[1:-1]
        checksum = _yaohua_checksum(body[8:10])
        if checksum is None:
            raise FrameError("bad_format", frame, "checksum characters")
        if _xor(body[:8]) != checksum:
            raise FrameError("checksum", frame)
        sign, digits, places = body[0:1], body[1:7], body[7:8]
        if sign not in (b"+", b"-") or not digits.isdigit() or places not in b"01234":
            raise FrameError("bad_format", frame)
        value = Decimal(int(digits)).scaleb(-int(places))
        grams = _to_grams(-value if sign == b"-" else value, self.unit, frame)
        return WeightReading("unknown", "gross", grams, seven, self.protocol)


# ---- Yaohua "=" streams ------------------------------------------------------------------------

_YH_EQ_LEN: Final = 9
_YH_EQ_VALUE_RE: Final = re.compile(r" *(?P<num>[0-9]+\.?[0-9]*|\.[0-9]+)")


class _YhEqualsDecoder(_ByteDecoder):
    """``=`` + 8 characters, back to back, no CR LF: ``=`` is the only delimiter.

    A frame ends at the next ``=`` (so it is returned when the next one starts) or at a CR/LF
    that some clones append. Sign ``0`` (positive) or ``-``. No stability flag, no unit.
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
        seven = _seven_bit(frame)
        if len(seven) != _YH_EQ_LEN or seven[0] != EQUALS:
            raise FrameError("bad_format", frame, f"{len(seven)} bytes, not 9")
        body = _ascii(seven[1:], frame)
        if self.reverse:
            body = body[::-1]
        sign, rest = body[0], body[1:]
        match = _YH_EQ_VALUE_RE.fullmatch(rest)
        if sign not in "0-" or match is None:
            raise FrameError("bad_format", frame)
        grams = _to_grams(_signed(sign, match["num"]), self.unit, frame)
        return WeightReading("unknown", "gross", grams, seven, self.protocol)


class YhRevDecoder(_YhEqualsDecoder):
    """Yaohua continuous format 1 (reversed): ``=000.3000`` = 3.000, ``=00.1000-`` = -1.00."""

    protocol = "yh_rev"
    reverse = True


class YhFwdDecoder(_YhEqualsDecoder):
    """Yaohua continuous format 2 (forward): ``=0003.000`` = 3.000, ``=-0001.00`` = -1.00."""

    protocol = "yh_fwd"


# ---- Toledo continuous STX … CR [checksum] -----------------------------------------------------

_TOLEDO_LEN: Final = 17
_TOLEDO_STATUS: Final = (1, 2, 3)
_TOLEDO_FIELD_RE: Final = re.compile(rb" *[0-9]*")
SWB_NET: Final = 0x01
SWB_NEGATIVE: Final = 0x02
SWB_OVER: Final = 0x04
SWB_MOTION: Final = 0x08
SWB_KG: Final = 0x10
SWC_LIDEN_LB: Final = 0x01


class ToledoDecoder(_ByteDecoder):
    """Toledo (MT standard) continuous: ``STX SWA SWB SWC wwwwww tttttt CR [CKS]``, 17/18 bytes.

    SWA bits 0-2: decimal position (0-2 no decimals, 3-7 one to five decimals). SWB: bit 0 net,
    bit 1 negative, bit 2 out of range (overload, or underload when negative), bit 3 motion,
    bit 4 kg (1) / lb (0). ``units="fairbanks"`` (Fairbanks, Mettler) reads the unit there and
    takes SWC bits 0-2 = 1 as grams; ``units="liden"`` reads SWC bit 0 (0 kg, 1 lb) instead.
    Bit 7 of the status words is their parity bit.

    The checksum byte (two's complement of the 7-bit sum of STX … CR) is optional: with
    ``checksum=None`` the decoder learns from the first frames whether one follows the CR
    (the byte after CR is STX, or it matches the checksum).
    """

    protocol = "toledo_cont"

    def __init__(self, units: ToledoUnits = "fairbanks", checksum: bool | None = None) -> None:
        super().__init__()
        self.units: ToledoUnits = units
        self.checksum = checksum
        self._configured_checksum = checksum

    def _clear_buffer(self) -> None:
        super()._clear_buffer()
        self.checksum = self._configured_checksum

    def _split(self, data: bytes) -> list[bytes | FrameError]:
        out: list[bytes | FrameError] = []
        buf = self._buf
        for byte in data:
            low = byte & 0x7F
            if len(buf) == _TOLEDO_LEN:  # STX … CR is complete: a checksum or the next STX
                frame = bytes(buf)
                buf.clear()
                if self.checksum is None:
                    self.checksum = self._learn(frame, low)
                if self.checksum is not False:
                    out.append(frame + bytes([byte]))  # parse_frame checks the checksum
                    continue
                out.append(frame)  # no checksum: this byte belongs to what follows
            if low == STX:
                if buf:
                    out.append(FrameError("bad_format", bytes(buf), "truncated: STX before CR"))
                    buf.clear()
                self._sync()
                buf.append(byte)
            elif not buf:
                self._skip(byte)
            else:
                buf.append(byte)
                if len(buf) == _TOLEDO_LEN:
                    if low != CR:
                        out.append(FrameError("bad_format", bytes(buf), "no CR at byte 17"))
                        buf.clear()
                    elif self.checksum is False:
                        out.append(bytes(buf))
                        buf.clear()
        return out

    @staticmethod
    def _learn(frame: bytes, low: int) -> bool | None:
        """Checksum or not, from the byte after CR: False if it is STX and no valid checksum,
        True if it is a valid checksum and not STX; None (undecided) otherwise."""
        matches, is_stx = low == toledo_checksum(frame), low == STX
        if is_stx != matches:
            return matches
        return None

    def parse_frame(self, frame: bytes) -> Parsed:
        """``STX`` … ``CR`` inclusive, plus the checksum byte if there is one."""
        own = _TOLEDO_STATUS + ((_TOLEDO_LEN,) if len(frame) > _TOLEDO_LEN else ())
        seven = _seven_bit(frame, own_parity=own)
        if len(seven) not in (_TOLEDO_LEN, _TOLEDO_LEN + 1) or seven[0] != STX or seven[16] != CR:
            raise FrameError("bad_format", frame, f"{len(seven)} bytes, not 17/18")
        if len(seven) > _TOLEDO_LEN and seven[17] != toledo_checksum(seven[:_TOLEDO_LEN]):
            raise FrameError("checksum", frame)
        swa, swb, swc = seven[1], seven[2], seven[3]
        weight, tare = seven[4:10], seven[10:16]
        if (
            _TOLEDO_FIELD_RE.fullmatch(weight) is None
            or _TOLEDO_FIELD_RE.fullmatch(tare) is None
            or not weight.strip()
        ):
            raise FrameError("bad_format", frame, "weight/tare fields")
        negative = bool(swb & SWB_NEGATIVE)
        if swb & SWB_OVER:
            kind: StatusKind = "underload" if negative else "overload"
            return ScaleStatus(kind, seven, self.protocol, "SWB.2")
        unit = self._unit(swb, swc, frame)
        places = max(0, (swa & 0x07) - 2)
        value = Decimal(int(weight)).scaleb(-places)
        grams = _to_grams(-value if negative else value, unit, frame)
        tare_g = _to_grams(Decimal(int(tare.strip() or b"0")).scaleb(-places), unit, frame)
        return WeightReading(
            "unstable" if swb & SWB_MOTION else "stable",
            "net" if swb & SWB_NET else "gross",
            grams,
            seven,
            self.protocol,
            tare_g=tare_g,
        )

    def _unit(self, swb: int, swc: int, frame: bytes) -> Unit:
        if self.units == "liden":
            return "lb" if swc & SWC_LIDEN_LB else "kg"
        extended = swc & 0x07
        if extended == 1:
            return "g"
        if extended:
            raise FrameError("unit", frame, f"SWC unit code {extended}")
        return "kg" if swb & SWB_KG else "lb"


# ---- choosing a decoder ------------------------------------------------------------------------

_FACTORIES: Final[dict[str, Callable[[Unit, ToledoUnits], _Decoder]]] = {
    "yh_stx": lambda unit, _: YhStxDecoder(unit),
    "yh_rev": lambda unit, _: YhRevDecoder(unit),
    "yh_fwd": lambda unit, _: YhFwdDecoder(unit),
    "a12e_chk": lambda _, __: A12eChkDecoder(),
    "a12_ww": lambda _, __: A12WwDecoder(),
    "and_std": lambda _, __: AndStdDecoder(),
    "gs_nt": lambda _, __: GsNtDecoder(),
    "cas22": lambda _, __: Cas22Decoder(),
    "toledo_cont": lambda _, units: ToledoDecoder(units),
    "mtsics": lambda _, __: MtSicsDecoder(),
    "ohaus": lambda _, __: OhausDecoder(),
    "diy_hx711": lambda unit, _: Hx711Decoder(unit),
}


def decoder_for(
    protocol: str,
    *,
    unit: Unit = "kg",
    toledo_units: ToledoUnits = "fairbanks",
    frames_needed: int = FRAMES_NEEDED,
) -> ScaleDecoder:
    """A fresh decoder for ``protocol`` (one of :data:`PROTOCOLS`, ``"kiosk"`` or ``"auto"``).

    ``"kiosk"`` is the ``gs_nt`` decoder (every CR LF decoder also reads kiosk frames).
    ``unit`` is the unit of formats that do not send one (Yaohua STX and ``=``, bare HX711
    numbers); ``toledo_units`` picks where ``toledo_cont`` keeps its unit bit;
    ``frames_needed`` is for ``"auto"`` (see :class:`AutoDetector`).
    """
    if protocol == "auto":
        return AutoDetector(frames_needed=frames_needed, unit=unit, toledo_units=toledo_units)
    factory = _FACTORIES.get("gs_nt" if protocol == "kiosk" else protocol)
    if factory is None:
        known = ", ".join((*PROTOCOLS, "kiosk", "auto"))
        raise ValueError(f"unknown scale protocol {protocol!r}; known: {known}")
    return factory(unit, toledo_units)


DETECT_ORDER: Final[tuple[ProtocolId, ...]] = (
    "yh_stx",
    "a12e_chk",
    "toledo_cont",
    "cas22",
    "gs_nt",
    "and_std",
    "mtsics",
    "a12_ww",
    "yh_fwd",
    "yh_rev",
    "ohaus",
    "diy_hx711",
)
"""Candidates of :class:`AutoDetector`, most specific first: this breaks exact ties."""
_YH_PAIR: Final = frozenset({"yh_fwd", "yh_rev"})
DETECT_HISTORY: Final = 64
"""Items each candidate keeps while undecided; the winner's are returned at the decision."""


def _zero_padded(value: str) -> bool:
    return value[:1] == " " or (len(value) > 1 and value[0] == "0" and value[1] != ".")


def _yh_vote(raws: list[bytes], needed: int) -> str | None:
    """Which ``=`` direction the padding supports: the true value is padded at its high end
    (``003.120``); read the wrong way round the padding lands at the low end (``21.3000``)."""
    fwd = rev = 0
    for raw in raws:
        body = raw[1:].decode("ascii", "replace")
        forward, backward = _zero_padded(body[1:]), _zero_padded(body[::-1][1:])
        fwd += forward and not backward
        rev += backward and not forward
    if fwd >= needed and not rev:
        return "yh_fwd"
    if rev >= needed and not fwd:
        return "yh_rev"
    return None


class AutoDetector:
    """Work out a scale's protocol from its byte stream, then hand over to that decoder.

    Every candidate decoder (:data:`DETECT_ORDER`) is fed the same bytes, one at a time, so the
    decision does not depend on how reads chunk the stream. A candidate's *streak* is the number
    of weight frames it parsed since its last reject (status and kiosk frames are neutral).
    Rules, checked after every frame:

    1. only candidates with a streak of at least ``frames_needed`` qualify (so garbage, which
       makes every decoder reject, never decides);
    2. the longest streak wins: a rival that rejected a frame the winner accepted is out;
    3. ``yh_fwd`` and ``yh_rev`` read many frames both ways (``=0003.120`` is 3.120 forward,
       21.3 reversed): a tie between them waits for a frame only one accepts (a negative weight,
       a last digit that is not 0) or for padding evidence (:func:`_yh_vote`);
    4. any other tie goes to the earlier entry of :data:`DETECT_ORDER` (``ohaus`` over
       ``diy_hx711`` for a ``   12.34 g`` line); ``gs_nt``/``and_std`` never tie, they differ
       in the second header.

    Once decided, ``protocol`` is set and ``decoder`` is the winner: ``feed`` returns the items
    it produced while undecided (the last :data:`DETECT_HISTORY`) and from then on passes bytes
    straight through, so nothing beyond the first partial frame is lost.
    """

    def __init__(
        self,
        *,
        frames_needed: int = FRAMES_NEEDED,
        candidates: tuple[str, ...] = DETECT_ORDER,
        unit: Unit = "kg",
        toledo_units: ToledoUnits = "fairbanks",
    ) -> None:
        if frames_needed < 1:
            raise ValueError("frames_needed must be >= 1")
        unknown = [c for c in candidates if c not in _FACTORIES]
        if unknown or not candidates:
            raise ValueError(f"unknown candidates {unknown}")
        self.frames_needed = frames_needed
        self.candidates = candidates
        self.unit: Unit = unit
        self.toledo_units: ToledoUnits = toledo_units
        self.decoder: ScaleDecoder | None = None
        self.sampled_bytes = 0
        self._trials: dict[str, _Decoder] = {}
        self._streak: dict[str, int] = {}
        self._streak_raws: dict[str, deque[bytes]] = {}
        self._history: dict[str, deque[Decoded]] = {}
        self._start()

    def _start(self) -> None:
        self._trials = {c: _FACTORIES[c](self.unit, self.toledo_units) for c in self.candidates}
        self._streak = dict.fromkeys(self.candidates, 0)
        self._streak_raws = {c: deque(maxlen=DETECT_HISTORY) for c in self.candidates}
        self._history = {c: deque(maxlen=DETECT_HISTORY) for c in self.candidates}

    # -- the ScaleDecoder interface --

    @property
    def protocol(self) -> str | None:
        return None if self.decoder is None else self.decoder.protocol

    @property
    def parsed(self) -> int:
        return 0 if self.decoder is None else self.decoder.parsed

    @property
    def rejected(self) -> Mapping[FrameReason, int]:
        return Counter() if self.decoder is None else self.decoder.rejected

    @property
    def dropped_bytes(self) -> int:
        return 0 if self.decoder is None else self.decoder.dropped_bytes

    @property
    def partial_frames(self) -> int:
        return 0 if self.decoder is None else self.decoder.partial_frames

    @property
    def buffered(self) -> int:
        if self.decoder is not None:
            return self.decoder.buffered
        return max(trial.buffered for trial in self._trials.values())

    def reset(self) -> None:
        """After reopening the port: the decided decoder resyncs; an undecided search restarts."""
        if self.decoder is not None:
            self.decoder.reset()
        else:
            self._start()

    def redetect(self) -> None:
        """Forget the decision (e.g. another scale was plugged in) and detect again."""
        self.decoder = None
        self._start()

    def feed(self, data: bytes) -> list[Decoded]:
        if self.decoder is not None:
            return self.decoder.feed(data)
        for index in range(len(data)):
            self.sampled_bytes += 1
            byte = data[index : index + 1]
            emitted = False
            for name, trial in self._trials.items():
                items = trial.feed(byte)
                if items:
                    emitted = True
                    self._record(name, items)
            if emitted and (choice := self._decide()) is not None:
                decoder = self._trials[choice]
                out = list(self._history[choice])
                self.decoder = decoder
                self._trials, self._history, self._streak_raws = {}, {}, {}
                out.extend(decoder.feed(data[index + 1 :]))
                return out
        return []

    # -- internals --

    def _record(self, name: str, items: list[Decoded]) -> None:
        self._history[name].extend(items)
        for item in items:
            if isinstance(item, FrameError):
                self._streak[name] = 0
                self._streak_raws[name].clear()
            elif isinstance(item, WeightReading):
                self._streak[name] += 1
                self._streak_raws[name].append(item.raw)

    def _decide(self) -> str | None:
        qualified = [c for c in self.candidates if self._streak[c] >= self.frames_needed]
        if not qualified:
            return None
        best = max(self._streak[c] for c in qualified)
        top = [c for c in qualified if self._streak[c] == best]
        if _YH_PAIR <= set(top):
            raws = list(self._streak_raws["yh_fwd"])
            vote = _yh_vote(raws, max(1, self.frames_needed // 2))
            if vote is None:
                return None
            top = [c for c in top if c not in _YH_PAIR or c == vote]
        return top[0]
