"""A scale deposit heavier than its scale's limit (issue 13, part 5) arrives through the broker
and the ingester: not credited, not dropped: an ``over_limit`` dead letter, counted, resolved by
an operator (applied as the scale sent it, audited) or replayed after the limit is raised."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ingest.main import IngestSettings
from ingest.main import run as run_ingest
from ingest.metrics import MetricsSettings
from tests.conftest import deposit_event, eventually, free_port
from tests.test_ingest import influx_sum, ledger_counts, publish
from wastebank import access, ledger
from wastebank.cli import app
from wastebank.config import InfluxSettings, MqttSettings, load_settings
from wastebank.messages import Topics
from wastebank.money_rules import MoneyRules
from wastebank.structs import encode_json

pytestmark = pytest.mark.integration

SCALE_MAX_G = 20_000  # gw-01/scale-01, the scale of tests.conftest.deposit_event


@pytest.fixture
async def ingester(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str, test_id: str
) -> AsyncIterator[IngestSettings]:
    """As tests.conftest's ingester, with a limit of its own on the scale gw-01/scale-01."""
    settings = load_settings(
        IngestSettings,
        mqtt=mqtt_settings,
        influx=influx_settings,
        ledger_url=ledger_url,
        client_id=f"ingest-{test_id}",
        batch_max_age_s=0.05,
        metrics=MetricsSettings(port=free_port()),
        money=MoneyRules(scales={"gw-01/scale-01": SCALE_MAX_G}),
    )
    ready = asyncio.Event()
    task = asyncio.create_task(run_ingest(settings, ready=ready))
    await asyncio.wait_for(ready.wait(), 20)
    yield settings
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _over_limit(url: str) -> list[ledger.DeadLetter]:
    engine = ledger.make_engine(url)
    try:
        with Session(engine) as s:
            rows = [d for d in ledger.dead_letters(s) if d.reason == "over_limit"]
            for row in rows:
                s.expunge(row)
            return rows
    finally:
        engine.dispose()


async def test_a_deposit_over_its_scales_limit_is_dead_lettered_counted_and_resolved(
    ingester: IngestSettings, mqtt_settings: MqttSettings, influx_settings: InfluxSettings
) -> None:
    topic = Topics(mqtt_settings.topic_prefix).deposit("bs-batu-merah", "gw-01")
    at_limit = deposit_event(1, net_g=SCALE_MAX_G)
    over = deposit_event(2, net_g=SCALE_MAX_G + 1)
    far_over = deposit_event(3, net_g=10_000_000)  # 10 t: the loopback deposit
    await publish(mqtt_settings, [(topic, encode_json(ev)) for ev in (at_limit, over, far_over)])

    async def two_kept() -> bool:
        return len(_over_limit(ingester.ledger_url)) == 2

    await eventually(two_kept)
    dead = _over_limit(ingester.ledger_url)
    assert [d.event_id for d in dead] == [over.event_id, far_over.event_id]
    assert dead[0].error.startswith("over limit: setoran 20,001 kg dari timbangan gw-01/scale-01")
    assert 'money.scales."gw-01/scale-01"' in dead[0].error
    assert dead[0].payload == encode_json(over)  # byte for byte
    deposits, _, balance = ledger_counts(ingester.ledger_url)
    assert (deposits, balance) == (1, ledger.amount_for(SCALE_MAX_G, 4000))  # only the first

    port = ingester.metrics.port
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as web:
        text = (await web.get("/metrics")).text
    assert 'wastebank_ingest_dead_lettered_total{reason="over_limit"} 2.0' in text
    assert 'wastebank_ingest_deposits_total{outcome="applied"} 1.0' in text

    runner = CliRunner()
    url = ["--ledger-url", ingester.ledger_url]
    shown = runner.invoke(app, ["deadletter", "show", str(dead[0].id), *url])
    assert shown.exit_code == 0, shown.output
    assert "alasan / reason: over_limit" in shown.output

    # The operator re-weighed the first: applied as the scale sent it, under its own id.
    env = {
        "WASTEBANK_INFLUX__URL": influx_settings.url,
        "WASTEBANK_INFLUX__DATABASE": influx_settings.database,
    }
    resolve = ["deadletter", "resolve", str(dead[0].id), "--apply", "--reason", "ditimbang ulang"]
    done = await asyncio.to_thread(runner.invoke, app, [*resolve, *url], env=env)
    assert done.exit_code == 0, done.output
    assert f"applied as {over.event_id}" in done.output
    again = runner.invoke(app, [*resolve, *url], env=env)
    assert (again.exit_code, "settled already" in again.output) == (1, True)

    # The second, after the limit is raised: a replay with the ingester's new settings.
    raised = {
        **env,
        "WASTEBANK_MQTT__TOPIC_PREFIX": mqtt_settings.topic_prefix,
        "WASTEBANK_MONEY__SCALES": '{"gw-01/scale-01": 10000000}',
    }
    replay = await asyncio.to_thread(
        runner.invoke, app, ["deadletter", "replay", str(dead[1].id), *url], env=raised
    )
    assert replay.exit_code == 0, replay.output

    engine = ledger.make_engine(ingester.ledger_url)
    try:
        with Session(engine) as s:
            assert s.scalar(select(func.count()).select_from(ledger.Deposit)) == 3
            resolved = ledger.deposit_by_event_id(s, over.event_id)
            assert resolved is not None
            assert (resolved.net_g, resolved.manual, resolved.author) == (
                SCALE_MAX_G + 1,
                False,
                access.cli_actor().name,
            )
            assert ledger.member_balance(s, "AMB-0001") == sum(
                ledger.amount_for(g, 4000) for g in (SCALE_MAX_G, SCALE_MAX_G + 1, 10_000_000)
            )
            assert [e.action for e in access.audit_entries(s, entity="dead_letter")] == [
                "deadletter.resolve"
            ]
            assert ledger.verify(s) == []
    finally:
        engine.dispose()

    # InfluxDB has the three deposits the ledger has, no more.
    async def three_points() -> bool:
        rows = await influx_sum(influx_settings, 'SELECT sum("net_g") FROM "deposit"')
        return bool(rows) and rows[0][1] == SCALE_MAX_G * 2 + 1 + 10_000_000

    await eventually(three_points)
