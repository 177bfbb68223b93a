"""What every process of ours does as it starts, whichever way it is started (the `wastebank`
CLI, or ``python -m gateway``, which the CLI's `gateway` command becomes): the files it creates
private, its log lines set up, and the exit status of a failure."""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

__all__ = ["FAILED", "private_files", "setup_logging"]

FAILED = 2
"""The exit status of a command that could not do its work (an error: settings, services, a
refusal, unreadable input); click's usage errors exit 2 as well. 1 is a command's own
verdict: it ran and found something wrong (problems in the books, drift, an active alert)."""


def private_files() -> None:
    """Every file and directory the process creates is its user's alone (umask 077): ledgers,
    outboxes, backups, statements, `.run/` and what the services write there hold members'
    money, names and passwords."""
    os.umask(0o077)


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
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True
    )
    # One line per InfluxDB write or health probe is noise; keep their warnings.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler
