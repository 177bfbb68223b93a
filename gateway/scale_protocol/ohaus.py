"""Ohaus print and continuous output (``ohaus``, docs/protocol.md §1.6.10). Pure."""

from __future__ import annotations

import re
from typing import Final

from gateway.scale_protocol.frames import (
    NUM,
    FrameError,
    Parsed,
    ScaleStatus,
    WeightMode,
    WeightReading,
    WeightStatus,
    ascii_text,
    signed,
    to_grams,
)
from gateway.scale_protocol.framing import LineDecoder

_OHAUS_RE: Final = re.compile(
    rf"(?P<pad> *(?P<sign>-?) *)(?P<num>{NUM}) (?P<unit>[A-Za-z]{{1,5}})"
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


class OhausDecoder(LineDecoder):
    """Ohaus print/continuous ``     192.21 g   ``: ``?`` = unstable, legend G/NET/T.

    The weight field must be right-justified (at least 9 characters up to the last digit);
    ``ES`` lines (Ohaus repeats them after a print) come back as ``ScaleStatus("error")``.
    """

    protocol = "ohaus"

    def _parse_text(self, seven: bytes, frame: bytes) -> Parsed:
        text = ascii_text(seven, frame)
        if text.strip(" ") == "ES":
            return ScaleStatus("error", seven, self.protocol, "ES")
        match = _OHAUS_RE.fullmatch(text)
        if match is None or len(match["pad"]) + len(match["num"]) < _OHAUS_FIELD:
            raise FrameError("bad_format", frame)
        grams = to_grams(signed(match["sign"], match["num"]), match["unit"], frame)
        status: WeightStatus = "unstable" if match["unstable"] else "stable"
        mode = _OHAUS_LEGENDS[match["legend"] or ""]
        return WeightReading(status, mode, grams, seven, self.protocol)
