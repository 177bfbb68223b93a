"""What a stream of weight readings means: stability, tare and zero. Pure: callers pass ``now``.

* :class:`StabilityDetector` gives flagless formats (Yaohua, A12, HX711) a stability status:
  stable once every reading of the last ``window_s`` lies within ``tolerance_g`` of the others.
  Readings that carry the device's own flag pass through unchanged (the flag is trusted).
* :class:`WeighState` runs the detector, keeps the tare the scale reported (``TR``/``wt``/MT-SICS
  ``T S`` frames, Toledo's tare field) and works out gross, tare and net for every reading; it
  also follows the empty platform's zero while idle, so the gateway can alert on drift.

Times are monotonic seconds from the caller; nothing here reads a clock.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Final

from gateway.scale_protocol import DIVISION_G, WeightMode, WeightReading

STABLE_WINDOW_S: Final = 1.0
"""How long readings must stay within tolerance before a flagless scale counts as stable."""
STABLE_TOLERANCE_G: Final = DIVISION_G
"""Allowed spread (max - min) inside the window: one display division; set it per scale."""
MIN_READINGS: Final = 3
"""A window must hold at least this many readings (a single reading proves nothing)."""
ZERO_BAND_G: Final = 2 * DIVISION_G
"""An idle stable reading within this of the current zero moves the zero estimate."""
ZERO_CAPTURE_G: Final = 100
"""The first zero estimate must lie within this of the reference (the indicator's zero)."""


class StabilityDetector:
    """Stable when all readings of the last ``window_s`` are within ``tolerance_g`` of each other.

    :meth:`update` returns the reading with ``status`` set to ``stable``/``unstable`` and
    ``computed_stability=True`` when the format has no flag (``status == "unknown"``); readings
    with a device flag, and tare frames, come back unchanged. The window restarts when the mode
    changes (gross <-> net), after a gap longer than ``window_s``, or if time goes backwards.
    """

    def __init__(
        self,
        window_s: float = STABLE_WINDOW_S,
        tolerance_g: int = STABLE_TOLERANCE_G,
        *,
        min_readings: int = MIN_READINGS,
    ) -> None:
        if window_s <= 0 or tolerance_g < 0 or min_readings < 1:
            raise ValueError("need window_s > 0, tolerance_g >= 0, min_readings >= 1")
        self.window_s = window_s
        self.tolerance_g = tolerance_g
        self.min_readings = min_readings
        self._window: deque[tuple[float, int]] = deque()
        self._run_start = 0.0
        self._mode: WeightMode | None = None
        self._stable: bool | None = None

    @property
    def stable(self) -> bool | None:
        """The last computed verdict; None before the first flagless reading."""
        return self._stable

    def reset(self) -> None:
        self._window.clear()
        self._mode = None
        self._stable = None

    def update(self, reading: WeightReading, now: float) -> WeightReading:
        if reading.status != "unknown" or reading.mode == "tare":
            return reading
        if reading.grams is None:  # pragma: no cover - decoders never send a flagless None
            self.reset()
            return reading
        window = self._window
        if reading.mode != self._mode or (window and now < window[-1][0]):
            window.clear()
        self._mode = reading.mode
        while window and window[0][0] < now - self.window_s:
            window.popleft()
        if not window:  # first reading, or a gap: the run starts now
            self._run_start = now
        window.append((now, reading.grams))
        values = [grams for _, grams in window]
        if max(values) - min(values) > self.tolerance_g:
            while max(values) - min(values) > self.tolerance_g:
                window.popleft()
                values.pop(0)
            self._run_start = window[0][0]
        self._stable = now - self._run_start >= self.window_s and len(window) >= self.min_readings
        return dataclasses.replace(
            reading, status="stable" if self._stable else "unstable", computed_stability=True
        )


@dataclass(frozen=True, slots=True)
class Weighing:
    """One weight reading with its meaning: gross, tare in use, net, and stability."""

    reading: WeightReading
    """The reading, its status resolved by the :class:`StabilityDetector` if it had none."""
    gross_g: int
    tare_g: int
    """The tare in use (0 when none is known)."""
    net_g: int
    tare_known: bool

    @property
    def stable(self) -> bool:
        return self.reading.stable


class WeighState:
    """Gross/tare/net and zero tracking for one scale.

    Tare: a tare frame (``mode="tare"``) sets the tare; a reading that carries ``tare_g``
    (Toledo) replaces it; :meth:`clear_tare` forgets it. Gross readings keep the tare (an
    indicator can show gross while a tare is set), so ``net = gross - tare``; net readings give
    ``gross = net + tare``.

    Zero: while idle (a stable reading whose gross is known and lies within ``zero_band_g`` of
    the current zero, or that the device flags as centre of zero) the zero estimate follows the
    reading, so slow drift is tracked and a load is not. The first estimate must lie within
    ``zero_capture_g`` of the reference (0, the indicator's own zero; :meth:`rezero` moves it).
    ``zero_g`` is the estimate (None until the first idle reading), ``drift_g`` how far it moved
    from the reference; the gateway alerts when ``abs(drift_g)`` gets too large.
    """

    def __init__(
        self,
        *,
        stability: StabilityDetector | None = None,
        zero_band_g: int = ZERO_BAND_G,
        zero_capture_g: int = ZERO_CAPTURE_G,
    ) -> None:
        if zero_band_g < 0 or zero_capture_g < 0:
            raise ValueError("zero bands must be >= 0")
        self.stability = stability or StabilityDetector()
        self.zero_band_g = zero_band_g
        self.zero_capture_g = zero_capture_g
        self.tare_g = 0
        self.tare_known = False
        self.zero_g: int | None = None
        self.zero_at: float | None = None
        """When the zero estimate last moved (caller's monotonic seconds)."""
        self.reference_g = 0

    @property
    def drift_g(self) -> int:
        """Zero estimate minus the reference; 0 until a zero has been seen."""
        return 0 if self.zero_g is None else self.zero_g - self.reference_g

    def clear_tare(self) -> None:
        self.tare_g, self.tare_known = 0, False

    def rezero(self) -> None:
        """Take the current zero estimate as the reference (the operator zeroed the scale)."""
        if self.zero_g is not None:
            self.reference_g = self.zero_g

    def update(self, reading: WeightReading, now: float) -> Weighing | None:
        """The reading's meaning; None for tare frames (they set the tare) and weightless ones."""
        resolved = self.stability.update(reading, now)
        if resolved.grams is None:
            return None
        if resolved.mode == "tare":
            self.tare_g, self.tare_known = resolved.grams, True
            return None
        if resolved.tare_g is not None:
            self.tare_g, self.tare_known = resolved.tare_g, True
        if resolved.mode == "net":
            net, gross = resolved.grams, resolved.grams + self.tare_g
        else:
            gross, net = resolved.grams, resolved.grams - self.tare_g
        if resolved.stable and (resolved.mode == "gross" or self.tare_known):
            self._track_zero(gross, bool(resolved.at_zero), now)
        return Weighing(resolved, gross, self.tare_g, net, self.tare_known)

    def _track_zero(self, gross: int, at_zero: bool, now: float) -> None:
        if self.zero_g is None:
            idle = at_zero or abs(gross - self.reference_g) <= self.zero_capture_g
        else:
            idle = at_zero or abs(gross - self.zero_g) <= self.zero_band_g
        if idle:
            self.zero_g, self.zero_at = gross, now
