"""Health on the local endpoint:

GET  /health                          minimal: for probes, without a session
GET  /health/full                     the gateway's health report (as published on MQTT)
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Literal

import msgspec
from starlette.requests import Request

from gateway.http.attendant import auth
from gateway.http.routing import Routes
from gateway.http.validation import REFUSED
from wastebank import __version__
from wastebank.messages import ActiveAlert, ClockHealth, GatewayHealth, ScaleState

routes = Routes()


class ScaleStateView(msgspec.Struct, kw_only=True):
    scale_id: str
    state: ScaleState
    state_since: datetime


class PublicHealth(msgspec.Struct, kw_only=True):
    """What anyone on the LAN may ask without a session: that the gateway is up, its link to
    the broker, whether deposits are piling up in its outbox, each scale's state, the clock and
    the alerts in force. Nothing about members, deposits or money (the full report, with the
    scales' counters and weights, is ``/health/full``)."""

    status: Literal["ok"] = "ok"
    gateway_id: str
    version: str
    uptime_s: int
    broker_connected: bool
    outbox_depth: int
    outbox_refused: int
    outbox_dropped: int
    bad_requests: int
    """Requests refused as bad input since the start: those refused in words (422,
    gateway.http.validation.REFUSED; each logged with its route and messages), a ``Host`` the
    gateway does not answer to (421), and those too large or too slow to read
    (:attr:`too_large_requests`, :attr:`too_slow_requests`)."""
    too_large_requests: int
    """Of :attr:`bad_requests`, those whose body was over ``http_max_body_bytes`` (413, each
    logged with its path, client and size; wastebank.http_limits) or whose head arrived whole
    over 16 KiB (431)."""
    too_slow_requests: int
    """Of :attr:`bad_requests`, those whose body was not whole within ``http_read_timeout_s``
    (408, each logged with its path and client) or was cut off by the client closing the
    connection (logged at most once a minute)."""
    connections_closed: int
    """Connections closed since the start for a request head not whole within
    ``http_read_timeout_s`` or one beyond ``http_max_connections`` (or a client's share), each
    kind logged at most once a minute."""
    busy_refused: int
    """Requests answered 503 since the start because ``http_max_requests`` were in progress
    (not bad input: the clients may try again; logged once a minute at most)."""
    scales: list[ScaleStateView]
    clock: ClockHealth
    alerts_active: list[ActiveAlert]
    """At most wastebank.messages.ALERTS_ACTIVE_MAX, the most urgent first."""
    alerts_left_out: int
    """Active alerts beyond those listed (the least urgent), as in the health report."""


@routes.get("/health")
async def health(request: Request) -> PublicHealth:
    gw = auth.service(request).gw
    too_large = sum(getattr(request.app.state, "too_large", {}).values())
    too_slow = sum(getattr(request.app.state, "too_slow", {}).values())
    alerts, left_out = gw.alerts_active()
    return PublicHealth(
        gateway_id=gw.settings.gateway_id,
        version=__version__,
        uptime_s=int(time.monotonic() - gw.started),
        broker_connected=gw.connected.is_set(),
        outbox_depth=len(gw.outbox),
        outbox_refused=sum(gw.outbox.refused().values()),
        outbox_dropped=gw.outbox.dropped,
        bad_requests=sum(REFUSED.values()) + too_large + too_slow,
        too_large_requests=too_large,
        too_slow_requests=too_slow,
        connections_closed=sum(getattr(request.app.state, "closed", {}).values()),
        busy_refused=sum(getattr(request.app.state, "busy", {}).values()),
        scales=[
            ScaleStateView(scale_id=r.cfg.id, state=state, state_since=since)
            for r in gw.readers.values()
            for state, since in [r.state_now()]
        ],
        clock=gw.clock.health(),
        alerts_active=alerts,
        alerts_left_out=left_out,
    )


@routes.get("/health/full")
async def full_health(request: Request) -> GatewayHealth:
    auth.signed_in(request)
    return auth.service(request).gw.health()
