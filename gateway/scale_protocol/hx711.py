"""DIY HX711 + Arduino/ESP32 sketches (``diy_hx711``, docs/protocol.md §1.6.11): whatever the
common sketches print, numbers or JSON. Pure."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Final

from gateway.scale_protocol.frames import (
    NUM,
    FrameError,
    Parsed,
    Unit,
    WeightReading,
    ascii_text,
    to_grams,
)
from gateway.scale_protocol.framing import LineDecoder

_SNUM: Final = rf"[+-]?(?:{NUM})"
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


class Hx711Decoder(LineDecoder):
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
        text = ascii_text(seven, frame).strip()
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
        grams = to_grams(value, unit, frame)
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
