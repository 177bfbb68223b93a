"""Fill sensors that arrive over MQTT: EM310-UDL uplinks from the LoRaWAN network server (the
DevEUI in the uplink names the sensor) and sensors publishing their own JSON (the topic names
it). A persistent session at QoS 1: each message is acknowledged only after the consumer of
:meth:`SensorUplinks.samples` has taken its sample (stored it in the outbox)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable

import aiomqtt

from gateway.fill_sensor import (
    DistanceSample,
    FillDecodeError,
    decode_em310_uplink,
    decode_json_reading,
)
from gateway.readers import FillSensorReader
from gateway.reconnect import reconnecting
from gateway.recorder import GatewayStats
from gateway.settings import GatewaySettings
from wastebank import mqtt
from wastebank.mqtt import BACKOFF_CAP_S

log = logging.getLogger("wastebank.gateway")

SETTLED_S = BACKOFF_CAP_S
"""A connection lost after this long is reconnected at once; sooner, with growing waits."""


class SensorUplinks:
    def __init__(
        self,
        settings: GatewaySettings,
        sensors: Iterable[FillSensorReader],
        *,
        install: str,
        stats: GatewayStats,
    ) -> None:
        self.settings = settings
        self.install = install
        self.stats = stats
        prefix = settings.mqtt.topic_prefix
        self.by_eui = {
            (x.cfg.dev_eui or "").lower(): x for x in sensors if x.cfg.kind == "em310_udl"
        }
        self.by_topic = {prefix + x.cfg.uplink_topic: x for x in sensors if x.cfg.kind == "json"}
        self.filters = sorted(
            {prefix + x.cfg.topic() for x in self.by_eui.values()} | set(self.by_topic)
        )
        self._lost = False

    async def samples(self) -> AsyncGenerator[tuple[FillSensorReader, DistanceSample]]:
        """Each message's sample and its sensor, until cancelled; the message is acknowledged
        when the consumer asks for the next."""
        while True:
            async for attempt in reconnecting(aiomqtt.MqttError):
                with attempt:
                    async for found in self._connection():
                        yield found

    async def _connection(self) -> AsyncIterator[tuple[FillSensorReader, DistanceSample]]:
        """One connection, until it is lost: MqttError (the next attempt waits longer), or the
        end after a connection that lasted (the next one is tried at once)."""
        client = mqtt.client(
            self.settings.mqtt,
            identifier=f"{self.settings.gateway_id}.{self.install}.lns",
            persistent=True,
            protocol=mqtt.V5,
        )
        client._client.manual_ack_set(True)  # noqa: SLF001 - ack after the outbox commit
        started: float | None = None
        try:
            async with client:
                for topic_filter in self.filters:
                    await client.subscribe(topic_filter, qos=1)
                started = time.monotonic()
                self._found()
                async for message in client.messages:
                    found = self._sample(message)
                    if found is not None:
                        yield found
                    if message.qos > 0:
                        client._client.ack(message.mid, message.qos)  # noqa: SLF001
        except aiomqtt.MqttError as exc:
            if not self._lost:
                log.warning("uplink sensor terputus / sensor uplinks lost: %s", exc)
            self._lost = True
            if started is None or time.monotonic() - started < SETTLED_S:
                raise

    def _found(self) -> None:
        log.info(
            "uplink sensor %s / sensor uplinks %s: %d sensor",
            "tersambung kembali" if self._lost else "berlangganan",
            "reconnected" if self._lost else "subscribed",
            len(self.by_eui) + len(self.by_topic),
        )
        self._lost = False

    def _sample(self, message: aiomqtt.Message) -> tuple[FillSensorReader, DistanceSample] | None:
        payload = message.payload
        raw = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
        json_sensor = self.by_topic.get(str(message.topic))
        if json_sensor is not None:
            return self._json_message(json_sensor, raw)
        return self._uplink(raw)

    def _uplink(self, payload: bytes) -> tuple[FillSensorReader, DistanceSample] | None:
        try:
            sample = decode_em310_uplink(payload)
        except FillDecodeError as exc:
            log.warning("uplink ditolak / uplink rejected (%s): %r", exc.reason, payload[:200])
            self.stats.uplinks_rejected += 1
            return None
        target = self.by_eui.get((sample.device_eui or "").lower())
        if target is None:
            log.warning("uplink perangkat tak dikenal / unknown device %s", sample.device_eui)
            self.stats.uplinks_rejected += 1
            return None
        return target, sample

    def _json_message(
        self, sensor: FillSensorReader, payload: bytes
    ) -> tuple[FillSensorReader, DistanceSample] | None:
        try:
            sample = decode_json_reading(payload)
        except FillDecodeError as exc:
            log.warning(
                "pesan sensor ditolak / sensor message rejected (%s): %r", exc.reason, payload[:200]
            )
            self.stats.uplinks_rejected += 1
            return None
        return sensor, sample
