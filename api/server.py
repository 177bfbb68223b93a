"""How `wastebank api` speaks HTTP: uvicorn's httptools protocol with a bound on a request's head.

httptools (uvicorn's parser when installed) gathers a request's URL and header values in memory
with no limit of its own: a 64 MB URL grows the process by as much before the app, or any limit
of ours, sees the request. h11 has a bound but costs more CPU per request, so the API keeps
httptools and bounds the head here: :class:`HeadLimitedProtocol` counts the bytes read while a
request's head (request line and headers) is incomplete, from the connection's start or the
previous request's end until the headers are complete, and checks the count after each read, so
a read carrying a whole head and the start of a large body is never refused for the body; a head
that arrived whole is measured itself (its URL and headers). Past
``max_head_bytes`` (``WASTEBANK_HTTP__MAX_HEAD_BYTES``) the client gets 431 and the connection
is closed; the refusal is logged on ``api.limits`` with the client's address (the path is not
known yet) and counted in :data:`api.limits.refused` under ``head`` (docs/operations.md).

A pipelined request's head that begins in the same read as the previous request's end is counted
from the next read (the parser does not say where in a read a request ends): while incomplete,
it may then take ``max_head_bytes`` plus one read (asyncio reads 256 KiB at most) before it is
refused.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from api import limits
from wastebank.formats import thousands
from wastebank.http_limits import ReadDeadline

__all__ = ["HeadLimitedProtocol", "head_too_large_detail", "http_protocol"]


def head_too_large_detail(limit: int) -> str:
    """The 431's ``detail``: Bahasa Indonesia first, the limit in id-ID digits (like the 413's)."""
    return (
        f"kepala permintaan (alamat dan header) terlalu besar, paling banyak {thousands(limit)} "
        f"bita / request head (URL and headers) too large: at most {thousands(limit)} bytes"
    )


def http_protocol(
    max_head_bytes: int,
    read_timeout_s: float = 10.0,
    max_connections: int = 1024,
    per_client: int = 64,
) -> type[asyncio.Protocol]:
    """uvicorn's ``http=``: :class:`HeadLimitedProtocol` with its bounds. A partial, which
    uvicorn calls like the class and which pickles into `--workers` processes (a class made
    here would not)."""
    return cast(
        "type[asyncio.Protocol]",
        functools.partial(
            HeadLimitedProtocol,
            max_head_bytes=max_head_bytes,
            head_timeout_s=read_timeout_s,
            max_connections=max_connections,
            per_client=per_client,
        ),
    )


class HeadLimitedProtocol(ReadDeadline, HttpToolsProtocol):
    """uvicorn's :class:`HttpToolsProtocol`, refusing (431) a request head over
    ``max_head_bytes`` (see the module), closing a connection whose head is not whole within
    ``head_timeout_s`` and one beyond ``max_connections`` (``per_client`` from one address)
    (:class:`~wastebank.http_limits.ReadDeadline`, counted in :data:`api.limits.closed`)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        max_head_bytes: int,
        head_timeout_s: float = 10.0,
        max_connections: int = 1024,
        per_client: int = 64,
    ) -> None:
        super().__init__(
            config,
            server_state,
            app_state,
            _loop,
            head_timeout_s=head_timeout_s,
            max_connections=max_connections,
            per_client=per_client,
            refused=limits.closed,
            logger=limits.log,
        )
        self.max_head_bytes = max_head_bytes
        self._head_open = True  # a request's head may be arriving
        self._head_bytes = 0  # read since it began
        self._too_large: int | None = None  # a whole head's size, past the bound

    def data_received(self, data: bytes) -> None:
        if self._head_open:
            self._head_bytes += len(data)
        super().data_received(data)
        # after the read: a head it completed reset the count, and was measured itself
        if self.transport.is_closing():
            return
        if self._too_large is not None:
            self._refuse_head(self._too_large)
        elif self._head_open and self._head_bytes > self.max_head_bytes:
            self._refuse_head(self._head_bytes)

    def on_headers_complete(self) -> None:
        self._head_open, self._head_bytes = False, 0
        # A head that came whole in one read was not counted above: its URL and headers
        # (": " and CRLF each) are its size, nearly to the byte.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_head_bytes:
            self._too_large = size  # refused after this read; the app never sees it
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._too_large is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._too_large is not None:
            return
        super().on_message_complete()
        self._head_open, self._head_bytes = True, 0

    def _refuse_head(self, size: int) -> None:
        self._head_open = False
        limits.refused["head"] += 1
        limits.log.warning(
            "kepala permintaan terlalu besar / request head too large: from %s, %d bytes "
            "> limit %d",
            self.client[0] if self.client else "?",
            size,
            self.max_head_bytes,
        )
        if self.cycle is not None and not self.cycle.response_complete:
            # The previous request's answer is under way: a 431 now would land inside it. Read
            # no more; the connection closes when that answer is sent.
            self.flow.pause_reading()
            self.cycle.keep_alive = False
            return
        body = json.dumps({"detail": head_too_large_detail(self.max_head_bytes)}).encode()
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
