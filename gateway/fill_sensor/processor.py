"""From distance samples to fill readings: sound-speed compensation, container geometry, and the
per-sensor :class:`FillProcessor` (median window, spike rejection). Pure."""

from __future__ import annotations

import statistics
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal, TypeVar

from gateway.fill_sensor.samples import (
    MAX_DISTANCE_MM,
    DistanceSample,
    FillSource,
    RejectReason,
)
from wastebank.messages import FillReading, device_event_id
from wastebank.structs import checked

LevelStatus = Literal["ok", "over_full", "below_empty"]
_T = TypeVar("_T")

RAW_EVIDENCE_CHARS: Final = 256
"""``FillReading.raw`` keeps at most this many characters of the frames behind a reading."""

SPEED_OF_SOUND_0C: Final = 331.3
"""Speed of sound in dry air at 0 degC, m/s."""
SPEED_OF_SOUND_PER_C: Final = 0.606
"""Increase of the speed of sound per degC, m/s (linear approximation, good to about +-30 degC)."""
CALIBRATION_C: Final = 20.0
"""Temperature at which a sensor that does not compensate is assumed to be calibrated."""


# ---- physics and geometry ------------------------------------------------------------------------


def speed_of_sound(temperature_c: float) -> float:
    """c = 331.3 + 0.606 * T  (m/s, T in degC)."""
    return SPEED_OF_SOUND_0C + SPEED_OF_SOUND_PER_C * temperature_c


def compensate_distance(
    reported_mm: float, temperature_c: float, calibrated_at_c: float = CALIBRATION_C
) -> float:
    """True distance from one reported by a sensor that assumes the speed of sound at
    ``calibrated_at_c``: d_true = d_reported * c(T) / c(T_cal). The echo time is fixed, so in
    warmer (faster) air the sensor under-reads: at 35 degC a reported 1000 mm is 1026.5 mm."""
    return reported_mm * speed_of_sound(temperature_c) / speed_of_sound(calibrated_at_c)


def fill_ratio(distance_mm: float, empty_mm: float, full_mm: float) -> float:
    """FIWARE ``fillingLevel``: (empty - d) / (empty - full), clamped to 0..1."""
    if empty_mm <= full_mm:
        raise ValueError("empty_mm must be greater than full_mm")
    return min(1.0, max(0.0, (empty_mm - distance_mm) / (empty_mm - full_mm)))


def distance_for_fill(ratio: float, empty_mm: float, full_mm: float) -> float:
    """Inverse of :func:`fill_ratio` for 0 <= ratio <= 1."""
    if empty_mm <= full_mm:
        raise ValueError("empty_mm must be greater than full_mm")
    return empty_mm - ratio * (empty_mm - full_mm)


def level_status(distance_mm: float, empty_mm: float, full_mm: float) -> LevelStatus:
    """``over_full`` nearer than the full mark (heaped), ``below_empty`` beyond the floor."""
    if distance_mm < full_mm:
        return "over_full"
    if distance_mm > empty_mm:
        return "below_empty"
    return "ok"


# ---- the per-sensor processor --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillConfig:
    """Geometry and filter parameters of one sensor on one container.

    Args:
        empty_distance_mm: sensor -> container floor (the calibrated empty reading).
        full_distance_mm: distance that counts as full (at or beyond the blind zone).
        window: pings per reading; the reading is their median (1 = pass through, for
            LoRaWAN sensors that filter on board).
        min_valid_mm: pings nearer than this are in the blind zone: rejected ``out_of_range``.
        max_valid_mm: pings farther are lost echoes / beyond the floor (default
            ``empty_distance_mm + 300``): rejected ``out_of_range``.
        spike_mm: a ping farther than this from the median of the last ``spike_history``
            accepted pings is a spike (None = no spike rejection).
        spike_history: accepted pings the spike reference is the median of.
        spike_run: this many consecutive spikes that agree with each other (within
            ``spike_mm``) are a real change (a pickup, a cart tipped in): re-admitted.
        calibrated_at_c: the temperature the sensor's speed of sound assumes; None = the
            sensor compensates itself (or no compensation wanted).
    """

    empty_distance_mm: int
    full_distance_mm: int
    window: int = 5
    min_valid_mm: int = 200
    max_valid_mm: int | None = None
    spike_mm: int | None = 150
    spike_history: int = 9
    spike_run: int = 3
    calibrated_at_c: float | None = CALIBRATION_C

    def __post_init__(self) -> None:
        if self.empty_distance_mm - self.full_distance_mm < 50:
            raise ValueError("empty_distance_mm must exceed full_distance_mm by at least 50 mm")
        if not 0 <= self.full_distance_mm or self.empty_distance_mm > MAX_DISTANCE_MM:
            raise ValueError(f"distances must be within 0..{MAX_DISTANCE_MM} mm")
        if self.window < 1 or self.spike_history < 1 or self.spike_run < 1:
            raise ValueError("window, spike_history and spike_run must be >= 1")
        if self.spike_mm is not None and self.spike_mm < 1:
            raise ValueError("spike_mm must be >= 1 (or None)")
        if self.min_valid_mm < 0 or self.max_range_mm <= self.min_valid_mm:
            raise ValueError("min_valid_mm must be >= 0 and below max_valid_mm")

    @property
    def max_range_mm(self) -> int:
        if self.max_valid_mm is not None:
            return self.max_valid_mm
        return self.empty_distance_mm + 300


@dataclass(frozen=True, slots=True)
class FillEstimate:
    """A filtered reading, ready to become a :class:`FillReading` once it has ``seq`` and a time."""

    distance_mm: int
    filling_level: float
    level_status: LevelStatus
    source: FillSource
    pings: int
    raw: str
    temperature_c: float | None = None
    battery_pct: int | None = None
    rssi_dbm: int | None = None
    snr_db: float | None = None
    tilt: bool | None = None
    device_eui: str | None = None
    received_at: datetime | None = None

    def to_reading(
        self,
        *,
        sensor_id: str,
        tps_code: str,
        seq: int,
        install: str | None,
        measured_at: datetime | None = None,
    ) -> FillReading:
        """The message; ``measured_at`` defaults to the network server's ``received_at``."""
        when = measured_at or self.received_at
        if when is None:
            raise ValueError("measured_at is required when the sample has no received_at")
        return checked(
            FillReading(
                reading_id=device_event_id(sensor_id, install, seq),
                sensor_id=sensor_id,
                install=install,
                seq=seq,
                tps_code=tps_code,
                measured_at=when,
                distance_mm=self.distance_mm,
                fillingLevel=self.filling_level,
                temperature_c=self.temperature_c,
                battery_pct=self.battery_pct,
                rssi_dbm=self.rssi_dbm,
                snr_db=self.snr_db,
                source=self.source,
                level_status=self.level_status,
                tilt=self.tilt,
                pings=self.pings,
                raw=self.raw or None,
            )
        )


@dataclass
class _Ping:
    distance: float
    sample: DistanceSample


@dataclass
class FillProcessor:
    """Raw samples of one sensor in, :class:`FillEstimate` out (one per ``window`` accepted pings).

    Per sample: derive a distance from ``fill_ratio`` if that is all it has; reject it as
    ``out_of_range`` outside [min_valid_mm, max_valid_mm] (checked on the reported value: blind
    zone and maximum range are properties of the sensor); compensate for temperature
    (:func:`compensate_distance`, using the sample's temperature, else the one passed to
    :meth:`add`); reject it as ``spike`` if it is more than ``spike_mm`` from the running median;
    otherwise add it to the window. A full window gives an estimate: the median distance, its
    fill ratio (clamped) and :func:`level_status`; battery, temperature, radio and tilt are the
    latest the window's samples carried. A sample with neither distance nor ratio (an EM310
    uplink with attributes only) counts as ``bad_value``. Counters: ``accepted``,
    ``estimates``, ``readmitted`` and ``rejects`` by reason.
    """

    config: FillConfig
    accepted: int = field(default=0, init=False)
    estimates: int = field(default=0, init=False)
    readmitted: int = field(default=0, init=False)
    rejects: Counter[RejectReason] = field(default_factory=Counter, init=False)
    _window: list[_Ping] = field(default_factory=list, init=False)
    _history: deque[float] = field(init=False)
    _suspects: deque[_Ping] = field(init=False)

    def __post_init__(self) -> None:
        self._history = deque(maxlen=self.config.spike_history)
        self._suspects = deque(maxlen=self.config.spike_run)

    @property
    def reference_mm(self) -> float | None:
        """Median of recent accepted pings (the spike reference), None before any."""
        return statistics.median(self._history) if self._history else None

    def reset(self) -> None:
        """Forget the window and the spike reference (e.g. after the sensor was moved)."""
        self._window.clear()
        self._history.clear()
        self._suspects.clear()

    def add(
        self, sample: DistanceSample, *, temperature_c: float | None = None
    ) -> FillEstimate | None:
        """Take one sample; return an estimate when it completes the window."""
        cfg = self.config
        reported = self._reported_mm(sample)
        if reported is None:
            return None
        if not cfg.min_valid_mm <= reported <= cfg.max_range_mm:
            self.rejects["out_of_range"] += 1
            return None
        temperature = sample.temperature_c if sample.temperature_c is not None else temperature_c
        distance = float(reported)
        if cfg.calibrated_at_c is not None and temperature is not None:
            distance = compensate_distance(reported, temperature, cfg.calibrated_at_c)
        ping = _Ping(distance, sample)
        if self._is_spike(distance):
            self.rejects["spike"] += 1
            self._suspects.append(ping)
            if self._level_shifted():
                self._readmit()
            return self._maybe_estimate(temperature)
        self._suspects.clear()
        self._accept(ping)
        return self._maybe_estimate(temperature)

    def _reported_mm(self, sample: DistanceSample) -> float | None:
        if sample.distance_mm is not None:
            return float(sample.distance_mm)
        if sample.fill_ratio is not None:
            cfg = self.config
            return distance_for_fill(sample.fill_ratio, cfg.empty_distance_mm, cfg.full_distance_mm)
        self.rejects["bad_value"] += 1  # e.g. an EM310 uplink with attributes only
        return None

    def _is_spike(self, distance: float) -> bool:
        limit = self.config.spike_mm
        reference = self.reference_mm
        if (
            limit is None
            or reference is None
            or len(self._history) < min(3, self.config.spike_history)
        ):
            return False  # no reference yet: accept while warming up
        return abs(distance - reference) > limit

    def _level_shifted(self) -> bool:
        suspects = [p.distance for p in self._suspects]
        limit = self.config.spike_mm or 0
        return len(suspects) == self.config.spike_run and max(suspects) - min(suspects) <= limit

    def _readmit(self) -> None:
        """Consecutive, mutually consistent 'spikes': the level really changed; start over."""
        self.readmitted += len(self._suspects)
        self._window.clear()
        self._history.clear()
        for ping in self._suspects:
            self._accept(ping)
        self._suspects.clear()

    def _accept(self, ping: _Ping) -> None:
        self.accepted += 1
        self._history.append(ping.distance)
        self._window.append(ping)

    def _maybe_estimate(self, temperature: float | None) -> FillEstimate | None:
        cfg = self.config
        if len(self._window) < cfg.window:
            return None
        window, self._window = self._window, []
        distance = round(statistics.median(p.distance for p in window))
        distance = max(0, min(MAX_DISTANCE_MM, distance))
        samples = [p.sample for p in window]
        self.estimates += 1
        return FillEstimate(
            distance_mm=distance,
            filling_level=round(
                fill_ratio(distance, cfg.empty_distance_mm, cfg.full_distance_mm), 3
            ),
            level_status=level_status(distance, cfg.empty_distance_mm, cfg.full_distance_mm),
            source=samples[-1].source,
            pings=len(window),
            raw=_evidence(samples),
            temperature_c=None if temperature is None else round(temperature, 1),
            battery_pct=_latest(s.battery_pct for s in samples),
            rssi_dbm=_latest(s.rssi_dbm for s in samples),
            snr_db=_latest(s.snr_db for s in samples),
            tilt=_latest(s.tilt for s in samples),
            device_eui=_latest(s.device_eui for s in samples),
            received_at=_latest(s.received_at for s in samples),
        )


def _latest(values: Iterable[_T | None]) -> _T | None:
    """The last value that is not None."""
    found: _T | None = None
    for value in values:
        if value is not None:
            found = value
    return found


def _evidence(samples: Sequence[DistanceSample]) -> str:
    text = " | ".join(s.evidence() for s in samples)
    return text if len(text) <= RAW_EVIDENCE_CHARS else text[: RAW_EVIDENCE_CHARS - 3] + "..."
