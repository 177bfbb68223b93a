"""Chaos at the edge: the gateway SIGKILLed again and again and the broker restarted while the kiosk
keeps weighing. At the ledger, every deposit the gateway confirmed arrives exactly once.

"Confirmed" is what the gateway committed to its outbox: the outbox hands out sequence numbers in
the same transaction as the row, so seq 1..last_seq is exactly the set of confirmed deposits, even
for a deposit whose gateway was killed before it could log or publish it.
"""

from __future__ import annotations

import random
import signal
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from firmware_sim.kiosk import KioskSimulator, ScriptedDeposit
from tests.conftest import (
    PrivateMosquitto,
    Processes,
    eventually,
    settings_env,
    write_site,
)
from tests.ledger_helpers import journal_is_balanced
from wastebank import ledger
from wastebank.config import InfluxSettings
from wastebank.influx import Influx

pytestmark = pytest.mark.integration

ROUNDS = 6
DEPOSITS_PER_ROUND = 2
CARDS = ["04A1B2C3D4", "04A1B2C3D5", "04A1B2C3D6"]
CATEGORIES = ["pet", "kardus", "kaleng", "aluminium"]


def last_seq(outbox: Path) -> int:
    if not outbox.exists():
        return 0
    db = sqlite3.connect(f"{outbox.as_uri()}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
        return int(row[0]) if row else 0
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def install_of(outbox: Path) -> str:
    db = sqlite3.connect(f"{outbox.as_uri()}?mode=ro", uri=True)
    try:
        (install,) = db.execute("SELECT value FROM identity WHERE key='install'").fetchone()
        return str(install)
    finally:
        db.close()


def ledger_event_ids(url: str) -> list[str]:
    engine = ledger.make_engine(url)
    try:
        with Session(engine) as s:
            return list(s.scalars(select(ledger.Deposit.event_id)))
    finally:
        engine.dispose()


async def test_sigkill_and_broker_restarts_lose_and_double_nothing(
    private_mosquitto: PrivateMosquitto,
    processes: Processes,
    influx_settings: InfluxSettings,
    ledger_url: str,
    tmp_path: Path,
    test_id: str,
) -> None:
    broker = private_mosquitto
    mqtt = broker.mqtt(f"chaos-{test_id}/")
    env = settings_env(mqtt, influx_settings, ledger_url)
    processes.start("ingest", ["ingest"], {**env, "WASTEBANK_CLIENT_ID": f"ingest-{test_id}"})
    outbox = tmp_path / "outbox.db"
    link = tmp_path / "kiosk.tty"
    site = write_site(
        tmp_path / "site.toml", gateway_id="gw-chaos", link=link, outbox=outbox, credentials=mqtt
    )
    rng = random.Random(20261123)
    starts = 0

    def start_gateway() -> None:
        nonlocal starts
        starts += 1
        processes.start(f"gateway-{starts}", ["gateway", "--config", str(site)], env)

    async def gateway_reading() -> bool:
        return "timbangan terhubung" in processes.log(f"gateway-{starts}")

    async def ingest_subscribed() -> bool:
        return "subscribed" in processes.log("ingest")

    await eventually(ingest_subscribed)
    async with KioskSimulator(link, seed=11, speed=4) as kiosk:
        for round_no in range(ROUNDS):
            start_gateway()
            await eventually(gateway_reading)
            if round_no % 3 == 1:
                broker.stop()  # these deposits wait in the outbox
            for _ in range(DEPOSITS_PER_ROUND):
                before = last_seq(outbox)
                grams = rng.randrange(300, 9000, 10)
                await kiosk.deposit(
                    ScriptedDeposit(rng.choice(CARDS), rng.choice(CATEGORIES), grams)
                )

                async def confirmed(before: int = before) -> bool:
                    return last_seq(outbox) == before + 1

                await eventually(confirmed)
            # Kill right after the last confirm: its publish is likely still in flight.
            processes.kill(f"gateway-{starts}", signal.SIGKILL)
            if not broker.running():
                broker.start()

        # A last, clean gateway drains whatever the killed ones left in the outbox.
        start_gateway()
        await eventually(gateway_reading)

    # One outbox, one install: every start of the gateway kept the ids of the first.
    install = install_of(outbox)
    expected = {f"gw-chaos.{install}.{seq}" for seq in range(1, last_seq(outbox) + 1)}
    assert len(expected) == ROUNDS * DEPOSITS_PER_ROUND

    async def all_applied() -> bool:
        return set(ledger_event_ids(ledger_url)) == expected

    await eventually(all_applied, timeout=60)
    ids = ledger_event_ids(ledger_url)
    assert len(ids) == len(set(ids)) == len(expected)  # exactly once, by construction and by count
    engine = ledger.make_engine(ledger_url)
    with Session(engine) as s:
        assert journal_is_balanced(s)
        entries = s.scalar(select(func.count()).select_from(ledger.JournalEntry))
        assert entries == 2 * len(expected)
    engine.dispose()

    # InfluxDB agrees: one point per deposit, however often a message was delivered.
    influx = Influx(influx_settings)
    try:

        async def influx_complete() -> bool:
            series = await influx.query('SELECT count("net_g") FROM "deposit"')
            return bool(series) and series[0].values[0][1] == len(expected)

        await eventually(influx_complete)
    finally:
        await influx.aclose()
