"""A&D's standard format (``and_std``: ``ST,+00012.34  g``) and its "ST,GS," variant
(``gs_nt``: ``ST,GS,+0012.34kg``, also the kiosk line), docs/protocol.md §1.6.6-7; and
:func:`parse_line`, the original parser of both and of kiosk frames. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from gateway.scale_protocol.frames import (
    NUMBER_RE,
    FrameError,
    KioskFrame,
    Parsed,
    ScaleStatus,
    WeightMode,
    WeightReading,
    WeightStatus,
    ascii_text,
    seven_bit,
    signed,
    to_grams,
)
from gateway.scale_protocol.framing import LineDecoder
from gateway.scale_protocol.kiosk_line import parse_kiosk

DATA_WIDTH: Final = (8, 11)
"""Characters between the header comma and the unit (sign, digits, point, blanks): 8 in
``ST,GS,+0012.34kg``, 11 in A&D's ``ST,+00012.34  g``. A line that lost a byte is rejected."""

_HEADER_STATUS: Final[dict[str, WeightStatus]] = {
    "ST": "stable",
    "US": "unstable",
    "OL": "overload",
}
MODE_CODES: Final[dict[str, WeightMode]] = {"GS": "gross", "NT": "net", "TR": "tare"}


# Header, optional second header (GS/NT/TR = the "ST,GS," variant; LO/OK/HI/-- = A&D comparator),
# data (sign, digits, point, blanks; E for A&D's OL,+9999999E+19), unit, trailing blanks.
_WEIGHT_RE: Final = re.compile(
    r"(?P<head>ST|US|OL|QT),(?:(?P<head2>GS|NT|TR|LO|OK|HI|--),)?"
    r"(?P<data>[ 0-9.E+-]*?)(?P<unit>[A-Za-z]*) *"
)


def _strip_parity(line: bytes) -> bytes:
    return seven_bit(line)


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
    text = ascii_text(text_bytes, line)
    if text.startswith("#"):
        return parse_kiosk(text, text_bytes, line)
    return _parse_weight(text, text_bytes, line)


def _ad_line(text: str, line: bytes) -> _AdLine:
    match = _WEIGHT_RE.fullmatch(text)
    if match is None:
        raise FrameError("bad_format", line)
    head, head2 = match["head"], match["head2"]
    unit = match["unit"].lower()
    if head == "QT":
        raise FrameError("unit", line, "count (QT) is not a weight")
    protocol: Literal["gs_nt", "and_std"] = "gs_nt" if head2 in MODE_CODES else "and_std"
    mode = MODE_CODES.get(head2 or "", "gross")
    status = _HEADER_STATUS[head]
    data = match["data"]
    if status == "overload":
        return _AdLine(status, mode, None, data.lstrip(" ").startswith("-"), protocol)
    number = NUMBER_RE.fullmatch(data)
    if number is None or not unit:
        raise FrameError("bad_format", line, "weight field")
    if not DATA_WIDTH[0] <= len(data) <= DATA_WIDTH[1]:  # e.g. a byte lost on the line
        raise FrameError("bad_format", line, f"weight field is {len(data)} characters")
    grams = to_grams(signed(number["sign"], number["num"]), match["unit"], line)
    return _AdLine(status, mode, grams, number["sign"] == "-", protocol)


def _parse_weight(text: str, raw: bytes, line: bytes) -> WeightReading:
    ad = _ad_line(text, line)
    return WeightReading(ad.status, ad.mode, ad.grams, raw, ad.protocol)


def _ad_item(ad: _AdLine, raw: bytes) -> WeightReading | ScaleStatus:
    if ad.status == "overload":
        return ScaleStatus("underload" if ad.negative else "overload", raw, ad.protocol, "OL")
    return WeightReading(ad.status, ad.mode, ad.grams, raw, ad.protocol)


class GsNtDecoder(LineDecoder):
    """``ST,GS,+0012.34kg``: ST/US/OL + GS/NT/TR; also the kiosk line (``"kiosk"``)."""

    protocol = "gs_nt"

    def _parse_text(self, seven: bytes, frame: bytes) -> Parsed:
        ad = _ad_line(ascii_text(seven, frame), frame)
        if ad.protocol != "gs_nt":
            raise FrameError("bad_format", frame, "no GS/NT/TR header (an and_std line?)")
        return _ad_item(ad, seven)


class AndStdDecoder(LineDecoder):
    """A&D standard ``ST,+00012.34  g``: ST/US/OL (QT rejected as ``unit``), comparator ok."""

    protocol = "and_std"

    def _parse_text(self, seven: bytes, frame: bytes) -> Parsed:
        ad = _ad_line(ascii_text(seven, frame), frame)
        if ad.protocol != "and_std":
            raise FrameError("bad_format", frame, "GS/NT/TR header (a gs_nt line?)")
        return _ad_item(ad, seven)
