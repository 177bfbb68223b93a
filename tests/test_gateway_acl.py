"""A gateway whose site file names another bank than its credentials allow: the broker's ACL
refuses its publishes, and nothing is lost.

Over MQTT 5 the broker says so in the PUBACK (0x87 "Not authorized"); the gateway keeps each
refused row in its outbox, marked with the reason, raises ``publish_refused`` once, counts the rows
in its health report, logs each reason once, and tries a row again only after a backoff that
doubles (or at its next start). Once the credentials allow the topic the rows are delivered,
each exactly once.

A private Mosquitto (the project's own config, from `services.up`) with certificates from
`wastebank certs init`: devices log in on its TLS listener with the password `wastebank device
add` issued, and an anonymous observer on its loopback listener stands in for the ingester.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import signal
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiomqtt
import httpx
import msgspec
import pytest
from typer.testing import CliRunner

from firmware_sim.kiosk import KioskSimulator, ScriptedDeposit
from gateway.app import Gateway
from gateway.outbox import Outbox
from gateway.settings import GatewaySettings, OutboxSettings, ScaleSettings
from tests.conftest import (
    PrivateMosquitto,
    Processes,
    deposit_event,
    eventually,
    free_port,
    mqtt_login,
    write_site,
)
from wastebank import devices, mqtt, services
from wastebank.cli import app
from wastebank.config import FilePath, MqttSettings, SecretStr, load_settings
from wastebank.messages import DepositEvent, GatewayAlert, Topics
from wastebank.structs import decode_json, encode_json

pytestmark = pytest.mark.integration


class OutboxHealth(msgspec.Struct):
    """Of the gateway's /health (gateway.http.health.PublicHealth), the outbox's figures."""

    outbox_depth: int
    outbox_refused: int


ISSUED_FOR = "bs-waihaong"  # the bank the gateway's credentials were issued for
SITE_SAYS = "bs-batu-merah"  # the bank its site file names
NOT_AUTHORIZED = 0x87
SENTINEL = b"sentinel: nothing was published after this"
SPEED = 4.0  # simulated seconds per real second: one deposit takes about 2 s
DEPOSITS = [
    ScriptedDeposit("04A1B2C3D4", "pet", 1250),
    ScriptedDeposit("04A1B2C3D5", "kardus", 2340),
]


# ---- the private broker with its TLS listener ---------------------------------------------------


@dataclass
class TlsBroker:
    broker: PrivateMosquitto
    files: services.BrokerAuthFiles
    env: dict[str, str]  # WASTEBANK_* for the `wastebank` commands: this broker's run dir, ports

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(app, list(args), env=self.env)
        assert result.exit_code == 0, result.output
        return result.output

    def add(self, *args: str) -> str:
        """`wastebank device add ARGS`; the password it printed."""
        match = re.search(r"^  password: (\S+)$", self.cli("device", "add", *args), re.MULTILINE)
        assert match is not None
        return match.group(1)

    def device(self, username: str, password: str, prefix: str) -> MqttSettings:
        """A gateway's [mqtt] table, as the snippet `device add` prints puts it in a site file."""
        return MqttSettings(
            host="127.0.0.1",
            port=self.broker.settings.mqtt_tls_port,
            tls=True,
            ca_file=FilePath(self.files.ca_cert),
            username=username,
            password=SecretStr(password),
            topic_prefix=prefix,
        )

    def observer(self) -> aiomqtt.Client:
        """A client on the loopback listener with the test's own identity."""
        return aiomqtt.Client("127.0.0.1", self.broker.port, **mqtt_login(self.broker.mqtt()))


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    run_dir = tmp_path_factory.mktemp("acl") / "run"
    broker = PrivateMosquitto(run_dir)
    broker.settings = msgspec.structs.replace(
        broker.settings, mqtt_tls_port=free_port(), mqtt_tls_bind="127.0.0.1"
    )
    env = {
        "WASTEBANK_RUN_DIR": str(run_dir),
        "WASTEBANK_MQTT_PORT": str(broker.settings.mqtt_port),
        "WASTEBANK_MQTT_TLS_PORT": str(broker.settings.mqtt_tls_port),
        "WASTEBANK_MQTT_TLS_BIND": broker.settings.mqtt_tls_bind,
    }
    tb = TlsBroker(broker, services.broker_auth_files(run_dir), env)
    tb.cli("certs", "init", "--host", "127.0.0.1")
    broker.start()
    assert services.mosquitto_tls_listening(broker.settings)
    yield tb
    broker.stop()


# ---- helpers ----------------------------------------------------------------------------------


def _row(topic: str, payload: bytes) -> Callable[[int], tuple[str, bytes]]:
    """An outbox row's builder: this topic and payload, whatever its number."""
    return lambda _seq: (topic, payload)


def _holds(predicate: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return predicate()

    return check


def outbox_rows(path: Path) -> list[tuple[str, bytes, int | None, int]]:
    """(topic, payload, refused_code, refused_count) of every row, read next to the running
    gateway (WAL allows it)."""
    if not path.exists():
        return []
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT topic, payload, refused_code, refused_count FROM outbox ORDER BY id"
        ).fetchall()
    except sqlite3.OperationalError:  # the gateway has not created its schema yet
        return []
    finally:
        db.close()
    return [(str(t), bytes(p), c, int(n)) for t, p, c, n in rows]


async def until_sentinel(client: aiomqtt.Client, topic: str) -> list[aiomqtt.Message]:
    """Publish the sentinel on ``topic``; every message the client receives before it comes back.

    Messages from one connection arrive in order, and a broker forwards a message before it
    acknowledges it: whatever the gateway had published (and had acknowledged) is in the list."""
    await client.publish(topic, SENTINEL, qos=1)
    seen: list[aiomqtt.Message] = []
    async with asyncio.timeout(30):
        async for message in client.messages:
            if message.payload == SENTINEL:
                return seen
            seen.append(message)
    raise AssertionError("message stream ended before the sentinel")


def on(topic: str, messages: list[aiomqtt.Message]) -> list[bytes]:
    payloads = []
    for m in messages:
        if m.topic.matches(topic):
            assert isinstance(m.payload, bytes)
            payloads.append(m.payload)
    return payloads


# ---- a gateway process ------------------------------------------------------------------------


async def test_refused_deposits_stay_in_the_outbox_until_the_credentials_allow_them(
    tls_broker: TlsBroker, processes: Processes, tmp_path: Path, test_id: str
) -> None:
    prefix, gw = f"test-{test_id}/", f"gw-{test_id}"
    topics = Topics(prefix)
    deposit_topic = topics.deposit(SITE_SAYS, gw)
    outbox, link = tmp_path / "outbox.db", tmp_path / "kiosk.tty"
    port = free_port()
    wrong = tls_broker.add("--bank", ISSUED_FOR, "--gateway", gw, "--topic-prefix", prefix)

    def site(password: str) -> Path:
        """The site file, with an [mqtt] table like the snippet `device add` prints."""
        mqtt = tls_broker.device(gw, password, prefix)
        return write_site(
            tmp_path / "site.toml",
            gateway_id=gw,
            link=link,
            outbox=outbox,
            bank=SITE_SAYS,
            http_port=port,
            mqtt={
                "host": mqtt.host,
                "port": mqtt.port,
                "tls": True,
                "ca_file": str(mqtt.ca_file),
                "username": gw,
                "password": password,
                "topic_prefix": prefix,
            },
        )

    def log(name: str) -> str:
        return processes.log(name)

    async def health() -> OutboxHealth:
        """The minimal /health (no session): the outbox's depth and refused rows are in it."""
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            return msgspec.json.decode((await http.get("/health")).content, type=OutboxHealth)

    async with (
        tls_broker.observer() as observer,
        KioskSimulator(link, seed=21, speed=SPEED) as kiosk,
    ):
        await observer.subscribe(f"{prefix}#", qos=1)
        processes.start("gateway-1", ["gateway", "--config", str(site(wrong))], {})
        await eventually(_holds(lambda: "timbangan terhubung" in log("gateway-1")), timeout=30)
        for d in DEPOSITS:
            await kiosk.deposit(d)

        # Both deposits and the alert (its topic is the same wrong bank's) refused, and kept.
        def refused_rows() -> list[tuple[str, bytes, int | None, int]]:
            return [r for r in outbox_rows(outbox) if r[2] is not None]

        await eventually(_holds(lambda: len(refused_rows()) == 3), timeout=30)
        rows = outbox_rows(outbox)
        assert sorted((t.rpartition("/")[2], code) for t, _, code, _ in rows) == [
            ("alert", NOT_AUTHORIZED),
            ("deposit", NOT_AUTHORIZED),
            ("deposit", NOT_AUTHORIZED),
        ]
        seqs = [decode_json(p, DepositEvent).seq for t, p, _, _ in rows if t == deposit_topic]
        assert seqs == [1, 2]
        (alert_row,) = [decode_json(p, GatewayAlert) for t, p, _, _ in rows if "alert" in t]
        assert (alert_row.code, alert_row.state) == ("publish_refused", "raised")
        assert "0x87 Not authorized" in alert_row.message

        report = await health()
        assert (report.outbox_depth, report.outbox_refused) == (3, 3)

        # Nothing reached the broker's subscribers: not the deposits, the alert, the status or
        # the health report.
        assert await until_sentinel(observer, f"{prefix}sentinel") == []

        # Not hammered: each row was tried once (the next try is a minute away), each reason
        # logged once, the alert raised once.
        assert {n for _, _, _, n in rows} == {1}
        first_run = log("gateway-1")
        kept = "the broker refused a publish: 0x87 Not authorized on"
        assert first_run.count(kept) == 2  # once for the kept rows, once for status/health
        assert first_run.count("kept in the outbox, tried again in 60 s") == 1
        assert first_run.count("alert publish_refused raised") == 1
        processes.kill("gateway-1", signal.SIGTERM)  # systemd's stop: a clean exit
        assert processes.procs["gateway-1"].returncode == 0, log("gateway-1")
        assert "Traceback" not in log("gateway-1")

        # The fix: credentials issued from the site file, as the gateway stores its deposits.
        tls_broker.cli("device", "remove", gw)
        right = tls_broker.add("--site", str(site(wrong)))
        processes.start("gateway-2", ["gateway", "--config", str(site(right))], {})
        await eventually(_holds(lambda: outbox_rows(outbox) == []), timeout=30)
        delivered = await until_sentinel(observer, f"{prefix}sentinel")
        report = await health()

    events = [decode_json(p, DepositEvent) for p in on(deposit_topic, delivered)]
    assert [(e.event_id, e.bank_code) for e in events] == [
        (f"{gw}.{e.install}.{n}", SITE_SAYS) for n, e in enumerate(events, start=1)
    ]
    assert [(e.card_uid, e.category_code, e.net_g) for e in events] == [
        (d.card_uid, d.category_code, d.displayed_g) for d in DEPOSITS
    ]
    alerts = [
        decode_json(p, GatewayAlert) for p in on(topics.gateway_alert(SITE_SAYS, gw), delivered)
    ]
    assert [(a.code, a.state) for a in alerts] == [
        ("publish_refused", "raised"),
        ("publish_refused", "cleared"),
    ]
    assert (report.outbox_depth, report.outbox_refused) == (0, 0)
    second_run = log("gateway-2")
    assert "3 rows the broker refused are tried again" in second_run
    assert "3 rows refused before are accepted" in second_run
    assert "refused a publish" not in second_run


# ---- the drain in-process: backoff, and a fix on the broker's side ---------------------------


async def test_refused_rows_are_retried_with_a_doubling_backoff_and_delivered_once_allowed(
    tls_broker: TlsBroker, tmp_path: Path, test_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    prefix, gw = f"test-{test_id}/", f"gw-{test_id}"
    topics = Topics(prefix)
    password = tls_broker.add("--bank", ISSUED_FOR, "--gateway", gw, "--topic-prefix", prefix)
    retry_s = 0.25
    settings = load_settings(
        GatewaySettings,
        gateway_id=gw,
        bank_code=SITE_SAYS,
        mqtt=tls_broker.device(gw, password, prefix),
        outbox=OutboxSettings(path=tmp_path / "outbox.db", refused_retry_s=retry_s),
        scales=[ScaleSettings(id="scale-01", port=tmp_path / "no-scale")],  # never opened here
        http_port=0,
        health_interval_s=60,  # the longest: never heard in this test
    )
    gateway = Gateway(settings)
    for seq in (1, 2):
        event = deposit_event(seq, bank=SITE_SAYS, gateway=gw)
        gateway.outbox.add(_row(topics.deposit(SITE_SAYS, gw), encode_json(event)))

    def counts() -> list[int]:
        """How many times each deposit row was refused."""
        deposit = topics.deposit(SITE_SAYS, gw)
        return [n for t, _, _, n in outbox_rows(settings.outbox.path) if t == deposit]

    def refused_at_least(n: int) -> bool:
        return min(counts()) >= n

    caplog.set_level(logging.INFO, logger="wastebank.gateway")
    async with tls_broker.observer() as observer:
        await observer.subscribe(f"{prefix}#", qos=1)
        task = asyncio.create_task(gateway.uplink.run())
        try:
            # Each row is tried again after 0.25 s, 0.5 s, 1 s, ...: the gap doubles.
            tried: dict[int, float] = {}
            for n in (1, 2, 3, 4):
                await eventually(_holds(functools.partial(refused_at_least, n)), timeout=30)
                tried[n] = time.monotonic()
            assert tried[4] - tried[3] >= 4 * retry_s * 0.9
            assert max(counts()) <= 5
            assert gateway.health().outbox_refused == 3  # two deposits and the alert
            assert await until_sentinel(observer, f"{prefix}sentinel") == []

            # The operator grants the topic on the broker (no new password, no restart): the
            # next retry delivers each row once.
            registry = devices.Registry(tls_broker.files)
            moved = [
                replace(d, site=SITE_SAYS) if d.username == gw else d for d in registry.devices()
            ]
            tls_broker.files.acl_file.write_text(devices.acl_text(moved))
            assert services.reload_mosquitto(tls_broker.broker.settings) is not None
            await eventually(_holds(lambda: len(gateway.outbox) == 0), timeout=30)
            delivered = await until_sentinel(observer, f"{prefix}sentinel")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            gateway.outbox.close()

    events = [decode_json(p, DepositEvent) for p in on(topics.deposit(SITE_SAYS, gw), delivered)]
    assert [e.event_id for e in events] == [f"{gw}-1", f"{gw}-2"]  # as queued above
    alerts = [
        decode_json(p, GatewayAlert) for p in on(topics.gateway_alert(SITE_SAYS, gw), delivered)
    ]
    assert [(a.code, a.state) for a in alerts] == [
        ("publish_refused", "raised"),
        ("publish_refused", "cleared"),
    ]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len([e for e in errors if "0x87 Not authorized" in e and "kept in" in e]) == 1
    assert gateway.stats.published == 4


def test_an_outbox_from_before_refusals_gets_the_columns_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,
            payload BLOB NOT NULL, created_at TEXT NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta VALUES ('last_seq', 1), ('dropped', 0);
        INSERT INTO outbox (topic, payload, created_at)
            VALUES ('t/1', CAST('payload 1' AS BLOB), '2026-01-01T00:00:00+00:00');
        """
    )
    db.close()
    box = Outbox(path)
    try:
        (row,) = box.peek()
        assert (row.topic, row.payload, row.refused_code) == ("t/1", b"payload 1", None)
        box.mark_refused([(row.id, NOT_AUTHORIZED)], hold_s=60, now=1000.0)
        assert box.peek(now=1059.0) == []
        assert box.refused() == {NOT_AUTHORIZED: 1}
        assert box.next_retry() == 1060.0
        (due,) = box.peek(now=1060.0)
        assert due.refused_code == NOT_AUTHORIZED
        box.mark_refused([(row.id, NOT_AUTHORIZED)], hold_s=60, now=1060.0)
        assert box.next_retry() == 1180.0  # doubled
        assert box.peek(now=1060.0 + 2 * box.max_hold_s)  # a clock that went back: due
        assert box.release_refused() == 1
        assert [r.id for r in box.peek(now=1060.0)] == [row.id]  # due, still marked
        assert box.refused() == {NOT_AUTHORIZED: 1}
        box.remove_many([row.id])
        assert (box.refused(), box.next_retry(), box.last_seq) == ({}, None, 1)
    finally:
        box.close()


# ---- MQTT 5 sessions from the client factory ----------------------------------------------------


async def test_an_mqtt5_persistent_session_queues_while_away_and_a_plain_one_starts_clean(
    mqtt_settings: MqttSettings, test_id: str
) -> None:
    """The gateway's uplink subscriber keeps a persistent session (clean start off, a Session
    Expiry Interval that never ends), as it did over 3.1.1 with clean session off."""
    topic = f"{mqtt_settings.topic_prefix}uplink"

    def subscriber(*, persistent: bool) -> aiomqtt.Client:
        return mqtt.client(
            mqtt_settings, identifier=f"lns-{test_id}", persistent=persistent, protocol=mqtt.V5
        )

    async with subscriber(persistent=True) as client:
        await client.subscribe(topic, qos=1)
    async with aiomqtt.Client(
        mqtt_settings.host, mqtt_settings.port, **mqtt_login(mqtt_settings)
    ) as sensor:
        await sensor.publish(topic, b"while away", qos=1)
    async with subscriber(persistent=True) as client:  # no new subscribe: the session has it
        message = await asyncio.wait_for(anext(aiter(client.messages)), 10)
        assert message.payload == b"while away"

    async with subscriber(persistent=False) as client:  # clean start: the session is gone
        publisher = mqtt.Publisher(client)
        reason = await publisher.publish(topic, b"nobody subscribed", qos=1)
        assert (reason.value, mqtt.accepted(reason)) == (0x10, True)  # No matching subscribers
