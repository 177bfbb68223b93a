"""TPS fill sensors through a gateway: a JSN-SR04T on a pty, an EM310-UDL through a LoRaWAN
network server's MQTT integration and a sensor publishing its own plain JSON over MQTT, each
ending as filtered FillReadings on our topics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import pytest
import tomli_w

from firmware_sim.tps import SerialFillSensorSim, TpsSimSettings, run_em310_sensor
from tests.conftest import Processes, eventually, gateway_credentials, mqtt_login, settings_env
from wastebank.config import MqttSettings, load_settings
from wastebank.messages import FillReading, Topics
from wastebank.structs import decode_json

pytestmark = pytest.mark.integration

EUI = "24e124713b123456"


async def test_serial_and_lorawan_sensors_publish_filtered_readings(
    processes: Processes, mqtt_settings: MqttSettings, tmp_path: Path
) -> None:
    topics = Topics(mqtt_settings.topic_prefix)
    link = tmp_path / "jsn.tty"
    geometry = {"empty_distance_mm": 1400, "full_distance_mm": 250}
    site = tmp_path / "tps.toml"
    site.write_text(
        tomli_w.dumps(
            {
                "gateway_id": "gw-tps",
                "bank_code": "bs-batu-merah",
                "http_port": 0,
                "outbox": {"path": str(tmp_path / "outbox.db")},
                "sensors": [
                    {"id": "us-01", "tps_code": "tps-batu-merah", "kind": "jsn_sr04t",
                     "port": str(link), "report_interval_s": 0.2, **geometry},
                    {"id": "lora-01", "tps_code": "tps-benteng", "kind": "em310_udl",
                     "dev_eui": EUI, **geometry},
                    {"id": "wifi-01", "tps_code": "tps-mardika", "kind": "json",
                     "uplink_topic": "vendor/bins/bin-7/state", **geometry},
                ],
            }
        )
    )  # fmt: skip
    gateway_credentials(
        mqtt_settings,
        "gw-tps",
        serves=(
            ("tps-batu-merah", "us-01"),
            ("tps-benteng", "lora-01"),
            ("tps-mardika", "wifi-01"),
        ),
        # the network server's uplinks and the Wi-Fi bin's state, under the prefix
        reads=(f"application/+/device/{EUI}/event/up", "vendor/bins/bin-7/state"),
    )
    readings: dict[str, list[FillReading]] = {"us-01": [], "lora-01": [], "wifi-01": []}
    async with (
        aiomqtt.Client(
            mqtt_settings.host, mqtt_settings.port, **mqtt_login(mqtt_settings)
        ) as observer,
        SerialFillSensorSim(link, kind="jsn", seed=5, period_s=0.02) as jsn,
    ):
        await observer.subscribe(topics.fill("tps-batu-merah", "us-01"), qos=1)
        await observer.subscribe(topics.fill("tps-benteng", "lora-01"), qos=1)
        await observer.subscribe(topics.fill("tps-mardika", "wifi-01"), qos=1)
        processes.start("gateway", ["gateway", "--config", str(site)], settings_env(mqtt_settings))

        async def lns_subscribed() -> bool:
            return "sensor uplinks subscribed" in processes.log("gateway")

        await eventually(lns_subscribed)
        await run_em310_sensor(
            load_settings(TpsSimSettings, mqtt=mqtt_settings),
            tps_code="tps-benteng",
            sensor_id="lora-01",
            interval_s=0,
            count=3,
            dev_eui=EUI,
            seed=9,
        )
        vendor = mqtt_settings.topic_prefix + "vendor/bins/bin-7/state"
        for body in (
            b'{"distance_mm": 825, "temperature": 31.5, "battery_pct": 77}',
            b"not json at all",
            b'{"fillingLevel": 0.75}',
        ):
            await observer.publish(vendor, body, qos=1)
        async with asyncio.timeout(30):
            async for message in observer.messages:
                assert isinstance(message.payload, bytes | bytearray)
                r = decode_json(message.payload, FillReading)
                readings[r.sensor_id].append(r)
                if all(
                    len(readings[k]) >= n for k, n in (("us-01", 3), ("lora-01", 3), ("wifi-01", 2))
                ):
                    break
        true_mm = jsn.last_true_mm

    serial, lora, wifi = readings["us-01"], readings["lora-01"], readings["wifi-01"]
    assert {r.source for r in serial} == {"jsn_sr04t"}
    assert all(r.pings == 5 for r in serial)  # each reading is the median of a window of pings
    # Filtered and compensated, a reading sits near the true distance despite false echoes.
    assert abs(serial[-1].distance_mm - true_mm) < 60
    assert [r.seq for r in serial[:3]] == [1, 2, 3]  # a persistent sequence per sensor
    assert {r.source for r in lora[:3]} == {"em310_udl"}
    assert all(r.battery_pct is not None and r.rssi_dbm is not None for r in lora[:3])
    assert [r.seq for r in lora[:3]] == [1, 2, 3]
    # Plain JSON: a distance (with its temperature and battery) and a bare FIWARE fillingLevel;
    # the garbage between them was rejected and counted, and did not stop the next one.
    assert [(r.source, r.seq) for r in wifi] == [("json", 1), ("json", 2)]
    assert wifi[0].distance_mm == 825
    assert wifi[0].battery_pct == 77
    assert wifi[1].fillingLevel == pytest.approx(0.75)
    assert "sensor message rejected (bad_format)" in processes.log("gateway")
    for r in serial + lora + wifi:
        assert 0.0 <= r.fillingLevel <= 1.0
        assert r.install is not None
        assert r.reading_id == f"{r.sensor_id}.{r.install}.{r.seq}"
