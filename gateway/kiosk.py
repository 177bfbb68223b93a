"""The kiosk deposit state machine. Pure: no I/O, no clock (callers pass monotonic ``now``).

A deposit needs, in this order: a member card (``CARD``), a waste category (``CAT``), a load on
the scale and a confirm (``OK``) while the reading is stable and at least ``min_net_g``. Rules:

* ``CARD`` starts or replaces the member session and clears the category; ``CAT`` sets it.
* ``OK`` on a fresh stable reading >= ``min_net_g`` emits a :class:`DepositCandidate`. On an
  unstable (or not yet received) reading the confirm is held and fires on the next stable reading
  >= ``min_net_g``; it expires after ``confirm_timeout_s``, or when the scale settles back in the
  zero band (the load was taken off). Any other confirm is ignored and counted.
* After a deposit the category is cleared (the card stays for the next category) and the scale
  must settle inside ``±zero_band_g`` before another deposit: one load is never counted twice.
* ``CANCEL`` clears the session. A frame whose ``seq`` equals the previous one is a retransmit
  and is ignored. A session with no frame for ``session_timeout_s`` expires.
* Overload readings never become weights; tare (``TR``) lines are not deposit weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gateway.scale_protocol import KioskFrame, WeightReading

CONFIRM_TIMEOUT_S: Final = 10.0
READING_MAX_AGE_S: Final = 2.0
"""A reading older than this counts as none (the scale went quiet); a confirm then waits."""


@dataclass(frozen=True, slots=True)
class DepositCandidate:
    """A confirmed deposit; the gateway adds ids, sequence and wall-clock time."""

    card_uid: str | None
    category_code: str
    net_g: int
    tare_g: int
    stable: bool
    protocol: str
    raw_frames: tuple[str, ...]
    """card frame, category frame, the stable weight line, the OK frame (7-bit text)."""
    member_no: str | None = None
    """Set instead of ``card_uid`` in the attendant flow."""


def _text(raw: bytes) -> str:
    return raw.decode("ascii", errors="backslashreplace")


class KioskSession:
    """Turns kiosk frames and weight readings into deposit candidates for one scale."""

    def __init__(
        self,
        *,
        min_net_g: int = 50,
        zero_band_g: int = 20,
        session_timeout_s: float = 120.0,
        confirm_timeout_s: float = CONFIRM_TIMEOUT_S,
        reading_max_age_s: float = READING_MAX_AGE_S,
    ) -> None:
        if min_net_g <= zero_band_g or zero_band_g < 0:
            raise ValueError("need 0 <= zero_band_g < min_net_g")
        if min(session_timeout_s, confirm_timeout_s, reading_max_age_s) <= 0:
            raise ValueError("timeouts must be positive")
        self.min_net_g = min_net_g
        self.zero_band_g = zero_band_g
        self.session_timeout_s = session_timeout_s
        self.confirm_timeout_s = confirm_timeout_s
        self.reading_max_age_s = reading_max_age_s

        self.duplicate_frames = 0
        self.ignored_confirms = 0
        self.ignored_frames = 0
        self.expired_sessions = 0
        self.expired_confirms = 0
        self.deposits = 0

        self._card: str | None = None
        self._card_raw = ""
        self._category: str | None = None
        self._category_raw = ""
        self._confirm_deadline: float | None = None
        self._confirm_raw = ""
        self._last_seq: int | None = None
        self._last_frame_at: float | None = None
        self._reading: WeightReading | None = None
        self._reading_at = 0.0
        # Not armed until the platform is seen empty once: a load left on it across a restart
        # may already be a deposit (the outbox does not know what lies on the scale).
        self._armed = False

    # -- read-only state, for logs and tests --

    @property
    def card_uid(self) -> str | None:
        return self._card

    @property
    def category_code(self) -> str | None:
        return self._category

    @property
    def armed(self) -> bool:
        """False from start and from a deposit until the scale settles inside the zero band."""
        return self._armed

    @property
    def confirm_pending(self) -> bool:
        return self._confirm_deadline is not None

    # -- inputs --

    def on_reading(self, reading: WeightReading, now: float) -> DepositCandidate | None:
        self._expire(now)
        if reading.mode == "tare":
            return None
        self._reading, self._reading_at = reading, now
        net = self._net(reading)
        if net is None or not reading.stable:
            return None
        if abs(net) <= self.zero_band_g:
            self._armed = True
            if self._confirm_deadline is not None:  # the load came off before it settled
                self.ignored_confirms += 1
                self._confirm_deadline = None
            return None
        member = self._ready()
        if self._confirm_deadline is not None and member is not None and net >= self.min_net_g:
            return self._emit(reading, net, member)
        return None

    def on_frame(self, frame: KioskFrame, now: float) -> DepositCandidate | None:
        self._expire(now)
        if frame.seq == self._last_seq:
            self.duplicate_frames += 1
            return None
        self._last_seq, self._last_frame_at = frame.seq, now
        if frame.kind == "CARD":
            self._clear()
            self._card, self._card_raw = frame.value, _text(frame.raw)
        elif frame.kind == "CAT":
            if self._card is None:
                self.ignored_frames += 1
                return None
            self._category, self._category_raw = frame.value, _text(frame.raw)
            self._confirm_deadline = None
        elif frame.kind == "OK":
            return self._confirm(frame, now)
        else:
            self._clear()
        return None

    # -- internals --

    def _ready(self) -> tuple[str, str] | None:
        """(card, category) when a confirm could make a deposit now."""
        if self._card is None or self._category is None or not self._armed:
            return None
        return self._card, self._category

    def _confirm(self, frame: KioskFrame, now: float) -> DepositCandidate | None:
        member = self._ready()
        if member is None:
            self.ignored_confirms += 1
            return None
        self._confirm_raw = _text(frame.raw)
        reading = self._reading
        if reading is None or now - self._reading_at > self.reading_max_age_s:
            reading = None
        if reading is not None and reading.status == "overload":
            self.ignored_confirms += 1
            return None
        if reading is not None and reading.stable:
            net = self._net(reading)
            if net is not None and net >= self.min_net_g:
                return self._emit(reading, net, member)
            self.ignored_confirms += 1
            return None
        self._confirm_deadline = now + self.confirm_timeout_s
        return None

    def _emit(self, reading: WeightReading, net: int, member: tuple[str, str]) -> DepositCandidate:
        candidate = DepositCandidate(
            card_uid=member[0],
            category_code=member[1],
            net_g=net,
            tare_g=0,
            stable=reading.stable,
            protocol=reading.protocol,
            raw_frames=(self._card_raw, self._category_raw, _text(reading.raw), self._confirm_raw),
        )
        self.deposits += 1
        self._category = None
        self._category_raw = ""
        self._confirm_deadline = None
        self._armed = False
        return candidate

    def _net(self, reading: WeightReading) -> int | None:
        # gross: no tare is known yet, so net = gross; net mode: the indicator already tared.
        return reading.grams

    def _clear(self) -> None:
        self._card = self._category = None
        self._card_raw = self._category_raw = self._confirm_raw = ""
        self._confirm_deadline = None

    def _expire(self, now: float) -> None:
        if self._confirm_deadline is not None and now > self._confirm_deadline:
            self.expired_confirms += 1
            self._confirm_deadline = None
        if self._last_frame_at is not None and now - self._last_frame_at > self.session_timeout_s:
            if self._card is not None:
                self.expired_sessions += 1
            self._clear()
            self._last_seq = self._last_frame_at = None


class AttendantSession:
    """The attendant-assisted flow for plain indicators (no card reader, no keys).

    The petugas names the member and the category on the gateway (``arm``); the next stable
    reading of at least ``min_net_g`` becomes the deposit. Then the scale must settle back inside
    ``±zero_band_g`` before another deposit can be taken, so one load is never counted twice;
    the same holds at start, before the first deposit.
    An arming that sees no load within ``arm_timeout_s`` expires.
    """

    def __init__(
        self, *, min_net_g: int = 50, zero_band_g: int = 20, arm_timeout_s: float = 300.0
    ) -> None:
        if min_net_g <= zero_band_g or zero_band_g < 0:
            raise ValueError("need 0 <= zero_band_g < min_net_g")
        self.min_net_g = min_net_g
        self.zero_band_g = zero_band_g
        self.arm_timeout_s = arm_timeout_s
        self.deposits = 0
        self.expired_arms = 0
        self._member: str | None = None
        self._category: str | None = None
        self._armed_at = 0.0
        # As the kiosk: a load found on the platform at start may have been weighed before a
        # restart, and the first zero estimate may sit up to ZERO_CAPTURE_G from true zero.
        self._needs_zero = True

    @property
    def armed(self) -> tuple[str, str] | None:
        if self._member is None or self._category is None:
            return None
        return self._member, self._category

    @property
    def waiting_for_zero(self) -> bool:
        return self._needs_zero

    def arm(self, member_no: str, category_code: str, now: float) -> None:
        self._member, self._category, self._armed_at = member_no, category_code, now

    def cancel(self) -> None:
        self._member = self._category = None

    def on_reading(self, reading: WeightReading, now: float) -> DepositCandidate | None:
        if reading.status != "stable" or reading.grams is None or reading.mode == "tare":
            return None
        if abs(reading.grams) <= self.zero_band_g:
            self._needs_zero = False
            return None
        if self._member is None or self._category is None:
            return None
        if now - self._armed_at > self.arm_timeout_s:
            self.expired_arms += 1
            self.cancel()
            return None
        if self._needs_zero or reading.grams < self.min_net_g:
            return None
        candidate = DepositCandidate(
            card_uid=None,
            member_no=self._member,
            category_code=self._category,
            net_g=reading.grams,
            tare_g=0,
            stable=True,
            protocol=reading.protocol,
            raw_frames=(_text(reading.raw),),
        )
        self.cancel()
        self._needs_zero = True
        self.deposits += 1
        return candidate
