"""What every scale decoder returns, and the byte and value rules they share. Pure.

:class:`WeightReading`, :class:`ScaleStatus`, :class:`KioskFrame` and :class:`FrameError` are the
items a decoder's ``feed`` returns; the type names (:data:`ProtocolId`, :data:`FrameReason` ...)
are the vocabulary of docs/protocol.md §1. The helpers turn a frame's characters into integer
grams and strip 7E1 parity (docs/protocol.md §1.5) the same way for every format.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final, Literal, get_args

from wastebank.errors import BadInput

WeightStatus = Literal["stable", "unstable", "overload", "unknown"]
"""``unknown``: the format has no stability flag (see ``gateway.weighing.StabilityDetector``).
``overload`` only comes from the original :func:`parse_line`; decoders send :class:`ScaleStatus`."""
WeightMode = Literal["gross", "net", "tare"]
StatusKind = Literal["overload", "underload", "error", "busy"]
KioskKind = Literal["CARD", "CAT", "OK", "CANCEL"]
FrameReason = Literal[
    "empty", "bad_format", "bad_value", "checksum", "overflow", "parity", "unit", "mismatch"
]
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
MAX_LINE: Final = 128
"""Longest CR LF line a decoder accepts (without the terminator)."""
MAX_BUFFER: Final = 256
"""No decoder ever holds more than this many bytes of an unfinished frame."""

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

NUM: Final = r"[0-9]{1,9}(?:\.[0-9]{0,6})?|\.[0-9]{1,6}"
"""An unsigned decimal as scales print it: ``12``, ``12.``, ``12.34``, ``.5``."""

NUMBER_RE: Final = re.compile(rf" *(?P<sign>[+-]?) *(?P<num>{NUM}) *")


class FrameError(BadInput, ValueError):
    """A frame (or part of the stream) that is not valid.

    ``reason`` is a short machine id for counting rejects: ``empty``, ``bad_format``,
    ``bad_value``, ``checksum``, ``overflow``, ``parity``, ``unit``, or ``mismatch``
    (auto-detection: a frame the decided decoder reads but the decision does not fit,
    docs/protocol.md §1.7). ``raw`` holds the offending bytes as received (at most
    ``max_line + 1`` bytes for ``overflow``).
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


def seven_bit(
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
    return seven_bit(line)


def ascii_text(seven: bytes, raw: bytes) -> str:
    try:
        return seven.decode("ascii")
    except UnicodeDecodeError:  # only a binary position can still hold a byte >= 0x80
        raise FrameError("bad_format", raw, "not ASCII") from None


# ---- values ------------------------------------------------------------------------------------


def _round_half_away(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_grams(value: Decimal, unit: str, raw: bytes) -> int:
    """``value`` in ``unit`` (kg, g, lb; any case) as integer grams, rounded half away from 0."""
    factor = _UNIT_GRAMS.get(unit.lower())
    if factor is None:
        raise FrameError("unit", raw, f"unit {unit!r}")
    if not value.is_finite() or abs(value) > _MAX_VALUE:
        raise FrameError("bad_value", raw, "weight out of range")
    return _round_half_away(value * factor)


def signed(sign: str, number: str) -> Decimal:
    """A regex-checked decimal (``12``, ``12.``, ``.5``) with its sign."""
    value = Decimal(number)
    return -value if sign == "-" else value


def xor(data: bytes) -> int:
    checksum = 0
    for b in data:
        checksum ^= b
    return checksum
