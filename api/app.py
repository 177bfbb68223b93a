"""The HTTP API and pages. Resources (ledger engines, InfluxDB client, the token key, the
password hasher) are created in the lifespan; each domain's routes are a module of this package.

Who may call what (see wastebank/access.py for the roles, tests/test_authz_matrix.py for every
route x role):

  GET  /health                                 public: broker, InfluxDB and ledger ok or not,
                                               the last ledger-InfluxDB reconciliation ok or not;
                                               addresses, versions, errors, drifts for admins
  POST /api/token, GET /api/me                 api/auth.py (OAuth2 password flow, JWT)
  GET|POST /masuk, POST /keluar                api/auth.py (the login page, session cookie)
  /api/banks/..., /api/members/...             api/members.py, api/bank.py
  /api/members/{no}/statement, /api/receipts   api/passbook.py (wastebank/passbook.py)
  GET  /api/tonnage?start=&end=&group_by=&interval=   DLH (their city's banks), admin
  GET  /api/tps/latest                         DLH, admin: latest fill reading per TPS sensor
  /nasabah/..., /dlh, /admin/...               api/pages.py: the HTML pages (session cookie,
                                               CSRF-protected forms; api/web.py)
  /static/...                                  the pages' CSS/JS, Chart.js and Leaflet
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import aiomqtt
import anyio.to_thread
from fastapi import APIRouter, FastAPI, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import alerts as alerts_api
from api import auth, bank, dlh, limits, members, pages, passbook, tps, web
from api.capacity import HEALTH_POOL, Admission, Capacity, HealthDesk, gated_hasher, pool_timeout
from api.deps import (
    PrincipalDep,
    State,
    StateDep,
    TokenDep,
    data_error,
    forbidden,
    http_error,
    integrity_error,
    ledger_error,
    principal_from,
    refusals,
)
from api.schemas import Balance, DepositOut
from api.settings import ApiSettings
from wastebank import __version__, access, ledger
from wastebank.config import MqttSettings
from wastebank.influx import DEPOSIT, FILL, Influx, InfluxError, influxql_time
from wastebank.mqtt import client as mqtt_client

__all__ = ["ApiSettings", "Balance", "DepositOut", "create_app", "kg", "local_day_bounds", "rupiah"]

# InfluxDB's times are int64 nanoseconds since 1970 (1677-09-21 to 2262-04-11): whole local days
# safely inside; a query beyond them is refused by InfluxDB (and past 9999 by Python).
INFLUX_FIRST_DAY = date(1678, 1, 1)
INFLUX_LAST_DAY = date(2261, 12, 31)


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[State]:
        key = access.signing_key(settings.auth)  # before anything is opened: may refuse
        capacity = Capacity(settings.capacity)  # threads and pools sized together
        capacity.budget.apply_threads()
        await anyio.to_thread.run_sync(_load_templates)
        url = settings.ledger_url
        # checks the schema
        engine = ledger.make_engine(url, writer=False, pool=capacity.budget.reader_pool())
        try:
            writer = ledger.make_engine(
                url, writer=True, migrate=False, pool=capacity.budget.writer_pool(url)
            )
        except BaseException:
            engine.dispose()
            raise
        influx = Influx(settings.influx)
        # /health's own: no connection is opened until it probes (migrate=False)
        probe_engine = ledger.make_engine(url, writer=False, migrate=False, pool=HEALTH_POOL)
        desk = HealthDesk(probe_engine, settings.capacity.health_ttl_s, _probe(settings, influx))
        hasher = gated_hasher(
            settings.auth, threads=settings.capacity.logins, nice=settings.capacity.login_nice
        )
        try:
            yield {
                "settings": settings,
                "engine": engine,
                "writer": writer,
                "influx": influx,
                "signing_key": key,
                "hasher": hasher,
                "capacity": capacity,
                "health": desk,
            }
        finally:
            await influx.aclose()
            hasher.close()
            desk.close()
            writer.dispose()
            engine.dispose()

    app = FastAPI(title="wastebank", version=__version__, lifespan=lifespan)
    app.add_exception_handler(ledger.LedgerError, ledger_error)
    app.add_exception_handler(IntegrityError, integrity_error)
    app.add_exception_handler(DataError, data_error)
    app.add_exception_handler(PoolTimeout, pool_timeout)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.include_router(auth.router)
    app.include_router(members.router)
    app.include_router(bank.router)
    app.include_router(passbook.router)
    app.include_router(dlh.router)
    app.include_router(_router())
    app.include_router(alerts_api.router)
    app.include_router(tps.router)  # after /api/tps/latest: /api/tps/{code} would take it
    app.include_router(pages.router)
    app.add_exception_handler(web.CsrfRefused, web.csrf_refused_handler)
    web.mount_static(app, settings.pages)
    # Added first, so innermost of the middlewares: what they refuse takes no slot.
    app.add_middleware(Admission)
    # A body over its limit is refused before it is read or parsed and before the route's
    # dependencies check the caller. Outside it (added last: outermost), the client's address
    # from a trusted reverse proxy, for the login limits and the logs.
    app.add_middleware(
        limits.BodyLimit,
        max_body_bytes=settings.http.max_body_bytes,
        max_upload_bytes=settings.http.max_upload_bytes,
        upload_paths=limits.upload_paths(app.routes),
    )
    if settings.http.trusted_proxies:
        app.add_middleware(
            ProxyHeadersMiddleware,
            trusted_hosts=[str(net) for net in settings.http.trusted_proxies],
        )
    return app


# ---- schemas ----------------------------------------------------------------------------------


class TonnageGroup(BaseModel):
    key: dict[str, str]
    period_start: datetime | None = None
    net_g: int
    deposits: int


class Tonnage(BaseModel):
    timezone: str
    start: datetime
    end: datetime
    group_by: str
    interval: str
    basis: Literal["measured"] = "measured"
    total_g: int
    groups: list[TonnageGroup]


class TpsLatest(BaseModel):
    tps_code: str
    sensor_id: str
    measured_at: datetime
    filling_level: float
    distance_mm: int | None = None
    battery_pct: int | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    broker: dict[str, Any]
    influxdb: dict[str, Any]
    ledger: dict[str, Any]
    reconciliation: dict[str, Any] | None = None
    """The last comparison of the ledger with InfluxDB (wastebank/reconcile.py), None before
    the first: when it ran and whether they agreed; for an admin also the days, the number of
    drifts and who ran it. Drift does not make the status degraded (the service still serves)."""
    alerts: dict[str, Any] | None = None
    """The system's active alerts (wastebank/alerts.py): how many, for anyone; for an admin
    also how many of each code (the alerts themselves: GET /api/alerts)."""
    capacity: dict[str, Any] | None = Field(default=None, exclude_if=lambda v: v is None)
    """For an admin only (absent otherwise): this process's admission (api/capacity.py): per
    class the limit, requests in flight and waiting, admitted and refused since start; its
    worker threads; its ledger pools' connections in use."""


# ---- routes -----------------------------------------------------------------------------------


def _city_staff(p: access.Principal) -> None:
    if p.role not in (access.Role.DLH, access.Role.ADMIN):
        raise forbidden("untuk DLH dan admin / for DLH staff and admins")


def _router() -> APIRouter:
    router = APIRouter()

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

    @router.get("/api/tonnage", tags=["dlh"], responses=refusals(401, 403, 422, 503))
    async def tonnage(
        state: StateDep,
        p: PrincipalDep,
        start: Annotated[date, Query(description="first local day, e.g. 2026-11-01")],
        end: Annotated[date, Query(description="last local day (inclusive)")],
        group_by: Literal["category", "bank", "kecamatan"] = "category",
        interval: Literal["total", "day"] = "total",
    ) -> Tonnage:
        """Diverted grams by local day; a DLH user sees their city's banks only."""
        _city_staff(p)
        if end < start:
            raise HTTPException(422, "end must not be before start / tanggal akhir sebelum awal")
        if start < INFLUX_FIRST_DAY or end > INFLUX_LAST_DAY:
            raise HTTPException(
                422,
                f"tanggal di luar {INFLUX_FIRST_DAY}..{INFLUX_LAST_DAY} / days outside the range "
                "InfluxDB keeps",
            )
        tz_name, banks = await anyio.to_thread.run_sync(_city_scope, state, p)
        return await _tonnage(state["influx"], tz_name, start, end, group_by, interval, banks)

    @router.get("/api/tps/latest", tags=["dlh"], responses=refusals(401, 403, 503))
    async def tps_latest(state: StateDep, p: PrincipalDep) -> list[TpsLatest]:
        _city_staff(p)
        series = await _query_or_503(
            state["influx"],
            f'SELECT * FROM "{FILL}" GROUP BY "tps", "sensor" ORDER BY time DESC LIMIT 1',  # noqa: S608
        )
        out = []
        for s in series:
            for row in s.rows():
                out.append(
                    TpsLatest(
                        tps_code=s.tags["tps"],
                        sensor_id=s.tags["sensor"],
                        measured_at=datetime.fromtimestamp(row["time"] / 1000, UTC),
                        filling_level=row["filling_level"],
                        distance_mm=row.get("distance_mm"),
                        battery_pct=row.get("battery_pct"),
                    )
                )
        return sorted(out, key=lambda t: (t.tps_code, t.sensor_id))

    return router


# ---- helpers ----------------------------------------------------------------------------------


def rupiah(amount: int) -> str:
    """Indonesian format: Rp12.345 (dot as thousands separator)."""
    sign = "-" if amount < 0 else ""
    return f"{sign}Rp{abs(amount):,}".replace(",", ".")


def kg(grams: int) -> str:
    """Indonesian format: 1,25 kg (comma as decimal separator)."""
    return f"{grams / 1000:.2f}".replace(".", ",") + " kg"


def _city_scope(state: State, p: access.Principal) -> tuple[str, list[str] | None]:
    """The time zone to bucket days in, and the banks whose tonnage ``p`` sees (None: all):
    a DLH user's city and its banks; for an admin the first city's zone and every bank."""
    with Session(state["engine"]) as session:
        if p.role == access.Role.DLH and p.city_id is not None:
            city = session.get(ledger.City, p.city_id)
            codes = session.scalars(
                select(ledger.Bank.code).where(ledger.Bank.city_id == p.city_id)
            )
            return (city.timezone if city else state["settings"].default_timezone), list(codes)
        first = ledger.first_city(session)
    return (first.timezone if first else state["settings"].default_timezone), None


def _influx_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def local_day_bounds(start: date, end: date, tz_name: str) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in the city's zone, as aware datetimes."""
    tz = ZoneInfo(tz_name)
    return (
        datetime.combine(start, time(0), tz),
        datetime.combine(end + timedelta(days=1), time(0), tz),
    )


async def _tonnage(
    influx: Influx,
    tz_name: str,
    start: date,
    end: date,
    group_by: str,
    interval: str,
    banks: list[str] | None = None,
) -> Tonnage:
    """``banks``: only these banks' deposits (None: all of them)."""
    lo, hi = local_day_bounds(start, end, tz_name)
    where = f"time >= {influxql_time(lo)} AND time < {influxql_time(hi)}"
    if banks is not None:
        if not banks:
            series: list[Any] = []
        where += " AND (" + " OR ".join(f'"bank" = {_influx_string(b)}' for b in banks) + ")"
    group = f'"{group_by}"'
    if interval == "day":
        group = f"time(1d), {group} fill(none) tz('{tz_name}')"
    # Built only from constants, Literal-checked tag names, RFC3339 times, a zone name that
    # ZoneInfo accepted above and the ledger's bank codes as quoted and escaped InfluxQL strings:
    # nothing from the request reaches it as text.
    select = f'SELECT sum("net_g") AS net_g, count("net_g") AS deposits FROM "{DEPOSIT}"'  # noqa: S608
    q = f"{select} WHERE {where} GROUP BY {group}"  # noqa: S608
    if banks is None or banks:
        series = await _query_or_503(influx, q)
    groups: list[TonnageGroup] = []
    for s in series:
        for row in s.rows():
            if row.get("net_g") is None:
                continue
            period = (
                datetime.fromtimestamp(row["time"] / 1000, ZoneInfo(tz_name))
                if interval == "day"
                else None
            )
            groups.append(
                TonnageGroup(
                    key=dict(s.tags),
                    period_start=period,
                    net_g=int(row["net_g"]),
                    deposits=int(row["deposits"]),
                )
            )
    groups.sort(key=lambda g: (g.period_start or lo, sorted(g.key.items())))
    return Tonnage(
        timezone=tz_name,
        start=lo,
        end=hi,
        group_by=group_by,
        interval=interval,
        total_g=sum(g.net_g for g in groups),
        groups=groups,
    )


async def _query_or_503(influx: Influx, q: str) -> list[Any]:
    try:
        return await influx.query(q)
    except InfluxError as exc:
        raise HTTPException(503, f"InfluxDB: {exc}") from None


async def _broker_health(mqtt: MqttSettings) -> dict[str, Any]:
    try:
        async with asyncio.timeout(3):
            async with mqtt_client(mqtt, timeout=3):
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


def _load_templates() -> None:
    """Every page template compiled now: not read from disk on the event loop by a page's first
    request (Jinja keeps them, and reloads one whose file changed)."""
    env = web.TEMPLATES.env
    for name in env.list_templates():
        env.get_template(name)


def _probe(settings: ApiSettings, influx: Influx) -> Callable[[HealthDesk], Awaitable[Any]]:
    """/health's probe of every part: the broker, InfluxDB, and in a health thread the ledger,
    the last reconciliation and the active alerts (a ledger that does not answer within 5 s is
    not ok)."""

    def ledger_parts(engine: Engine) -> tuple[Any, ...]:
        return _ledger_health(engine), _reconciliation_health(engine), _alerts_health(engine)

    async def probe(desk: HealthDesk) -> tuple[Any, ...]:
        async def ledger_part() -> tuple[Any, ...]:
            try:
                async with asyncio.timeout(5):
                    return await desk.run(ledger_parts, desk.engine)
            except TimeoutError:
                name = desk.engine.dialect.name
                return {"ok": False, "dialect": name, "error": "no answer within 5 s"}, None, None

        broker, influx_state, (ledger_state, reconciliation, active) = await asyncio.gather(
            _broker_health(settings.mqtt), _influx_health(influx), ledger_part()
        )
        return broker, influx_state, ledger_state, reconciliation, active

    return probe


def _capacity(state: State) -> dict[str, Any]:
    def pool(engine: Engine) -> dict[str, Any]:
        p: Any = engine.pool
        if not hasattr(p, "checkedout"):  # an in-memory SQLite database: no queue
            return {}
        return {"size": p.size(), "in_use": p.checkedout(), "overflow": max(0, p.overflow())}

    return {
        **state["capacity"].snapshot(),
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
