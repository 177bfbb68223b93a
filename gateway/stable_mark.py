"""The attendant page's "stabil / bergerak" mark, held steady.

An indicator's own stability flag (or the gateway's stability detector, for a format without
one) may drop for a frame or two on a load at rest: a breath of wind on the pan, a digit of
noise. Shown as is, the mark flickered about once a second. The rule, one place:

* "stabil" shows as soon as the reading is stable;
* "bergerak" shows only once the reading has been unstable for :data:`HOLD_S` (0,7 s) without
  a break; a stable reading in between starts the count again;
* no reading (scale not connected, overload) shows no mark at once.

Only the mark is held: the weight shown is always the latest, and the recorder's decision that
a load has settled (:mod:`gateway.weighing`) does not use this at all.
"""

from __future__ import annotations

from typing import Final

__all__ = ["HOLD_S", "StableMark"]

HOLD_S: Final = 0.7
"""How long a reading must stay unstable before the page says "bergerak"."""


class StableMark:
    """The mark of one scale: feed it every raw flag with its (monotonic) time."""

    def __init__(self, hold_s: float = HOLD_S) -> None:
        self.hold_s = hold_s
        self.shown: bool | None = None
        self._unstable_since: float | None = None

    def update(self, raw: bool | None, now: float) -> bool | None:
        """The mark to show for the raw flag ``raw`` (True stable, False unstable, None no
        reading) at ``now``."""
        if raw is None or raw:
            self._unstable_since = None
            self.shown = raw
            return raw
        if self._unstable_since is None:
            self._unstable_since = now
        if self.shown is None or now - self._unstable_since >= self.hold_s:
            self.shown = False  # nothing to hold (the first reading), or held long enough
        return self.shown

    def due(self, now: float) -> float | None:
        """Seconds until a held "stabil" turns "bergerak" if nothing changes; None when no
        change is pending (a page's stream waits at most this long)."""
        if self._unstable_since is None or self.shown is not True:
            return None
        return max(0.0, self._unstable_since + self.hold_s - now)
