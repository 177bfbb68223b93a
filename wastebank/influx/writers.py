"""The writers the ingester writes through: ``V1Writer`` posts to ``/write`` (1.x, and 2.x/3.x
v1 compatibility), ``V2Writer`` to ``/api/v2/write`` through influxdb-client's async client,
imported only when a V2 writer first writes (it is large: a Pi's ingester on 1.x never loads
it). Both raise :class:`InfluxError` classified as retryable, too large or permanent.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import httpx

from wastebank.config import InfluxSettings
from wastebank.influx.auth import auth_headers, login_name
from wastebank.influx.errors import InfluxError, classify

ApiVersion = Literal["v1", "v2"]
LOOPBACK_HOSTS = {"localhost", "::1", "[::1]"}


class InfluxWriter(Protocol):
    """What the ingester writes through: ``await writer.write(lines)``, raising InfluxError."""

    api: ApiVersion

    async def write(self, lines: Sequence[str]) -> None: ...

    async def aclose(self) -> None: ...


def encode_body(lines: Sequence[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _is_loopback(url: str) -> bool:
    host = httpx.URL(url).host
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def gzip_wanted(settings: InfluxSettings, size: int) -> bool:
    """Whether a body of ``size`` bytes is sent compressed (``Content-Encoding: gzip``).

    ``gzip = true`` compresses bodies of at least ``gzip_min_bytes``; ``auto`` does too, unless
    InfluxDB is on loopback, where compressing costs more CPU than the bytes save; across a
    network the much smaller body wins (docs/scaling.md, "The ingester's hot path"). ``false``
    never compresses.
    """
    if settings.gzip is False or size < settings.gzip_min_bytes:
        return False
    return settings.gzip is True or not _is_loopback(settings.url)


def _prepare(settings: InfluxSettings, lines: Sequence[str]) -> tuple[bytes, bool]:
    body = encode_body(lines)
    if len(body) > settings.max_body_bytes:
        raise InfluxError(
            f"batch of {len(lines)} lines is {len(body)} bytes, over max_body_bytes "
            f"({settings.max_body_bytes})",
            status=None,
            retryable=False,
            too_large=True,
        )
    if gzip_wanted(settings, len(body)):
        # Level 1: most of the gain for little CPU; higher levels gain little more at several
        # times the CPU (docs/scaling.md).
        return gzip.compress(body, compresslevel=1), True
    return body, False


def _transport_error(exc: BaseException, size: int) -> InfluxError:
    """No answer: retryable. 1.x answers an over-size body with 413 and closes the connection
    unread, so a client still sending sees a reset instead of the 413 (httpx: ReadError)."""
    hint = ""
    if size >= 1_000_000:
        hint = (
            f" (body of {size} bytes: if it is over the server's limit, e.g. 1.x [http] "
            "max-body-size, set max_body_bytes below that limit)"
        )
    return InfluxError(f"write failed: {exc!r}{hint}", status=None, retryable=True)


class V1Writer:
    """Line protocol to ``/write?db=&precision=ns`` (1.x; 2.x and 3.x v1 compatibility).

    Authenticates with HTTP Basic (1.x username and password) or, when ``token`` is set,
    ``Authorization: Token``: never in the URL, which clients and proxies may log.
    ``client`` (an httpx client with ``base_url`` = the server) is shared, not closed, if given.
    """

    api: ApiVersion = "v1"

    def __init__(self, settings: InfluxSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._owned = client is None
        self._client = client or httpx.AsyncClient(
            base_url=settings.url, timeout=settings.timeout_s
        )

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()

    async def write(self, lines: Sequence[str]) -> None:
        """Write line protocol with ns timestamps; raise a classified InfluxError on failure."""
        if not lines:
            return
        body, compressed = _prepare(self.settings, lines)
        params = {"db": self.settings.database, "precision": "ns"}
        headers = auth_headers(self.settings)
        if compressed:
            headers["Content-Encoding"] = "gzip"
        try:
            resp = await self._client.post("/write", params=params, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, len(body)) from exc
        if resp.status_code == 204:
            return
        raise classify(
            resp.status_code,
            resp.content,
            resp.headers.get("Retry-After"),
            who=login_name(self.settings),
        )


class V2Writer:
    """Line protocol to ``/api/v2/write`` through influxdb-client's async client (aiohttp).

    2.x: ``org`` and ``bucket`` (default: the database name) and a token. 1.8+ forward
    compatibility: bucket ``db/rp`` (or ``db`` for the default RP), token ``user:pass`` (taken
    from username/password when no token is set), org ignored. 3.x: bucket = database, org
    ignored. The body is built and (when it pays) gzipped here, then posted with the client's
    ``WriteService`` - the call ``WriteApiAsync.write`` makes - so compression is chosen per
    request instead of per client.
    """

    api: ApiVersion = "v2"

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        self.bucket = settings.bucket or settings.database
        self.org = settings.org or "-"
        if settings.token is not None:
            self._token: str | None = settings.token.get_secret_value()
        elif settings.username and settings.password:
            self._token = f"{settings.username}:{settings.password.get_secret_value()}"
        else:
            self._token = None
        self._client: Any = None  # InfluxDBClientAsync, made in the event loop (aiohttp session)
        self._service: Any = None

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client, self._service = self._client, None, None
            await client.close()

    def _write_service(self) -> Any:
        if self._service is None:
            from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
            from influxdb_client.service.write_service import WriteService

            self._client = InfluxDBClientAsync(
                url=self.settings.url,
                token=self._token or "",  # empty: no Authorization header
                org=self.org,
                timeout=int(self.settings.timeout_s * 1000),
            )
            self._service = WriteService(self._client.api_client)
        return self._service

    async def write(self, lines: Sequence[str]) -> None:
        """Write line protocol with ns timestamps; raise a classified InfluxError on failure."""
        if not lines:
            return
        import aiohttp
        from influxdb_client.rest import ApiException  # lazily: see the module docstring

        body, compressed = _prepare(self.settings, lines)
        extra = {"content_encoding": "gzip"} if compressed else {}
        try:
            await self._write_service().post_write_async(
                org=self.org,
                bucket=self.bucket,
                body=body,
                precision="ns",  # WritePrecision.NS
                content_type="text/plain; charset=utf-8",
                **extra,
            )
        except ApiException as exc:
            headers: Any = exc.headers or {}
            raise classify(
                int(exc.status or 0),
                exc.body or exc.reason or "",
                headers.get("Retry-After"),
                who=login_name(self.settings),
            ) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _transport_error(exc, len(body)) from exc
