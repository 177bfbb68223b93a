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

import asyncio
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wastebank.formats import number, thousands

__all__ = [
    "BUSY",
    "BodyLimit",
    "InFlightLimit",
    "LogEveryMinute",
    "ReadDeadline",
    "read_whole",
    "send_detail",
    "too_large_detail",
]

LOG_EVERY_S = 60.0
"""A flood of one kind of refusal is logged as its first and then one line a minute with the
count since, never one line per request (an SD card is small)."""


class LogEveryMinute:
    """A flood of refusals logged as its first and then one line a minute per kind with the
    count since, never one line per request (an SD card is small)."""

    def __init__(self, every_s: float = LOG_EVERY_S) -> None:
        self.every_s = every_s
        self._at: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()

    def due(self, kind: str) -> int:
        """Count one of ``kind``: how many to log now (this one and those not logged yet), or
        0 when a line of it was written within the minute."""
        self._unlogged[kind] += 1
        now = time.monotonic()
        last = self._at.get(kind)
        if last is not None and now - last < self.every_s:
            return 0
        self._at[kind] = now
        return self._unlogged.pop(kind)


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
    the refusals by how the size was found: ``declared`` (Content-Length) or ``streamed``.
    ``too_slow`` counts the bodies that did not come whole: ``body`` (not within
    ``body_timeout_s``: 408) and ``gone`` (the client left first: nothing to answer, and the
    app's ClientDisconnect is no error; logged at most once a minute with the count)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_bytes: int | None = None,
        upload_paths: Iterable[re.Pattern[str]] = (),
        refused: Counter[str] | None = None,
        logger: logging.Logger | None = None,
        body_timeout_s: float | None = None,
        too_slow: Counter[str] | None = None,
    ) -> None:
        self.app = app
        self.body_timeout_s = body_timeout_s
        self.too_slow: Counter[str] = too_slow if too_slow is not None else Counter()
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes if max_upload_bytes is not None else max_body_bytes
        self.upload_paths = tuple(upload_paths)
        self.refused: Counter[str] = refused if refused is not None else Counter()
        self.log = logger or logging.getLogger(__name__)
        self._gone = LogEveryMinute()

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
            limit,
            receive,
            send,
            lambda size: self._note(scope, "streamed", limit, size),
            self.body_timeout_s,
            lambda: self._note_slow(scope),
        )
        try:
            await self.app(scope, stream.receive, stream.send)
        except Exception as exc:
            # an error of the app's own is raised; one caused by the cut body is answered
            if stream.refused:
                return
            if isinstance(exc, ClientDisconnect) and stream.gone:
                # the client left before its body was whole: nobody to answer, nothing wrong
                self._note_gone(scope)
                return
            raise

    def _note_gone(self, scope: Scope) -> None:
        self.too_slow["gone"] += 1
        count = self._gone.due("gone")
        if not count:
            return
        client = scope.get("client")
        self.log.warning(
            "isi permintaan terputus / request body cut off by the client: %d since the last "
            "line; the last: %s %s from %s",
            count,
            scope.get("method"),
            scope.get("path"),
            client[0] if client else "?",
        )

    def _note_slow(self, scope: Scope) -> None:
        self.too_slow["body"] += 1
        client = scope.get("client")
        self.log.warning(
            "isi permintaan terlalu lambat / request body too slow: %s %s from %s, not whole "
            "within %s s",
            scope.get("method"),
            scope.get("path"),
            client[0] if client else "?",
            _seconds(self.body_timeout_s or 0),
        )

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
        self,
        limit: int,
        receive: Receive,
        send: Send,
        on_refused: Callable[[int], None],
        timeout_s: float | None = None,
        on_slow: Callable[[], None] = lambda: None,
    ) -> None:
        self._limit, self._receive, self._send = limit, receive, send
        self._on_refused, self._on_slow = on_refused, on_slow
        self._timeout_s = timeout_s
        self._deadline: float | None = None
        self.received = 0
        self.started = self.refused = self.whole = self.gone = False

    async def receive(self) -> Message:
        if self.whole or self.refused or self._timeout_s is None:
            # the body is in (or none is awaited): a wait now is for the client to go, which
            # a live stream does for as long as it is open
            message = await self._receive()
        else:
            loop = asyncio.get_running_loop()
            if self._deadline is None:
                self._deadline = loop.time() + self._timeout_s
            try:
                async with asyncio.timeout_at(self._deadline):
                    message = await self._receive()
            except TimeoutError:
                return await self._cut(408, _too_slow_detail(self._timeout_s), self._on_slow)
        if message["type"] == "http.disconnect" and not self.whole:
            self.gone = True
        if message["type"] != "http.request" or self.refused:
            return message
        if not message.get("more_body", False):
            self.whole = True
        self.received += len(message.get("body", b""))
        if self.received <= self._limit:
            return message
        return await self._cut(
            413, too_large_detail(self._limit), lambda: self._on_refused(self.received)
        )

    async def _cut(self, status: int, detail: str, note: Callable[[], None]) -> Message:
        self.refused = True
        note()
        if not self.started:
            # the rest of the body is never read: the connection cannot be reused
            await send_detail(self._send, status, detail, [(b"connection", b"close")])
        # the app sees the client gone: it stops reading, and whatever it answers is dropped
        # (the refusal is the answer)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class InFlightLimit:
    """Refuse (503 with ``Retry-After``, ``Connection: close``) a request that arrives while
    ``max_requests`` are in progress, or ``per_client`` of the same client address: a bound on
    the memory and the event loop's work that many clients (or one client's many connections)
    can take, where a Pi has little of both, and one client cannot take them all (a request
    whose body never comes holds its place until :class:`BodyLimit`'s ``body_timeout_s``). A
    live stream counts while it is open. Paths in ``exempt`` (``/health``) are always
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
        per_client: int | None = None,
        retry_after_s: int = 5,
        exempt: Iterable[str] = (),
        exempt_prefixes: Iterable[str] = (),
        refused: Counter[str] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.app = app
        self.exempt_prefixes = tuple(exempt_prefixes)
        self.max_requests = max_requests
        self.per_client = per_client if per_client is not None else max_requests
        self.by_client: Counter[str] = Counter()
        self.retry_after_s = retry_after_s
        self.exempt = frozenset(exempt)
        self.refused: Counter[str] = refused if refused is not None else Counter()
        self.log = logger or logging.getLogger(__name__)
        self.active = 0
        self._logged = LogEveryMinute(self.LOG_EVERY_S)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in self.exempt or path.startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "?"
        if self.active >= self.max_requests or self.by_client[address] >= self.per_client:
            self.refused["busy"] += 1
            self._note(scope)
            headers = [
                (b"retry-after", str(self.retry_after_s).encode()),
                (b"connection", b"close"),  # its body (if any) is never read
            ]
            await send_detail(send, 503, BUSY, headers)
            return
        self.active += 1
        self.by_client[address] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            self.by_client[address] -= 1
            if not self.by_client[address]:
                del self.by_client[address]

    def _note(self, scope: Scope) -> None:
        count = self._logged.due("busy")
        if not count:
            return
        client = scope.get("client")
        address = client[0] if client else "?"
        self.log.warning(
            "sibuk / busy: %d ditolak / refused (503), %d in progress of at most %d (%d per "
            "client); the last: %s %s from %s with %d in progress",
            count,
            self.active,
            self.max_requests,
            self.per_client,
            scope.get("method"),
            scope.get("path"),
            address,
            self.by_client[address],
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we see it
    return None


async def read_whole(receive: Receive) -> Receive | None:
    """Read the request's whole body now and return a ``receive`` that gives it to the app
    as it came, then waits as ``receive`` does; None when the client left instead (or
    :class:`BodyLimit`, outside, cut the body and answered). For a gate that should be taken
    only by a request whose body is in: a client that sends its head and never its body then
    waits outside the gate, not in it."""
    messages: list[Message] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        messages.append(message)
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay


def _too_slow_detail(timeout_s: float) -> str:
    """The 408's ``detail``: Bahasa Indonesia first."""
    return (
        f"isi permintaan tidak utuh dalam {_seconds(timeout_s)} detik / request body not "
        f"complete within {_seconds(timeout_s)} s"
    )


def _seconds(t: float) -> str:
    return number(t, 0 if float(t).is_integer() else 1)


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


class ReadDeadline:
    """For a uvicorn HTTP protocol class (mixed in before it: ``class P(ReadDeadline,
    H11Protocol)``): a connection whose next request head is not whole within
    ``head_timeout_s`` (from the connection's start, or from the previous answer's end) is
    closed, as uvicorn closes an idle keep-alive one; and at most ``max_connections`` are open
    at once, ``per_client`` of them from one address: one more is closed as it opens. uvicorn
    has neither: a client that opens connections and sends a head one byte at a time kept
    every one, and its memory, for as long as it liked (a gateway on a Pi ran out of file
    descriptors). Each close is counted in ``refused`` (``head_timeout``, ``connections``) and
    logged at most once a minute."""

    # one per class, not per connection: a protocol object lives as long as its connection
    _logged: ClassVar[LogEveryMinute] = LogEveryMinute()

    def __init__(
        self,
        *args: Any,
        head_timeout_s: float,
        max_connections: int,
        per_client: int,
        refused: Counter[str],
        logger: logging.Logger,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.head_timeout_s = head_timeout_s
        self.max_connections, self.per_client = max_connections, per_client
        self.refused, self.log = refused, logger
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        me: Any = self
        super().connection_made(transport)  # type: ignore[misc]
        address = me.client[0] if me.client else "?"
        same = sum(1 for c in me.connections if c.client and c.client[0] == address)
        if len(me.connections) > self.max_connections or same > self.per_client:
            self._close("connections", f"{len(me.connections)} open, {same} from {address}")
            return
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm()  # the next head's time starts now

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        me: Any = self
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = me.loop.call_later(self.head_timeout_s, self._expired)

    def _expired(self) -> None:
        me: Any = self
        self._deadline = None
        cycle = me.cycle
        if cycle is not None and not cycle.response_complete:
            return  # a request is being served: its body has a timeout of its own (BodyLimit)
        if me.transport.is_closing():
            return
        address = me.client[0] if me.client else "?"
        self._close("head_timeout", f"no whole request head within the limit from {address}")

    def _close(self, why: str, what: str) -> None:
        me: Any = self
        self.refused[why] += 1
        me.transport.close()
        if ReadDeadline._logged.due(why):
            self.log.warning(
                "koneksi ditutup / connection closed (%s): %s; %d such since start",
                why,
                what,
                self.refused[why],
            )
