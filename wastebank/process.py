"""What every process of ours does as it starts, whichever way it is started (the `wastebank`
CLI, or ``python -m gateway``, which the CLI's `gateway` command becomes): the files it creates
private, its log lines set up, the exit status of a failure, and a clean stop on SIGTERM as
on Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any, TextIO

from wastebank.formats import terminal_text

__all__ = [
    "FAILED",
    "STOP_SIGNALS",
    "TextFormatter",
    "private_files",
    "run_until_stopped",
    "setup_logging",
]

FAILED = 2
"""The exit status of a command that could not do its work (an error: settings, services, a
refusal, unreadable input); click's usage errors exit 2 as well. 1 is a command's own
verdict: it ran and found something wrong (problems in the books, drift, an active alert)."""


def private_files() -> None:
    """Every file and directory the process creates is its user's alone (umask 077): ledgers,
    outboxes, backups, statements, `.run/` and what the services write there hold members'
    money, names and passwords."""
    os.umask(0o077)


class TextFormatter(logging.Formatter):
    """Text log lines whose message (with its arguments: a topic, a device's text, a field name
    a device made up) cannot hold a control character: one record is one line, and a log read
    on a terminal sends it no command. A traceback keeps its lines. JSON lines escape already."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return terminal_text(super().formatMessage(record))


def setup_logging(
    verbose: bool = False, *, json: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Log to stderr (or ``stream``) as text, or as one JSON object per line with ``time``,
    ``level``, ``logger``, ``message`` and any ``extra=`` fields. Returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if json:
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",  # ISO 8601, UTC
            )
        )
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True
    )
    # One line per InfluxDB write or health probe is noise; keep their warnings.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Ctrl-C, and what systemd, ``kill`` and a container runtime send to stop a process."""


def run_until_stopped(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` (a long-running process's loop) until it returns or a stop signal
    (:data:`STOP_SIGNALS`) arrives. A signal cancels it, so its ``finally`` blocks run (its stop
    line with its counts), and returns normally: exit status 0 under systemd as at a terminal.
    A second signal cancels again (the stop itself is then cut short)."""

    async def until_stopped() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        stopped: list[signal.Signals] = []

        def stop(sig: signal.Signals) -> None:
            stopped.append(sig)
            task.cancel()

        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop, sig)
        try:
            await main
        except asyncio.CancelledError:
            if not stopped:
                raise
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    asyncio.run(until_stopped())
