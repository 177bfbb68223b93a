"""A scale's faults, debounced: what an overload, underload or indicator-error frame means for the
scale's state and its alerts. Pure: callers pass monotonic ``now``; nothing here reads a clock.

An indicator says "overload" (``OL``, ``S +``, ``SWB.2``...) in a frame of its own, often
interleaved with weight frames near its limit, or once after a print (Ohaus ``ES``). So that a
flickering frame does not raise and clear an alert on every other frame:

* a fault **starts** when the indicator has sent nothing but that fault for at least
  :data:`FAULT_RAISE_S` (the run is broken by any other frame): a single fault frame starts
  nothing;
* it **ends** when the indicator has sent no frame of that fault for at least
  :data:`FAULT_CLEAR_S` while sending others (weights).

The scale's state shows a fault from its start to its end, the same verdicts as its alert, and
the reader weighs nothing in between (:meth:`gateway.readers.ScaleReader.state`). A fault frame
that starts nothing holds the weighing too, for the same :data:`FAULT_CLEAR_S`
(:meth:`FaultWatch.holds`): an indicator that alternates ``OL`` and weights at its capacity
raises no alert, and none of those weights is a deposit either.

Until a fault's verdict is known it is *unknown*: a fresh process does not know whether the
fault an earlier run raised still holds. :meth:`FaultWatch.update` reports each verdict once, when
it is reached (started, or known absent), so the recorder can raise once, clear once, and clear
an alert an earlier run left raised (docs/operations.md, "Scale states and alerts").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from gateway.scale_protocol import ScaleStatus
from wastebank.messages import ScaleState

FAULT_RAISE_S: Final = 1.0
"""How long an indicator must send only one fault before it counts as started."""
FAULT_CLEAR_S: Final = 2.0
"""How long without that fault (other frames coming) before it counts as ended."""

STALE_S: Final = 3.0
"""A connected scale with no frame parsed for this long is ``stale``: an indicator sends 5–25
frames a second (docs/protocol.md §1), so 3 s of nothing readable is a cable, a setting or
another device, not a pause; its last weight is not shown as settled, and it is not armed."""
STALE_REJECTS: Final = 4
"""…nor one whose latest this many frames were all rejected (the detector's ``FRAMES_NEEDED``:
as many bad frames in a row as good ones decide a protocol)."""
BAD_FRAMES_KEPT: Final = 100
"""Rejected frames each scale keeps for inspection, the latest (``GET /scales/{id}/frames``)."""

Fault = Literal["overload", "underload", "indicator_error"]
FAULTS: Final[tuple[Fault, ...]] = ("overload", "underload", "indicator_error")

_FAULT_OF: Final[dict[str, Fault]] = {
    "overload": "overload",
    "underload": "underload",
    "error": "indicator_error",
}
"""A decoder's status kind -> the fault it means; ``busy`` (the indicator is taring or
zeroing) is no fault: the scale is unsettled."""

STATE_TEXT: Final[dict[ScaleState, str]] = {
    "ok": "Stabil / Stable",
    "unsettled": "Bergerak / Moving",
    "overload": "Kelebihan beban / Overload",
    "underload": "Di bawah nol / Underload",
    "indicator_error": "Indikator galat / Indicator error",
    "disconnected": "Tidak terhubung / Disconnected",
    "zero_drift": "Nol bergeser / Zero drift",
    "undetected": "Protokol belum dikenali / Protocol not detected yet",
    "stale": "Tidak ada bacaan baru / No fresh reading",
}
"""Each state as people read it (``/scales``, the attendant page, alert messages, and the fleet's
copy in wastebank/fleet/words.py): Bahasa Indonesia first. The page's own lines for ``ok`` and
``unsettled`` ("● stabil / stable", "~ bergerak / moving") are these words (a test holds them)."""


WORKING: Final[frozenset[ScaleState]] = frozenset({"ok", "unsettled"})
"""A working scale's states: every load goes from one to the other, so a change between them is
neither logged nor news for the fleet (the attendant page shows it live)."""


def fault_of(item: ScaleStatus) -> Fault | None:
    """The fault a status frame says, or None (``busy``)."""
    return _FAULT_OF.get(item.kind)


@dataclass(frozen=True)
class FaultChange:
    """A fault's verdict, reached now: ``active`` (it started) or not (it is known absent)."""

    fault: Fault
    active: bool
    code: str
    """The device's own word for the last fault frame seen (``OL``, ``ES``...), "" if none."""


@dataclass
class _Track:
    active: bool | None = None  # None: not known yet
    run_start: float | None = None  # the current unbroken run of this fault's frames
    last_seen: float | None = None  # its latest frame
    absent_since: float | None = None  # the first other frame after it (or since start)
    code: str = ""


class FaultWatch:
    """The three faults of one scale, each debounced on its own."""

    def __init__(self, raise_s: float = FAULT_RAISE_S, clear_s: float = FAULT_CLEAR_S) -> None:
        if raise_s < 0 or clear_s < 0:
            raise ValueError("need raise_s >= 0 and clear_s >= 0")
        self.raise_s = raise_s
        self.clear_s = clear_s
        self._tracks = {fault: _Track() for fault in FAULTS}

    def active(self) -> Fault | None:
        """The fault in force (the first of :data:`FAULTS` if more than one is)."""
        return next((f for f, t in self._tracks.items() if t.active), None)

    def holds(self, now: float) -> bool:
        """No weight may be taken at ``now``: a fault is in force, or a fault frame came less
        than ``clear_s`` ago (a glitch too short to start a fault is not a weight to trust
        either: the line after an ``OL`` may be a load at the capacity)."""
        return self.active() is not None or any(
            t.last_seen is not None and now - t.last_seen < self.clear_s
            for t in self._tracks.values()
        )

    def update(self, fault: Fault | None, now: float, code: str = "") -> list[FaultChange]:
        """One frame: ``fault`` for a fault frame, None for any other (a weight, ``busy``).
        The verdicts reached with it."""
        changes = []
        for name, track in self._tracks.items():
            if name == fault:
                if track.run_start is None:
                    track.run_start = now
                track.last_seen, track.absent_since, track.code = now, None, code
                if track.active is not True and now - track.run_start >= self.raise_s:
                    track.active = True
                    changes.append(FaultChange(name, True, code))
                continue
            track.run_start = None  # another frame breaks the run
            if track.absent_since is None:
                track.absent_since = now
            if track.active is not False and now - track.absent_since >= self.clear_s:
                track.active = False
                changes.append(FaultChange(name, False, track.code))
        return changes
