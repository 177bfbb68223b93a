"""`--log-format json`: one JSON object per line with time, level, logger, message and extras."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import pytest

from wastebank.cli import _logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_json_logs_one_object_per_line() -> None:
    stream = io.StringIO()
    _logging(json=True, stream=stream)
    log = logging.getLogger("wastebank.ingest")
    log.warning("pesan ditolak / dead letter on %s", "t/1", extra={"topic": "t/1", "attempt": 2})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("gagal / failed")
    log.debug("not at info level")

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "WARNING"
    assert first["logger"] == "wastebank.ingest"
    assert first["message"] == "pesan ditolak / dead letter on t/1"
    assert (first["topic"], first["attempt"]) == ("t/1", 2)
    assert datetime.fromisoformat(first["time"]).utcoffset() is not None
    assert second["level"] == "ERROR"
    assert "ValueError: boom" in second["exc_info"]


@pytest.mark.usefixtures("restore_logging")
def test_text_logs_stay_the_default() -> None:
    stream = io.StringIO()
    _logging(verbose=True, stream=stream)
    logging.getLogger("wastebank.gateway").debug("hello %d", 1)
    assert stream.getvalue().rstrip().endswith("DEBUG wastebank.gateway: hello 1")


@pytest.mark.parametrize("command", ["ingest", "gateway", "api"])
def test_long_running_commands_take_the_option(command: str) -> None:
    # a real process: `wastebank gateway` becomes `python -m gateway` (exec)
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "wastebank.cli", command, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    assert "--log-format" in run("--help").stdout
    refused = run("--log-format", "xml")
    assert refused.returncode == 2
    assert "xml" in refused.stderr
