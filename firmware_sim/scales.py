"""Every weighing indicator a waste bank owns, byte for byte, over a real pseudo-terminal.

:class:`ScaleSimulator` is a load cell plus indicator behind a pty (see
:mod:`firmware_sim.ptydevice`): the gateway opens ``link`` with pyserial like ``/dev/ttyUSB0``.
The formats follow the research notes (device-protocols.md §0.1, §1.1-§1.9); the frames come from
:mod:`firmware_sim.encoders`, written from those notes apart from the gateway's parsers.

Realism (§1.12):

* A/D rate ``rate_hz`` (5-25 Hz on real indicators, default 10), one frame per conversion;
* display division ``division_g`` (per model), capacity ``capacity_g``; overload above
  Max + 9 d and underload below -20 d, in the model's own overload frame where it has one;
* a load ramps on, overshoots and rings down; formats with a stability flag send it unstable
  until the last half second stayed within 1 d; ±1 d flicker at rest, slow zero drift and creep;
* line noise at configurable rates (:class:`NoiseSettings`): flipped bits, dropped bytes,
  garbage between frames; a partial first frame after opening and after a replug;
* :meth:`ScaleSimulator.reboot` (garbage burst, silence while booting, resume without a banner),
  :meth:`ScaleSimulator.unplug` / :meth:`ScaleSimulator.replug` (the pty and the link go away
  and come back at the same link path with a new pty);
* line-rate limiting: a transmitter sends at most ``baud / 10`` bytes per simulated second
  (10 bits per character for 8N1 and 7E1); when frames come faster than the line carries, the
  indicator skips samples (``frames_skipped``), as the C602 manual's "baud > AD rate x 120" warns;
* 7E1 models put the even parity bit into bit 7 of every frame byte (a pty refuses parity
  settings, §1.9), so a reader opening the port as 8N1 sees what it would see on a real line.

``speed`` fast-forwards everything, the line included: at ``speed=4`` a 1200-bd line carries
480 bytes per real second, which is 120 per simulated second.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from firmware_sim.encoders import (
    Encoder,
    FrameOptions,
    Reading,
    decimals_for,
    encode_a12_ww,
    encode_a12e_chk,
    encode_and_std,
    encode_cas22,
    encode_diy_hx711,
    encode_gs_nt,
    encode_mtsics,
    encode_ohaus,
    encode_toledo_cont,
    encode_yh_fwd,
    encode_yh_rev,
    encode_yh_stx,
    round_to_division,
    with_even_parity,
)
from firmware_sim.ptydevice import PtyDevice

logger = logging.getLogger(__name__)

STABLE_WINDOW_S: Final = 0.5
"""The stability flag needs every displayed value of this window within 1 d of the current one."""
RAMP_S: Final = 0.3
OVERSHOOT: Final = 0.12
RING_HZ: Final = 2.0
RING_DECAY_S: Final = 0.25
MOTION_NOISE: Final = 0.05
"""Extra noise while moving, as a fraction of the remaining motion amplitude."""
OVERLOAD_DIVISIONS: Final = 9
"""OL above Max + 9 d (A12E manual)."""
UNDERLOAD_DIVISIONS: Final = 20
"""LO below -20 d (A12E manual)."""
BOOT_S: Final = 1.5
"""Simulated seconds without output after a reboot."""
TX_SLICE_S: Final = 0.01
"""The transmitter writes at most this much line time (real seconds) per write."""
SETTLE_TIMEOUT_S: Final = 30.0

Framing = Literal["stx_etx", "stx_cr", "equals", "crlf"]


@dataclass(frozen=True)
class ModelSpec:
    """One indicator model: protocol id, line defaults, scale defaults and its encoder."""

    id: str
    description: str
    baud: int
    bytesize: Literal[7, 8]
    parity: Literal["N", "E"]
    division_g: int
    capacity_g: int
    has_stability_flag: bool
    has_overload_frame: bool
    framing: Framing
    encoder: Encoder = field(repr=False)
    stopbits: int = 1
    tare_line: bool = False
    """Sends one tare line (``wt…`` / ``ST,TR,…``) after a tare."""

    @property
    def seven_e1(self) -> bool:
        return self.bytesize == 7 and self.parity == "E"

    def encode(self, reading: Reading, options: FrameOptions | None = None) -> bytes:
        """The frame as the device builds it, before parity and line noise."""
        return self.encoder(reading, options or FrameOptions())


MODELS: Final[dict[str, ModelSpec]] = {
    spec.id: spec
    for spec in (
        ModelSpec(
            id="yh_stx",
            description="Yaohua XK3190-A9/A26/A23P continuous tF=0: STX sign 6 digits dp XOR ETX",
            baud=9600,
            bytesize=8,
            parity="N",
            division_g=10,
            capacity_g=150_000,
            has_stability_flag=False,
            has_overload_frame=False,
            framing="stx_etx",
            encoder=encode_yh_stx,
        ),
        ModelSpec(
            id="yh_rev",
            description="Yaohua XK3190 reversed (A26 fmt 1, A23P fmt 2): =000.3000, no line end",
            baud=9600,
            bytesize=8,
            parity="N",
            division_g=5,
            capacity_g=30_000,
            has_stability_flag=False,
            has_overload_frame=False,
            framing="equals",
            encoder=encode_yh_rev,
        ),
        ModelSpec(
            id="yh_fwd",
            description="Yaohua XK3190 forward (A26 format 2): =0003.000, no line end",
            baud=9600,
            bytesize=8,
            parity="N",
            division_g=20,
            capacity_g=60_000,
            has_stability_flag=False,
            has_overload_frame=False,
            framing="equals",
            encoder=encode_yh_fwd,
        ),
        ModelSpec(
            id="a12e_chk",
            description="XK3190-A12(E) manual format: WG004.139kg3D CR LF, OL/LO, XOR bytes 1-11",
            baud=9600,
            bytesize=8,
            parity="N",
            division_g=50,
            capacity_g=300_000,
            has_stability_flag=False,
            has_overload_frame=True,
            framing="crlf",
            encoder=encode_a12e_chk,
        ),
        ModelSpec(
            id="a12_ww",
            description="XK3190-A12/A12+E/A27E field format: ww/wn/wt0012.3kg CR LF, no checksum",
            baud=9600,
            bytesize=8,
            parity="N",
            division_g=100,
            capacity_g=300_000,
            has_stability_flag=False,
            has_overload_frame=False,
            framing="crlf",
            encoder=encode_a12_ww,
            tare_line=True,
        ),
        ModelSpec(
            id="and_std",
            description="A&D standard format: ST/US,+00012.34 kg CR LF, OL,+9999999E+19; 7E1",
            baud=2400,
            bytesize=7,
            parity="E",
            division_g=20,
            capacity_g=60_000,
            has_stability_flag=True,
            has_overload_frame=True,
            framing="crlf",
            encoder=encode_and_std,
        ),
        ModelSpec(
            id="gs_nt",
            description="A&D-like ST,GS,+0012.34kg CR LF (Kern, Salter, CAS AND, kiosk indicator)",
            baud=9600,
            bytesize=8,
            parity="N",
            division_g=10,
            capacity_g=150_000,
            has_stability_flag=True,
            has_overload_frame=True,
            framing="crlf",
            encoder=encode_gs_nt,
            tare_line=True,
        ),
        ModelSpec(
            id="cas22",
            description="CAS 22 bytes (CI-200A/CI-600D/NT-200): ST,GS,<id><lamp>,00013.50 kg CR LF",
            baud=9600,
            bytesize=8,
            parity="N",
            division_g=50,
            capacity_g=300_000,
            has_stability_flag=True,
            has_overload_frame=True,
            framing="crlf",
            encoder=encode_cas22,
        ),
        ModelSpec(
            id="toledo_cont",
            description="Toledo/MT continuous: STX SWA SWB SWC weight(6) tare(6) CR [CKS]; 7E1",
            baud=9600,
            bytesize=7,
            parity="E",
            division_g=20,
            capacity_g=600_000,
            has_stability_flag=True,
            has_overload_frame=True,
            framing="stx_cr",
            encoder=encode_toledo_cont,
        ),
        ModelSpec(
            id="mtsics",
            description="Mettler Toledo MT-SICS SIR stream: S S      12.34 kg / S D …, S + / S -",
            baud=9600,
            bytesize=8,
            parity="N",
            division_g=10,
            capacity_g=150_000,
            has_stability_flag=True,
            has_overload_frame=True,
            framing="crlf",
            encoder=encode_mtsics,
        ),
        ModelSpec(
            id="ohaus",
            description="Ohaus Defender/Explorer: '     12.340 kg  ', '?' while unstable",
            baud=9600,
            bytesize=8,
            parity="N",
            division_g=5,
            capacity_g=60_000,
            has_stability_flag=True,
            has_overload_frame=False,
            framing="crlf",
            encoder=encode_ohaus,
        ),
        ModelSpec(
            id="diy_hx711",
            description="HX711 + Arduino/ESP32 (HX711_ADC): Load_cell output val: 12.34 (kg)",
            baud=57600,
            bytesize=8,
            parity="N",
            division_g=10,
            capacity_g=100_000,
            has_stability_flag=False,
            has_overload_frame=False,
            framing="crlf",
            encoder=encode_diy_hx711,
        ),
    )
}


def encode_frame(model: str, reading: Reading, options: FrameOptions | None = None) -> bytes:
    """The frame ``model`` sends for ``reading`` (before parity and line noise)."""
    return MODELS[model].encode(reading, options)


# ---- physics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseSettings:
    """Imperfections, all optional; rates are probabilities per byte or per frame."""

    corrupt_rate: float = 0.0
    """Per byte: one bit flipped on the line."""
    drop_rate: float = 0.0
    """Per byte: lost on the line."""
    garbage_rate: float = 0.0
    """Per frame: 1-16 random bytes injected before it."""
    partial_first_frame: bool = True
    """The first frame after opening or replugging starts mid-frame."""
    flicker_sigma_d: float = 0.3
    """Noise at rest in divisions (0.3 d shows ±1 d on ~10 % of frames at mid-division)."""
    zero_drift_d: float = 0.2
    """Bound of the slow zero drift (random walk), in divisions."""
    creep: float = 0.0001
    """Creep under a constant load, as a fraction of the load reached after ``creep_tau_s``."""
    creep_tau_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("corrupt_rate", "drop_rate", "garbage_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        if self.flicker_sigma_d < 0 or self.zero_drift_d < 0 or self.creep < 0:
            raise ValueError("flicker, drift and creep must be >= 0")
        if self.creep_tau_s <= 0:
            raise ValueError("creep_tau_s must be positive")


QUIET: Final = NoiseSettings(
    partial_first_frame=False, flicker_sigma_d=0.0, zero_drift_d=0.0, creep=0.0
)
"""A perfect scale on a perfect line."""
NOISY: Final = NoiseSettings(corrupt_rate=0.002, drop_rate=0.002, garbage_rate=0.05)


class _LoadCell:
    """Load cell + indicator filter in simulated seconds: ramp, overshoot, ring, drift, creep."""

    def __init__(self, rng: random.Random, division_g: int, noise: NoiseSettings) -> None:
        self._rng = rng
        self._d = division_g
        self._noise = noise
        self._from = 0.0
        self._to = 0.0
        self._changed_at = -1e9
        self.drift_g = 0.0

    def set_load(self, grams: float, t: float) -> None:
        self._from, self._to, self._changed_at = self._motion(t)[0], grams, t

    def step_drift(self, dt: float) -> None:
        bound = self._noise.zero_drift_d * self._d
        if bound:
            step = self._rng.gauss(0.0, bound * math.sqrt(dt / 60.0))
            self.drift_g = min(bound, max(-bound, self.drift_g + step))

    def _motion(self, t: float) -> tuple[float, float]:
        """(load seen through the motion, no noise/drift/creep; amplitude of the motion left)."""
        tau, step = t - self._changed_at, self._to - self._from
        if tau < RAMP_S:
            return self._from + step * tau / RAMP_S, abs(step)
        envelope = step * OVERSHOOT * math.exp(-(tau - RAMP_S) / RING_DECAY_S)
        if abs(envelope) < self._d / 10:  # rung down: the indicator's filter holds
            return self._to, 0.0
        return self._to + envelope * math.sin(2 * math.pi * RING_HZ * (tau - RAMP_S)), abs(envelope)

    def moving(self, t: float) -> bool:
        return self._motion(t)[1] > 0

    def clean(self, t: float) -> float:
        """Settled value: load + creep + zero drift, no flicker."""
        value, _ = self._motion(t)
        tau = max(0.0, t - self._changed_at)
        creep = self._to * self._noise.creep * (1 - math.exp(-tau / self._noise.creep_tau_s))
        return value + creep + self.drift_g

    def sample(self, t: float) -> float:
        """One A/D conversion (grams, before rounding to the division)."""
        _, motion = self._motion(t)
        noise = self._noise.flicker_sigma_d * self._d + MOTION_NOISE * motion
        return self.clean(t) + (self._rng.gauss(0.0, noise) if noise else 0.0)


# ---- the simulator ----------------------------------------------------------------------------


Status = Literal["stable", "unstable", "overload", "underload"]


class ScaleSimulator(PtyDevice):
    """A weighing indicator of one of :data:`MODELS` on a pty; an async context manager."""

    label = "timbangan simulasi / simulated scale"

    def __init__(
        self,
        link: Path,
        model: str,
        *,
        rate_hz: float = 10.0,
        baud: int | None = None,
        division_g: int | None = None,
        capacity_g: int | None = None,
        seed: int | None = None,
        speed: float = 1.0,
        seven_e1: bool | None = None,
        noise: NoiseSettings | None = None,
        options: FrameOptions | None = None,
        max_backlog: int = 1024,
    ) -> None:
        """
        Args:
            link: symlink to create (replaced if it is a symlink) pointing at the pty slave.
            model: protocol id, a key of :data:`MODELS`.
            rate_hz: A/D conversions (= frames) per simulated second.
            baud: line speed; ``None`` = the model's default. At most ``baud / 10`` bytes
                leave per simulated second.
            division_g / capacity_g: display division and Max; ``None`` = the model's default.
            seed: random seed for physics and noise.
            speed: simulated seconds per real second (the line runs faster too).
            seven_e1: even parity in bit 7; ``None`` = the model's default.
            noise: line and load-cell imperfections; ``None`` = :class:`NoiseSettings` defaults.
            options: format variants (checksum styles, CAS device id).
            max_backlog: unread bytes allowed in the slave's input queue before flushing it.
        """
        if model not in MODELS:
            raise ValueError(f"unknown scale model {model!r}; known: {', '.join(MODELS)}")
        super().__init__(link, rate_hz=rate_hz, speed=speed, max_backlog=max_backlog)
        self.spec = MODELS[model]
        self.model = model
        self.baud = self.spec.baud if baud is None else baud
        self.division_g = self.spec.division_g if division_g is None else division_g
        self.capacity_g = self.spec.capacity_g if capacity_g is None else capacity_g
        self.seven_e1 = self.spec.seven_e1 if seven_e1 is None else seven_e1
        self.noise = NoiseSettings() if noise is None else noise
        self.options = FrameOptions() if options is None else options
        if self.baud < 50:
            raise ValueError("baud must be >= 50")
        self.dp = decimals_for(self.division_g)
        if not self.division_g < self.capacity_g <= 1_000_000 * self.division_g:
            raise ValueError("capacity_g must be 1..1,000,000 divisions")
        # Physics and line noise draw from separate generators, so the weights a seed gives do
        # not depend on how the line's timing skipped or garbled frames.
        self._rng = random.Random(seed)
        self._line_rng = random.Random(None if seed is None else f"line-{seed}")
        self._cell = _LoadCell(self._rng, self.division_g, self.noise)
        self._window: deque[int] = deque(maxlen=max(3, round(STABLE_WINDOW_S * rate_hz)))
        self._tare_g = 0
        self._booting_until = -1
        self._partial_next = self.noise.partial_first_frame

        self._txbuf = bytearray()
        self._tx_event = asyncio.Event()
        self._tx_queued = 0
        self._tx_done = 0

        self.frames_sent = 0
        """Frames handed to the line (whole or partial, possibly corrupted)."""
        self.frames_skipped = 0
        """Samples not sent because the line was still busy (baud too low for the A/D rate)."""
        self.garbage_sent = 0
        """Garbage bursts injected (line noise and reboots)."""
        self.bytes_corrupted = 0
        self.bytes_lost = 0
        """Frame bytes lost to line noise (``bytes_dropped`` counts bytes nobody read)."""
        self.reboots = 0
        self.plug_count = 0
        self.status: Status = "stable"

    # -- state --

    @property
    def displayed_g(self) -> int:
        """The settled display (net when tared): what the display reads at rest."""
        return round_to_division(self._cell.clean(self.sim_time), self.division_g) - self._tare_g

    @property
    def tare_g(self) -> int:
        return self._tare_g

    @property
    def booting(self) -> bool:
        return self._ticks < self._booting_until

    def _settled(self) -> bool:
        return not self._cell.moving(self.sim_time) and self.status != "unstable"

    # -- lifecycle --

    def _on_start(self) -> None:
        self.plug_count = 1
        self._window.extend([0] * (self._window.maxlen or 0))

    def _background(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        return [*super()._background(), ("transmitter", self._transmit())]

    # -- public actions --

    async def place(self, grams: int) -> None:
        """Put ``grams`` on the platform (negative: something taken off after zeroing).

        Returns once the display has settled (stable, or steady in overload/underload).
        """
        if abs(grams) > 10 * self.capacity_g:
            raise ValueError("grams beyond 10 x capacity would break the load cell")
        self._cell.set_load(grams, self.sim_time)
        await self._pause(1.0 / self.rate_hz)
        await self._wait_until(self._settled, SETTLE_TIMEOUT_S)

    async def remove(self) -> None:
        """Take everything off; returns once settled at zero."""
        await self.place(0)

    async def tare(self) -> None:
        """Tare the settled load: frames switch to net (formats that carry it)."""
        await self._wait_until(self._settled, SETTLE_TIMEOUT_S)
        self._tare_g = round_to_division(self._cell.clean(self.sim_time), self.division_g)
        if self.spec.tare_line and self.plugged and not self.booting:
            tare = Reading(self._tare_g, self.dp, True, mode="tare", division_g=self.division_g)
            self._send_frame(self.spec.encode(tare, self.options))
        await self._pause(1.0 / self.rate_hz)

    async def unplug(self) -> None:
        """The USB adapter goes away: the link disappears, readers of the old pty get EIO."""
        self._drop_pending()
        self._unplug()
        logger.info("kabel timbangan dicabut / scale unplugged: %s", self._link)

    async def replug(self) -> None:
        """The adapter comes back: a new pty at the same link, starting mid-frame."""
        if self.plugged:
            return
        self._replug()
        self.plug_count += 1
        self._partial_next = self.noise.partial_first_frame
        logger.info(
            "kabel timbangan dipasang lagi / scale replugged: %s -> %s",
            self._link,
            self._slave_name,
        )

    async def reboot(self) -> None:
        """Power glitch: the frame in flight is cut, garbage, silence, then frames resume."""
        self._drop_pending()
        if self.plugged:
            self._enqueue(self._line_rng.randbytes(self._line_rng.randint(8, 48)))
            self.garbage_sent += 1
        self.reboots += 1
        self._cell.drift_g = 0.0
        self._booting_until = self._ticks + math.ceil(BOOT_S * self.rate_hz)
        logger.info("timbangan dinyalakan ulang / scale rebooting: %s", self._link)
        sent = self.frames_sent
        await self._wait_until(lambda: not self.booting, timeout_s=math.inf)
        if self.plugged:
            await self._wait_until(lambda: self.frames_sent > sent, timeout_s=math.inf)

    async def send_raw(self, data: bytes) -> None:
        """Put bytes on the line as they are (paced by the baud rate); returns once sent."""
        if not self.plugged:
            raise RuntimeError("timbangan tidak terpasang / scale is unplugged")
        target = self._enqueue(data)
        await self._wait_until(lambda: self._tx_done >= target, timeout_s=math.inf)

    async def hold(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass (at least one sample)."""
        await self._pause(seconds)

    async def wait_frames(self, count: int) -> None:
        """Wait until ``count`` more frames went to the line."""
        until = self.frames_sent + count
        await self._wait_until(lambda: self.frames_sent >= until, timeout_s=math.inf)

    # -- sampling --

    def _tick(self) -> None:
        t = self.sim_time
        self._cell.step_drift(1.0 / self.rate_hz)
        gross = round_to_division(self._cell.sample(t), self.division_g)
        self._window.append(gross)
        stable = all(abs(v - gross) <= self.division_g for v in self._window)
        overload = gross > self.capacity_g + OVERLOAD_DIVISIONS * self.division_g
        underload = gross < -UNDERLOAD_DIVISIONS * self.division_g
        shown = gross - self._tare_g
        self.status = _status(stable=stable, overload=overload, underload=underload)
        if self.booting or not self.plugged:
            return
        reading = Reading(
            shown,
            self.dp,
            stable,
            overload=overload,
            underload=underload,
            mode="net" if self._tare_g else "gross",
            tare_g=self._tare_g,
            division_g=self.division_g,
        )
        frame = self.spec.encode(reading, self.options)
        if len(self._txbuf) >= len(frame):  # a whole frame still waits: the UART is busy
            self.frames_skipped += 1
            return
        self._send_frame(frame)

    def _send_frame(self, frame: bytes) -> None:
        noise = self.noise
        rng = self._line_rng
        if noise.garbage_rate and rng.random() < noise.garbage_rate:
            self._enqueue(rng.randbytes(rng.randint(1, 16)))
            self.garbage_sent += 1
        wire = with_even_parity(frame) if self.seven_e1 else frame
        if self._partial_next:
            self._partial_next = False
            wire = wire[rng.randint(1, len(wire) - 1) :]
        if noise.corrupt_rate or noise.drop_rate:
            wire = self._line_noise(wire)
        self._enqueue(wire)
        self.frames_sent += 1

    def _line_noise(self, wire: bytes) -> bytes:
        rng, out = self._line_rng, bytearray()
        for b in wire:
            if rng.random() < self.noise.drop_rate:
                self.bytes_lost += 1
                continue
            if rng.random() < self.noise.corrupt_rate:
                b ^= 1 << rng.randrange(8)
                self.bytes_corrupted += 1
            out.append(b)
        return bytes(out)

    # -- the line --

    def _enqueue(self, data: bytes) -> int:
        self._txbuf += data
        self._tx_queued += len(data)
        self._tx_event.set()
        return self._tx_queued

    def _drop_pending(self) -> None:
        self._tx_done += len(self._txbuf)
        self._txbuf.clear()

    async def _transmit(self) -> None:
        """Drain the transmit buffer at ``baud / 10`` bytes per simulated second."""
        loop = asyncio.get_running_loop()
        bytes_per_s = self.baud / 10 * self.speed
        chunk = max(1, int(bytes_per_s * TX_SLICE_S))
        next_at = loop.time()
        while True:
            if not self._txbuf:
                self._tx_event.clear()
                await self._tx_event.wait()
                next_at = max(next_at, loop.time())  # an idle line saves no credit
                continue
            now = loop.time()
            if next_at > now:
                await asyncio.sleep(next_at - now)
                continue
            next_at = max(next_at, now - TX_SLICE_S)  # late (busy loop): no catch-up burst
            data = bytes(self._txbuf[:chunk])
            del self._txbuf[:chunk]
            if self.plugged:
                self._write_raw(data)
            self._tx_done += len(data)
            next_at += len(data) / bytes_per_s


def _status(*, stable: bool, overload: bool, underload: bool) -> Status:
    if overload:
        return "overload"
    if underload:
        return "underload"
    return "stable" if stable else "unstable"


# ---- scenarios (CLI) --------------------------------------------------------------------------

Scenario = Literal["steady", "noisy", "unplug", "reboot", "overload"]
SCENARIOS: Final[tuple[Scenario, ...]] = ("steady", "noisy", "unplug", "reboot", "overload")


async def run_scale_scenario(
    *,
    link: Path,
    model: str,
    scenario: Scenario = "steady",
    seed: int | None = None,
    rate_hz: float = 10.0,
    baud: int | None = None,
    interval_s: float = 8.0,
    speed: float = 1.0,
) -> None:
    """Forever: a random load every ``interval_s`` simulated seconds, held, then removed.

    ``noisy`` adds garbage and corruption, ``unplug`` unplugs and replugs every third cycle,
    ``reboot`` reboots with the load on every third cycle, ``overload`` overloads every third.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    if interval_s <= 0:
        raise ValueError("interval_s must be positive")
    rng = random.Random(seed)
    noise = NOISY if scenario == "noisy" else None
    async with ScaleSimulator(
        link, model, rate_hz=rate_hz, baud=baud, seed=seed, speed=speed, noise=noise
    ) as sim:
        cycle = 0
        while True:
            cycle += 1
            special = cycle % 3 == 0
            if scenario == "overload" and special:
                grams = sim.capacity_g + 20 * sim.division_g
            else:
                grams = rng.randint(20 * sim.division_g, min(sim.capacity_g, 50_000))
            await sim.place(grams)
            logger.info(
                "beban simulasi / simulated load: %d g, tampil / shown %d g (%s)",
                grams,
                sim.displayed_g,
                sim.status,
            )
            if scenario == "reboot" and special:
                await sim.reboot()
            await sim.hold(interval_s / 2)
            await sim.remove()
            if scenario == "unplug" and special:
                await sim.unplug()
                await sim.hold(min(3.0, interval_s / 2))
                await sim.replug()
            await sim.hold(interval_s / 2)
