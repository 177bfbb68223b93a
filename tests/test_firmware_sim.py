"""firmware_sim: the kiosk scale over a real pty (read with pyserial), TPS fill helpers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import serial

from firmware_sim.kiosk import KioskSimulator, ScriptedDeposit, round_to_division
from firmware_sim.tps import FillModel, TpsSimSettings, fill_ratio
from gateway.kiosk import DepositCandidate, KioskSession
from gateway.scale_protocol import FrameError, LineFramer, WeightReading, parse_line
from wastebank.config import load_settings

DEADLINE_S = 20.0


class Gateway:
    """The gateway's read path, minus MQTT: pyserial -> LineFramer -> parse_line -> session."""

    def __init__(self, link: Path) -> None:
        self.port = serial.Serial(str(link), 9600, timeout=0.05)
        self.framer = LineFramer()
        self.session = KioskSession()
        self.deposits: list[DepositCandidate] = []
        self.readings: list[WeightReading] = []
        self.errors: Counter[str] = Counter()

    def close(self) -> None:
        self.port.close()

    async def read_until(self, done: Callable[[], bool], deadline_s: float = DEADLINE_S) -> None:
        """Read and parse in a thread until ``done()``; fail the test at the deadline."""
        deadline = time.monotonic() + deadline_s
        while not done():
            assert time.monotonic() < deadline, "timed out waiting for the simulator"
            data = await asyncio.to_thread(self.port.read, 4096)
            self.handle(data, time.monotonic())

    def handle(self, data: bytes, now: float) -> None:
        for item in self.framer.feed(data):
            if isinstance(item, FrameError):
                self.errors[item.reason] += 1
                continue
            try:
                parsed = parse_line(item)
            except FrameError as exc:
                self.errors[exc.reason] += 1
                continue
            if isinstance(parsed, WeightReading):
                self.readings.append(parsed)
                candidate = self.session.on_reading(parsed, now)
            else:
                candidate = self.session.on_frame(parsed, now)
            if candidate is not None:
                self.deposits.append(candidate)


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "ttyKIOSK0"


@contextlib.contextmanager
def gateway_on(link: Path) -> Iterator[Gateway]:
    gateway = Gateway(link)
    try:
        yield gateway
    finally:
        gateway.close()


@contextlib.asynccontextmanager
async def running(task: asyncio.Task[None]) -> AsyncIterator[asyncio.Task[None]]:
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize(
    ("options", "grams"),
    [
        ({}, 12_345),
        ({"seven_e1": True}, 2_340),
        ({"seven_e1": True, "garbage_every": 5, "repeat_frames": True}, 875),
    ],
    ids=["8n1", "7e1", "7e1-garbage-retransmits"],
)
async def test_scripted_deposit_gives_one_candidate(
    link: Path, options: dict[str, bool | int], grams: int
) -> None:
    deposit = ScriptedDeposit("04A1B2C3", "plastik", grams)
    async with KioskSimulator(link, seed=7, speed=4.0, **options) as sim:  # type: ignore[arg-type]
        assert os.readlink(link) == sim.slave_name
        with gateway_on(link) as gw:
            async with running(asyncio.create_task(sim.deposit(deposit))) as playing:
                await gw.read_until(playing.done)
                await playing  # re-raise a simulator failure
                # the stream goes on; read until the post-deposit zero has arrived
                seen = len(gw.readings)
                await gw.read_until(lambda: len(gw.readings) >= seen + 3)

    assert len(gw.deposits) == 1, gw.deposits
    candidate = gw.deposits[0]
    assert (candidate.card_uid, candidate.category_code) == ("04A1B2C3", "plastik")
    assert candidate.net_g == deposit.displayed_g == round_to_division(grams)
    assert candidate.stable
    assert candidate.protocol == "gs_nt"
    assert candidate.raw_frames[0].endswith(",CARD,04A1B2C3*" + candidate.raw_frames[0][-2:])
    assert ",CAT,plastik*" in candidate.raw_frames[1]
    assert candidate.raw_frames[2].startswith("ST,GS,+")
    assert ",OK*" in candidate.raw_frames[3]
    assert gw.session.armed  # back at zero
    # the scale really moved: unstable lines on the way up and down
    assert any(r.status == "unstable" for r in gw.readings)
    if options.get("repeat_frames"):
        assert gw.session.duplicate_frames == 3
    if options.get("garbage_every"):
        assert sum(gw.errors.values()) >= 1
        assert set(gw.errors) <= {"bad_format", "parity", "overflow", "unit", "checksum"}
    else:
        assert not gw.errors or set(gw.errors) == {"bad_format"}  # at most a partial first line


async def test_two_deposits_same_member(link: Path) -> None:
    async with KioskSimulator(link, seed=3, speed=6.0) as sim:
        with gateway_on(link) as gw:
            for d in (
                ScriptedDeposit("DEADBEEF01", "kertas", 3_000),
                ScriptedDeposit("DEADBEEF01", "logam", 640),
            ):
                async with running(asyncio.create_task(sim.deposit(d))) as playing:
                    await gw.read_until(playing.done)
                    await playing
            await gw.read_until(lambda: len(gw.deposits) >= 2)
    assert [(d.category_code, d.net_g) for d in gw.deposits] == [("kertas", 3_000), ("logam", 640)]


async def test_nobody_reading_drops_bytes(link: Path) -> None:
    async with KioskSimulator(link, seed=1, speed=50.0, max_backlog=256) as sim:
        await sim.wait_lines(60)  # ~1000 bytes with nobody listening
        assert sim.bytes_dropped > 0
        assert sim.bytes_written > 0
        with gateway_on(link) as gw:  # the port still works for whoever opens it later
            await gw.read_until(lambda: len(gw.readings) >= 5)
        assert all(r.grams is not None and abs(r.grams) <= 10 for r in gw.readings)


async def test_send_raw_garbage_then_resync(link: Path) -> None:
    async with KioskSimulator(link, seed=1, speed=4.0) as sim:
        with gateway_on(link) as gw:
            await gw.read_until(lambda: len(gw.readings) >= 1)
            await sim.send_raw(b"\xff\x00\xfe" * 100 + b"\r\n" + b"ST,GS,+00\r\n")
            before = len(gw.readings)
            await gw.read_until(lambda: len(gw.readings) >= before + 3)
    assert gw.errors["overflow"] == 1
    assert gw.errors["bad_format"] >= 1


@pytest.fixture
def stale_link(link: Path, tmp_path: Path) -> Path:
    link.symlink_to(tmp_path / "old-device")
    return link


@pytest.fixture
def regular_file(link: Path) -> Path:
    link.write_text("not a tty")
    return link


async def test_link_replaced_and_removed(stale_link: Path) -> None:
    async with KioskSimulator(stale_link) as sim:
        assert os.readlink(stale_link) == sim.slave_name
        assert sim.link_path == stale_link
        assert sim.slave_name.startswith("/dev/pts/")
    assert _what_is(stale_link) == "nothing"


async def test_refuses_to_replace_a_regular_file(regular_file: Path) -> None:
    with pytest.raises(FileExistsError):
        async with KioskSimulator(regular_file):
            pass
    assert _what_is(regular_file) == "file: not a tty"


def _what_is(path: Path) -> str:
    if path.is_symlink():
        return f"symlink to {os.readlink(path)}"
    if path.is_file():
        return f"file: {path.read_text()}"
    return "something" if path.exists() else "nothing"


def test_scripted_deposit_validation() -> None:
    assert ScriptedDeposit("04A1B2C3", "plastik", 1_235).displayed_g == 1_240
    with pytest.raises(ValueError, match="card UID"):
        ScriptedDeposit("04a1b2c3", "plastik", 100)
    with pytest.raises(ValueError, match="category"):
        ScriptedDeposit("04A1B2C3", "Plastik", 100)
    with pytest.raises(ValueError, match="grams"):
        ScriptedDeposit("04A1B2C3", "plastik", 0)


@pytest.mark.parametrize(
    ("grams", "shown"), [(0, 0), (4, 0), (5, 10), (-5, -10), (1_234, 1_230), (-1_235, -1_240)]
)
def test_round_to_division(grams: float, shown: int) -> None:
    assert round_to_division(grams) == shown


# ---- TPS fill sensor (pure parts; the MQTT path is tested against the real broker) -------------


@pytest.mark.parametrize(
    ("distance", "ratio"),
    [(1400, 0.0), (1500, 0.0), (250, 1.0), (100, 1.0), (825, 0.5), (1170, 0.2)],
)
def test_fill_ratio(distance: int, ratio: float) -> None:
    assert fill_ratio(distance, 1400, 250) == pytest.approx(ratio)


def test_fill_ratio_rejects_inverted_geometry() -> None:
    with pytest.raises(ValueError, match="greater"):
        fill_ratio(500, 250, 1400)


def test_tps_settings_validation() -> None:
    with pytest.raises(ValueError, match="empty_distance_mm"):
        TpsSimSettings(empty_distance_mm=300, full_distance_mm=280)
    with pytest.raises(ValueError, match="time zone"):
        TpsSimSettings(timezone="Asia/Atlantis")


def test_fill_model_fills_and_gets_picked_up() -> None:
    settings = load_settings(TpsSimSettings)
    start = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    model = FillModel(settings, random.Random(5), start, fill=0.05)
    levels = []
    for _ in range(4 * 24 * 6):  # six days in 15-minute steps
        model.advance(15 * 60)
        distance = model.distance_mm()
        levels.append(fill_ratio(distance, settings.empty_distance_mm, settings.full_distance_mm))
        assert 0 <= distance <= 20_000
        assert 20 <= model.temperature_c() <= 35
    assert model.pickups >= 1
    assert max(levels) >= settings.pickup_fill - 0.1
    assert min(levels[len(levels) // 4 :]) <= 0.1  # emptied at a pickup
    assert 1 <= model.battery_pct() < 98
