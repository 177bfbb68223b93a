"""CAS 22-byte frames (``cas22``, docs/protocol.md §1.6.8): a binary lamp byte inside a CR LF
line. Pure."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

from gateway.scale_protocol.and_std import MODE_CODES
from gateway.scale_protocol.frames import (
    NUMBER_RE,
    FrameError,
    Parsed,
    ScaleStatus,
    StatusKind,
    WeightReading,
    ascii_text,
    signed,
    to_grams,
)
from gateway.scale_protocol.framing import LineDecoder

_CAS22_RE: Final = re.compile(
    r"(?P<head>ST|US|OL),(?P<head2>GS|NT|TR),[\x20-\x7e]\?,"  # the lamp byte is replaced by "?"
    r"(?P<data>[ 0-9.+-]{8}) (?P<unit>[ A-Za-z]{2})"
)
_CAS_LAMP: Final = 7
_LAMP_STABLE: Final = 0x40
_LAMP_ZERO: Final = 0x01


class Cas22Decoder(LineDecoder):
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
            ascii_text(seven[:_CAS_LAMP] + b"?" + seven[_CAS_LAMP + 1 :], frame)
        )
        if match is None:
            raise FrameError("bad_format", frame)
        data = match["data"]
        if match["head"] == "OL":
            kind: StatusKind = "underload" if data.lstrip(" ").startswith("-") else "overload"
            return ScaleStatus(kind, seven, self.protocol, "OL")
        number = NUMBER_RE.fullmatch(data)
        unit = match["unit"].strip()
        if number is None or not unit:
            raise FrameError("bad_format", frame, "weight field")
        grams = to_grams(signed(number["sign"], number["num"]), unit, frame)
        stable = match["head"] == "ST" and bool(lamp & _LAMP_STABLE)
        return WeightReading(
            "stable" if stable else "unstable",
            MODE_CODES[match["head2"]],
            grams,
            seven,
            self.protocol,
            at_zero=bool(lamp & _LAMP_ZERO),
        )
