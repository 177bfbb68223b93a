"""Shared machinery of the serial-device simulators: a real pseudo-terminal behind a stable link.

A :class:`PtyDevice` opens a pty, sets the slave raw and points ``link`` at the slave
(``/dev/pts/N``), so a gateway opens ``link`` with pyserial exactly like ``/dev/ttyUSB0``. It
keeps the slave open itself (writes never fail with EIO while nobody listens) and writes to the
master without blocking: when more than ``max_backlog`` bytes wait unread, the slave's input
queue is flushed and the bytes counted as dropped (a UART with nobody listening), and a full pty
buffer (EAGAIN) drops the write.

Simulated time advances one tick per ``1 / (rate_hz * speed)`` real seconds in a background task
owned by the async context manager; subclasses implement :meth:`PtyDevice._tick` and may run more
tasks next to the ticker (:meth:`PtyDevice._background`). :meth:`PtyDevice._unplug` and
:meth:`PtyDevice._replug` take the pty and the link away and bring a new pty back at the same
link, like a USB adapter with a ``/dev/serial/by-id`` name.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import fcntl
import logging
import math
import os
import struct
import termios
import tty
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, Self

logger = logging.getLogger(__name__)


class PtyDevice(abc.ABC):
    """A simulated serial device on a pty; an async context manager owning its tasks."""

    label = "perangkat simulasi / simulated device"
    """Log label: "Bahasa Indonesia / English"."""

    def __init__(
        self, link: Path, *, rate_hz: float, speed: float = 1.0, max_backlog: int = 1024
    ) -> None:
        if rate_hz <= 0 or speed <= 0:
            raise ValueError("rate_hz and speed must be positive")
        if max_backlog < 64:
            raise ValueError("max_backlog must be >= 64")
        self._link = link
        self.rate_hz = rate_hz
        self.speed = speed
        self.max_backlog = max_backlog

        self.bytes_written = 0
        self.bytes_dropped = 0

        self._master_fd = -1
        self._slave_fd = -1
        self._slave_name = ""
        self._ticks = 0
        self._tick_event = asyncio.Event()
        self._stopped = False
        self._tasks: list[asyncio.Task[None]] = []

    # -- properties --

    @property
    def link_path(self) -> Path:
        return self._link

    @property
    def slave_name(self) -> str:
        """The pty slave device, e.g. ``/dev/pts/3`` (empty before entering or when unplugged)."""
        return self._slave_name

    @property
    def plugged(self) -> bool:
        return self._master_fd >= 0

    @property
    def ticks(self) -> int:
        """Ticks (samples) produced so far."""
        return self._ticks

    @property
    def sim_time(self) -> float:
        return self._ticks / self.rate_hz

    # -- lifecycle --

    async def __aenter__(self) -> Self:
        self._open_pty()
        self._on_start()
        self._tasks = [
            asyncio.create_task(coro, name=f"{type(self).__name__}[{self._link}].{name}")
            for name, coro in self._background()
        ]
        logger.info("%s siap di %s -> %s / ready", self.label, self._link, self._slave_name)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            self._close_pty()

    def _on_start(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Hook run after the pty is open, before the tasks start."""

    def _background(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        """(name, coroutine) of the tasks to run while entered; the ticker by default."""
        return [("ticker", self._ticker())]

    # -- pty --

    def _open_pty(self) -> None:
        self._master_fd, self._slave_fd = os.openpty()
        try:
            tty.setraw(self._slave_fd)
            os.set_blocking(self._master_fd, False)
            self._slave_name = os.ttyname(self._slave_fd)
            _replace_symlink(self._link, self._slave_name)
        except BaseException:
            self._close_fds()
            raise

    def _close_pty(self) -> None:
        """Remove the link if it still points at our slave, then close both ends."""
        with contextlib.suppress(OSError):
            if self._slave_name and os.readlink(self._link) == self._slave_name:
                self._link.unlink()
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self._master_fd, self._slave_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master_fd = self._slave_fd = -1
        self._slave_name = ""

    def _unplug(self) -> None:
        """The adapter goes away: link removed, pty closed (a reader gets EIO / no data)."""
        if self.plugged:
            self._close_pty()

    def _replug(self) -> None:
        """A new pty appears behind the same link."""
        if not self.plugged:
            self._open_pty()

    def _write_raw(self, data: bytes) -> int:
        """Write to the master now; returns the bytes written (the rest counts as dropped)."""
        if self._master_fd < 0:
            raise RuntimeError("simulator belum dibuka / simulator is not open")
        backlog = _unread_bytes(self._slave_fd)
        if backlog > self.max_backlog:
            termios.tcflush(self._slave_fd, termios.TCIFLUSH)
            self.bytes_dropped += backlog
        try:
            written = os.write(self._master_fd, data)
        except BlockingIOError:
            written = 0
        self.bytes_written += written
        self.bytes_dropped += len(data) - written
        return written

    # -- simulated time --

    @abc.abstractmethod
    def _tick(self) -> None:
        """One sample of simulated time; called ``rate_hz`` times per simulated second."""

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / (self.rate_hz * self.speed)
        next_at = loop.time()
        try:
            while True:
                self._tick()
                self._ticks += 1
                self._tick_event.set()
                self._tick_event = asyncio.Event()
                next_at += period
                delay = next_at - loop.time()
                if delay < -10 * period:  # fell far behind (suspended?): do not burst
                    next_at, delay = loop.time(), 0.0
                await asyncio.sleep(max(0.0, delay))
        finally:
            self._stopped = True
            self._tick_event.set()

    async def _wait_ticks(self, count: int) -> None:
        until = self._ticks + count
        await self._wait_until(lambda: self._ticks >= until, timeout_s=math.inf)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` of simulated time (at least one tick)."""
        await self._wait_ticks(max(1, math.ceil(seconds * self.rate_hz)))

    async def _wait_until(self, predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
        """Wait until ``predicate()`` after some tick; ``timeout_s`` is simulated seconds."""
        deadline = self._ticks + timeout_s * self.rate_hz
        while not predicate():
            if self._stopped:
                raise RuntimeError("simulator tidak berjalan / simulator is not running")
            if self._ticks >= deadline:
                raise TimeoutError("timbangan tidak stabil / scale did not settle")
            await self._tick_event.wait()


def _unread_bytes(fd: int) -> int:
    result = fcntl.ioctl(fd, termios.FIONREAD, struct.pack("i", 0))
    return int(struct.unpack("i", result)[0])


def _replace_symlink(link: Path, target: str) -> None:
    if link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a symlink; not replacing it")
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    os.replace(tmp, link)
