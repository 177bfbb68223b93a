"""The gateway's local endpoint on the waste bank's LAN: the attendant-assisted flow, calibration
checks, live scale state and health. Served inside the gateway's event loop (every handler is
async: it shares the outbox connection and the scale sessions with the gateway's tasks).

Every route needs an attendant's session (the attendant page's cookie, see
:mod:`gateway.http.attendant`; `wastebank attend` and `wastebank calibrate` log in for one) and
every write its CSRF token, but the minimal ``GET /health`` (:class:`PublicHealth`: up, the
broker link, the outbox's backlog; nothing about members, deposits or money) and the logins.
The routes: :mod:`gateway.http.health`, :mod:`gateway.http.scales`, and ``/petugas...``, the
attendant page (:mod:`gateway.http.attendant`).

Plain HTTP by default (on 127.0.0.1); with ``http_tls_cert`` and ``http_tls_key`` (a certificate
from the site CA, `wastebank certs gateway`) HTTPS, for a page on the bank's Wi-Fi.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Final, cast

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway.app import Gateway
from gateway.http import health, scales
from gateway.http.attendant import AttendantService, SessionGate, applied
from gateway.http.attendant import routes as attendant_routes
from gateway.http.health import PublicHealth
from gateway.http.routing import Refused, mount
from gateway.http.validation import validation_refused
from gateway.settings import GatewaySettings
from wastebank.errors import WastebankError
from wastebank.http_limits import BodyLimit, InFlightLimit, ReadDeadline

__all__ = ["PublicHealth", "http_app", "serve"]

log = logging.getLogger("wastebank.gateway")

SHUTDOWN_TIMEOUT_S = 3.0
"""At a stop: how long open pages (their live streams end at once) get to close."""


HEAD_MAX_BYTES: Final = 16 * 1024
"""The most a request's line and headers may take (URL, query string, cookies): more and the
connection is closed before the app sees it."""


class _Protocol(ReadDeadline, H11Protocol):
    """uvicorn's h11 protocol with :class:`~wastebank.http_limits.ReadDeadline`."""


CLOSED: Counter[str] = Counter()
"""Connections the endpoint closed (``head_timeout``, ``connections``): /health's
``connections_closed``."""


def server_config(gw: Gateway, app: Starlette) -> uvicorn.Config:
    """How uvicorn serves the endpoint. Its HTTP parser is h11, which holds a request's line
    and headers to :data:`HEAD_MAX_BYTES`: httptools (uvicorn's default when installed) gathers
    a URL or a header of any length in memory, so one client on the Wi-Fi could fill a Pi's
    RAM before any limit of ours sees the request (docs/attendant.md, "The local endpoint")."""
    s = gw.settings
    tls = s.http_tls_cert is not None and s.http_tls_key is not None
    # h11 with a deadline for each request head and a bound on connections (ReadDeadline):
    # neither is uvicorn's, and a phone sending heads a byte at a time kept its connections
    # (and the Pi's file descriptors) as long as it liked
    protocol = functools.partial(
        _Protocol,
        head_timeout_s=s.http_read_timeout_s,
        max_connections=s.http_max_connections,
        per_client=s.http_max_requests_per_client,
        refused=CLOSED,
        logger=log,
    )
    return uvicorn.Config(
        app,
        host=s.http_host,
        port=s.http_port,
        log_level="warning",
        http=cast("type[asyncio.Protocol]", protocol),
        h11_max_incomplete_event_size=HEAD_MAX_BYTES,
        ssl_certfile=s.http_tls_cert if tls else None,
        ssl_keyfile=s.http_tls_key if tls else None,
    )


async def serve(gw: Gateway, service: AttendantService | None = None) -> None:
    service = service or AttendantService(gw)
    s = gw.settings
    config = server_config(gw, http_app(gw, service))
    _announce(s, s.http_tls_cert is not None and s.http_tls_key is not None)
    server = _QuietServer(config)
    stopped = False
    try:
        async with asyncio.TaskGroup() as tg:
            sync = tg.create_task(service.run(), name="attendant-sync")
            amounts = tg.create_task(applied.run(service), name="ledger-amounts")  # receipts
            await server.serve()
            stopped = True  # uvicorn stopped on its own (should_exit): nothing left to close
            sync.cancel()
            amounts.cancel()
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


def http_app(gw: Gateway, service: AttendantService) -> Starlette:
    """The gateway's local endpoint (on the bank's LAN): the attendant page, the attendant flow
    and calibration for the CLI, health; behind the attendant session (:class:`SessionGate`).
    Starlette alone, no FastAPI: on a Pi its import and per-route models cost ~10 MB
    (docs/scaling.md); :mod:`gateway.http.routing` does the little of it the routes need."""
    # Every handler is async: it runs on the gateway's event loop, the one thread that owns the
    # outbox connection and the scale sessions (a sync handler would run in a worker thread).
    too_large: Counter[str] = Counter()
    busy: Counter[str] = Counter()
    too_slow: Counter[str] = Counter()
    app = Starlette(
        routes=[*attendant_routes, *mount((health.routes, scales.routes))],
        middleware=[
            # first: a request beyond the gateway's capacity costs nothing more than its 503
            Middleware(
                InFlightLimit,
                max_requests=gw.settings.http_max_requests,
                per_client=gw.settings.http_max_requests_per_client,
                exempt=("/health",),
                refused=busy,
                logger=log,
            ),
            # a body over the limit is refused unread, before the session is checked
            Middleware(
                BodyLimit,
                max_body_bytes=gw.settings.http_max_body_bytes,
                refused=too_large,
                logger=log,
                body_timeout_s=gw.settings.http_read_timeout_s,
                too_slow=too_slow,
            ),
            Middleware(SessionGate, service=service),
        ],
        exception_handlers={
            WastebankError: _refusal,
            Refused: validation_refused,
            HTTPException: _http_refusal,
        },
    )
    app.state.attendant = service
    app.state.too_large = too_large  # /health's too_large_requests
    app.state.busy = busy  # /health's busy_refused
    app.state.too_slow = too_slow  # /health's too_slow_requests
    app.state.closed = CLOSED  # /health's connections_closed (the server's protocol counts them)
    return app


async def _http_refusal(request: Request, exc: Exception) -> Response:
    """An HTTPException (a handler's, or routing's 404 and 405): ``{"detail": ...}`` with its
    status and headers; no body where the status allows none."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if "Allow" in headers:  # a 405: the path's methods, in one order (Starlette's is a set's)
        headers["Allow"] = ", ".join(sorted(headers["Allow"].split(", ")))
    if exc.status_code < 200 or exc.status_code in (204, 205, 304):
        return Response(status_code=exc.status_code, headers=headers)
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=headers)


async def _refusal(request: Request, exc: Exception) -> JSONResponse:
    """A refusal the gateway's own rules raise (an unknown member, a kiosk scale armed): its
    status and its message, as an HTTPException is answered."""
    assert isinstance(exc, WastebankError)
    return JSONResponse({"detail": str(exc)}, exc.status)
