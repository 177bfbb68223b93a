"""The gateway under failure, on real processes: broker outage, SIGKILL with a backlog, unplug.

Each test runs `wastebank gateway` as a child process against a simulated kiosk on a real pty and
watches what reaches Mosquitto. "Nothing lost, nothing doubled" is checked with a sentinel: after
the gateway's outbox is empty (every row was PUBACKed), the observer publishes a marker on the
same topic and reads until it comes back, so every deposit that reached the broker has been seen
without waiting for a fixed time.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import sqlite3
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiomqtt
import msgspec
import pytest

from firmware_sim.kiosk import KioskSimulator, ScriptedDeposit
from tests.conftest import (
    PrivateMosquitto,
    Processes,
    eventually,
    free_port,
    mqtt_login,
    settings_env,
    write_site,
)
from wastebank.config import MqttSettings
from wastebank.messages import DepositEvent, Topics
from wastebank.structs import decode_json

pytestmark = pytest.mark.integration

BANK = "bs-batu-merah"
SPEED = 4.0  # simulated seconds per real second: one deposit takes about 2 s
SENTINEL = b"sentinel: nothing was published after this"
DEPOSITS = [
    ScriptedDeposit("04A1B2C3D4", "pet", 1250),
    ScriptedDeposit("04A1B2C3D5", "kardus", 2340),
    ScriptedDeposit("04A1B2C3D4", "aluminium", 560),
]


# ---- helpers ----------------------------------------------------------------------------------


def _holds(predicate: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """Adapt a plain predicate for `eventually`."""

    async def check() -> bool:
        return predicate()

    return check


def outbox_rows(path: Path) -> int:
    """Deposit rows in a gateway's outbox, read next to the running gateway (WAL allows it)."""
    if not path.exists():
        return 0
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        (count,) = db.execute("SELECT count(*) FROM outbox WHERE topic LIKE '%/deposit'").fetchone()
        return int(count)
    except sqlite3.OperationalError:  # the gateway has not created its schema yet
        return 0
    finally:
        db.close()


def gateway_env(mqtt: MqttSettings, gateway_id: str, link: Path, outbox: Path) -> dict[str, str]:
    """The site file (written next to the outbox) and the broker to use, for a gateway process."""
    site = write_site(
        outbox.parent / f"{gateway_id}.toml",
        gateway_id=gateway_id,
        link=link,
        outbox=outbox,
        bank=BANK,
        credentials=mqtt,
    )
    return {**settings_env(mqtt), "WASTEBANK_CONFIG": str(site)}


async def deposits_until_sentinel(
    client: aiomqtt.Client, topic: str, timeout: float = 30.0
) -> list[DepositEvent]:
    """Publish the sentinel on `topic`; return every deposit the client receives before it."""
    await client.publish(topic, SENTINEL, qos=1)
    events: list[DepositEvent] = []
    async with asyncio.timeout(timeout):
        async for message in client.messages:
            assert isinstance(message.payload, bytes | bytearray)
            if bytes(message.payload) == SENTINEL:
                return events
            events.append(decode_json(message.payload, DepositEvent))
    raise AssertionError("message stream ended before the sentinel")


def assert_deposits(
    events: list[DepositEvent], gateway_id: str, played: list[ScriptedDeposit]
) -> None:
    """Exactly the played deposits, in order, with seq 1..n and one event_id each."""
    assert [e.seq for e in events] == list(range(1, len(played) + 1))
    assert len({e.install for e in events}) == 1  # one outbox file, one install
    assert [e.event_id for e in events] == [f"{gateway_id}.{e.install}.{e.seq}" for e in events]
    assert [(e.card_uid, e.category_code, e.net_g) for e in events] == [
        (d.card_uid, d.category_code, d.displayed_g) for d in played
    ]


class OpenCounter:
    """Counts open(2) calls on one file through inotify (IN_OPEN), without opening it."""

    IN_OPEN = 0x20

    def __init__(self, path: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if libc.inotify_add_watch(self._fd, os.fsencode(path), self.IN_OPEN) < 0:
            os.close(self._fd)
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        self._count = 0

    @property
    def count(self) -> int:
        try:
            while data := os.read(self._fd, 4096):
                offset = 0
                while offset < len(data):
                    _wd, mask, _cookie, name_len = struct.unpack_from("iIII", data, offset)
                    self._count += bool(mask & self.IN_OPEN)
                    offset += 16 + name_len
        except BlockingIOError:
            pass
        return self._count

    def close(self) -> None:
        os.close(self._fd)


# ---- tests ------------------------------------------------------------------------------------


async def test_broker_outage_loses_nothing(
    private_mosquitto: PrivateMosquitto, processes: Processes, tmp_path: Path, test_id: str
) -> None:
    broker = private_mosquitto
    mqtt = broker.mqtt(f"test-{test_id}/")
    gateway_id = f"gw-{test_id}"
    topic = Topics(mqtt.topic_prefix).deposit(BANK, gateway_id)
    outbox, link = tmp_path / "outbox.db", tmp_path / "kiosk.tty"

    def observer() -> aiomqtt.Client:  # a persistent session: the broker queues while it is away
        return aiomqtt.Client(
            mqtt.host, mqtt.port, clean_session=False, **mqtt_login(mqtt, f"observer-{test_id}")
        )

    async with observer() as client:
        await client.subscribe(topic, qos=1)

    played = DEPOSITS[:2]
    async with KioskSimulator(link, seed=11, speed=SPEED) as kiosk:
        processes.start("gateway", ["gateway"], gateway_env(mqtt, gateway_id, link, outbox))

        def log() -> str:
            return processes.log("gateway")

        await eventually(
            _holds(lambda: "timbangan terhubung" in log() and "connected to the broker" in log())
        )

        broker.stop()
        assert not broker.running()
        # Noticed while idle (nothing to publish), not only at the next deposit.
        await eventually(_holds(lambda: "broker terputus" in log()))
        for d in played:
            await kiosk.deposit(d)
        await eventually(_holds(lambda: outbox_rows(outbox) == len(played)))

        broker.start()  # same run_dir: same persistence file, so the observer's session is back
        await eventually(_holds(lambda: outbox_rows(outbox) == 0), timeout=30)

    async with observer() as client:  # no new subscribe: the restored session must carry it
        events = await deposits_until_sentinel(client, topic)

    assert_deposits(events, gateway_id, played)
    assert log().count("broker terputus") == 1
    assert log().count("terhubung kembali") == 1


async def test_sigkill_with_backlog_then_restart(
    processes: Processes, mqtt_settings: MqttSettings, tmp_path: Path, test_id: str
) -> None:
    gateway_id = f"gw-{test_id}"
    topic = Topics(mqtt_settings.topic_prefix).deposit(BANK, gateway_id)
    outbox, link = tmp_path / "outbox.db", tmp_path / "kiosk.tty"
    nobody = msgspec.structs.replace(mqtt_settings, port=free_port())  # nothing listens there

    async with (
        aiomqtt.Client(
            mqtt_settings.host, mqtt_settings.port, **mqtt_login(mqtt_settings)
        ) as client,
        KioskSimulator(link, seed=12, speed=SPEED) as kiosk,
    ):
        await client.subscribe(topic, qos=1)
        processes.start("gateway-1", ["gateway"], gateway_env(nobody, gateway_id, link, outbox))
        await eventually(_holds(lambda: "timbangan terhubung" in processes.log("gateway-1")))

        for d in DEPOSITS[:2]:
            await kiosk.deposit(d)
        await eventually(_holds(lambda: outbox_rows(outbox) == 2))
        processes.kill("gateway-1")  # SIGKILL: no shutdown code runs
        assert "connected to the broker" not in processes.log("gateway-1")
        assert outbox_rows(outbox) == 2

        processes.start(
            "gateway-2", ["gateway"], gateway_env(mqtt_settings, gateway_id, link, outbox)
        )

        def log() -> str:
            return processes.log("gateway-2")

        await eventually(
            _holds(lambda: "timbangan terhubung" in log() and outbox_rows(outbox) == 0)
        )
        await kiosk.deposit(DEPOSITS[2])
        await eventually(_holds(lambda: _logged(log(), gateway_id, 3) and outbox_rows(outbox) == 0))
        events = await deposits_until_sentinel(client, topic)

    # The first gateway never reached a broker, so nothing was published before the kill: a
    # duplicate (at-least-once: killed between PUBACK and the row's DELETE) cannot happen here,
    # and exactly seq 1, 2, 3 with three distinct event_ids is the honest expectation.
    assert_deposits(events, gateway_id, DEPOSITS)
    assert len({e.event_id for e in events}) == 3


async def test_serial_unplug_and_replug(
    processes: Processes, mqtt_settings: MqttSettings, tmp_path: Path, test_id: str
) -> None:
    gateway_id = f"gw-{test_id}"
    topic = Topics(mqtt_settings.topic_prefix).deposit(BANK, gateway_id)
    outbox, link = tmp_path / "outbox.db", tmp_path / "kiosk.tty"

    def log() -> str:
        return processes.log("gateway")

    async with aiomqtt.Client(
        mqtt_settings.host, mqtt_settings.port, **mqtt_login(mqtt_settings)
    ) as client:
        await client.subscribe(topic, qos=1)
        async with KioskSimulator(link, seed=13, speed=SPEED):
            processes.start(
                "gateway", ["gateway"], gateway_env(mqtt_settings, gateway_id, link, outbox)
            )
            await eventually(
                _holds(
                    lambda: "timbangan terhubung" in log() and "connected to the broker" in log()
                )
            )
        # Unplugged: the simulator removed its link and closed the pty.
        assert not link.exists()
        # While the scale is away the link names a plain file: opening it fails like a missing
        # device (no tty, SerialException), and each retry is an open(2) we can count.
        not_a_tty = tmp_path / "not-a-tty"
        not_a_tty.touch()
        opens = OpenCounter(not_a_tty)
        try:
            link.symlink_to(not_a_tty)
            await eventually(_holds(lambda: "timbangan terputus" in log()))
            await eventually(_holds(lambda: opens.count >= 3), timeout=30)
        finally:
            opens.close()
        assert log().count("timbangan terhubung") == 1

        async with KioskSimulator(link, seed=14, speed=SPEED) as kiosk:
            await eventually(_holds(lambda: log().count("timbangan terhubung") == 2), timeout=30)
            await kiosk.deposit(DEPOSITS[0])
            await eventually(
                _holds(lambda: _logged(log(), gateway_id, 1) and outbox_rows(outbox) == 0)
            )
            events = await deposits_until_sentinel(client, topic)
            gateway_log = log()  # before this simulator goes away (a second unplug)

    assert_deposits(events, gateway_id, DEPOSITS[:1])
    assert gateway_log.count("timbangan terputus") == 1
    assert gateway_log.count("timbangan terhubung") == 2
    assert "timbangan tidak terhubung" not in gateway_log


def _logged(log: str, gateway_id: str, seq: int) -> bool:
    """The gateway logged its deposit number ``seq`` (under whatever install it drew)."""
    return re.search(rf"deposit {re.escape(gateway_id)}\.[0-9a-z]+\.{seq}:", log) is not None
