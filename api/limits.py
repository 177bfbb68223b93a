"""Request body limits, enforced before anything reads the body: before FastAPI parses JSON or a
form, and before the route's dependencies check who is asking (a 20 MB body gets its 413 without
being parsed, whoever sends it).

A pure ASGI middleware (:class:`BodyLimit`): a request whose ``Content-Length`` is over the
limit is answered 413 at once, unread; a body without one (chunked) is counted as it arrives and
refused the moment it passes the limit. Routes that take an upload (a ``File`` parameter: the
member import, ``POST /admin/impor``) get ``max_upload_bytes``, every other route
``max_body_bytes`` (settings ``WASTEBANK_HTTP__*``, api/settings.py). Each refusal is logged
with the path and the client, and counted in :attr:`BodyLimit.refused`.

We looked at content-size-limit-asgi: unmaintained since 2020, and it raises from ``receive``,
which FastAPI turns into a 400 "error parsing the body" instead of a 413.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import params
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("api.limits")


def _id_number(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def too_large_detail(limit: int) -> str:
    return (
        f"isi permintaan terlalu besar, paling banyak {_id_number(limit)} bita / "
        f"request body too large: at most {_id_number(limit)} bytes"
    )


class BodyLimit:
    """Refuse (413) a request whose body is larger than its route's limit; see the module."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_bytes: int,
        upload_paths: Iterable[re.Pattern[str]] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.upload_paths = tuple(upload_paths)
        self.refused: Counter[str] = Counter()
        """Refusals by how the size was found: ``declared`` (Content-Length), ``streamed``."""

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
        log.warning(
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


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we see it
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": too_large_detail(limit)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # the rest of the body is never read: the connection cannot be reused
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def flat_routes(routes: list[Any]) -> list[Any]:
    """Every route of the app, those of included routers too: FastAPI >= 0.16x keeps an included
    router whole (``fastapi.routing.iter_route_contexts`` walks it); older ones copy its routes
    into the app's list, which is then already flat."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return routes
    return list(iter_route_contexts(routes))


def upload_paths(routes: Iterable[object]) -> list[re.Pattern[str]]:
    """The path patterns of the routes that take a file (``File``/``UploadFile`` parameters),
    from FastAPI's own view of each route's body."""
    out = []
    for route in flat_routes(list(routes)):
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        if any(isinstance(p.field_info, params.File) for p in dependant.body_params):
            out.append(route.path_regex)
    return out
