"""A known event id with other content is loud: a `conflict` dead letter, an alert once, the
ledger and InfluxDB unchanged; an operator resolves it once (issue 12, part 4)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ingest.main import IngestSettings
from tests.conftest import deposit_event, eventually
from tests.ledger_helpers import apply_deposit
from tests.test_ingest import influx_sum, ledger_counts, publish
from wastebank import access, alerts, ledger
from wastebank.cli import app
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.messages import DepositEvent, Topics
from wastebank.structs import encode_json, replace, to_builtins

pytestmark = pytest.mark.integration


def _conflicts(url: str) -> tuple[list[ledger.DeadLetter], list[alerts.SystemAlert]]:
    engine = ledger.make_engine(url)
    try:
        with Session(engine) as s:
            dead = [d for d in ledger.dead_letters(s) if d.reason == "conflict"]
            raised = alerts.alerts(s, active_only=False, code="deposit_conflict")
            for row in [*dead, *raised]:
                s.expunge(row)
        return dead, raised
    finally:
        engine.dispose()


def _event(install: str, seq: int, **changes: object) -> DepositEvent:
    ev = replace(deposit_event(seq), install=install, event_id=f"gw-01.{install}.{seq}")
    return replace(ev, **changes)


async def test_a_conflicting_duplicate_is_dead_lettered_alerted_once_and_resolved_once(
    ingester: IngestSettings, mqtt_settings: MqttSettings, influx_settings: InfluxSettings
) -> None:
    topic = Topics(mqtt_settings.topic_prefix).deposit("bs-batu-merah", "gw-01")
    first = _event("k7q2m", 1, net_g=1250)
    await publish(mqtt_settings, [(topic, encode_json(first))])

    async def applied() -> bool:
        return ledger_counts(ingester.ledger_url)[0] == 1

    await eventually(applied)
    before = ledger_counts(ingester.ledger_url)

    # The same id: once byte-identical, once the same meaning in other JSON (quiet
    # duplicates); then other grams, twice (the broker redelivering it), and another time.
    other = replace(first, net_g=9000)
    later = replace(first, measured_at=first.measured_at + timedelta(minutes=5))
    reordered = json.dumps(
        {k: v for k, v in to_builtins(first).items() if k not in ("kind", "flow", "tare_g")}
    ).encode()
    await publish(
        mqtt_settings,
        [
            (topic, encode_json(first)),
            (topic, reordered),
            (topic, encode_json(other)),
            (topic, encode_json(other)),
            (topic, encode_json(later)),
        ],
    )

    async def two_conflicts() -> bool:
        return len(_conflicts(ingester.ledger_url)[0]) == 2

    await eventually(two_conflicts)
    dead, raised = _conflicts(ingester.ledger_url)
    assert ledger_counts(ingester.ledger_url) == (before[0], 2, before[2])  # ledger unchanged
    assert {d.event_id for d in dead} == {first.event_id}
    assert "net_g: 1250 -> 9000" in dead[0].error
    assert "measured_at" in dead[1].error
    assert [(a.code, a.subject, a.cleared_at) for a in raised] == [
        ("deposit_conflict", first.event_id, None)
    ]

    # InfluxDB keeps the ledger's point: one deposit of 1,250 g.
    async def one_point() -> bool:
        rows = await influx_sum(influx_settings, 'SELECT count("net_g") FROM "deposit"')
        return bool(rows) and rows[0][1] == 1

    await eventually(one_point)
    ((_, total),) = await influx_sum(influx_settings, 'SELECT sum("net_g") FROM "deposit"')
    assert total == 1250

    port = ingester.metrics.port
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as web:
        text = (await web.get("/metrics")).text
    assert 'wastebank_ingest_deposits_total{outcome="conflict"} 3.0' in text
    assert 'wastebank_ingest_dead_lettered_total{reason="conflict"} 3.0' in text

    runner = CliRunner()
    url = ["--ledger-url", ingester.ledger_url]
    shown = runner.invoke(app, ["deadletter", "show", str(dead[0].id), *url])
    assert shown.exit_code == 0, shown.output
    assert "reason: conflict" in shown.output
    # Both versions: the ledger's (1,250 g) and the rejected payload (9,000 g).
    assert '"net_g": 1250' in shown.output
    assert '"net_g":9000' in shown.output

    listed = runner.invoke(app, ["alert", "list", *url])
    assert listed.exit_code == 1  # an alert is active
    assert first.event_id in listed.output

    # Resolve: the first applied as R-<id>, once; the second discarded; both audited.
    apply = ["deadletter", "resolve", str(dead[0].id), "--apply", "--reason", "dua setoran"]
    env = {
        "WASTEBANK_INFLUX__URL": influx_settings.url,
        "WASTEBANK_INFLUX__DATABASE": influx_settings.database,
    }
    # In a thread: the command runs its own event loop for the InfluxDB write.
    done = await asyncio.to_thread(runner.invoke, app, [*apply, *url], env=env)
    assert done.exit_code == 0, done.output
    assert f"applied as R-{dead[0].id}" in done.output
    assert "not written" not in done.output, done.output
    again = runner.invoke(app, [*apply, *url], env=env)
    assert again.exit_code == 1
    assert "settled already" in again.output
    refused = runner.invoke(
        app, ["deadletter", "resolve", str(dead[1].id), "--apply", "--discard", "--reason", "x"]
    )
    assert refused.exit_code == 2
    gone = runner.invoke(
        app,
        ["deadletter", "resolve", str(dead[1].id), "--discard", "--reason", "jam salah", *url],
    )
    assert gone.exit_code == 0, gone.output

    engine = ledger.make_engine(ingester.ledger_url)
    try:
        with Session(engine) as s:
            new = s.scalars(
                select(ledger.Deposit).where(ledger.Deposit.event_id == f"R-{dead[0].id}")
            ).one()
            assert (new.net_g, new.gateway_id, new.manual) == (9000, "gw-01", False)
            assert s.scalar(select(func.count()).select_from(ledger.Deposit)) == 2
            assert ledger.member_balance(s, "AMB-0001") == before[2] + ledger.amount_for(9000, 4000)
            assert ledger.verify(s) == []
            trail = access.audit_entries(s, entity="dead_letter")
            assert sorted(e.entity_id for e in trail) == sorted(str(d.id) for d in dead)
            assert alerts.alerts(s) == []  # cleared: no conflict of that id waits any more
    finally:
        engine.dispose()

    async def resolved_point() -> bool:
        rows = await influx_sum(influx_settings, 'SELECT sum("net_g") FROM "deposit"')
        return bool(rows) and rows[0][1] == 1250 + 9000

    await eventually(resolved_point)


def test_the_ledger_tells_a_duplicate_from_a_conflict(ledger_url: str) -> None:
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            first = _event("k7q2m", 1)
            apply_deposit(s, first)
            by_member = replace(first, card_uid=None, member_no="AMB-0001")
            cases = [
                first,  # the same
                by_member,  # the same member, named instead of carded: the same deposit
                replace(first, category_code="kardus"),
                replace(first, card_uid="04B2C3D4E5"),  # AMB-0002's card
                replace(first, bank_code="bs-nusaniwe"),
            ]
            out = ledger.apply_deposits(s, cases)
            kinds = [type(r).__name__ for r in out]
            assert kinds == [
                "AppliedDeposit",
                "AppliedDeposit",
                "DepositConflict",
                "DepositConflict",
                "DepositConflict",
            ]
            assert isinstance(out[2], ledger.DepositConflict)
            assert out[2].differences == ["category: pet -> kardus"]
            # In one batch, a second copy of a new id with other content conflicts too.
            fresh = _event("k7q2m", 2)
            twice = ledger.apply_deposits(s, [fresh, replace(fresh, net_g=1)])
            assert [type(r).__name__ for r in twice] == ["AppliedDeposit", "DepositConflict"]
            assert s.scalar(select(func.count()).select_from(ledger.Deposit)) == 2
    finally:
        engine.dispose()
