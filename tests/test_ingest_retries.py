"""The ingester's retries (through stamina), without services: what is tried again, how often,
with which wait, what is counted and logged. ``stamina.set_testing`` takes the waits out; the
tests with the real services (test_ingest.py, test_ingest_faults.py) show the same retries live.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

import pytest
import stamina
from sqlalchemy.exc import OperationalError

import ingest.main as ingest_main
from ingest.consumer import Ingester
from ingest.deadletter import REPLAY_WRITE_ATTEMPTS, ReplayAborted, ReplaySummary
from ingest.deadletter import _write as replay_write
from ingest.items import Item, Rejected
from ingest.settings import IngestSettings
from wastebank.config import InfluxSettings, MqttSettings, load_settings
from wastebank.errors import BadInput, Unavailable
from wastebank.influx import ApiVersion, Influx, InfluxError, classify, retry_wait

UNAVAILABLE = InfluxError("write answered 503", status=503, retryable=True)
REFUSED = InfluxError("write answered 400: unable to parse", status=400, retryable=False)
BEYOND = InfluxError(
    "write answered 400: partial write: points beyond retention policy dropped=2",
    status=400,
    retryable=False,
    partial=True,
    dropped=2,
)


class ScriptedWriter:
    """An InfluxWriter that fails as told, then takes every write."""

    api: ApiVersion = "v1"

    def __init__(self, failures: Sequence[InfluxError]) -> None:
        self.failures = list(failures)
        self.calls: list[list[str]] = []

    async def write(self, lines: Sequence[str]) -> None:
        self.calls.append(list(lines))
        if self.failures:
            raise self.failures.pop(0)

    async def aclose(self) -> None:
        pass


@pytest.fixture
async def influx() -> AsyncIterator[Influx]:
    influx = Influx(InfluxSettings())  # never asked: the writers here are scripted
    yield influx
    await influx.aclose()


def ingester_with(influx: Influx, writer: ScriptedWriter) -> Ingester:
    settings = load_settings(
        IngestSettings,
        mqtt=MqttSettings(topic_prefix=""),
        influx=InfluxSettings(),
        ledger_url="sqlite://",
    )
    return Ingester(settings, None, influx, writer)


def items(*lines: str) -> list[Item]:
    return [Item("t", b"{}", lines=[line]) for line in lines]


def test_retry_wait_retries_what_is_retryable_after_the_servers_retry_after() -> None:
    assert retry_wait(classify(429, b"", "7")) == 7.0
    assert retry_wait(classify(503, b"")) is True
    assert retry_wait(classify(401, b"")) is True  # a login an operator fixes: held, not dropped
    assert retry_wait(classify(400, b"unable to parse")) is False
    assert retry_wait(classify(413, b"")) is False  # too large: split, never the same again
    assert retry_wait(ValueError("not InfluxDB's")) is False


async def test_an_unavailable_influxdb_is_retried_counted_and_logged_once(
    influx: Influx, caplog: pytest.LogCaptureFixture
) -> None:
    writer = ScriptedWriter([UNAVAILABLE, UNAVAILABLE])
    ingester = ingester_with(influx, writer)
    caplog.set_level(logging.INFO, "wastebank.ingest")
    with stamina.set_testing(True, attempts=3):
        await ingester.write_items(items("m a=1i 1", "m a=2i 2"))
    assert writer.calls == [["m a=1i 1", "m a=2i 2"]] * 3
    assert ingester.stats.write_retries == 2
    assert ingester.stats.points_written == 2
    assert caplog.text.count("unavailable, retrying") == 1
    assert "accepting writes again" in caplog.text


async def test_a_write_influxdb_refuses_is_not_retried_but_dead_lettered_per_message(
    influx: Influx,
) -> None:
    writer = ScriptedWriter([REFUSED, REFUSED])  # the batch, then its first message alone
    ingester = ingester_with(influx, writer)
    dead: list[tuple[str, bytes, str]] = []

    async def dead_letter(topic: str, payload: bytes, error: str) -> None:
        dead.append((topic, payload, error))

    ingester.dead_letter = dead_letter  # type: ignore[method-assign]
    with stamina.set_testing(True, attempts=10):
        await ingester.write_items(items("bad a=1i 1", "good a=2i 2"))
    assert writer.calls == [["bad a=1i 1", "good a=2i 2"], ["bad a=1i 1"], ["good a=2i 2"]]
    assert [error for _, _, error in dead] == [f"InfluxDB refused: {REFUSED}"]
    assert ingester.stats.write_retries == 0
    assert ingester.stats.points_written == 1


async def test_points_beyond_retention_are_counted_not_retried(influx: Influx) -> None:
    writer = ScriptedWriter([BEYOND])
    ingester = ingester_with(influx, writer)
    with stamina.set_testing(True, attempts=10):
        await ingester.write_items(items("old a=1i 1"))
    assert len(writer.calls) == 1
    assert (ingester.stats.points_expired, ingester.stats.write_retries) == (2, 0)


async def test_a_ledger_that_cannot_take_the_batch_is_tried_again_from_a_clean_slate(
    influx: Influx, caplog: pytest.LogCaptureFixture
) -> None:
    ingester = ingester_with(influx, ScriptedWriter([]))
    seen: list[tuple[str | None, list[str]]] = []

    def ledger_batch(deposits: list[Item], invalid: list[Item], dead_letter: bool) -> None:
        seen.append((deposits[0].error, deposits[0].lines))
        if len(seen) < 3:
            deposits[0].error, deposits[0].lines = "half done", ["half a=1i 1"]
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        deposits[0].lines = ["deposit a=1i 1"]

    ingester._ledger_batch = ledger_batch  # type: ignore[method-assign]
    deposit = Item("t", b"{}")
    caplog.set_level(logging.INFO, "wastebank.ingest")
    with stamina.set_testing(True, attempts=3):
        await ingester._ledger_retrying([deposit], [], True)
    assert seen == [(None, []), (None, []), (None, [])]  # each try starts as the first did
    assert (deposit.error, deposit.lines) == (None, ["deposit a=1i 1"])
    assert caplog.text.count("ledger unavailable, retrying") == 1
    assert "ledger accepting writes again" in caplog.text


async def test_a_ledger_error_of_another_kind_is_raised_at_once(influx: Influx) -> None:
    ingester = ingester_with(influx, ScriptedWriter([]))
    calls: list[int] = []

    def ledger_batch(deposits: list[Item], invalid: list[Item], dead_letter: bool) -> None:
        calls.append(1)
        raise KeyError("a bug, not an outage")

    ingester._ledger_batch = ledger_batch  # type: ignore[method-assign]
    with stamina.set_testing(True, attempts=5), pytest.raises(KeyError):
        await ingester._ledger_retrying([Item("t", b"{}")], [], True)
    assert calls == [1]


async def test_start_waits_for_influxdb_and_gives_up_at_once_on_a_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tries: list[int] = []

    async def ping() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise UNAVAILABLE
        return "1.6.7"

    with stamina.set_testing(True, attempts=3):
        assert await ingest_main._retrying(ping, "InfluxDB") == "1.6.7"
    assert len(tries) == 3
    assert caplog.text.count("waiting for InfluxDB") == 1

    async def refused() -> str:
        tries.append(1)
        raise REFUSED

    tries.clear()
    with stamina.set_testing(True, attempts=3), pytest.raises(InfluxError):
        await ingest_main._retrying(refused, "InfluxDB")
    assert len(tries) == 1


async def test_a_replay_stops_after_its_attempts_and_keeps_what_it_did() -> None:
    writer = ScriptedWriter([UNAVAILABLE] * 50)
    summary = ReplaySummary(replayed=[1, 2])
    with (
        stamina.set_testing(True, attempts=50, cap=True),  # cap: the replay's own bound holds
        pytest.raises(ReplayAborted) as info,
    ):
        await replay_write(writer, ["m a=1i 1"], summary)
    assert len(writer.calls) == REPLAY_WRITE_ATTEMPTS
    assert info.value.summary.replayed == [1, 2]
    writer = ScriptedWriter([UNAVAILABLE, BEYOND])
    with stamina.set_testing(True, attempts=50, cap=True):
        await replay_write(writer, ["m a=1i 1"], summary)  # beyond retention: done, as live
    assert len(writer.calls) == 2


def test_the_ingesters_errors_are_in_the_project_families() -> None:
    assert isinstance(Rejected("invalid DepositEvent: ..."), BadInput)
    aborted = ReplayAborted("InfluxDB tidak tersedia / unavailable", ReplaySummary())
    assert isinstance(aborted, Unavailable)
    assert aborted.status == 503
