"""The ingester's fast path from the broker's socket to its batches: measured, kept apart.

:class:`InboxClient` is paho with a read path of its own: whole packets parsed straight from
64 KiB reads, each QoS 0/1 PUBLISH put into the :class:`Inbox` as bytes, every other packet
handed to paho's own handler. The event loop takes the inbox in batches and acknowledges each
batch at once (:meth:`Inbox.ack`, :meth:`InboxClient.ack_many`). docs/scaling.md, "The figures",
says what each part of this bought; change it only with ``bench/ingest.py`` run before and after.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.exception import MalformedPacket

Received = tuple[bytes, bytes, int, int, int]
"""A message as the inbox keeps it: topic, payload, packet id, QoS, connection number."""


class Inbox:
    """Messages from paho's network thread to the event loop, taken in batches.

    paho runs its own thread (``loop_start``): it reads the socket, answers pings, reconnects,
    and calls ``put`` for each PUBLISH, which only appends to a deque. The event loop is woken
    (``call_soon_threadsafe``) only when it waits for more messages than there are: once per
    batch, never once per message — the per-message hop into asyncio is what capped aiomqtt.

    Each message carries the number of the connection it came on. After a disconnect its packet
    id means nothing (a new session may give that id to another message), so ``ack`` skips it:
    the broker redelivers it, and the ledger and InfluxDB make the second application a no-op.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self._loop = loop
        self._items: deque[Received] = deque()
        self.limit = limit
        self.room = threading.Event()  # clear while ``limit`` messages wait: paho stops reading
        self.room.set()
        self._event = asyncio.Event()
        self._want = 0  # wake the loop when this many are queued; 0: it is not waiting
        self._lock = threading.Lock()  # connection number vs. acks
        self._connection = 0
        self.client: InboxClient | None = None
        self.closing = False

    # paho's thread

    def put(self, topic: bytes, payload: bytes, mid: int, qos: int) -> None:
        self._items.append((topic, payload, mid, qos, self._connection))
        if len(self._items) >= self.limit:
            self.room.clear()
        want = self._want
        if want and len(self._items) >= want:
            self._want = 0
            self._loop.call_soon_threadsafe(self._event.set)

    def connection_lost(self) -> None:
        with self._lock:
            self._connection += 1

    # the event loop

    def waiting(self) -> int:
        return len(self._items)

    async def take(self, size: int, max_age_s: float) -> tuple[list[Received], float]:
        """Up to ``size`` messages: waits for the first, then at most ``max_age_s`` for more.
        Returns them with the loop time the first one was taken."""
        await self._until(1, None)
        first = self._loop.time()
        deadline = first + max_age_s
        batch: list[Received] = []
        while True:
            items = self._items
            while items and len(batch) < size:
                batch.append(items.popleft())
            if len(items) < self.limit:
                self.room.set()
            remaining = deadline - self._loop.time()
            if len(batch) >= size or remaining <= 0:
                return batch, first
            await self._until(size - len(batch), remaining)

    async def _until(self, count: int, timeout: float | None) -> None:
        if len(self._items) >= count:
            return
        self._event.clear()
        self._want = count
        # put() appends before it reads _want: whatever it appended before _want was set is
        # seen here, whatever it appends after sees _want. No message can slip between.
        if len(self._items) >= count:
            self._want = 0
            return
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._want = 0

    def ack(self, messages: Iterable[tuple[int, int, int]]) -> int:
        """Acknowledge (mid, qos, connection) messages of the current connection; return how
        many came on an earlier one (left for the broker to redeliver)."""
        stale = 0
        with self._lock:
            client = self.client
            mids = []
            for mid, qos, connection in messages:
                if qos == 0:
                    continue
                if connection != self._connection or client is None:
                    stale += 1
                elif qos == 1:
                    mids.append(mid)
                else:
                    client.ack(mid, qos)
            if client is not None:
                client.ack_many(mids)
        return stale


_PUBACK = struct.Struct("!BBH")  # fixed header, remaining length 2, packet id
_TOPIC_LENGTH = struct.Struct("!H")  # also the packet id


class InboxClient(paho.Client):
    """paho, with the ingester's read path: whole packets parsed straight from 64 KiB reads.

    paho reads each packet with three or more ``recv`` calls (command byte, length bytes, body),
    handles one packet per wake-up of its loop, and builds an MQTTMessage for each PUBLISH (with
    an MQTTMessageInfo holding a threading.Condition) to match against per-topic callbacks. At
    tens of thousands of messages a second that costs more than the work on them (docs/scaling.md),
    and on a threaded loop every system call also hands the GIL back and forth with the thread
    doing the work. Here, with MQTT 3.1.1 and an inbox, ``loop_read`` reads the socket 64 KiB at a
    time, puts each QoS 0/1 PUBLISH into the inbox as (topic, payload, packet id, QoS), and
    hands every other packet (CONNACK, SUBACK, PINGRESP, QoS 2...) to paho's own handler as
    paho's reader would. Manual acknowledgement is on, so paho would send nothing for a
    PUBLISH either. Without an inbox, or with MQTT 5, paho reads as usual.
    """

    READ_SIZE = 65536

    room: threading.Event | None = None
    """Set while the consumer can take more; while clear, the socket is left unread."""
    inbox: Inbox | None = None
    """Where PUBLISHes go, straight from the packet."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._partial = b""  # the start of a packet whose rest is still in the socket

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        inbox = self.inbox
        if inbox is None or self._protocol != paho.MQTTv311:
            return super().loop_read(max_packets)
        if self._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        room = self.room
        if room is not None and not room.is_set() and not room.wait(1.0):
            # The consumer is behind: leave the rest in the socket, so TCP pushes back on the
            # broker, which keeps it (Mosquitto 2.0.11's max_inflight_messages does not bound a
            # slow consumer's unacknowledged messages: docs/scaling.md).
            # Waiting here keeps paho's loop from spinning on a readable socket; it still sends
            # keepalives between waits.
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        try:
            data = self._sock_recv(self.READ_SIZE)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except OSError as err:
            self._easy_log(paho.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if not data:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        buf = self._partial + data if self._partial else data
        end, rc = _parse_packets(self, inbox, buf)
        self._partial = buf[end:]
        with self._msgtime_mutex:
            self._last_bytes_received = time.monotonic()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return self._loop_rc_handle(rc)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def handle_packet(self, header: int, body: bytes) -> MQTTErrorCode:
        """A whole packet other than a QoS 0/1 PUBLISH, through paho's own handler."""
        self._in_packet = {
            "command": header,
            "have_remaining": 1,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": len(body),
            "packet": bytearray(body),
            "to_process": 0,
            "pos": 0,
        }
        try:
            return self._packet_handle()
        except MalformedPacket as exc:
            self._easy_log(paho.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        finally:
            self._in_packet = {
                "command": 0,
                "have_remaining": 0,
                "remaining_count": [],
                "remaining_mult": 1,
                "remaining_length": 0,
                "packet": bytearray(b""),
                "to_process": 0,
                "pos": 0,
            }

    def _sock_close(self) -> None:
        self._partial = b""  # the next connection starts with none of these bytes
        super()._sock_close()

    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK each of ``mids`` (QoS 1 messages of this connection) in one write.

        paho's ``ack`` queues a packet and wakes its thread through a socket pair per message;
        a batch of 5,000 is one queued write of 5,000 PUBACKs here.
        """
        if mids:
            blob = b"".join([_PUBACK.pack(paho.PUBACK, 2, mid) for mid in mids])
            self._packet_queue(paho.PUBACK, blob, 0, 1)


def _parse_packets(client: InboxClient, inbox: Inbox, buf: bytes) -> tuple[int, MQTTErrorCode]:
    """Handle every whole packet at the start of ``buf``; return where the first incomplete one
    starts (its bytes wait for the next read) and paho's result code for the first failure."""
    pos, size = 0, len(buf)
    put = inbox.put
    while pos + 2 <= size:
        header = buf[pos]
        # Remaining length: 1 to 4 bytes, 7 bits each, least significant first (MQTT 2.2.3).
        length, shift, at = 0, 0, pos + 1
        while True:
            if at >= size:
                return pos, MQTTErrorCode.MQTT_ERR_SUCCESS
            byte = buf[at]
            length |= (byte & 0x7F) << shift
            at += 1
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                return pos, MQTTErrorCode.MQTT_ERR_PROTOCOL
        end = at + length
        if end > size:
            return pos, MQTTErrorCode.MQTT_ERR_SUCCESS
        qos = (header & 0x06) >> 1
        if header & 0xF0 == paho.PUBLISH and qos < 2:
            (topic_length,) = _TOPIC_LENGTH.unpack_from(buf, at)
            start = at + 2 + topic_length
            if qos:
                (mid,) = _TOPIC_LENGTH.unpack_from(buf, start)
                put(buf[at + 2 : start], buf[start + 2 : end], mid, qos)
            else:
                put(buf[at + 2 : start], buf[start:end], 0, 0)
        else:
            rc = client.handle_packet(header, buf[at:end])
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return end, rc
        pos = end
    return pos, MQTTErrorCode.MQTT_ERR_SUCCESS
