"""The gateway's link to the broker: its status, and the outbox published oldest first.

MQTT 5, so a PUBACK says whether the broker accepted a message (3.1.1 acknowledges a publish its
ACL refused like any other). A retained "online" status with an "offline" will. The outbox is
drained at a rate limit, a row deleted only once the broker accepted it; a row it refused is
kept, marked with the reason and held back (``refused_retry_s``, doubled per refusal). A lost
connection is logged once, and reconnected with :func:`gateway.reconnect.reconnecting`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Literal

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from gateway.attendant_store import AttendantDb
from gateway.live import Live
from gateway.outbox import Outbox, OutboxRow
from gateway.readers import Condition
from gateway.reconnect import reconnecting
from gateway.recorder import GatewayStats, Recorder
from gateway.settings import GatewaySettings
from wastebank import __version__, mqtt
from wastebank.messages import GatewayHealth, GatewayStatus, Topics
from wastebank.mqtt import BACKOFF_CAP_S
from wastebank.structs import checked, encode_json

log = logging.getLogger("wastebank.gateway")

DRAIN_WINDOW = mqtt.IN_FLIGHT
"""Publishes in flight at once while draining (each still deleted only after its PUBACK)."""
DRAIN_BATCH = 1000
"""Rows read from the outbox at a time; acknowledged ones are deleted together."""
SETTLED_S = BACKOFF_CAP_S
"""A connection lost after this long is reconnected at once; sooner, with growing waits."""
STOP_STATUS_TIMEOUT_S = 2.0
"""At a clean stop: how long saying "offline" may take."""


class Uplink:
    """The MQTT side of one gateway; :meth:`run` until cancelled."""

    def __init__(
        self,
        settings: GatewaySettings,
        outbox: Outbox,
        recorder: Recorder,
        db: AttendantDb,
        *,
        boot: str,
        live: Live,
        stats: GatewayStats,
        health_due: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.topics = Topics(settings.mqtt.topic_prefix)
        self.outbox = outbox
        self.recorder = recorder
        self.db = db
        self.boot = boot
        self.live = live
        self.stats = stats
        self.health_due = health_due
        """Set when the link is up again: the gateway's health loop makes the retained report
        fresh (:meth:`gateway.app.Gateway.health_loop` decides when a report goes out)."""
        self.connected = asyncio.Event()
        self.publisher: mqtt.Publisher | None = None
        """While connected: publishes on the link (the health loop's reports)."""
        self._lost = False
        self._refusals_logged: set[tuple[int, bool]] = set()

    def _status(self, state: Literal["online", "offline"]) -> bytes:
        status = checked(
            GatewayStatus(
                state=state,
                device_id=self.settings.gateway_id,
                at=datetime.now(UTC),
                version=__version__,
                install=self.outbox.install,
                boot=self.boot,
            )
        )
        return encode_json(status)

    def _client(self, status_topic: str) -> aiomqtt.Client:
        s = self.settings
        will_payload = encode_json(
            checked(
                GatewayStatus(
                    state="offline",
                    device_id=s.gateway_id,
                    install=self.outbox.install,
                    boot=self.boot,
                )
            )
        )
        # Not a persistent session: the outbox, not the broker, holds what is not yet delivered.
        # Its own session per process (install and boot in the client id): two gateways with
        # one gateway id (a clone) do not take each other's connection in a loop.
        return mqtt.client(
            s.mqtt,
            identifier=f"{s.gateway_id}.{self.outbox.install}.{self.boot}",
            will=aiomqtt.Will(status_topic, will_payload, qos=1, retain=True),
            protocol=mqtt.V5,
        )

    async def run(self) -> None:
        """Connected, or reconnecting, until cancelled."""
        status_topic = self.topics.gateway_status(self.settings.bank_code, self.settings.gateway_id)
        while True:
            async for attempt in reconnecting(aiomqtt.MqttError):
                with attempt:
                    await self._connection(status_topic)

    async def _connection(self, status_topic: str) -> None:
        """One connection, until it is lost: MqttError (the next attempt waits longer), or a
        return after a connection that lasted (the next one is tried at once, its waits start
        afresh). A connection refused or lost at once never makes a tight loop."""
        started: float | None = None
        try:
            async with self._client(status_topic) as client:
                started = time.monotonic()
                await self._session(client, status_topic)
        except aiomqtt.MqttError as exc:
            self._lose(exc)
            if started is None or time.monotonic() - started < SETTLED_S:
                raise

    def _lose(self, exc: aiomqtt.MqttError) -> None:
        """The link is down: said once, until it is back."""
        if not self._lost:
            log.warning(
                "broker terputus / broker unreachable (%d in outbox): %s", len(self.outbox), exc
            )
        self._lost = True

    async def _session(self, client: aiomqtt.Client, status_topic: str) -> None:
        s = self.settings
        log.info(
            "%s / connected to the broker %s:%d (%d in outbox)",
            "terhubung kembali" if self._lost else "terhubung",
            s.mqtt.host,
            s.mqtt.port,
            len(self.outbox),
        )
        if self._lost:
            self.stats.mqtt_reconnects += 1
        self._lost = False
        publisher = mqtt.Publisher(client)
        reason = await publisher.publish(status_topic, self._status("online"), qos=1, retain=True)
        self._telemetry_refused(status_topic, reason)
        self.publisher = publisher
        self.connected.set()
        self.live.notify()
        self.health_due.set()
        try:
            await self._drain(publisher)
        finally:
            self.publisher = None
            self.connected.clear()
            self.live.notify()
            # A clean stop: say offline ourselves (the will only fires on a lost link).
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(
                    status_topic,
                    self._status("offline"),
                    qos=1,
                    retain=True,
                    timeout=STOP_STATUS_TIMEOUT_S,
                )

    async def publish_health(self, publisher: mqtt.Publisher, health: GatewayHealth) -> None:
        """Publish ``health`` retained (the gateway's health loop decides when)."""
        topic = self.topics.gateway_health(self.settings.bank_code, self.settings.gateway_id)
        reason = await publisher.publish(topic, encode_json(health), qos=1, retain=True)
        self._telemetry_refused(topic, reason)

    async def _drain(self, publisher: mqtt.Publisher) -> None:
        """Publish the outbox oldest first, at most ``drain_rate_per_s``, ``DRAIN_WINDOW`` in
        flight at any time (a continuous pipeline: waiting for whole windows would stall on each
        window's last PUBACK); rows the broker accepted are deleted once per batch, rows it
        refused are kept, marked and held back (:meth:`_refused`)."""
        loop = asyncio.get_running_loop()
        min_gap = 1.0 / self.settings.outbox.drain_rate_per_s
        next_at = loop.time()
        window = asyncio.Semaphore(DRAIN_WINDOW)
        while True:
            self.recorder.stored.clear()
            rows = self.outbox.peek(DRAIN_BATCH)
            if not rows:
                await self._idle(publisher.client)
                continue
            acked: list[OutboxRow] = []
            refused: list[tuple[OutboxRow, ReasonCode]] = []
            try:
                async with asyncio.TaskGroup() as tg:
                    for row in rows:
                        await window.acquire()
                        delay = next_at - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        next_at = max(next_at, loop.time()) + min_gap
                        tg.create_task(self._publish_row(publisher, row, acked, refused, window))
            except ExceptionGroup as group:
                # A lost connection fails every publish in flight: reconnect like any MqttError.
                mqtt_errors = group.subgroup(aiomqtt.MqttError)
                if mqtt_errors is None:
                    raise
                first = mqtt_errors.exceptions[0]
                raise aiomqtt.MqttError(str(first)) from group
            finally:
                # Only what the broker accepted goes, in one transaction per batch; what it
                # refused stays, marked with the reason, in another.
                self.outbox.remove_many([row.id for row in acked])
                if self.db.journal.mark_sent([row.id for row in acked], datetime.now(UTC)):
                    self.live.notify()
                self.stats.published += len(acked)
                self._refused(refused)
                self._accepted_again(acked)

    async def _publish_row(
        self,
        publisher: mqtt.Publisher,
        row: OutboxRow,
        acked: list[OutboxRow],
        refused: list[tuple[OutboxRow, ReasonCode]],
        window: asyncio.Semaphore,
    ) -> None:
        try:
            reason = await publisher.publish(row.topic, row.payload, qos=1)
            if mqtt.accepted(reason):
                acked.append(row)
            else:
                refused.append((row, reason))
        finally:
            window.release()

    def _refused(self, refused: list[tuple[OutboxRow, ReasonCode]]) -> None:
        """Keep the rows the broker refused, each marked with its reason code and held back
        (``refused_retry_s``, doubled per refusal, at most an hour): not deleted, not resent at
        once. Each reason is logged once as an error; the ``publish_refused`` alert is raised
        once (through the outbox: its own topic may be refused too, then it waits with the rest,
        and the refusal still shows in the log and the health report)."""
        if not refused:
            return
        hold = self.settings.outbox.refused_retry_s
        self.outbox.mark_refused(((row.id, reason.value) for row, reason in refused), hold_s=hold)
        self.stats.refusals += len(refused)
        for row, reason in refused:
            self._log_refusal(row.topic, reason, kept=True)
        total = sum(self.outbox.refused().values())
        row, reason = refused[0]
        self.recorder.report(
            Condition(
                "publish_refused",
                "outbox",
                True,
                value=total,
                message=f"broker menolak pesan / the broker refused {_reason(reason)} on "
                f"{row.topic}; {total} disimpan di outbox / kept in the outbox",
            )
        )

    def _accepted_again(self, acked: list[OutboxRow]) -> None:
        """Rows refused before and accepted now; the alert clears once none is left."""
        again = sum(1 for row in acked if row.refused_code is not None)
        if again:
            log.info(
                "%d pesan yang sempat ditolak kini diterima / %d rows refused before are accepted",
                again,
                again,
            )
        self.check_refused()

    def check_refused(self) -> None:
        """Clear the ``publish_refused`` alert once no refused row is left (accepted, or gone
        with the outbox's bounds)."""
        if not self.recorder.alert_active("publish_refused", "outbox"):
            return
        if self.outbox.refused():
            return
        self._refusals_logged.clear()  # a new episode logs its reasons again
        self.recorder.report(
            Condition(
                "publish_refused",
                "outbox",
                False,
                value=0,
                message="tidak ada lagi pesan yang ditolak / no refused rows left in the outbox",
            )
        )

    def _telemetry_refused(self, topic: str, reason: ReasonCode) -> None:
        """Status and health are not kept (the next report replaces them): only logged once."""
        if not mqtt.accepted(reason):
            self.stats.refusals += 1
            self._log_refusal(topic, reason, kept=False)

    def _log_refusal(self, topic: str, reason: ReasonCode, *, kept: bool) -> None:
        key = (reason.value, kept)
        if key in self._refusals_logged:
            return
        self._refusals_logged.add(key)
        s = self.settings
        if kept:
            what = (
                "disimpan di outbox, dicoba lagi nanti / kept in the outbox, tried again in "
                f"{s.outbox.refused_retry_s:g} s and at every start"
            )
        else:
            what = "tidak disimpan / not kept: status and health are sent again anyway"
        log.error(
            "broker menolak pesan / the broker refused a publish: %s on %s; %s (bank_code %s and "
            "gateway_id %s must be those the credentials %s were issued for: docs/deploy-pi.md §8)",
            _reason(reason),
            topic,
            what,
            s.bank_code,
            s.gateway_id,
            s.mqtt.username or "(anonymous)",
        )

    async def _idle(self, client: aiomqtt.Client) -> None:
        """Wait for new rows or the next refused row's retry; raise MqttError if the connection
        drops meanwhile.

        We subscribe to nothing, so the message iterator only ever ends, with MqttError, when the
        connection is lost: watching it notices a dead broker while idle, not at the next deposit.
        """
        retry_at = self.outbox.next_retry()
        timeout = None if retry_at is None else max(0.0, retry_at - time.time())
        wake = asyncio.ensure_future(self.recorder.stored.wait())
        lost = asyncio.ensure_future(anext(client.messages))
        try:
            await asyncio.wait((wake, lost), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
            lost.cancel()
        if lost.done() and not lost.cancelled():
            lost.result()


def _reason(reason: ReasonCode) -> str:
    """A PUBACK's reason code for a log line: ``0x87 Not authorized``."""
    return f"0x{reason.value:02x} {reason.getName()}"
