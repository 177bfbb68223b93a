"""GET /health: each part's state (the broker, InfluxDB, the ledger, the last reconciliation, the
active alerts) for anyone; the addresses, versions, errors and this process's capacity for an
admin's bearer token.

The parts are probed by :class:`api.capacity.HealthDesk` (a ledger connection and threads of
/health's own, one probe shared by every caller at a time), so /health answers whatever the rest
of the API is doing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import aiomqtt
from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from api import limits
from api.capacity import HealthDesk
from api.deps import State, StateDep, TokenDep, principal_from
from api.settings import ApiSettings
from wastebank import access
from wastebank.config import MqttSettings
from wastebank.influx import Influx, InfluxError
from wastebank.mqtt import client as mqtt_client

router = APIRouter()

LEDGER_ANSWER_S = 5
"""A ledger that does not answer /health's probe within this is not ok."""
BROKER_ANSWER_S = 3
"""A broker that does not accept a connection within this is not ok."""


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    broker: dict[str, Any]
    influxdb: dict[str, Any]
    ledger: dict[str, Any]
    reconciliation: dict[str, Any] | None = None
    """The last comparison of the ledger with InfluxDB (wastebank/reconcile/), None before
    the first: when it ran and whether they agreed; for an admin also the days, the number of
    drifts and who ran it. Drift does not make the status degraded (the service still serves)."""
    alerts: dict[str, Any] | None = None
    """The system's active alerts (wastebank/alerts.py): how many, for anyone; for an admin
    also how many of each code (the alerts themselves: GET /api/alerts)."""
    capacity: dict[str, Any] | None = Field(default=None, exclude_if=lambda v: v is None)
    """For an admin only (absent otherwise): this process's admission (api/capacity.py): per
    class the limit, requests in flight and waiting, admitted and refused since start; its
    worker threads; its ledger pools' connections in use; ``too_large``: its requests refused
    for size since start (api/limits.py ``refused``); ``too_slow``: its 408s, a body not whole
    within ``http.read_timeout_s`` (``too_slow``); ``closed``: connections closed for a head
    not whole in time or one too many (``closed``)."""


@router.get("/health")
async def health(state: StateDep, token: TokenDep) -> Health:
    """Each part's state for anyone (a monitor, a load balancer); the addresses, versions
    and errors only for an admin's bearer token.

    Never queued behind other requests, and it waits for none of their threads or
    connections: the parts are probed once for every caller at a time (and the answer
    reused for ``capacity.health_ttl_s``), the ledger's on a connection and thread of
    /health's own (api/capacity.py, HealthDesk)."""
    desk = state["health"]
    (broker, influx, ledger_state, reconciliation, active), admin = await asyncio.gather(
        desk.shared.get(),
        desk.run(_is_admin, state, desk.engine, token) if token else _no(),
    )
    parts = (broker, influx, ledger_state)
    ok = all(part["ok"] for part in parts)
    if not admin:
        broker, influx, ledger_state = ({"ok": part["ok"]} for part in parts)
        if reconciliation is not None:
            reconciliation = {k: reconciliation[k] for k in ("ok", "ran_at")}
        if active is not None:
            active = {"active": active["active"]}
    return Health(
        status="ok" if ok else "degraded",
        broker=broker,
        influxdb=influx,
        ledger=ledger_state,
        reconciliation=reconciliation,
        alerts=active,
        capacity=_capacity(state) if admin else None,
    )


def probe(settings: ApiSettings, influx: Influx) -> Callable[[HealthDesk], Awaitable[Any]]:
    """/health's probe of every part: the broker, InfluxDB, and in a health thread the ledger,
    the last reconciliation and the active alerts."""

    def ledger_parts(engine: Engine) -> tuple[Any, ...]:
        return _ledger_health(engine), _reconciliation_health(engine), _alerts_health(engine)

    async def run(desk: HealthDesk) -> tuple[Any, ...]:
        async def ledger_part() -> tuple[Any, ...]:
            try:
                async with asyncio.timeout(LEDGER_ANSWER_S):
                    return await desk.run(ledger_parts, desk.engine)
            except TimeoutError:
                name = desk.engine.dialect.name
                why = f"no answer within {LEDGER_ANSWER_S} s"
                return {"ok": False, "dialect": name, "error": why}, None, None

        broker, influx_state, (ledger_state, reconciliation, active) = await asyncio.gather(
            _broker_health(settings.mqtt), _influx_health(influx), ledger_part()
        )
        return broker, influx_state, ledger_state, reconciliation, active

    return run


async def _broker_health(mqtt: MqttSettings) -> dict[str, Any]:
    try:
        async with asyncio.timeout(BROKER_ANSWER_S):
            async with mqtt_client(mqtt, timeout=BROKER_ANSWER_S):
                pass
    except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
        return {"ok": False, "address": f"{mqtt.host}:{mqtt.port}", "error": str(exc)}
    return {"ok": True, "address": f"{mqtt.host}:{mqtt.port}"}


async def _influx_health(influx: Influx) -> dict[str, Any]:
    try:
        version = await influx.ping()
    except InfluxError as exc:
        return {"ok": False, "url": influx.settings.url, "error": str(exc)}
    return {"ok": True, "url": influx.settings.url, "version": version}


def _capacity(state: State) -> dict[str, Any]:
    def pool(engine: Engine) -> dict[str, Any]:
        p: Any = engine.pool
        if not hasattr(p, "checkedout"):  # an in-memory SQLite database: no queue
            return {}
        return {"size": p.size(), "in_use": p.checkedout(), "overflow": max(0, p.overflow())}

    return {
        **state["capacity"].snapshot(),
        "too_large": dict(limits.refused),
        "too_slow": dict(limits.too_slow),
        "closed": dict(limits.closed),
        "pools": {"reader": pool(state["engine"]), "writer": pool(state["writer"])},
    }


async def _no() -> bool:
    return False


def _is_admin(state: State, engine: Engine, token: str | None) -> bool:
    if not token:
        return False
    with Session(engine) as session:
        p = principal_from(state, session, token, "access")
    return p is not None and p.role == access.Role.ADMIN


def _reconciliation_health(engine: Engine) -> dict[str, Any] | None:
    """The last ledger-vs-InfluxDB run; None before the first (or when the ledger cannot say:
    the ledger's own part reports that)."""
    from wastebank import reconcile

    try:
        with Session(engine) as session:
            run = reconcile.last_run(session)
    except Exception:  # noqa: BLE001 - the ledger part of /health reports the database's error
        return None
    if run is None:
        return None
    return {
        "ok": run.ok,
        "ran_at": run.ran_at.isoformat(),
        "date_from": run.date_from.isoformat(),
        "date_to": run.date_to.isoformat(),
        "drifts": run.drifts,
        "ran_by": run.ran_by,
    }


def _alerts_health(engine: Engine) -> dict[str, Any] | None:
    """Active system alerts: the count and the count per code; None when the ledger cannot
    say (its own part reports why)."""
    from wastebank import alerts

    try:
        with Session(engine) as session:
            codes = [a.code for a in alerts.alerts(session, limit=1000)]
    except Exception:  # noqa: BLE001 - the ledger part of /health reports the database's error
        return None
    return {"active": len(codes), "by_code": dict(Counter(codes))}


def _ledger_health(engine: Engine) -> dict[str, Any]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error means "not ok", reported as such
        return {"ok": False, "dialect": engine.dialect.name, "error": str(exc)}
    return {"ok": True, "dialect": engine.dialect.name}
