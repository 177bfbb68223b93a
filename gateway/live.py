"""What wakes the pages that show the gateway's live state."""

from __future__ import annotations

import asyncio
import contextlib


class Live:
    """Wakes whatever streams the gateway's live state (the attendant page's Server-Sent
    Events) when a reading, a deposit or the broker link changes; :meth:`stop` ends the streams
    at shutdown."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.version = 0
        self.stopped = False

    def notify(self) -> None:
        self.version += 1
        self._event.set()
        self._event = asyncio.Event()

    def stop(self) -> None:
        self.stopped = True
        self.notify()

    async def wait(self, seen: int, timeout: float) -> None:
        """Until a change after ``version`` ``seen`` (at once if there was one already), a
        stop, or ``timeout`` seconds."""
        if self.stopped or self.version != seen:
            return
        event = self._event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()
