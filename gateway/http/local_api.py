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
from collections.abc import Iterable, Iterator
from typing import Final, cast
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway.app import Gateway
from gateway.http import health, scales
from gateway.http.attendant import AttendantService, SessionGate, applied
from gateway.http.attendant import routes as attendant_routes
from gateway.http.health import PublicHealth
from gateway.http.routing import Refused, mount
from gateway.http.validation import REFUSED, validation_refused
from gateway.settings import GatewaySettings
from wastebank.errors import WastebankError
from wastebank.http_limits import (
    BodyLimit,
    InFlightLimit,
    LogEveryMinute,
    ReadDeadline,
    send_detail,
)

__all__ = ["PublicHealth", "http_app", "serve"]

log = logging.getLogger("wastebank.gateway")

SHUTDOWN_TIMEOUT_S = 3.0
"""At a stop: how long open pages (their live streams end at once) get to close."""


HEAD_MAX_BYTES: Final = 16 * 1024
"""The most a request's line and headers may take (URL, query string, cookies). A head that
arrives in pieces is refused by h11 (400, the connection closed) once its unfinished part passes
it; one that arrives whole in one read (up to asyncio's 256 KiB) is measured by
:class:`RequestHead` and answered 431."""
HEAD_TOO_LARGE: Final = (
    "baris permintaan dan header terlalu besar, paling banyak 16 KiB / request line and headers "
    "too large: at most 16 KiB"
)
LAN_SUFFIXES: Final = (".local", ".lan", ".home.arpa", ".internal", ".localhost", ".test")
"""Names no public DNS answers (mDNS, RFC 8375, RFC 6761, ICANN's .internal, and the common
LAN one): a page of another site cannot point one of them at the gateway."""
MISDIRECTED: Final = (
    "gateway ini tidak melayani nama host itu; pakai alamat IP-nya atau tambahkan nama itu ke "
    "http_allowed_hosts / this gateway does not answer to that host name: use its IP address "
    "or add the name to http_allowed_hosts"
)


def host_allowed(host: str, names: Iterable[str]) -> bool:
    """Whether a request's ``Host`` is one the gateway answers to: an IP address, a name
    without a dot (``localhost``, the Pi's own name), a LAN-only name (:data:`LAN_SUFFIXES`), or
    one of ``names`` (``http_allowed_hosts``). A DNS rebinding page's Host is a public name of
    the attacker's, so it is none of these."""
    if host.startswith("["):  # an IPv6 address, with or without a port
        return "]" in host
    name = host.rpartition(":")[0] if ":" in host else host
    name = name.rstrip(".").lower()
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return True
    return (
        "." not in name
        or name.endswith(LAN_SUFFIXES)
        or name in {n.rstrip(".").lower() for n in names}
    )


def head_size(scope: Scope) -> int:
    """A request's line and headers in bytes, as they came (``GET /x?q HTTP/1.1``, each
    ``name: value`` line, the blank line)."""
    target = len(scope.get("raw_path") or scope["path"].encode())
    if scope.get("query_string"):
        target += 1 + len(scope["query_string"])
    line = len(scope["method"]) + 1 + target + len(" HTTP/1.1\r\n")
    return line + sum(len(n) + 2 + len(v) + 2 for n, v in scope["headers"]) + 2


class RequestHead:
    """The request's head, before anything else: over :data:`HEAD_MAX_BYTES` is 431, a
    ``Host`` the gateway does not answer to (:func:`host_allowed`) is 421; both with
    ``Connection: close``, counted (``too_large["head"]``, ``REFUSED["(Host)"]``) and logged at
    most once a minute. A redirect's ``Location`` built from the request's own Host (Starlette's
    trailing-slash redirect) is sent relative, so no Host is ever echoed back."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: Iterable[str],
        too_large: Counter[str],
        refused: Counter[str],
        logger: logging.Logger,
    ) -> None:
        self.app = app
        self.allowed = tuple(allowed_hosts)
        self.too_large, self.refused, self.log = too_large, refused, logger
        self._logged = LogEveryMinute()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for n, v in scope["headers"] if n == b"host"), None)
        close = [(b"connection", b"close")]
        if head_size(scope) > HEAD_MAX_BYTES:
            self.too_large["head"] += 1
            self._note("head", scope, f"{head_size(scope)} bytes")
            await send_detail(send, 431, HEAD_TOO_LARGE, close)
            return
        if host is not None and not host_allowed(host, self.allowed):
            self.refused["(Host)"] += 1
            self._note("host", scope, f"Host {ascii(host)}")
            await send_detail(send, 421, MISDIRECTED, close)
            return

        async def relative(message: Message) -> None:
            if message["type"] == "http.response.start" and host is not None:
                message["headers"] = [
                    (n, _relative(v, host) if n.lower() == b"location" else v)
                    for n, v in message.get("headers", ())
                ]
            await send(message)

        await self.app(scope, receive, relative)

    def _note(self, kind: str, scope: Scope, what: str) -> None:
        count = self._logged.due(kind)
        if not count:
            return
        client = scope.get("client")
        self.log.warning(
            "permintaan ditolak / request refused (%s): %d since the last line; the last: %s "
            "%s from %s, %s",
            "431 head too large" if kind == "head" else "421 unknown Host",
            count,
            scope.get("method"),
            ascii(scope.get("path", ""))[1:-1],
            client[0] if client else "?",
            what,
        )


def _relative(location: bytes, host: str) -> bytes:
    """``location`` without its scheme and host when they are the request's own."""
    parts = urlsplit(location.decode("latin-1"))
    if parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower():
        path = parts.path or "/"
        return (path + (f"?{parts.query}" if parts.query else "")).encode("latin-1")
    return location


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
            # first: a head too large or a Host not ours is answered before anything else
            Middleware(
                RequestHead,
                allowed_hosts=gw.settings.http_allowed_hosts,
                too_large=too_large,
                refused=REFUSED,
                logger=log,
            ),
            # then: a request beyond the gateway's capacity costs nothing more than its 503
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
