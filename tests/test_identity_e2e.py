"""One id per deposit for life, on the real processes (issue 12): an SD card swapped, two
gateways with one gateway id. simulated kiosk (pty) -> `wastebank gateway` -> Mosquitto ->
`wastebank ingest` -> ledger + InfluxDB."""

from __future__ import annotations

import functools
import signal
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from firmware_sim.kiosk import KioskSimulator, ScriptedDeposit
from tests.conftest import Processes, eventually, mqtt_login, settings_env, write_site
from tests.test_end_to_end import CARDS
from tests.test_ingest import influx_sum
from wastebank import alerts, ledger
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.messages import DepositEvent, Topics
from wastebank.structs import decode_json

pytestmark = pytest.mark.integration


def _deposits(url: str) -> list[tuple[str, int]]:
    engine = ledger.make_engine(url)
    try:
        with Session(engine) as s:
            rows = s.execute(select(ledger.Deposit.event_id, ledger.Deposit.net_g)).all()
            return sorted((str(r[0]), int(r[1])) for r in rows)
    finally:
        engine.dispose()


async def _influx_count(settings: InfluxSettings) -> int:
    rows = await influx_sum(settings, 'SELECT count("net_g") FROM "deposit"')
    return int(rows[0][1]) if rows else 0  # type: ignore[call-overload]


def _new_card(outbox: Path) -> None:
    """The card died; a new one has the same site file only."""
    for extra in ("", "-wal", "-shm"):
        Path(f"{outbox}{extra}").unlink(missing_ok=True)


def _start_ingest(processes: Processes, env: dict[str, str], test_id: str) -> None:
    processes.start(
        "ingest",
        ["ingest"],
        {**env, "WASTEBANK_CLIENT_ID": f"ingest-{test_id}", "WASTEBANK_BATCH_MAX_AGE_S": "0.1"},
    )


async def test_an_sd_card_swap_loses_no_deposit(
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx_settings: InfluxSettings,
    ledger_url: str,
    tmp_path: Path,
    test_id: str,
) -> None:
    """Three deposits, the gateway stopped (SIGTERM), its outbox file deleted (a new card with
    the same site file), three more: all six credited, in the ledger and in InfluxDB, six ids."""
    env = settings_env(mqtt_settings, influx_settings, ledger_url)
    _start_ingest(processes, env, test_id)
    await eventually(lambda: _async(lambda: "subscribed" in processes.log("ingest")))
    link, outbox = tmp_path / "kiosk.tty", tmp_path / "outbox.db"
    site = write_site(
        tmp_path / "site.toml",
        gateway_id="gw-sd",
        link=link,
        outbox=outbox,
        credentials=mqtt_settings,
    )
    topic = Topics(mqtt_settings.topic_prefix).deposit("bs-batu-merah", "gw-sd")
    grams = [[1100, 1200, 1300], [2100, 2200, 2300]]
    seen: list[DepositEvent] = []
    async with aiomqtt.Client(
        mqtt_settings.host, mqtt_settings.port, **mqtt_login(mqtt_settings)
    ) as observer:
        await observer.subscribe(topic, qos=1)
        messages = aiter(observer.messages)
        for card_life, weights in enumerate(grams):
            name = f"gateway-{card_life}"
            async with KioskSimulator(link, seed=card_life, rate_hz=20) as kiosk:
                processes.start(name, ["gateway", "--config", str(site)], env)
                await eventually(functools.partial(_logged, processes, name, "timbangan terhubung"))
                for g in weights:
                    await kiosk.deposit(ScriptedDeposit(CARDS["AMB-0001"], "pet", g))
                while len(seen) < 3 * (card_life + 1):
                    message = await anext(messages)
                    assert isinstance(message.payload, bytes)
                    seen.append(decode_json(message.payload, DepositEvent))
                processes.kill(name, signal.SIGTERM)
            _new_card(outbox)

    ids = [e.event_id for e in seen]
    assert len(set(ids)) == 6
    first, second = {e.install for e in seen[:3]}, {e.install for e in seen[3:]}
    assert len(first) == len(second) == 1
    assert first != second
    assert [e.seq for e in seen] == [1, 2, 3, 1, 2, 3]  # each card numbers from 1

    async def six_credited() -> bool:
        return len(_deposits(ledger_url)) == 6

    await eventually(six_credited)
    assert _deposits(ledger_url) == sorted(zip(ids, [g for w in grams for g in w], strict=True))

    async def six_points() -> bool:
        return await _influx_count(influx_settings) == 6

    await eventually(six_points)
    ((_, total),) = await influx_sum(influx_settings, 'SELECT sum("net_g") FROM "deposit"')
    assert total == sum(g for w in grams for g in w)


async def test_two_gateways_with_one_id_are_both_credited_and_the_clash_is_raised(
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx_settings: InfluxSettings,
    ledger_url: str,
    tmp_path: Path,
    test_id: str,
) -> None:
    """Two Pis given the same site file (each its own card, so its own outbox): every deposit
    of both is credited, they keep their broker connections, and one gateway_clash alert names
    both installs."""
    env = settings_env(mqtt_settings, influx_settings, ledger_url)
    _start_ingest(processes, env, test_id)
    await eventually(lambda: _async(lambda: "subscribed" in processes.log("ingest")))
    async with (
        KioskSimulator(tmp_path / "a.tty", seed=1, rate_hz=20) as kiosk_a,
        KioskSimulator(tmp_path / "b.tty", seed=2, rate_hz=20) as kiosk_b,
    ):
        for name, link in (("a", tmp_path / "a.tty"), ("b", tmp_path / "b.tty")):
            site = write_site(
                tmp_path / f"{name}.toml",
                gateway_id="gw-twin",
                link=link,
                outbox=tmp_path / f"{name}-outbox.db",
                health_interval_s=0.5,
                credentials=mqtt_settings,
            )
            processes.start(f"gateway-{name}", ["gateway", "--config", str(site)], env)
        for name in ("a", "b"):
            await eventually(
                functools.partial(_logged, processes, f"gateway-{name}", "timbangan terhubung")
            )
        for g in (1000, 2000, 3000):
            await kiosk_a.deposit(ScriptedDeposit(CARDS["AMB-0001"], "pet", g))
            await kiosk_b.deposit(ScriptedDeposit(CARDS["AMB-0002"], "kardus", g + 500))

        async def six_credited() -> bool:
            return len(_deposits(ledger_url)) == 6

        await eventually(six_credited, timeout=40)

        def clash_alert() -> list[alerts.SystemAlert]:
            engine = ledger.make_engine(ledger_url)
            try:
                with Session(engine) as s:
                    found = alerts.alerts(s, code="gateway_clash")
                    for a in found:
                        s.expunge(a)
                    return found
            finally:
                engine.dispose()

        await eventually(lambda: _async(lambda: bool(clash_alert())))
        # Both still connected: neither was knocked off the broker by the other's session.
        for name in ("a", "b"):
            assert "terhubung kembali" not in processes.log(f"gateway-{name}")
    (alert,) = clash_alert()
    assert alert.subject == "gw-twin"
    installs = {e.split(".")[1] for e, _ in _deposits(ledger_url)}
    assert len(installs) == 2
    assert set(alert.details["ids"]) == installs
    assert all(i in alert.message for i in installs)
    assert sorted(g for _, g in _deposits(ledger_url)) == [1000, 1500, 2000, 2500, 3000, 3500]


async def _logged(processes: Processes, name: str, text: str) -> bool:
    return text in processes.log(name)


async def _async(check: object) -> bool:
    assert callable(check)
    return bool(check())
