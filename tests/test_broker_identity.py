"""Only the right caller on the broker `wastebank services up` starts: no anonymous client, no
wrong password, and no client id of someone else's (deploy/mosquitto/wastebank_clientid.c);
and a ledger file nobody else can read."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ingest.main import IngestSettings
from ingest.main import run as run_ingest
from ingest.metrics import MetricsSettings
from tests.conftest import (
    broker_settings,
    deposit_event,
    eventually,
    free_port,
    gateway_credentials,
    mqtt_login,
)
from wastebank import devices, ledger, services
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.messages import Topics
from wastebank.mqtt import client_id

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
    settings = IngestSettings(
        mqtt=broker_settings(running_services, user="ingest", topic_prefix=f"test-{test_id}/"),
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


async def test_a_device_password_cannot_take_the_ingesters_session(
    ingester_as_itself: IngestSettings, ledger_url: str, test_id: str
) -> None:
    """The attack of issue 13: a gateway's credentials plus the ingester's client id (clean
    start) wiped its persistent session. Now every such connect is refused before the session
    is touched, and every deposit the gateway publishes meanwhile is credited."""
    mqtt = ingester_as_itself.mqtt
    gw = f"gw-{test_id}"
    gateway_credentials(mqtt.model_copy(update={"username": None, "password": None}), gw)
    device = mqtt.model_copy(update={"username": gw, "password": None}).as_user(None)
    taken = client_id("ingest", f"chk-{test_id}")
    topics = Topics(mqtt.topic_prefix)
    async with aiomqtt.Client(mqtt.host, mqtt.port, **mqtt_login(device)) as gateway:
        for seq in range(1, DEPOSITS + 1):
            event = deposit_event(seq, gateway=gw, net_g=1000 + seq)
            await gateway.publish(
                topics.deposit("bs-batu-merah", gw), event.model_dump_json(), qos=1
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
