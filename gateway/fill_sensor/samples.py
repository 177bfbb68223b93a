"""What every fill sensor decoder returns: :class:`DistanceSample`, or :class:`FillDecodeError`
with a short ``reason`` for counting. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from wastebank.errors import BadInput

FillSource = Literal["jsn_sr04t", "maxbotix", "em310_udl", "json"]
RejectReason = Literal[
    "checksum", "bad_format", "bad_value", "overflow", "out_of_range", "spike", "no_target"
]
"""Why an input is not a sample. ``no_target`` is a valid frame that says nothing is in range
(a MaxBotix HRXL's ``R5000`` / ``R9999``): counted with the rejects, never a distance."""

MAX_DISTANCE_MM: Final = 20_000
"""Largest distance a :class:`FillReading` can carry."""


class FillDecodeError(BadInput, ValueError):
    """Input that is not a valid sensor frame or uplink.

    ``reason`` is a short machine id for counting rejects (:data:`RejectReason`); ``raw`` holds
    (the start of) the offending input.
    """

    def __init__(self, reason: RejectReason, raw: bytes, detail: str = "") -> None:
        self.reason: RejectReason = reason
        self.raw = raw
        self.detail = detail
        text = f"{reason}: {raw[:64]!r}"
        super().__init__(f"{text} ({detail})" if detail else text)


@dataclass(frozen=True, slots=True)
class DistanceSample:
    """One measurement as the sensor reported it, before any filtering.

    ``distance_mm`` is None when the input carries no distance (an EM310 uplink with attributes
    only, or JSON with ``fillingLevel`` only, which is then in ``fill_ratio``).
    """

    distance_mm: int | None
    source: FillSource
    raw: bytes
    fill_ratio: float | None = None
    temperature_c: float | None = None
    battery_pct: int | None = None
    rssi_dbm: int | None = None
    snr_db: float | None = None
    tilt: bool | None = None
    device_eui: str | None = None
    received_at: datetime | None = None

    def evidence(self) -> str:
        """The raw input as text: hex bytes for binary frames, the text itself otherwise."""
        if self.source in ("jsn_sr04t", "em310_udl"):
            return self.raw.hex(" ").upper()
        return self.raw.decode("ascii", "backslashreplace").replace("\r", "\\r")
