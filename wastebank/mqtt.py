"""MQTT connections for every process: one way to build a client, one reconnect backoff."""

from __future__ import annotations

import random
import ssl

import aiomqtt

from wastebank.config import MqttSettings

BACKOFF_BASE_S = 1.5
BACKOFF_CAP_S = 30.0
IN_FLIGHT = 64
"""QoS 1 publishes a client keeps in flight (gateway outbox drain window)."""


def backoff(attempt: int) -> float:
    """Seconds to wait before reconnect ``attempt`` (1, 2, ...): capped, jittered, exponential."""
    return min(BACKOFF_CAP_S, random.uniform(0, BACKOFF_BASE_S ** min(10, attempt)))  # noqa: S311


def client(
    settings: MqttSettings,
    *,
    identifier: str | None = None,
    persistent: bool = False,
    will: aiomqtt.Will | None = None,
    timeout: float | None = None,
) -> aiomqtt.Client:
    """A client for ``settings``; ``persistent`` keeps the session and its queue across connects.

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
    client = aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username,
        password=settings.password.get_secret_value() if settings.password else None,
        identifier=identifier,
        clean_session=False if persistent else None,
        keepalive=settings.keepalive_s,
        will=will,
        timeout=timeout,
        max_inflight_messages=IN_FLIGHT,
        tls_params=tls_params,
    )
    # aiomqtt warns past 10 pending publishes; a windowed drain has up to IN_FLIGHT on purpose.
    client.pending_calls_threshold = IN_FLIGHT + 10
    return client
