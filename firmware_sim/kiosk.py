"""A simulated kiosk scale on a real pseudo-terminal, spoken to exactly like /dev/ttyUSB0.

The simulator opens a pty, sets the slave raw, and points ``link`` at the slave
(``/dev/pts/N``), so a gateway opens ``link`` with pyserial (the pty machinery is shared with the
other serial simulators: :mod:`firmware_sim.ptydevice`). It writes, like the indicator plus
kiosk box of docs/protocol.md:

* a continuous weight stream (``ST,GS,+0012.34kg`` CR LF) at ``rate_hz``: zero with ±1 division
  flicker at rest; a placed load ramps up, overshoots and rings down with ``US`` lines, then
  reads ``ST`` once the last half second stayed within 1 division;
* kiosk frames (``#K,<seq>,CARD,...*XX``) between weight lines, with an incrementing ``seq``.

Writes to the master are non-blocking. Bytes nobody reads are dropped and counted, as on a real
UART with no one listening: when more than ``max_backlog`` bytes wait unread the input queue is
flushed, and a full pty buffer (EAGAIN) drops the write. ``speed`` runs simulated time faster
than real time (lines still carry 10 Hz physics), so a test deposit takes about a second.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from firmware_sim import encoders
from firmware_sim.encoders import (
    KIOSK_DIVISION_G,
    KIOSK_MAX_G,
    encode_kiosk,
    encode_weight,
    with_even_parity,
)
from firmware_sim.ptydevice import PtyDevice
from wastebank.messages import CODE_PATTERN

logger = logging.getLogger(__name__)

CAPACITY_G: Final = 150_000
"""Platform capacity (Max); the indicator shows OL above Max + 9 divisions."""
STABLE_WINDOW_S: Final = 0.5
"""ST needs every displayed value of this window within 1 division of the current one."""
RAMP_S: Final = 0.3
OVERSHOOT: Final = 0.12
RING_HZ: Final = 2.0
RING_DECAY_S: Final = 0.25
ZERO_FLICKER_P: Final = 0.08
HUMAN_PAUSE_S: Final = 0.8
SETTLE_TIMEOUT_S: Final = 30.0
"""Simulated seconds a deposit step waits for the scale before giving up."""

_CARD_RE: Final = re.compile(r"[0-9A-F]{8,20}")
_CODE_RE: Final = re.compile(CODE_PATTERN)


def round_to_division(grams: float, division_g: int = KIOSK_DIVISION_G) -> int:
    """Round half away from zero to the display division, as the indicator shows it."""
    return encoders.round_to_division(grams, division_g)


@dataclass(frozen=True)
class ScriptedDeposit:
    """One deposit to play; the scale shows ``grams`` rounded to its 10 g division."""

    card_uid: str
    category_code: str
    grams: int

    def __post_init__(self) -> None:
        if _CARD_RE.fullmatch(self.card_uid) is None:
            raise ValueError(f"card UID must be 8-20 upper-case hex digits: {self.card_uid!r}")
        if _CODE_RE.fullmatch(self.category_code) is None:
            raise ValueError(f"category code must be [a-z0-9-]: {self.category_code!r}")
        if not 0 < self.grams <= CAPACITY_G:
            raise ValueError(f"grams must be in 1..{CAPACITY_G}")

    @property
    def displayed_g(self) -> int:
        return round_to_division(self.grams)


class _ScaleModel:
    """Load-cell physics in simulated seconds: ramp, overshoot, decaying ring, quiet at rest."""

    def __init__(self, rng: random.Random, division_g: int) -> None:
        self._rng = rng
        self._division = division_g
        self._from = 0.0
        self._to = 0.0
        self._changed_at = -1e9

    def set_load(self, grams: float, t: float) -> None:
        self._from, self._to, self._changed_at = self._clean(t)[0], grams, t

    def _clean(self, t: float) -> tuple[float, float]:
        """(value without noise, amplitude of the remaining motion)."""
        tau, step = t - self._changed_at, self._to - self._from
        if tau < RAMP_S:
            return self._from + step * tau / RAMP_S, abs(step)
        envelope = step * OVERSHOOT * math.exp(-(tau - RAMP_S) / RING_DECAY_S)
        if abs(envelope) < self._division / 10:  # rung down: the indicator's filter holds
            return self._to, 0.0
        return self._to + envelope * math.sin(2 * math.pi * RING_HZ * (tau - RAMP_S)), abs(envelope)

    def displayed(self, t: float) -> int:
        value, motion = self._clean(t)
        if motion:
            value += self._rng.gauss(0.0, 0.05 * motion)
        shown = round_to_division(value, self._division)
        if not motion and self._to == 0 and self._rng.random() < ZERO_FLICKER_P:
            shown += self._rng.choice((-self._division, self._division))
        return shown


class KioskSimulator(PtyDevice):
    """Kiosk scale on a pty; an async context manager owning the weight-stream task."""

    label = "timbangan kios / kiosk scale"

    def __init__(
        self,
        link: Path,
        *,
        rate_hz: float = 10.0,
        seed: int | None = None,
        garbage_every: int = 0,
        seven_e1: bool = False,
        speed: float = 1.0,
        repeat_frames: bool = False,
        max_backlog: int = 1024,
        division_g: int = KIOSK_DIVISION_G,
        capacity_g: int = CAPACITY_G,
    ) -> None:
        """
        Args:
            link: symlink to create (replaced if it is a symlink) pointing at the pty slave.
            rate_hz: weight lines per simulated second.
            seed: random seed for noise, seq start and garbage.
            garbage_every: inject a garbage line before every N-th weight line (0 = never).
            seven_e1: put the even parity bit into bit 7 (a 7E1 device read as 8N1).
            speed: simulated seconds per real second.
            repeat_frames: send every kiosk frame twice (a retransmit with the same seq).
            max_backlog: unread bytes allowed in the slave's input queue before flushing it.
        """
        super().__init__(link, rate_hz=rate_hz, speed=speed, max_backlog=max_backlog)
        if garbage_every < 0:
            raise ValueError("garbage_every must be >= 0")
        if not 0 < capacity_g <= KIOSK_MAX_G - 9 * division_g:
            raise ValueError("capacity_g does not fit the weight field")
        self.garbage_every = garbage_every
        self.seven_e1 = seven_e1
        self.repeat_frames = repeat_frames
        self.division_g = division_g
        self.capacity_g = capacity_g
        self._rng = random.Random(seed)
        self._scale = _ScaleModel(self._rng, division_g)
        self._window: deque[int] = deque(maxlen=max(3, round(STABLE_WINDOW_S * rate_hz)))
        self._seq = self._rng.randrange(65536)

        self.frames_sent = 0
        self.garbage_sent = 0
        self.last_status = "stable"
        self.last_grams: int | None = 0

    def _on_start(self) -> None:
        self._window.extend([0] * (self._window.maxlen or 0))

    # -- public actions --

    async def deposit(self, d: ScriptedDeposit) -> None:
        """Play a whole deposit: CARD, CAT, load on, settle, OK, hold, load off, back to zero."""
        shown = d.displayed_g
        self._send_frame("CARD", d.card_uid)
        await self._pause(HUMAN_PAUSE_S)
        self._send_frame("CAT", d.category_code)
        await self._pause(HUMAN_PAUSE_S)
        self.place_load(d.grams)
        await self._wait_until(lambda: self.last_status == "stable" and self.last_grams == shown)
        self._send_frame("OK")
        await self._pause(HUMAN_PAUSE_S)
        self.place_load(0)
        await self._wait_until(self._at_zero)
        await self._pause(HUMAN_PAUSE_S / 2)

    def place_load(self, grams: float) -> None:
        """Change the load on the platform now (the stream shows the motion)."""
        self._scale.set_load(grams, self.sim_time)

    def send_frame(self, kind: str, value: str = "") -> None:
        """Send one kiosk frame with the next seq."""
        self._send_frame(kind, value)

    async def send_raw(self, data: bytes) -> None:
        """Inject bytes as they are (no parity, no framing), e.g. garbage for tests."""
        self._write_raw(data)

    async def wait_lines(self, count: int) -> None:
        """Wait until ``count`` more weight lines have been produced (written or dropped)."""
        await self._wait_ticks(count)

    # -- internals --

    def _at_zero(self) -> bool:
        return (
            self.last_status == "stable"
            and self.last_grams is not None
            and abs(self.last_grams) <= self.division_g
        )

    async def _wait_until(
        self, predicate: Callable[[], bool], timeout_s: float = SETTLE_TIMEOUT_S
    ) -> None:
        await super()._wait_until(predicate, timeout_s)

    def _tick(self) -> None:
        shown = self._scale.displayed(self.sim_time)
        self._window.append(shown)
        if self.garbage_every and (self._ticks + 1) % self.garbage_every == 0:
            self._send_garbage()
        if shown > self.capacity_g + 9 * self.division_g:
            line = encode_weight(None, stable=False, overload=True)
            self.last_status, self.last_grams = "overload", None
        else:
            stable = all(abs(v - shown) <= self.division_g for v in self._window)
            line = encode_weight(shown, stable=stable)
            self.last_status, self.last_grams = ("stable" if stable else "unstable"), shown
        self._write_line(line)

    def _send_frame(self, kind: str, value: str = "") -> None:
        self._seq = (self._seq + 1) % 65536
        frame = encode_kiosk(self._seq, kind, value)
        for _ in range(2 if self.repeat_frames else 1):
            self._write_line(frame)
            self.frames_sent += 1

    def _send_garbage(self) -> None:
        kind = self._rng.randrange(3)
        if kind == 0:  # line noise: random bytes (never LF), raw on the wire
            noise = self._rng.randbytes(self._rng.randint(1, 20))
            self._write_raw(noise.replace(b"\n", b"\x00") + b"\r\n")
        elif kind == 1:  # a weight line cut short
            self._write_line(encode_weight(self.last_grams or 0, stable=False)[:9] + b"\r\n")
        else:  # a long run without a line end (framer overflow)
            junk = bytes(self._rng.choice(b"0123456789+-.,ST ") for _ in range(300))
            self._write_line(junk + b"\r\n")
        self.garbage_sent += 1

    def _write_line(self, line: bytes) -> None:
        self._write_raw(with_even_parity(line) if self.seven_e1 else line)


async def run_random_kiosk(
    *,
    link: Path,
    cards: list[str],
    categories: list[str],
    interval_s: float,
    seed: int | None,
) -> None:
    """Forever: members take turns (in order) depositing a random category and weight.

    Turns rather than random members, so every member's balance grows within a few intervals.
    """
    if not cards or not categories:
        raise ValueError("need at least one card and one category")
    for card in cards:  # fail before the port appears, not at the first unlucky draw
        ScriptedDeposit(card, categories[0], CAPACITY_G)
    for category in categories:
        ScriptedDeposit(cards[0], category, CAPACITY_G)
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    async with KioskSimulator(link, seed=seed) as sim:
        for turn in itertools.count():
            started = loop.time()
            deposit = ScriptedDeposit(
                cards[turn % len(cards)], rng.choice(categories), rng.randint(300, 12_000)
            )
            await sim.deposit(deposit)
            logger.info(
                "setoran simulasi / simulated deposit: kartu=%s kategori=%s %d g",
                deposit.card_uid,
                deposit.category_code,
                deposit.displayed_g,
            )
            await asyncio.sleep(max(0.0, interval_s - (loop.time() - started)))
