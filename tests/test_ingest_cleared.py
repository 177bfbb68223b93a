"""An empty message on a retained report's topic is MQTT's "delete the retained report": the
step docs/fleet.md ("Limits") gives an operator for a device that left. The ingester counts and
logs it; it is no dead letter and changes no stored report."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.consumer import Ingester
from ingest.settings import IngestSettings
from wastebank import fleet, ledger
from wastebank.config import InfluxSettings, MqttSettings, load_settings
from wastebank.influx import Influx
from wastebank.messages import Topics


@pytest.fixture
async def ingester(ledger_url: str) -> AsyncIterator[Ingester]:
    settings = load_settings(
        IngestSettings,
        mqtt=MqttSettings(topic_prefix=""),
        influx=InfluxSettings(),
        ledger_url=ledger_url,
    )
    influx = Influx(settings.influx)  # never asked: handle() only builds the points
    ingester = Ingester(settings, ledger.make_engine(ledger_url), influx)
    yield ingester
    ingester.close()
    await influx.aclose()


def _counts(ledger_url: str) -> tuple[int, int]:
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            reports = len(s.scalars(select(fleet.DeviceReport)).all())
            letters = len(s.scalars(select(ledger.DeadLetter)).all())
            return reports, letters
    finally:
        engine.dispose()


async def test_a_cleared_retained_report_is_counted_not_a_dead_letter(
    ingester: Ingester, ledger_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    topics = Topics("")
    cleared = [
        topics.gateway_health("bs-a", "gw-a"),
        topics.gateway_status("bs-a", "gw-a"),
        topics.sensor_status("tps-1", "s-1"),
    ]
    with caplog.at_level(logging.INFO, "wastebank.ingest"):
        for topic in cleared:
            assert await ingester.handle(topic, b"") == []
    assert (ingester.stats.retained_cleared, ingester.stats.dead_lettered) == (3, 0)
    assert _counts(ledger_url) == (0, 0)
    assert f"retained report cleared: {cleared[0]}" in caplog.text


async def test_an_empty_deposit_or_alert_is_still_a_dead_letter(
    ingester: Ingester, ledger_url: str
) -> None:
    # only a retained report is deleted by an empty message; other kinds are never retained
    topics = Topics("")
    for topic in (topics.deposit("bs-a", "gw-a"), topics.gateway_alert("bs-a", "gw-a")):
        assert await ingester.handle(topic, b"") == []
    assert (ingester.stats.retained_cleared, ingester.stats.dead_lettered) == (0, 2)
    assert _counts(ledger_url) == (0, 2)
