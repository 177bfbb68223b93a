"""Request body limits, enforced before anything reads the body: before a route parses JSON or
a form, and before anyone checks who is asking (a 20 MB body gets its 413 without being parsed,
whoever sends it). One rule for the central API (api/app.py) and the gateway's local endpoint
(gateway/http/local_api.py), each with its own settings.

A pure ASGI middleware (:class:`BodyLimit`): a request whose ``Content-Length`` is over the
limit is answered 413 at once, unread; a body without one (chunked) is counted as it arrives and
refused the moment it passes the limit. Paths matching ``upload_paths`` (the API's file uploads)
get ``max_upload_bytes``, every other path ``max_body_bytes``. Each refusal is logged with the
path and the client (on the logger the app names), and counted in :attr:`BodyLimit.refused`.

Core: Starlette's ASGI types only, so the gateway may use it; no FastAPI (the API finds its
upload routes itself, api/limits.py).

We looked at content-size-limit-asgi: unmaintained since 2020, and it raises from ``receive``,
which a framework turns into a 400 "error parsing the body" instead of a 413.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wastebank.formats import thousands

__all__ = ["BUSY", "BodyLimit", "InFlightLimit", "send_detail", "too_large_detail"]

BUSY = "server sedang sibuk, coba lagi sebentar lagi / the server is busy, try again shortly"
"""The 503's ``detail`` when a server takes no more requests now (the API's admission,
api/capacity.py, and the gateway's :class:`InFlightLimit`)."""


def too_large_detail(limit: int) -> str:
    """The 413's ``detail``: Bahasa Indonesia first, the limit in id-ID digits."""
    return (
        f"isi permintaan terlalu besar, paling banyak {thousands(limit)} bita / "
        f"request body too large: at most {thousands(limit)} bytes"
    )


class BodyLimit:
    """Refuse (413) a request whose body is larger than its path's limit; see the module.

    ``refused`` (a counter to share, e.g. with a health report; a new one by default) counts
    the refusals by how the size was found: ``declared`` (Content-Length) or ``streamed``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_bytes: int | None = None,
        upload_paths: Iterable[re.Pattern[str]] = (),
        refused: Counter[str] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes if max_upload_bytes is not None else max_body_bytes
        self.upload_paths = tuple(upload_paths)
        self.refused: Counter[str] = refused if refused is not None else Counter()
        self.log = logger or logging.getLogger(__name__)

    def limit_for(self, path: str) -> int:
        if any(p.match(path) for p in self.upload_paths):
            return self.max_upload_bytes
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            self._note(scope, "declared", limit, declared)
            await _refuse(send, limit)
            return
        stream = _Streamed(
            limit, receive, send, lambda size: self._note(scope, "streamed", limit, size)
        )
        try:
            await self.app(scope, stream.receive, stream.send)
        except Exception:
            # an error of the app's own is raised; one caused by the cut body is answered
            if not stream.refused:
                raise

    def _note(self, scope: Scope, how: str, limit: int, size: int) -> None:
        self.refused[how] += 1
        client = scope.get("client")
        self.log.warning(
            "isi permintaan terlalu besar / request body too large: %s %s from %s, %s %d bytes "
            "> limit %d",
            scope.get("method"),
            scope.get("path"),
            client[0] if client else "?",
            "declared" if how == "declared" else "read",
            size,
            limit,
        )


class _Streamed:
    """One request's body counted as the app reads it: past the limit, the 413 is sent (unless
    the app has begun its answer) and the app sees the client gone."""

    def __init__(
        self, limit: int, receive: Receive, send: Send, on_refused: Callable[[int], None]
    ) -> None:
        self._limit, self._receive, self._send = limit, receive, send
        self._on_refused = on_refused
        self.received = 0
        self.started = self.refused = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request" or self.refused:
            return message
        self.received += len(message.get("body", b""))
        if self.received <= self._limit:
            return message
        self.refused = True
        self._on_refused(self.received)
        if not self.started:
            await _refuse(self._send, self._limit)
        # the app sees the client gone: it stops reading, and whatever it answers is dropped
        # (the 413 is the answer)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class InFlightLimit:
    """Refuse (503 with ``Retry-After``, ``Connection: close``) a request that arrives while
    ``max_requests`` are in progress: a bound on the memory and the event loop's work that
    many clients (or one client's many connections) can take, where a Pi has little of both.
    A live stream counts while it is open. Paths in ``exempt`` (``/health``) are always
    answered: they are cheap and say whether the server is up.

    ``refused`` counts the refusals (a counter to share, e.g. with a health report). A flood
    is logged as its first refusal and then one line a minute with the count since, never one
    line per request (an SD card is small)."""

    LOG_EVERY_S: float = 60.0

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_requests: int,
        retry_after_s: int = 5,
        exempt: Iterable[str] = (),
        refused: Counter[str] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.app = app
        self.max_requests = max_requests
        self.retry_after_s = retry_after_s
        self.exempt = frozenset(exempt)
        self.refused: Counter[str] = refused if refused is not None else Counter()
        self.log = logger or logging.getLogger(__name__)
        self.active = 0
        self._logged_at: float | None = None
        self._unlogged = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.active >= self.max_requests:
            self.refused["busy"] += 1
            self._note(scope)
            headers = [
                (b"retry-after", str(self.retry_after_s).encode()),
                (b"connection", b"close"),  # its body (if any) is never read
            ]
            await send_detail(send, 503, BUSY, headers)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1

    def _note(self, scope: Scope) -> None:
        self._unlogged += 1
        now = time.monotonic()
        if self._logged_at is not None and now - self._logged_at < self.LOG_EVERY_S:
            return
        client = scope.get("client")
        self.log.warning(
            "sibuk / busy: %d ditolak / refused (503), %d in progress of at most %d; the "
            "last: %s %s from %s",
            self._unlogged,
            self.active,
            self.max_requests,
            scope.get("method"),
            scope.get("path"),
            client[0] if client else "?",
        )
        self._logged_at, self._unlogged = now, 0


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we see it
    return None


async def _refuse(send: Send, limit: int) -> None:
    # the rest of the body is never read: the connection cannot be reused
    await send_detail(send, 413, too_large_detail(limit), [(b"connection", b"close")])


async def send_detail(
    send: Send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Answer ``{"detail": detail}`` with ``status`` from a pure ASGI middleware (before any
    app or router): the JSON refusal every route answers, with ``headers`` beside it."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
