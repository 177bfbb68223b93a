"""Only the right caller on the broker `wastebank services up` starts: no anonymous client, no
wrong password, and no client id of someone else's (deploy/mosquitto/wastebank_clientid.c),
whose refusal the broker tells the ingester (counted, alerted) on a topic nobody can forge;
and a ledger file nobody else can read."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import httpx
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ingest.main import Ingester, IngestSettings
from ingest.main import run as run_ingest
from ingest.metrics import MetricsSettings
from tests.conftest import (
    PrivateMosquitto,
    broker_settings,
    deposit_event,
    eventually,
    free_port,
    gateway_credentials,
    mqtt_login,
    running_ingester,
)
from wastebank import alerts, devices, ledger, mqtt, services
from wastebank.broker_events import REFUSED_TOPIC, Refusal
from wastebank.config import InfluxSettings, MqttSettings, load_settings
from wastebank.influx import Influx
from wastebank.messages import Topics
from wastebank.mqtt import client_id
from wastebank.structs import decode_json, encode_json

pytestmark = pytest.mark.integration

DEPOSITS = 30


def _refused(exc: aiomqtt.MqttError) -> bool:
    return "not authori" in str(exc).lower()


async def _connect(mqtt: MqttSettings, **login: object) -> None:
    async with aiomqtt.Client(mqtt.host, mqtt.port, timeout=10, **login):  # type: ignore[arg-type]
        pass


async def test_an_anonymous_or_wrong_password_client_is_refused(
    running_services: services.ServicesSettings,
) -> None:
    mqtt = broker_settings(running_services)
    with pytest.raises(aiomqtt.MqttError) as anonymous:
        await _connect(mqtt, identifier="anyone")
    assert _refused(anonymous.value)

    with pytest.raises(aiomqtt.MqttError) as wrong:
        await _connect(mqtt, username="ingest", password="tebakan", identifier="ingest@x")
    assert _refused(wrong.value)

    await _connect(mqtt, **mqtt_login(mqtt))  # the same broker lets its own identities in


async def test_a_client_id_belongs_to_its_username(
    running_services: services.ServicesSettings,
) -> None:
    test = broker_settings(running_services)
    password = test.password.get_secret_value() if test.password else None
    for identifier in ("test", "test@a", "test@a.b@c"):
        await _connect(test, username="test", password=password, identifier=identifier)
    # Another's id, another's prefix, a name that only starts like it, a shorter one: refused.
    for identifier in ("ingest@vm.1", "ingest", "testing", "tes"):
        with pytest.raises(aiomqtt.MqttError) as refused:
            await _connect(test, username="test", password=password, identifier=identifier)
        assert _refused(refused.value), identifier


@pytest.fixture
async def ingester_as_itself(
    running_services: services.ServicesSettings,
    influx_settings: InfluxSettings,
    ledger_url: str,
    test_id: str,
) -> AsyncIterator[IngestSettings]:
    """An ingester logged in as "ingest", its persistent session named ``ingest@chk-{test_id}``."""
    mqtt = broker_settings(running_services, user="ingest", topic_prefix=f"test-{test_id}/")
    async with running_ingester(
        mqtt, influx_settings, ledger_url, client_id=f"chk-{test_id}"
    ) as settings:
        yield settings


async def test_a_device_password_cannot_take_the_ingesters_session(
    ingester_as_itself: IngestSettings, ledger_url: str, test_id: str
) -> None:
    """The attack of issue 13: a gateway's credentials plus the ingester's client id (clean
    start) wiped its persistent session. Now every such connect is refused before the session
    is touched, and every deposit the gateway publishes meanwhile is credited."""
    mqtt = ingester_as_itself.mqtt
    gw = f"gw-{test_id}"
    gateway_credentials(msgspec.structs.replace(mqtt, username=None, password=None), gw)
    device = msgspec.structs.replace(mqtt, username=gw, password=None).as_user(None)
    taken = client_id("ingest", f"chk-{test_id}")
    topics = Topics(mqtt.topic_prefix)
    async with aiomqtt.Client(mqtt.host, mqtt.port, **mqtt_login(device)) as gateway:
        for seq in range(1, DEPOSITS + 1):
            event = deposit_event(seq, gateway=gw, net_g=1000 + seq)
            await gateway.publish(
                topics.deposit("bs-batu-merah", gw), encode_json(event).decode(), qos=1
            )
            with pytest.raises(aiomqtt.MqttError) as refused:
                async with aiomqtt.Client(
                    mqtt.host,
                    mqtt.port,
                    username=gw,
                    password=device.password.get_secret_value() if device.password else None,
                    identifier=taken,
                    clean_session=True,
                    timeout=10,
                ):
                    pass
            assert _refused(refused.value)

    def credited() -> int:
        engine = ledger.make_engine(ledger_url)
        try:
            with Session(engine) as s:
                return (
                    s.scalar(
                        select(func.count())
                        .select_from(ledger.Deposit)
                        .where(ledger.Deposit.gateway_id == gw)
                    )
                    or 0
                )
        finally:
            engine.dispose()

    async def all_credited() -> bool:
        return credited() == DEPOSITS

    await eventually(all_credited, timeout=30)


def test_a_device_cannot_be_named_after_a_process_identity(tmp_path: Path) -> None:
    registry = devices.Registry(services.broker_auth_files(tmp_path))
    with pytest.raises(devices.DeviceError, match="process identity"):
        registry.add(devices.Device("gateway", "bs-batu-merah", "ingest"))


def test_a_sqlite_ledger_file_is_private_from_its_first_byte(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        new = tmp_path / "new" / "ledger.db"
        ledger.make_engine(f"sqlite:///{new}").dispose()
        assert stat.S_IMODE(new.stat().st_mode) == 0o600
        for sidecar in (new.with_name("ledger.db-wal"), new.with_name("ledger.db-shm")):
            if sidecar.exists():
                assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600

        older = tmp_path / "older.db"
        older.touch(mode=0o644)
        older.chmod(0o644)
        ledger.make_engine(f"sqlite:///{older}").dispose()
        assert stat.S_IMODE(older.stat().st_mode) == 0o600
    finally:
        os.umask(old)


# ---- a refused takeover is told: the broker's event, the ingester's count and alert ----------


def _event(username: str, count: int = 1, unreported: int = 0, **fields: object) -> bytes:
    """A refusal event as the plugin writes it (checked against the ingester's schema)."""
    event = {
        "reason": "foreign_client_id",
        "username": username,
        "client_id": "ingest@host.1",
        "owner": "ingest",
        "address": "192.0.2.7",
        "at": "2024-05-01T03:04:05Z",
        "count": count,
        "unreported": unreported,
        "truncated": False,
        **fields,
    }
    payload = json.dumps(event).encode()
    decode_json(payload, Refusal)
    return payload


def _metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def _takeover_alerts(ledger_url: str, subject: str | None = None) -> list[alerts.SystemAlert]:
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            found = alerts.alerts(s, code=alerts.AlertCode.SESSION_TAKEOVER)
            return [a for a in found if subject is None or a.subject == subject]
    finally:
        engine.dispose()


@pytest.fixture
async def ingester_on_a_private_broker(
    private_mosquitto: PrivateMosquitto,
    influx_settings: InfluxSettings,
    ledger_url: str,
    test_id: str,
) -> AsyncIterator[IngestSettings]:
    """An ingester logged in as "ingest" on a broker of the test's own: the plugin built from
    this checkout's source, and no other test's refusals on its event topic."""
    settings = load_settings(
        IngestSettings,
        mqtt=private_mosquitto.mqtt(f"test-{test_id}/", user="ingest"),
        influx=influx_settings,
        ledger_url=ledger_url,
        client_id=f"chk-{test_id}",
        batch_max_age_s=0.05,
        metrics=MetricsSettings(port=free_port()),
    )
    ready = asyncio.Event()
    task = asyncio.create_task(run_ingest(settings, ready=ready))
    await asyncio.wait_for(ready.wait(), 20)
    yield settings
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_refused_takeover_is_counted_and_alerted_and_cannot_be_forged(
    ingester_on_a_private_broker: IngestSettings,
    private_mosquitto: PrivateMosquitto,
    ledger_url: str,
    test_id: str,
) -> None:
    settings = ingester_on_a_private_broker
    broker = settings.mqtt
    gw = f"gw-{test_id}"
    gateway_credentials(msgspec.structs.replace(broker, username=None, password=None), gw)
    device = msgspec.structs.replace(broker, username=gw, password=None).as_user(None)
    taken = client_id("ingest", f"chk-{test_id}")
    forged = _event("palsu", address=None)

    # Nobody publishes on the broker's event topic: not a device, not the api, not the
    # identities whose ACL grants them every other topic ("#"), not its reader.
    for user in (gw, "api", "test", "sim", "ingest"):
        login = device if user == gw else private_mosquitto.mqtt(user=user)
        async with mqtt.client(login, identifier=None, protocol=mqtt.V5) as client:
            publisher = mqtt.Publisher(client)
            for payload in (forged, "{"):
                reason = await publisher.publish(REFUSED_TOPIC, payload, qos=1)
                assert reason.value == 0x87, (user, str(reason))  # Not authorized

    refusals = 4
    password = device.password.get_secret_value() if device.password else None
    for _ in range(refusals):
        with pytest.raises(aiomqtt.MqttError) as refused:
            await _connect(device, username=gw, password=password, identifier=taken)
        assert _refused(refused.value)

    subject = f"{gw} -> {taken}"

    async def alerted() -> bool:
        return bool(await asyncio.to_thread(_takeover_alerts, ledger_url, subject))

    await eventually(alerted, timeout=30)
    (alert,) = await asyncio.to_thread(_takeover_alerts, ledger_url, subject)
    assert alert.cleared_at is None  # open until someone acknowledges it
    assert gw in alert.message
    assert taken in alert.message
    detail = alert.details
    assert (detail["username"], detail["client_id"], detail["owner"]) == (gw, taken, "ingest")
    assert detail["reason"] == "foreign_client_id"
    assert detail["address"] == "127.0.0.1"

    # The first refusal is reported at once, the rest of the burst in the pair's next event
    # (at most one per 10 s, sent at a CONNECT after the window): each poll connects once.
    metrics_url = f"http://127.0.0.1:{settings.metrics.port}/metrics"
    observer = private_mosquitto.mqtt()

    async def all_counted() -> bool:
        await _connect(observer, **mqtt_login(observer))
        async with httpx.AsyncClient() as web:
            text = (await web.get(metrics_url)).text
        total = "wastebank_ingest_broker_refused_total"
        return _metric(text, total, reason="foreign_client_id") == refusals

    await eventually(all_counted, timeout=40, interval=0.5)
    async with httpx.AsyncClient() as web:
        text = (await web.get(metrics_url)).text
    assert _metric(text, "wastebank_ingest_received_total", kind="broker") == 2  # two events
    # One alert for the pair however many refusals; nothing forged arrived, nothing dead.
    assert [a.subject for a in await asyncio.to_thread(_takeover_alerts, ledger_url)] == [subject]
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            assert ledger.dead_letters(s) == []
    finally:
        engine.dispose()

    log = (private_mosquitto.settings.run_dir / "mosquitto" / "mosquitto.log").read_text()
    assert (
        f"client id '{taken}' milik 'ingest', bukan pengguna '{gw}' / client id '{taken}' "
        f"belongs to 'ingest', not to user '{gw}'"
    ) in log


async def test_the_ingester_alerts_once_per_pair_and_dead_letters_a_malformed_event(
    ledger_url: str,
) -> None:
    settings = load_settings(
        IngestSettings,
        mqtt=MqttSettings(topic_prefix=""),
        influx=InfluxSettings(),
        ledger_url=ledger_url,
    )
    influx = Influx(settings.influx)
    ingester = Ingester(settings, ledger.make_engine(ledger_url), influx)
    try:
        assert await ingester.handle(REFUSED_TOPIC, _event("gw-01", 1)) == []
        assert await ingester.handle(REFUSED_TOPIC, _event("gw-01", 7, unreported=3)) == []
        assert await ingester.handle(REFUSED_TOPIC, _event("gw-02", 1)) == []
        for bad in (b"{", b'{"reason": "foreign_client_id"}', _event("gw-01", 1)[:-1] + b',"x":1}'):
            assert await ingester.handle(REFUSED_TOPIC, bad) == []
    finally:
        ingester.close()
        await influx.aclose()

    subjects = [a.subject for a in _takeover_alerts(ledger_url)]
    assert sorted(subjects) == ["gw-01 -> ingest@host.1", "gw-02 -> ingest@host.1"]
    registry = ingester.metrics.registry
    total = "wastebank_ingest_broker_refused_total"
    assert registry.get_sample_value(total, {"reason": "foreign_client_id"}) == 9
    assert registry.get_sample_value(total, {"reason": "unreported"}) == 3
    assert ingester.stats.broker_refusals == 9
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            dead = ledger.dead_letters(s)
    finally:
        engine.dispose()
    assert len(dead) == 3
    assert {d.topic for d in dead} == {REFUSED_TOPIC}
    assert all("invalid Refusal" in d.error for d in dead)
    assert (
        registry.get_sample_value(
            "wastebank_ingest_dead_lettered_total", {"reason": "invalid_payload"}
        )
        == 3
    )


def test_only_the_ingester_may_read_the_broker_events_and_nobody_publish() -> None:
    gw = devices.Device("gateway", "bs-batu-merah", "gw-01", reads=("application/#",))
    rules: dict[str, list[str]] = {}
    user = ""
    for line in devices.acl_text([gw]).splitlines():
        if line.startswith("user "):
            user = line.removeprefix("user ")
        elif line.startswith("topic "):
            rules.setdefault(user, []).append(line)
    assert set(rules) >= {"gw-01", *devices.PRINCIPAL_NAMES}
    for name, lines in rules.items():
        if name == "ingest":
            assert f"topic read {REFUSED_TOPIC}" in lines
            assert not [x for x in lines if x.startswith("topic write")]
        else:
            assert "topic deny wastebank/broker/#" in lines, name


def test_the_protocol_documents_the_event_the_ingester_accepts() -> None:
    text = (Path(__file__).parents[1] / "docs" / "protocol.md").read_text(encoding="utf-8")
    section = text.split("### Broker events (`wastebank/broker/refused`)", 1)[1]
    example = section.split("```json\n", 1)[1].split("```", 1)[0]
    event = decode_json(example, Refusal)
    assert (event.username, event.owner, event.count) == ("gw-01", "ingest", 1)
    assert set(json.loads(example)) == set(Refusal.__struct_fields__)  # every field shown
