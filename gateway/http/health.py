"""Health on the local endpoint:

GET  /health                          minimal: for probes, without a session
GET  /health/full                     the gateway's health report (as published on MQTT)
"""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.http.attendant.auth import Service, SignedInDep
from gateway.http.validation import REFUSED
from wastebank import __version__
from wastebank.messages import GatewayHealth

router = APIRouter()


class PublicHealth(BaseModel):
    """What anyone on the LAN may ask without a session: that the gateway is up, its link to
    the broker, and whether deposits are piling up in its outbox. Nothing about members,
    deposits or money (the full report, with the scales, is ``/health/full``)."""

    status: Literal["ok"] = "ok"
    gateway_id: str
    version: str
    uptime_s: int
    broker_connected: bool
    outbox_depth: int
    outbox_refused: int
    outbox_dropped: int
    bad_requests: int
    """Requests refused as bad input since the start (gateway.http.validation.REFUSED; each
    is logged with its route and messages)."""


@router.get("/health")
async def health(service: Service) -> PublicHealth:
    gw = service.gw
    return PublicHealth(
        gateway_id=gw.settings.gateway_id,
        version=__version__,
        uptime_s=int(time.monotonic() - gw.started),
        broker_connected=gw.connected.is_set(),
        outbox_depth=len(gw.outbox),
        outbox_refused=sum(gw.outbox.refused().values()),
        outbox_dropped=gw.outbox.dropped,
        bad_requests=sum(REFUSED.values()),
    )


@router.get("/health/full")
async def full_health(_: SignedInDep, service: Service) -> GatewayHealth:
    return service.gw.health()
