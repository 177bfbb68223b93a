"""The gateway's local endpoint on the waste bank's LAN: the attendant-assisted flow, calibration
checks, live scale state and health. Served inside the gateway's event loop (every handler is
async: it shares the outbox connection and the scale sessions with the gateway's tasks).

  GET  /health                          the gateway's health report
  GET  /scales                          live weight, stability, protocol, what is armed
  POST /scales/{id}/arm                 {member_no, category_code}: the next settled load
  POST /scales/{id}/cancel
  POST /scales/{id}/calibration         {reference_g, note}: record a check now
  GET  /scales/{id}/calibration         the checks so far
  /petugas...                           the attendant page (gateway/attendant.py)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from gateway.kiosk import AttendantSession
from gateway.main import Gateway, ScaleReader
from gateway.outbox import CalibrationCheck
from wastebank import __version__
from wastebank.messages import CODE_PATTERN, GatewayHealth

if TYPE_CHECKING:
    from gateway.attendant import AttendantService

log = logging.getLogger("wastebank.gateway")


SHUTDOWN_TIMEOUT_S = 3.0
"""At a stop: how long open pages (their live streams end at once) get to close."""


async def serve(gw: Gateway, service: AttendantService | None = None) -> None:
    from gateway.attendant import AttendantService

    service = service or AttendantService(gw)
    config = uvicorn.Config(
        http_app(gw, service),
        host=gw.settings.http_host,
        port=gw.settings.http_port,
        log_level="warning",
    )
    server = _QuietServer(config)
    stopped = False
    try:
        async with asyncio.TaskGroup() as tg:
            sync = tg.create_task(service.run(), name="attendant-sync")
            await server.serve()
            stopped = True  # uvicorn stopped on its own (should_exit): nothing left to close
            sync.cancel()
    finally:
        # A stop: end the pages' live streams, so their connections close, then the server.
        gw.live.stop()
        if server.started and not stopped:
            with contextlib.suppress(TimeoutError, OSError, RuntimeError):
                async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
                    await server.shutdown()
        await service.aclose()


class _QuietServer(uvicorn.Server):
    """uvicorn inside our TaskGroup: the gateway, not uvicorn, owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ArmRequest(BaseModel):
    member_no: str = Field(pattern=r"^[A-Za-z0-9-]{1,32}$")
    category_code: str = Field(pattern=CODE_PATTERN)


class CalibrationRequest(BaseModel):
    reference_g: int = Field(gt=0, le=10_000_000)
    note: str = Field(default="", max_length=200)


class ScaleView(BaseModel):
    scale_id: str
    flow: str
    protocol: str
    connected: bool
    grams: int | None
    stable: bool | None
    armed_member_no: str | None = None
    armed_category_code: str | None = None
    waiting_for_zero: bool = False
    calibration_version: str | None = None


class CalibrationView(BaseModel):
    id: int
    scale_id: str
    reference_g: int
    reading_g: int
    error_g: int
    checked_at: datetime
    version: str


def _scale_view(r: ScaleReader) -> ScaleView:
    armed = r.session.armed if isinstance(r.session, AttendantSession) else None
    return ScaleView(
        scale_id=r.cfg.id,
        flow=r.cfg.flow,
        protocol=r.protocol,
        connected=r.connected,
        grams=r.last.grams if r.last else None,
        stable=(r.last.status == "stable") if r.last else None,
        armed_member_no=armed[0] if armed else None,
        armed_category_code=armed[1] if armed else None,
        waiting_for_zero=isinstance(r.session, AttendantSession) and r.session.waiting_for_zero,
        calibration_version=r.calibration_version(),
    )


def _calibration_view(c: CalibrationCheck) -> CalibrationView:
    return CalibrationView(
        id=c.id,
        scale_id=c.scale_id,
        reference_g=c.reference_g,
        reading_g=c.reading_g,
        error_g=c.error_g,
        checked_at=c.checked_at,
        version=c.version,
    )


def _reader(gw: Gateway, scale_id: str) -> ScaleReader:
    try:
        return gw.readers[scale_id]
    except KeyError:
        raise HTTPException(404, f"timbangan {scale_id} tidak ada / no such scale") from None


def http_app(gw: Gateway, service: AttendantService | None = None) -> FastAPI:
    """The gateway's local endpoint (on the bank's LAN): attendant flow, calibration, health;
    with ``service``, the attendant page too."""
    app = FastAPI(title=f"wastebank gateway {gw.settings.gateway_id}", version=__version__)
    if service is not None:
        from gateway.attendant import router

        app.include_router(router(service))
    # Every handler is async: it runs on the gateway's event loop, the one thread that owns the
    # outbox connection and the scale sessions (a sync handler would run in a worker thread).

    @app.get("/health")
    async def health() -> GatewayHealth:
        return gw.health()

    @app.get("/scales")
    async def scales() -> list[ScaleView]:
        return [_scale_view(r) for r in gw.readers.values()]

    @app.post("/scales/{scale_id}/arm")
    async def arm(scale_id: str, req: ArmRequest) -> ScaleView:
        r = _reader(gw, scale_id)
        if not isinstance(r.session, AttendantSession):
            raise HTTPException(409, f"{scale_id} memakai kios / is a kiosk scale (card + keys)")
        r.session.arm(req.member_no, req.category_code, time.monotonic())
        log.info("petugas / attendant armed %s: %s %s", scale_id, req.member_no, req.category_code)
        return _scale_view(r)

    @app.post("/scales/{scale_id}/cancel")
    async def cancel(scale_id: str) -> ScaleView:
        r = _reader(gw, scale_id)
        if isinstance(r.session, AttendantSession):
            r.session.cancel()
        return _scale_view(r)

    @app.post("/scales/{scale_id}/calibration")
    async def calibrate(scale_id: str, req: CalibrationRequest) -> CalibrationView:
        r = _reader(gw, scale_id)
        if r.last is None or r.last.status != "stable" or r.last.grams is None:
            raise HTTPException(409, "timbangan belum stabil / the scale is not stable yet")
        check = gw.calibration.record(scale_id, req.reference_g, r.last.grams, req.note)
        log.info(
            "kalibrasi / calibration check %s: ref %d g, read %d g",
            scale_id,
            check.reference_g,
            check.reading_g,
        )
        return _calibration_view(check)

    @app.get("/scales/{scale_id}/calibration")
    async def calibrations(scale_id: str) -> list[CalibrationView]:
        _reader(gw, scale_id)
        return [_calibration_view(c) for c in gw.calibration.checks(scale_id)]

    return app
