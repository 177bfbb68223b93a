"""firmware_sim.tps: serial fill sensors on a real pty read with pyserial, and the EM310-UDL
simulator's ChirpStack v4 uplinks through the real Mosquitto, decoded by gateway.fill_sensor."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest
import serial
from typer.testing import CliRunner

from firmware_sim.tps import (
    SerialFillSensorSim,
    TpsSimSettings,
    chirpstack_up_topic,
    dev_eui_for,
    run_em310_sensor,
)
from gateway.fill_sensor import (
    DistanceSample,
    FillConfig,
    FillEstimate,
    FillProcessor,
    MaxBotixDecoder,
    Mode2Decoder,
    decode_em310_uplink,
    parse_lorawan_uplink,
)
from tests.conftest import PrivateMosquitto, eventually
from wastebank.cli import app
from wastebank.config import MqttSettings, load_settings
from wastebank.mqtt import client as mqtt_client

DEADLINE_S = 20.0
# Slow simulated time: the true level stays put while a test reads, so distances can be
# compared with the simulator's truth. A high false-echo rate makes sure spikes are sent.
SETTINGS = load_settings(TpsSimSettings, time_scale=1.0, false_echo_p=0.2)


class SerialReader:
    """The gateway's read path for a fill sensor: pyserial -> decoder -> FillProcessor."""

    def __init__(
        self,
        link: Path,
        decoder: Mode2Decoder | MaxBotixDecoder,
        processor: FillProcessor,
        temperature: Callable[[], float | None],
    ) -> None:
        self.port = serial.Serial(str(link), 9600, timeout=0.05)  # 8N1 is pyserial's default
        self.decoder = decoder
        self.processor = processor
        self.temperature = temperature
        self.samples: list[DistanceSample] = []
        self.estimates: list[FillEstimate] = []

    def close(self) -> None:
        self.port.close()

    async def read_until(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not done():
            assert time.monotonic() < deadline, "timed out waiting for the simulator"
            data = await asyncio.to_thread(self.port.read, 4096)
            for sample in self.decoder.feed(data):
                self.samples.append(sample)
                estimate = self.processor.add(sample, temperature_c=self.temperature())
                if estimate is not None:
                    self.estimates.append(estimate)


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "ttyFILL0"


def config() -> FillConfig:
    return FillConfig(
        empty_distance_mm=SETTINGS.empty_distance_mm, full_distance_mm=SETTINGS.full_distance_mm
    )


async def test_jsn_sr04t_mode2_over_a_real_pty(link: Path) -> None:
    async with SerialFillSensorSim(
        link, kind="jsn", settings=SETTINGS, seed=11, fill=0.35, period_s=0.02
    ) as sim:
        assert os.readlink(link) == sim.slave_name
        reader = SerialReader(
            link, Mode2Decoder(), FillProcessor(config()), lambda: sim.last_temperature_c
        )
        try:
            await reader.read_until(lambda: len(reader.estimates) >= 8)
        finally:
            reader.close()
        truth = sim.last_true_mm
        temperature = sim.last_temperature_c
        sent, false_echoes = sim.pings_sent, sim.false_echoes_sent

    decoder = reader.decoder
    assert isinstance(decoder, Mode2Decoder)
    assert decoder.frames == len(reader.samples) > 0
    assert decoder.rejects["checksum"] == 0  # a clean line: every frame's sum checks out
    assert all(s.raw[0] == 0xFF and len(s.raw) == 4 for s in reader.samples)
    assert len(reader.samples) <= sent

    # The false echoes were sent and the filter threw them out (blind zone or spike).
    processor = reader.processor
    assert false_echoes > 0
    assert processor.rejects["spike"] + processor.rejects["out_of_range"] > 0
    assert processor.readmitted == 0

    # The module reads short in warm air (it assumes 20 degC); compensated estimates match
    # the simulator's truth, uncompensated medians are about d * (1 - c(20)/c(T)) short:
    # at ~28 degC and ~1000 mm, 1000 * (1 - 343.42 / 348.27) = 14 mm.
    assert 25 < temperature < 32
    errors = [e.distance_mm - truth for e in reader.estimates]
    assert abs(statistics.mean(errors)) < 5, errors
    raw_medians = [
        statistics.median(s.distance_mm or 0 for s in reader.samples[i : i + 5])
        for i in range(0, len(reader.samples) - 5, 5)
    ]
    assert statistics.median(raw_medians) < truth - 8
    for estimate in reader.estimates:
        assert estimate.source == "jsn_sr04t"
        assert estimate.pings == 5
        assert estimate.level_status == "ok"
        assert estimate.raw.startswith("FF ")


@pytest.mark.parametrize(
    ("digits", "tolerance_mm"),
    [(4, 15), (3, 30)],  # 3-digit frames are whole inches: 25.4 mm steps
    ids=["hrxl-mm", "lv-inches"],
)
async def test_maxbotix_over_a_real_pty(link: Path, digits: int, tolerance_mm: int) -> None:
    async with SerialFillSensorSim(
        link,
        kind="maxbotix",
        settings=SETTINGS,
        seed=5,
        fill=0.5,
        period_s=0.02,
        maxbotix_digits=3 if digits == 3 else 4,
    ) as sim:
        reader = SerialReader(
            link, MaxBotixDecoder(), FillProcessor(config()), lambda: sim.last_temperature_c
        )
        try:
            await reader.read_until(lambda: len(reader.estimates) >= 4)
        finally:
            reader.close()
        truth = sim.last_true_mm

    first = reader.samples[0].raw
    assert first.startswith(b"R")
    assert first.endswith(b"\r")
    assert len(first) == digits + 2
    assert reader.decoder.rejects["bad_format"] == 0
    for estimate in reader.estimates:
        assert estimate.source == "maxbotix"
        assert abs(estimate.distance_mm - truth) <= tolerance_mm


async def test_maxbotix_lost_echoes_are_no_target_never_a_distance(link: Path) -> None:
    """An HRXL 5 m module sends R5000 for an echo lost on tilted cardboard: the decoder counts
    each as no target, and no 5000 mm sample (an empty container) reaches the filter."""
    async with SerialFillSensorSim(
        link,
        kind="maxbotix",
        settings=SETTINGS,
        seed=7,
        fill=0.5,
        period_s=0.02,
        maxbotix_no_target_mm=5000,
    ) as sim:
        reader = SerialReader(
            link, MaxBotixDecoder(model="hrxl_5m"), FillProcessor(config()), lambda: None
        )
        try:
            await reader.read_until(lambda: reader.decoder.rejects["no_target"] >= 3)
        finally:
            reader.close()
        assert sim.no_targets_sent >= reader.decoder.rejects["no_target"]

    assert set(reader.decoder.rejects) <= {"no_target", "bad_format"}  # a partial first line
    assert reader.decoder.rejects["bad_format"] <= 1
    assert all(s.distance_mm != 5000 for s in reader.samples)
    with pytest.raises(ValueError, match="4-digit maxbotix"):
        SerialFillSensorSim(link, kind="jsn", maxbotix_no_target_mm=5000)


async def test_serial_sim_validates_and_cleans_up(link: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        SerialFillSensorSim(link, kind="lidar")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="period_s"):
        SerialFillSensorSim(link, period_s=0)
    sim = SerialFillSensorSim(link, settings=SETTINGS, seed=1)
    assert sim.period_s == 0.1  # JSN-SR04T mode 2: one frame per 100 ms
    async with sim:
        await sim.wait_pings(2)
        assert sim.pings_sent >= 2
    assert not await asyncio.to_thread(os.path.lexists, link)  # the simulator removed its link


async def test_em310_uplinks_through_the_real_broker(mqtt_settings: MqttSettings) -> None:
    settings = load_settings(TpsSimSettings, mqtt=mqtt_settings)
    eui = "24E124136B502217"
    received: list[aiomqtt.Message] = []
    listener = mqtt_client(mqtt_settings, identifier=f"em310-test-{os.getpid()}")
    async with listener:
        await listener.subscribe(f"{mqtt_settings.topic_prefix}application/+/device/+/event/up", 1)
        sim = asyncio.create_task(
            run_em310_sensor(
                settings,
                tps_code="tps-benteng",
                sensor_id="us-07",
                interval_s=0,
                count=3,
                dev_eui=eui,
                seed=3,
                qos=1,
            )
        )
        async with asyncio.timeout(DEADLINE_S):
            async for message in listener.messages:
                received.append(message)
                if len(received) == 3:
                    break
        await asyncio.wait_for(sim, DEADLINE_S)

    topic = chirpstack_up_topic(mqtt_settings.topic_prefix, "+", eui.lower())
    prefix, suffix = topic.split("+")
    f_cnts = []
    for message in received:
        assert message.topic.value.startswith(prefix)
        assert message.topic.value.endswith(suffix)
        assert isinstance(message.payload, bytes)
        body = json.loads(message.payload)
        assert set(body) >= {"deduplicationId", "time", "deviceInfo", "data", "rxInfo", "fCnt"}
        assert body["deviceInfo"]["deviceName"] == "us-07"
        assert body["deviceInfo"]["tags"] == {"tps": "tps-benteng"}
        uplink = parse_lorawan_uplink(message.payload)
        assert (uplink.network, uplink.dev_eui, uplink.f_port) == (
            "chirpstack_v4",
            eui.lower(),
            85,
        )
        assert uplink.received_at is not None
        assert uplink.f_cnt is not None
        f_cnts.append(uplink.f_cnt)
        sample = decode_em310_uplink(message.payload)
        assert sample.distance_mm is not None
        # the container starts 5-40 % full: 1400 - 0.4 * 1150 = 940 .. 1400 - 0.05 * 1150 = 1342
        assert 900 <= sample.distance_mm <= 1400
        assert sample.battery_pct == 98  # a fresh battery (FillModel.battery_pct)
        assert sample.tilt is False
        assert sample.rssi_dbm is not None
        assert -140 < sample.rssi_dbm < 0
        assert sample.snr_db is not None
    assert f_cnts == list(range(f_cnts[0], f_cnts[0] + 3))  # consecutive frame counters


async def test_a_sensor_started_before_its_broker_delivers_once_the_broker_is_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker is down when the simulator starts: it says so once however often it tries,
    keeps its readings, and delivers every one (QoS 1: acknowledged) once the broker is up."""
    broker = PrivateMosquitto(tmp_path / "run")
    broker.start()  # services up writes the password the settings read
    settings = load_settings(TpsSimSettings, mqtt=broker.mqtt())
    broker.stop()

    async def said_down() -> bool:
        return "tidak tersedia / down" in caplog.text

    try:
        with caplog.at_level(logging.INFO, logger="firmware_sim.tps"):
            sim = asyncio.create_task(
                run_em310_sensor(
                    settings,
                    tps_code="tps-benteng",
                    sensor_id="us-07",
                    interval_s=0,
                    count=3,
                    seed=3,
                    qos=1,
                )
            )
            await eventually(said_down)
            assert not sim.done()
            await asyncio.to_thread(broker.start)
            await asyncio.wait_for(sim, DEADLINE_S)  # returns once all three are acknowledged
    finally:
        broker.stop()
    assert caplog.text.count("tidak tersedia / down") == 1
    assert "tersambung kembali / reconnected (0 bacaan dibuang / dropped)" in caplog.text


def test_dev_eui_for_is_stable() -> None:
    assert dev_eui_for("us-07") == dev_eui_for("us-07") != dev_eui_for("us-08")
    assert len(dev_eui_for("us-07")) == 16


def test_cli_refuses_serial_kinds_without_a_link() -> None:
    result = CliRunner().invoke(app, ["sim", "tps", "--kind", "jsn"])
    assert result.exit_code != 0
    assert "--link" in result.output
    result = CliRunner().invoke(app, ["sim", "tps", "--kind", "lidar"])
    assert result.exit_code != 0
    assert "--kind" in result.output
