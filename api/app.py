"""The HTTP API and pages. Resources (ledger engine, InfluxDB client) are created in the lifespan.

Routes:
  GET /health                                  broker, InfluxDB and ledger state
  GET /api/members/{member_no}/balance         integer Rupiah
  GET /api/members/{member_no}/transactions    deposits, newest first
  GET /api/tonnage?start=&end=&group_by=&interval=   diverted grams, days in the city's time zone
  GET /api/tps/latest                          latest fill reading per TPS sensor
  GET /nasabah/{member_no}                     the member's balance page (Bahasa Indonesia first)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict
from zoneinfo import ZoneInfo

import aiomqtt
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from wastebank import __version__, ledger
from wastebank.config import InfluxSettings, MqttSettings, WastebankSettings, default_ledger_url
from wastebank.influx import DEPOSIT, FILL, Influx, InfluxError, influxql_time
from wastebank.mqtt import client as mqtt_client

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


class ApiSettings(WastebankSettings):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(default=None, description="base URL printed for people")
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    ledger_url: str = Field(default_factory=default_ledger_url)
    default_timezone: str = "Asia/Jakarta"


class State(TypedDict):
    settings: ApiSettings
    engine: Engine
    influx: Influx


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[State]:
        engine = ledger.make_engine(settings.ledger_url, writer=False)
        influx = Influx(settings.influx)
        try:
            yield {"settings": settings, "engine": engine, "influx": influx}
        finally:
            await influx.aclose()
            engine.dispose()

    app = FastAPI(title="wastebank", version=__version__, lifespan=lifespan)
    app.include_router(_router())
    return app


# ---- dependencies -----------------------------------------------------------------------------


def _state(request: Request) -> State:
    return State(
        settings=request.state.settings, engine=request.state.engine, influx=request.state.influx
    )


def _session(request: Request) -> Iterator[Session]:
    with Session(request.state.engine) as session:
        yield session


StateDep = Annotated[State, Depends(_state)]
SessionDep = Annotated[Session, Depends(_session)]


# ---- schemas ----------------------------------------------------------------------------------


class Balance(BaseModel):
    member_no: str
    name: str
    bank_code: str
    balance_idr: int
    deposits: int
    as_of: datetime


class DepositOut(BaseModel):
    event_id: str
    measured_at: datetime
    category_code: str
    category_name: str
    net_g: int
    price_per_kg_idr: int
    amount_idr: int


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


# ---- routes -----------------------------------------------------------------------------------


def _router() -> Any:
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/health")
    async def health(state: StateDep) -> Health:
        broker, influx, ledger_state = await asyncio.gather(
            _broker_health(state["settings"].mqtt),
            _influx_health(state["influx"]),
            asyncio.to_thread(_ledger_health, state["engine"]),
        )
        ok = all(part["ok"] for part in (broker, influx, ledger_state))
        return Health(
            status="ok" if ok else "degraded", broker=broker, influxdb=influx, ledger=ledger_state
        )

    @router.get("/api/members/{member_no}/balance")
    def balance(member_no: str, session: SessionDep) -> Balance:
        return _balance(session, member_no)

    @router.get("/api/members/{member_no}/transactions")
    def transactions(
        member_no: str, session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[DepositOut]:
        _member_or_404(session, member_no)
        return [_deposit_out(d) for d in ledger.member_deposits(session, member_no, limit)]

    @router.get("/api/tonnage")
    async def tonnage(
        state: StateDep,
        start: Annotated[date, Query(description="first local day, e.g. 2026-11-01")],
        end: Annotated[date, Query(description="last local day (inclusive)")],
        group_by: Literal["category", "bank", "kecamatan"] = "category",
        interval: Literal["total", "day"] = "total",
    ) -> Tonnage:
        if end < start:
            raise HTTPException(422, "end must not be before start / tanggal akhir sebelum awal")
        tz_name = await asyncio.to_thread(_city_timezone, state)
        return await _tonnage(state["influx"], tz_name, start, end, group_by, interval)

    @router.get("/api/tps/latest")
    async def tps_latest(state: StateDep) -> list[TpsLatest]:
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

    @router.get("/nasabah/{member_no}", response_class=HTMLResponse)
    def member_page(request: Request, member_no: str, session: SessionDep) -> HTMLResponse:
        bal = _balance(session, member_no)
        deposits = [_deposit_out(d) for d in ledger.member_deposits(session, member_no, 20)]
        tz = ZoneInfo(_city_timezone(_state(request)))
        return TEMPLATES.TemplateResponse(
            request,
            "member.html",
            {
                "balance": bal,
                "deposits": deposits,
                "tz": tz,
                "rupiah": rupiah,
                "kg": kg,
            },
        )

    return router


# ---- helpers ----------------------------------------------------------------------------------


def rupiah(amount: int) -> str:
    """Indonesian format: Rp12.345 (dot as thousands separator)."""
    sign = "-" if amount < 0 else ""
    return f"{sign}Rp{abs(amount):,}".replace(",", ".")


def kg(grams: int) -> str:
    """Indonesian format: 1,25 kg (comma as decimal separator)."""
    return f"{grams / 1000:.2f}".replace(".", ",") + " kg"


def _member_or_404(session: Session, member_no: str) -> ledger.Member:
    member = ledger.get_member(session, member_no)
    if member is None:
        raise HTTPException(404, f"nasabah {member_no} tidak ditemukan / member not found")
    return member


def _balance(session: Session, member_no: str) -> Balance:
    member = _member_or_404(session, member_no)
    deposits = ledger.member_deposits(session, member_no, limit=1_000_000)
    return Balance(
        member_no=member.member_no,
        name=member.name,
        bank_code=member.bank.code,
        balance_idr=ledger.member_balance(session, member_no),
        deposits=len(deposits),
        as_of=datetime.now(UTC),
    )


def _deposit_out(d: ledger.Deposit) -> DepositOut:
    return DepositOut(
        event_id=d.event_id,
        measured_at=d.measured_at,
        category_code=d.category.code,
        category_name=d.category.name_id,
        net_g=d.net_g,
        price_per_kg_idr=d.price_per_kg_idr,
        amount_idr=d.amount_idr,
    )


def _city_timezone(state: State) -> str:
    with Session(state["engine"]) as session:
        city = ledger.first_city(session)
    return city.timezone if city else state["settings"].default_timezone


def local_day_bounds(start: date, end: date, tz_name: str) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in the city's zone, as aware datetimes."""
    tz = ZoneInfo(tz_name)
    return (
        datetime.combine(start, time(0), tz),
        datetime.combine(end + timedelta(days=1), time(0), tz),
    )


async def _tonnage(
    influx: Influx, tz_name: str, start: date, end: date, group_by: str, interval: str
) -> Tonnage:
    lo, hi = local_day_bounds(start, end, tz_name)
    where = f"time >= {influxql_time(lo)} AND time < {influxql_time(hi)}"
    group = f'"{group_by}"'
    if interval == "day":
        group = f"time(1d), {group} fill(none) tz('{tz_name}')"
    # Built only from constants, Literal-checked tag names, RFC3339 times and a zone name that
    # ZoneInfo accepted above: nothing from the request reaches it as text.
    select = f'SELECT sum("net_g") AS net_g, count("net_g") AS deposits FROM "{DEPOSIT}"'  # noqa: S608
    q = f"{select} WHERE {where} GROUP BY {group}"  # noqa: S608
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


def _ledger_health(engine: Engine) -> dict[str, Any]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error means "not ok", reported as such
        return {"ok": False, "dialect": engine.dialect.name, "error": str(exc)}
    return {"ok": True, "dialect": engine.dialect.name}
