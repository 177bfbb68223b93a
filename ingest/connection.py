"""The ingester's broker connection: a paho client on its own network thread feeding the inbox,
and what it says when it connects, is refused, loses the broker and comes back."""

from __future__ import annotations

import asyncio
import logging

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from ingest.paho_inbox import Inbox, InboxClient
from ingest.settings import IngestSettings
from wastebank import mqtt
from wastebank.config import MqttSettings

log = logging.getLogger("wastebank.ingest")


def connect(
    settings: IngestSettings,
    subscriptions: list[tuple[str, int]],
    inbox: Inbox,
    ready: asyncio.Event | None,
) -> InboxClient:
    """A paho client on its own network thread, feeding ``inbox``; it reconnects by itself.

    MQTT 3.1.1, persistent session, QoS 1, manual acknowledgement. The inbox is bounded by
    the client: past ``2 * batch_size`` waiting messages paho stops reading the socket until the
    consumer catches up, so TCP pushes back on the broker, which keeps the rest in the session:
    backpressure instead of a growing queue. Neither the broker's own window
    (max_inflight_messages, Mosquitto 2.0.11) nor MQTT 5's Receive Maximum served instead
    (docs/scaling.md, "The ingester's hot path").
    """
    mqtt_settings = settings.mqtt
    client_id = mqtt.client_id(
        mqtt_settings.username, settings.client_id or mqtt.instance_name("ingest")
    )
    client = InboxClient(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv311,
        clean_session=False,
        manual_ack=True,
    )
    if mqtt_settings.username:
        password = mqtt_settings.password.get_secret_value() if mqtt_settings.password else None
        client.username_pw_set(mqtt_settings.username, password)
    client.reconnect_delay_set(1, int(mqtt.BACKOFF_CAP_S))
    ConnectionEvents(mqtt_settings, client_id, subscriptions, inbox, ready).attach(client)
    client.room = inbox.room
    client.inbox = inbox
    inbox.client = client
    client.connect_async(
        mqtt_settings.host,
        mqtt_settings.port,
        keepalive=mqtt_settings.keepalive_s,
    )
    client.loop_start()
    return client


class ConnectionEvents:
    """paho's callbacks for the ingester's client, on paho's network thread: subscribe on every
    connect (the session is persistent, but a broker may have lost it), say a refusal, a loss
    and a reconnection once each rather than at every retry, tell the inbox a connection ended
    (its packet ids mean nothing after that), and set ``ready`` once subscribed."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        subscriptions: list[tuple[str, int]],
        inbox: Inbox,
        ready: asyncio.Event | None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._settings = settings
        self._client_id = client_id
        self._subscriptions = subscriptions
        self._inbox = inbox
        self._ready = ready
        self.connected_once = False
        self.lost = False
        self.refused = False

    def attach(self, client: paho.Client) -> None:
        client.on_connect = self.on_connect
        client.on_subscribe = self.on_subscribe
        client.on_disconnect = self.on_disconnect
        client.on_message = self.on_message

    def on_connect(
        self, c: paho.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        if reason.is_failure:
            if not self.refused:
                log.error("broker menolak / broker refused the connection: %s", reason)
            self.refused = True
            return
        if self.lost:
            log.info("terhubung kembali / reconnected to the broker")
        elif not self.connected_once:
            log.info(
                "ingest terhubung / connected to %s:%d as %s",
                self._settings.host,
                self._settings.port,
                self._client_id,
            )
        self.connected_once, self.lost, self.refused = True, False, False
        c.subscribe(self._subscriptions)

    def on_subscribe(
        self, _c: paho.Client, _u: object, _mid: int, codes: list[ReasonCode], _p: object
    ) -> None:
        failed = [str(code) for code in codes if code.is_failure]
        if failed:
            log.error("langganan ditolak / subscription refused: %s", ", ".join(failed))
            return
        log.info("berlangganan / subscribed to %s", ", ".join(f for f, _ in self._subscriptions))
        if self._ready is not None:
            self._loop.call_soon_threadsafe(self._ready.set)

    def on_disconnect(
        self, _c: paho.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        self._inbox.connection_lost()
        if not self.lost and self.connected_once and not self._inbox.closing:
            log.warning("broker terputus / broker connection lost: %s", reason)
        self.lost = True

    def on_message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        # Only what InboxClient's reader leaves to paho (QoS 2) comes this way.
        self._inbox.put(message._topic, bytes(message.payload), message.mid, message.qos)  # noqa: SLF001
