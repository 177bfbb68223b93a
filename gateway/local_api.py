"""The gateway's local endpoint on the waste bank's LAN: the attendant-assisted flow, calibration
checks, live scale state and health. Served inside the gateway's event loop (every handler is
async: it shares the outbox connection and the scale sessions with the gateway's tasks).

Every route needs an attendant's session (the attendant page's cookie, see
:mod:`gateway.attendant`; `wastebank attend` and `wastebank calibrate` log in for one) and every
write its CSRF token, but the minimal ``GET /health`` (:class:`PublicHealth`: up, the broker
link, the outbox's backlog; nothing about members, deposits or money) and the logins.

  GET  /health                          minimal: for probes, without a session
  GET  /health/full                     the gateway's health report (as published on MQTT)
  GET  /scales                          live weight, stability, protocol, what is armed
  POST /scales/{id}/arm                 {member_no, category_code}: the next settled load
  POST /scales/{id}/cancel
  POST /scales/{id}/calibration         {reference_g, note}: record a check now
  GET  /scales/{id}/calibration         the checks so far
  /petugas...                           the attendant page (gateway/attendant.py)

Plain HTTP by default (on 127.0.0.1); with ``http_tls_cert`` and ``http_tls_key`` (a certificate
from the site CA, `wastebank certs gateway`) HTTPS, for a page on the bank's Wi-Fi.
"""

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Literal

import uvicorn
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field

from gateway.attendant import (
    AttendantService,
    SessionGate,
    SignedIn,
    csrf_dependency,
    session_dependency,
)
from gateway.kiosk import AttendantSession
from gateway.main import ArmContext, Gateway, GatewaySettings, ScaleReader
from gateway.outbox import CalibrationCheck
from wastebank import __version__
from wastebank.messages import CODE_PATTERN, GatewayHealth

log = logging.getLogger("wastebank.gateway")


SHUTDOWN_TIMEOUT_S = 3.0
"""At a stop: how long open pages (their live streams end at once) get to close."""


async def serve(gw: Gateway, service: AttendantService | None = None) -> None:
    service = service or AttendantService(gw)
    s = gw.settings
    tls = s.http_tls_cert is not None and s.http_tls_key is not None
    config = uvicorn.Config(
        http_app(gw, service),
        host=s.http_host,
        port=s.http_port,
        log_level="warning",
        ssl_certfile=s.http_tls_cert if tls else None,
        ssl_keyfile=s.http_tls_key if tls else None,
    )
    _announce(s, tls)
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


def _announce(s: GatewaySettings, tls: bool) -> None:
    """Plain HTTP beyond this machine carries the attendants' central passwords over the bank's
    Wi-Fi: said once at start (HTTPS is one certificate away, docs/deploy-pi.md)."""
    scheme = "https" if tls else "http"
    log.info(
        "halaman petugas / attendant page: %s://%s:%d/petugas", scheme, s.http_host, s.http_port
    )
    if tls and s.http_tls_key is not None and s.http_tls_key.stat().st_mode & 0o077:
        log.warning(
            "kunci TLS %s terbaca pengguna lain; chmod 600 / the TLS key %s is readable by "
            "other users: chmod 600 it",
            s.http_tls_key,
            s.http_tls_key,
        )
    if tls or _loopback(s.http_host):
        return
    log.warning(
        "halaman petugas tanpa HTTPS di %s: kata sandi lewat Wi-Fi tanpa enkripsi; pasang "
        "http_tls_cert dan http_tls_key (wastebank certs gateway) / the attendant page is plain "
        "HTTP on %s: passwords cross the Wi-Fi unencrypted; set http_tls_cert and http_tls_key",
        s.http_host,
        s.http_host,
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _QuietServer(uvicorn.Server):
    """uvicorn inside our TaskGroup: the gateway, not uvicorn, owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


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


def http_app(gw: Gateway, service: AttendantService) -> FastAPI:
    """The gateway's local endpoint (on the bank's LAN): the attendant page, the attendant flow
    and calibration for the CLI, health; behind the attendant session (:class:`SessionGate`)."""
    from gateway.attendant import router

    # No /docs or /openapi.json: nobody browses the gateway's API, and it is one less route.
    app = FastAPI(
        title=f"wastebank gateway {gw.settings.gateway_id}",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(SessionGate, service=service)
    app.include_router(router(service))
    current = session_dependency(service)
    SignedInDep = Annotated[SignedIn, Depends(current)]
    CsrfDep = Annotated[SignedIn, Depends(csrf_dependency(service, current))]
    # Every handler is async: it runs on the gateway's event loop, the one thread that owns the
    # outbox connection and the scale sessions (a sync handler would run in a worker thread).

    @app.get("/health")
    async def health() -> PublicHealth:
        return PublicHealth(
            gateway_id=gw.settings.gateway_id,
            version=__version__,
            uptime_s=int(time.monotonic() - gw.started),
            broker_connected=gw.connected.is_set(),
            outbox_depth=len(gw.outbox),
            outbox_refused=sum(gw.outbox.refused().values()),
            outbox_dropped=gw.outbox.dropped,
        )

    @app.get("/health/full")
    async def full_health(_: SignedInDep) -> GatewayHealth:
        return gw.health()

    @app.get("/scales")
    async def scales(_: SignedInDep) -> list[ScaleView]:
        return [_scale_view(r) for r in gw.readers.values()]

    @app.post("/scales/{scale_id}/arm")
    async def arm(scale_id: str, req: ArmRequest, signed: CsrfDep) -> ScaleView:
        r = _reader(gw, scale_id)
        if not isinstance(r.session, AttendantSession):
            raise HTTPException(409, f"{scale_id} memakai kios / is a kiosk scale (card + keys)")
        r.session.arm(req.member_no, req.category_code, time.monotonic())
        directory = service.db.directory
        member, price = directory.member(req.member_no), directory.price(req.category_code)
        r.arm_context = ArmContext(
            attendant=signed.who.username,
            member_name=member.name if member else None,
            price_per_kg_idr=price.price_idr if price else None,
        )
        log.info(
            "petugas / attendant %s armed %s: %s %s",
            signed.who.username,
            scale_id,
            req.member_no,
            req.category_code,
        )
        gw.live.notify()
        return _scale_view(r)

    @app.post("/scales/{scale_id}/cancel")
    async def cancel(scale_id: str, signed: CsrfDep) -> ScaleView:
        r = _reader(gw, scale_id)
        if isinstance(r.session, AttendantSession):
            r.session.cancel()
            r.arm_context = None
            log.info("petugas / attendant %s cancelled %s", signed.who.username, scale_id)
            gw.live.notify()
        return _scale_view(r)

    @app.post("/scales/{scale_id}/calibration")
    async def calibrate(scale_id: str, req: CalibrationRequest, signed: CsrfDep) -> CalibrationView:
        r = _reader(gw, scale_id)
        if r.last is None or r.last.status != "stable" or r.last.grams is None:
            raise HTTPException(409, "timbangan belum stabil / the scale is not stable yet")
        check = gw.calibration.record(scale_id, req.reference_g, r.last.grams, req.note)
        log.info(
            "kalibrasi / calibration check %s by %s: ref %d g, read %d g",
            scale_id,
            signed.who.username,
            check.reference_g,
            check.reading_g,
        )
        return _calibration_view(check)

    @app.get("/scales/{scale_id}/calibration")
    async def calibrations(scale_id: str, _: SignedInDep) -> list[CalibrationView]:
        _reader(gw, scale_id)
        return [_calibration_view(c) for c in gw.calibration.checks(scale_id)]

    return app
