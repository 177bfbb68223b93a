"""Mettler Toledo MT-SICS (``mtsics``, docs/protocol.md §1.6.9). Pure."""

from __future__ import annotations

import re
from typing import Final

from gateway.scale_protocol.frames import (
    NUM,
    FrameError,
    Parsed,
    ScaleStatus,
    StatusKind,
    WeightMode,
    WeightReading,
    WeightStatus,
    ascii_text,
    signed,
    to_grams,
)
from gateway.scale_protocol.framing import LineDecoder

_MTSICS_WEIGHT_RE: Final = re.compile(
    rf"(?P<cmd>[ST]) (?P<state>[SD]) *(?P<sign>-?) *(?P<num>{NUM}) +(?P<unit>[A-Za-z]{{1,5}})"
)
_MTSICS_STATUS: Final[dict[str, StatusKind]] = {
    "S I": "busy",
    "S +": "overload",
    "S -": "underload",
    "ES": "error",
    "ET": "error",
    "EL": "error",
}


class MtSicsDecoder(LineDecoder):
    """Mettler Toledo MT-SICS: ``S S     100.00 g`` stable, ``S D …`` dynamic, ``T S …`` tare.

    ``S I`` busy, ``S +``/``S -`` over/underload, ``ES``/``ET``/``EL`` errors.
    """

    protocol = "mtsics"

    def _parse_text(self, seven: bytes, frame: bytes) -> Parsed:
        text = ascii_text(seven, frame).rstrip(" ")
        if text in _MTSICS_STATUS:
            return ScaleStatus(_MTSICS_STATUS[text], seven, self.protocol, text)
        match = _MTSICS_WEIGHT_RE.fullmatch(text)
        if match is None or (match["cmd"] == "T" and match["state"] != "S"):
            raise FrameError("bad_format", frame)
        grams = to_grams(signed(match["sign"], match["num"]), match["unit"], frame)
        status: WeightStatus = "stable" if match["state"] == "S" else "unstable"
        mode: WeightMode = "tare" if match["cmd"] == "T" else "gross"
        return WeightReading(status, mode, grams, seven, self.protocol)
