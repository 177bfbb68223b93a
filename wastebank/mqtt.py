"""MQTT connections for every process: one way to build a client, one reconnect backoff."""

from __future__ import annotations

import asyncio
import fcntl
import os
import random
import re
import secrets
import socket
import ssl
from collections.abc import AsyncIterable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from wastebank.config import RUN_DIR, MqttSettings

if TYPE_CHECKING:
    import stamina

BACKOFF_BASE_S = 1.5
BACKOFF_CAP_S = 30.0
BACKOFF_FIRST_S = 1.0
"""About as long as a restarting service (or a replugged USB adapter) takes to come back."""
IN_FLIGHT = 64
"""QoS 1 publishes a client keeps in flight (gateway outbox drain window)."""
V311 = aiomqtt.ProtocolVersion.V311
V5 = aiomqtt.ProtocolVersion.V5
SESSION_NEVER_EXPIRES = 0xFFFFFFFF
"""MQTT 5 Session Expiry Interval of a persistent session: kept however long the client is away,
as a 3.1.1 session with clean session off is (Mosquitto: unless persistent_client_expiration)."""


CLIENT_ID_SEPARATOR = "@"


def client_id(username: str | None, local: str | None = None) -> str:
    """The client id of one connection: ``{username}@{local}``.

    Our broker (deploy/mosquitto/wastebank_clientid.c) accepts a client id only when it is the
    username or starts with ``username@``: nobody can take another's session, while one
    identity may run several processes side by side (two ingesters, a gateway restarted before
    its old session ended). ``local`` names the process (random when None); without a username
    (a broker of someone else's, anonymous) ``local`` is the whole id.
    """
    local = local or secrets.token_hex(6)
    if username is None or local == username or local.startswith(username + CLIENT_ID_SEPARATOR):
        return local
    return f"{username}{CLIENT_ID_SEPARATOR}{local}"


_INSTANCE_LOCKS: list[int] = []  # held for the life of the process


def instance_name(kind: str, run_dir: Path | None = None, most: int = 64) -> str:
    """``{host}.{n}``: this host's name and the lowest instance number ``n`` that no running
    process of ``kind`` holds (a lock file under ``run_dir``, released when the process ends).

    A stable default client id for a persistent session: the first ingester on a host is always
    ``.1`` and finds its queued backlog again after a restart, while a second one started beside
    it gets ``.2`` instead of taking the first one's session.
    """
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40] or "host"
    folder = (run_dir or RUN_DIR) / "instances"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for n in range(1, most + 1):
        fd = os.open(folder / f"{kind}.{n}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _INSTANCE_LOCKS.append(fd)
        return f"{host}.{n}"
    raise RuntimeError(f"{most} {kind} processes already run here ({folder})")


def backoff(attempt: int) -> float:
    """Seconds to wait before reconnect ``attempt`` (1, 2, ...): capped, jittered, exponential."""
    return min(BACKOFF_CAP_S, random.uniform(0, BACKOFF_BASE_S ** min(10, attempt)))  # noqa: S311


def retrying(
    on: type[BaseException]
    | tuple[type[BaseException], ...]
    | Callable[[BaseException], bool | float],
    *,
    attempts: int | None = None,
) -> AsyncIterable[stamina.Attempt]:
    """stamina's attempts (``async for attempt in retrying(...): with attempt: ...``) with this
    module's backoff: the first wait about BACKOFF_FIRST_S, each next one BACKOFF_BASE_S times
    longer, jittered, never over BACKOFF_CAP_S, so a service that is back is found within half a
    minute. No deadline: ``attempts`` (None: until it succeeds) is the only bound. ``on`` may be
    stamina's hook: False gives up, a number of seconds is the wait (a server's Retry-After)."""
    import stamina  # lazily: a gateway's or telemetry ingester's memory

    return stamina.retry_context(
        on=on,
        attempts=attempts,
        timeout=None,
        wait_initial=BACKOFF_FIRST_S,
        wait_max=BACKOFF_CAP_S,
        wait_jitter=BACKOFF_FIRST_S,
        wait_exp_base=BACKOFF_BASE_S,
    )


def client(
    settings: MqttSettings,
    *,
    identifier: str | None = None,
    persistent: bool = False,
    will: aiomqtt.Will | None = None,
    timeout: float | None = None,
    protocol: aiomqtt.ProtocolVersion = V311,
) -> aiomqtt.Client:
    """A client for ``settings``; ``persistent`` keeps the session and its queue across connects.

    ``protocol``: MQTT 3.1.1 (default) or 5. A persistent session is "clean session" off in 3.1.1,
    and in MQTT 5 "clean start" off with a Session Expiry Interval that never ends (without one
    an MQTT 5 session ends with the connection); a non-persistent one starts clean every time.
    Over MQTT 5 a refused publish says so in its PUBACK: see :class:`Publisher`.

    With ``settings.tls`` it speaks TLS and verifies the broker's certificate and host name
    against ``ca_file`` (the site CA) or, without one, the system's trusted CAs.
    """
    tls_params = None
    if settings.tls:
        tls_params = aiomqtt.TLSParameters(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    session: dict[str, Any]
    if protocol == V5:
        # aiomqtt's default clean start is "first connect only", and every client we build
        # connects once: say it outright.
        session = {"clean_start": not persistent}
        if persistent:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_NEVER_EXPIRES
            session["properties"] = properties
    else:
        session = {"clean_session": False if persistent else None}
    client = aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username,
        password=settings.password.get_secret_value() if settings.password else None,
        identifier=client_id(settings.username, identifier),
        protocol=protocol,
        keepalive=settings.keepalive_s,
        will=will,
        timeout=timeout,
        max_inflight_messages=IN_FLIGHT,
        tls_params=tls_params,
        **session,
    )
    # aiomqtt warns past 10 pending publishes; a windowed drain has up to IN_FLIGHT on purpose.
    client.pending_calls_threshold = IN_FLIGHT + 10
    return client


def accepted(reason: ReasonCode) -> bool:
    """A PUBACK that means the broker took the message: 0x00 Success, and 0x10 "No matching
    subscribers" (accepted, nobody subscribed yet); 0x80 and up are refusals."""
    return not reason.is_failure


class Publisher:
    """Publishes on an aiomqtt client and returns what the broker's PUBACK said.

    aiomqtt's ``publish`` waits for the PUBACK but drops its reason code, so over MQTT 5 a publish
    the broker refused (0x87 "Not authorized" by its ACL, 0x97 "Quota exceeded", 0x99 "Payload
    format invalid", ...) looks exactly like a delivered one, and Mosquitto drops the message.
    This publishes through the client's paho client and waits for paho's ``on_publish``, which
    carries the reason code (chained before aiomqtt's own, which the client's other publishes
    still use). Over MQTT 3.1.1 every PUBACK is a success: a refusal cannot be told apart.
    """

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self._paho = client._client  # noqa: SLF001 - the PUBACK's reason code is only there
        self._loop = asyncio.get_running_loop()
        self._waiting: dict[int, asyncio.Future[ReasonCode]] = {}
        self._aiomqtt_on_publish = cast(paho.CallbackOnPublish_v2 | None, self._paho.on_publish)
        self._paho.on_publish = self._on_publish

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,  # noqa: ANN401
        mid: int,
        reason: ReasonCode,
        properties: Properties,
    ) -> None:
        # paho calls this from aiomqtt's socket callbacks, on the event loop.
        waiting = self._waiting.pop(mid, None)
        if waiting is None:
            if self._aiomqtt_on_publish is not None:
                self._aiomqtt_on_publish(client, userdata, mid, reason, properties)
        elif not waiting.done():
            waiting.set_result(reason)

    async def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float | None = None,
    ) -> ReasonCode:
        """Publish; return the PUBACK's reason code (QoS 0: success once written).

        Raises :class:`aiomqtt.MqttError` like aiomqtt's ``publish``: when paho cannot send it,
        or when no PUBACK comes within ``timeout`` (default: the client's), e.g. the connection
        was lost meanwhile.
        """
        info = self._paho.publish(topic, payload, qos, retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
        if qos == 0:
            return ReasonCode(PacketTypes.PUBACK, "Success")
        waiting: asyncio.Future[ReasonCode] = self._loop.create_future()
        self._waiting[info.mid] = waiting
        try:
            async with asyncio.timeout(self.client.timeout if timeout is None else timeout):
                return await waiting
        except TimeoutError:
            raise aiomqtt.MqttError("Operation timed out") from None
        finally:
            self._waiting.pop(info.mid, None)
