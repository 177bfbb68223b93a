"""InfluxDB 1.x, 2.x and 3.x: line-protocol writers, InfluxQL on ``/query``, 1.x retention.

Points are encoded by ``line`` below, not by influxdb-client's ``Point``: importing the client
loads ~400 modules (~13 MB of the ingester's memory) and ``Point`` took ~20-40 us per line, at
>25,000 messages/s. ``line`` produces the same bytes as ``Point(...).to_line_protocol()`` (tests
check it against the library). Timestamps are nanoseconds: the measurement time in
milliseconds with the event's sequence number in the sub-millisecond digits, so two events in one
millisecond never overwrite each other and a replayed event lands on exactly the same point
(InfluxDB then keeps one).

Writers (``make_writer``): ``V1Writer`` posts to ``/write`` (1.x, and 2.x/3.x v1 compatibility),
``V2Writer`` to ``/api/v2/write`` through influxdb-client's async client, imported only when a
V2 writer first writes; both raise InfluxError classified as retryable, too large or permanent.
Queries stay InfluxQL on ``/query`` (``Influx.query``), which every version serves.
``ensure_schema`` sets up retention policies and hourly continuous queries on 1.x.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import math
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol, TypeAlias

import httpx
from pydantic import SecretStr

from wastebank.config import InfluxSettings
from wastebank.messages import FillReading, GatewayAlert, GatewayHealth

log = logging.getLogger(__name__)

DEPOSIT = "deposit"
FILL = "fill_level"
GATEWAY_HEALTH = "gateway_health"
SCALE_HEALTH = "scale_health"
ALERT = "gateway_alert"

# ---- line protocol ------------------------------------------------------------------------------

FieldValue: TypeAlias = bool | int | float | str

# Escaping as the line-protocol reference says, and as influxdb-client's Point does it (the lines
# must stay byte-identical to what Point wrote): measurement names escape comma and space, tag
# keys, tag values and field keys also the equals sign; a tab, newline or carriage return there
# becomes the two characters ``\t``, ``\n``, ``\r``. String field values escape only the double
# quote and the backslash (a newline inside the quotes is legal).
_MEASUREMENT_ESCAPES = str.maketrans(
    {",": r"\,", " ": r"\ ", "\t": r"\t", "\n": r"\n", "\r": r"\r"}
)
_KEY_ESCAPES = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\t": r"\t", "\n": r"\n", "\r": r"\r"}
)
# str.translate with a multi-character table walks the string slowly (~1 us for a short name);
# a regex that finds nothing to escape is ~5x faster, and nearly every name has nothing.
_MEASUREMENT_SPECIAL = re.compile(r"[, \t\n\r]").search
_KEY_SPECIAL = re.compile(r"[,= \t\n\r]").search

# Escaped keys and tag values: a few dozen names and the site's codes (banks, sensors, categories)
# recur in every message. Bounded, so arbitrary input cannot grow it for ever; names past the
# bound are escaped on every call instead.
_escaped: dict[str, str] = {}
_ESCAPED_MAX = 4096


def _escape_key(text: str) -> str:
    """A tag key, tag value or field key, escaped (comma, equals sign, space, tab, CR, LF)."""
    escaped = _escaped.get(text)
    if escaped is None:
        escaped = text if _KEY_SPECIAL(text) is None else text.translate(_KEY_ESCAPES)
        if len(_escaped) < _ESCAPED_MAX:
            _escaped[text] = escaped
    return escaped


def line(
    measurement: str,
    tags: Mapping[str, str | None],
    fields: Mapping[str, FieldValue | None],
    time_ns: int | None = None,
) -> str:
    """One line of line protocol, byte-identical to influxdb-client's ``Point.to_line_protocol``.

    Tags and fields are written sorted by key (as Point does; InfluxDB parses sorted tags
    fastest). None values are left out, as are NaN and infinite floats, and tags whose key or
    value is empty. Integers get the ``i`` suffix; floats are written as ``str`` gives them,
    without a trailing ``.0`` (``1.0`` -> ``1``); bools as ``true``/``false``; subclasses (StrEnum,
    IntEnum) through ``str()``, as Point does. A point without any field cannot be written: the
    result is then ``""`` (as from Point). ``time_ns`` is written as given (the writers send
    ``precision=ns``). A measurement starting with ``#`` raises ValueError: InfluxDB would read
    the line as a comment and drop it silently (Point only warns).

    Called once per message, so it is written for speed: only the keys are sorted (cheaper than
    sorting (key, value) pairs), field types are tested inline and escaped names come from a cache.
    """
    if measurement.startswith("#"):
        raise ValueError(f"measurement {measurement!r} starts with '#' (a line-protocol comment)")
    head = (
        measurement
        if _MEASUREMENT_SPECIAL(measurement) is None
        else measurement.translate(_MEASUREMENT_ESCAPES)
    )
    escaped = _escaped
    for key in sorted(tags):
        tag = tags[key]
        if not tag or not key:  # None or empty: Point leaves the tag out
            continue
        text = escaped.get(tag) or _escape_key(tag)
        if text.endswith("\\"):
            # A trailing backslash would escape the separator after it; Point adds a space.
            text += " "
        head += f",{escaped.get(key) or _escape_key(key)}={text}"
    body: list[str] = []
    for key in sorted(fields):
        value = fields[key]
        if value is None:
            continue
        name = escaped.get(key) or _escape_key(key)
        if isinstance(value, str):
            if type(value) is not str:
                value = str(value)
            if "\\" in value:
                value = value.replace("\\", "\\\\")
            if '"' in value:
                value = value.replace('"', '\\"')
            body.append(f'{name}="{value}"')
        elif isinstance(value, bool):  # before int: a bool is an int
            body.append(f"{name}=true" if value else f"{name}=false")
        elif isinstance(value, int):
            body.append(f"{name}={value!s}i")
        elif isinstance(value, float):
            if not math.isfinite(value):  # line protocol has no NaN or infinity
                continue
            number = str(value)
            body.append(f"{name}={number[:-2] if number.endswith('.0') else number}")
        else:
            raise TypeError(f"field {key!r}: {type(value).__name__} is not a line-protocol value")
    if not body:
        return ""
    if time_ns is None:
        return f"{head} {','.join(body)}"
    return f"{head} {','.join(body)} {time_ns}"


def point_time_ns(at: datetime, seq: int) -> int:
    ms = int(at.timestamp() * 1000)
    return ms * 1_000_000 + seq % 1_000_000


def event_seq(event_id: str) -> int:
    """What keeps a deposit's point apart from others in its millisecond (the sub-millisecond
    digits): a CRC of the event id, or, for an id from before installs (``gw-01-15``), its
    sequence number, as those points were stamped. From the id alone, so the ledger can always
    say where a deposit's point is (``wastebank influx rebuild-deposits``)."""
    if _LEGACY_ID(event_id):
        return int(event_id[event_id.rindex("-") + 1 :])
    return zlib.crc32(event_id.encode())


_LEGACY_ID = re.compile(r"^[a-z0-9][a-z0-9-]*-[0-9]{1,15}$").match


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def deposit_line(
    *,
    event_id: str,
    bank: str,
    kecamatan: str,
    category: str,
    net_g: int,
    amount_idr: int,
    gateway: str,
    measured_at: datetime,
    clock_ahead_s: int | None = None,
) -> str:
    """A deposit's point, from what the ledger applied (never from an incoming payload): a
    redelivery writes the same point again, a conflicting message none."""
    return line(
        DEPOSIT,
        {"bank": bank, "kecamatan": kecamatan, "category": category, "source": "scale"},
        {
            "net_g": net_g,
            "amount_idr": amount_idr,
            "event_id": event_id,
            "gateway": gateway,
            "clock_ahead_s": clock_ahead_s,
        },
        point_time_ns(measured_at, event_seq(event_id)),
    )


def fill_line(reading: FillReading, *, clock_ahead_s: int | None = None) -> str:
    """The reading's point: what :func:`line` gives for it, formatted directly.

    One per fill reading, the bulk of the ingester's traffic, so it skips the general encoder:
    the tags are validated codes and ``reading_id``, ``source`` and ``level_status`` validated
    patterns (nothing to escape), every field's type is known, and the fields are written in
    sorted order by hand. ``tests/test_influx.py`` checks it against :func:`line` for random
    readings.
    """
    r = reading
    parts = []
    if r.battery_pct is not None:
        parts.append(f"battery_pct={r.battery_pct}i")
    if clock_ahead_s is not None:
        parts.append(f"clock_ahead_s={clock_ahead_s}i")
    parts.append(f"distance_mm={r.distance_mm}i")
    parts.append(f"filling_level={_float_text(float(r.fillingLevel))}")
    if r.level_status is not None:
        parts.append(f'level_status="{r.level_status}"')
    if r.pings is not None:
        parts.append(f"pings={r.pings}i")
    if r.raw is not None:
        parts.append(f'raw="{_string_field(r.raw)}"')
    parts.append(f'reading_id="{r.reading_id}"')
    if r.rssi_dbm is not None:
        parts.append(f"rssi_dbm={r.rssi_dbm}i")
    if r.snr_db is not None:
        parts.append(f"snr_db={_float_text(float(r.snr_db))}")
    if r.source is not None:
        parts.append(f'source="{r.source}"')
    if r.temperature_c is not None:
        parts.append(f"temperature_c={_float_text(float(r.temperature_c))}")
    if r.tilt is not None:
        parts.append("tilt=true" if r.tilt else "tilt=false")
    time_ns = point_time_ns(r.measured_at, r.seq)
    return f"{FILL},sensor={r.sensor_id},tps={r.tps_code} {','.join(parts)} {time_ns}"


def _float_text(value: float) -> str:
    """A float as line protocol (and Point) writes it: ``str`` without a trailing ``.0``."""
    text = str(value)
    return text[:-2] if text.endswith(".0") else text


def _string_field(value: str) -> str:
    """A string field value's escapes: backslash, then double quote."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if '"' in value:
        value = value.replace('"', '\\"')
    return value


def health_lines(h: GatewayHealth) -> list[str]:
    """One point for the gateway and one per scale, at the report's time (ms precision)."""
    at = point_time_ns(h.at, 0)
    lines = [
        line(
            GATEWAY_HEALTH,
            {"bank": h.bank_code, "gateway": h.gateway_id},
            {
                "uptime_s": h.uptime_s,
                "outbox_depth": h.outbox_depth,
                "outbox_dropped": h.outbox_dropped,
                "outbox_refused": h.outbox_refused,
                "mqtt_reconnects": h.mqtt_reconnects,
                "deposits_stored": h.deposits_stored,
                "outbox_oldest_age_s": h.outbox_oldest_age_s,
            },
            at,
        )
    ]
    for sc in h.scales:
        lines.append(
            line(
                SCALE_HEALTH,
                {"bank": h.bank_code, "gateway": h.gateway_id, "scale": sc.scale_id},
                {
                    "protocol": sc.protocol,
                    "connected": sc.connected,
                    "frames_parsed": sc.frames_parsed,
                    "frames_rejected": sc.frames_rejected,
                    "reconnects": sc.reconnects,
                    "zero_drift_g": sc.zero_drift_g,
                },
                at,
            )
        )
    return lines


def alert_line(a: GatewayAlert) -> str:
    return line(
        ALERT,
        {"bank": a.bank_code, "gateway": a.gateway_id, "code": a.code},
        {
            "state": a.state,
            "subject": a.subject,
            "message": a.message,
            "alert_id": a.alert_id,
            "value": _optional_float(a.value),
            "threshold": _optional_float(a.threshold),
        },
        point_time_ns(a.at, a.seq),
    )


# ---- errors -------------------------------------------------------------------------------------


class InfluxError(Exception):
    """A failed InfluxDB request, classified for the caller.

    * ``retryable``: keep the batch and try again later (no response, timeout, 5xx, 408, 429, and
      refusals that are about the server's configuration rather than the batch: 401, 403 and 404
      database/bucket not found). ``retry_after_s`` is the server's ``Retry-After`` when it sent
      one (429/503), else None.
    * ``too_large``: the body exceeded the server's limit (413) or ``max_body_bytes``; split the
      batch. A single line that is too large cannot be split: dead-letter it.
    * otherwise permanent: the server refused the batch's content (400 parse error or
      ``partial write``, 422, other 4xx): dead-letter it, never retry. On 1.x a ``partial`` write
      stored every other point of the batch (``dropped`` were refused), so re-writing the batch
      after a fix is harmless.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        retryable: bool,
        too_large: bool = False,
        retry_after_s: float | None = None,
        partial: bool = False,
        dropped: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.too_large = too_large
        self.retry_after_s = retry_after_s
        self.partial = partial
        self.dropped = dropped

    @property
    def permanent(self) -> bool:
        return not self.retryable and not self.too_large

    @property
    def kind(self) -> Literal["retryable", "too_large", "permanent"]:
        if self.retryable:
            return "retryable"
        return "too_large" if self.too_large else "permanent"

    @property
    def beyond_retention(self) -> bool:
        """1.x refused points older than the retention policy (``points beyond retention``)."""
        return "beyond retention" in str(self)


# Refusals that say nothing about the batch: the same batch succeeds once the server is fixed.
_RETRYABLE_4XX = {401: "unauthorised", 403: "forbidden", 404: "not found", 408: "timeout"}
_DROPPED = re.compile(r"dropped=(\d+)")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        at = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - (now or datetime.now(UTC))).total_seconds())


def _server_message(body: bytes | str) -> str:
    """The error text of a response body: 1.x/3.x ``{"error": ...}``, 2.x ``{"message": ...}``."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(data, dict):
        for key in ("error", "message"):
            if isinstance(data.get(key), str):
                return str(data[key])[:500]
    return text.strip()[:500]


def classify(
    status: int,
    body: bytes | str,
    retry_after: str | None = None,
    *,
    what: str = "write",
    who: str | None = None,
) -> InfluxError:
    """The InfluxError for a non-success HTTP answer (see InfluxError for the classes); a
    refused login (401, 403) says ``who`` asked (:func:`login_name`)."""
    msg = _server_message(body)
    text = f"{what} answered {status}: {msg}" if msg else f"{what} answered {status}"
    wait = parse_retry_after(retry_after)
    if status == 413:
        return InfluxError(text, status=status, retryable=False, too_large=True)
    if status >= 500 or status == 429:
        return InfluxError(text, status=status, retryable=True, retry_after_s=wait)
    if status in _RETRYABLE_4XX:
        as_who = f" as {who}" if who and status in (401, 403) else ""
        return InfluxError(
            f"{text} ({_RETRYABLE_4XX[status]}{as_who}: check the InfluxDB settings; retrying)",
            status=status,
            retryable=True,
            retry_after_s=wait,
        )
    dropped = _DROPPED.search(msg)
    return InfluxError(
        text,
        status=status,
        retryable=False,
        partial="partial write" in msg,
        dropped=int(dropped.group(1)) if dropped else None,
    )


# ---- writers ------------------------------------------------------------------------------------

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
    InfluxDB is on loopback, where compressing costs more CPU than the bytes save (measured on the
    1.6 here: 5,000-line batches of ~766 KB, ~180,000 points/s plain, ~130,000-160,000 gzipped at
    level 1). Across a network the ~8x smaller body wins. ``false`` never compresses.
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
        # Level 1: ~8x smaller line protocol at ~400 MB/s; level 9 gains ~10 % at 3x the CPU.
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


_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


def api_for_version(version: str | None, *, token: bool = False) -> ApiVersion:
    """The write API for a server's ``X-Influxdb-Version``.

    1.x (1.0-1.7 have no v2 API; 1.8+ has both, v1 is simpler) -> v1. 2.x (``v2.7.10``) -> v2.
    3.x -> v2 (its v2-compatible write endpoint, bucket = database). Unknown or missing (InfluxDB
    Cloud sends none) -> v2 when a token is configured, else v1.
    """
    m = _VERSION.match((version or "").strip())
    if m is None:
        return "v2" if token else "v1"
    return "v1" if int(m.group(1)) <= 1 else "v2"


async def detect_api(settings: InfluxSettings) -> tuple[ApiVersion, str]:
    """``settings.api`` resolved: (api, server version); raises InfluxError when unreachable."""
    influx = Influx(settings)
    try:
        version = await influx.ping()
    finally:
        await influx.aclose()
    if settings.api != "auto":
        return settings.api, version
    return api_for_version(version, token=settings.token is not None), version


async def make_writer(settings: InfluxSettings) -> InfluxWriter:
    """The writer ``settings`` ask for (``api = "auto"``: detected from ``/ping``).

    Raises InfluxError (retryable) when InfluxDB does not answer the ping.
    """
    if settings.api == "v1":
        return V1Writer(settings)
    if settings.api == "v2":
        return V2Writer(settings)
    api, version = await detect_api(settings)
    log.info("InfluxDB %s: menulis lewat / writing through the %s API", version, api)
    return V1Writer(settings) if api == "v1" else V2Writer(settings)


# ---- queries and administration -----------------------------------------------------------------


def login_name(settings: InfluxSettings) -> str:
    """Who these settings log in as, for messages (never the secret itself)."""
    if settings.token is not None:
        return "a token"
    if settings.username and settings.password is not None:
        return f"user {settings.username!r}"
    if settings.username:
        return f"user {settings.username!r} without a password"
    return "anonymous (no username, password or token set)"


def auth_headers(settings: InfluxSettings) -> dict[str, str]:
    """A token (2.x/3.x) or a 1.x user's password, as a header (1.x also reads ``u``/``p``
    query parameters, but a URL is what clients, proxies and servers log)."""
    if settings.token is not None:
        return {"Authorization": f"Token {settings.token.get_secret_value()}"}
    if settings.username and settings.password is not None:
        pair = f"{settings.username}:{settings.password.get_secret_value()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return {}


@dataclass(frozen=True)
class Series:
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, v, strict=True)) for v in self.values]


class Influx:
    """An async v1-API client: ``/ping``, ``/write`` (line protocol) and ``/query`` (InfluxQL).

    ``/query`` is served by 1.x, by 2.x (v1 compatibility, through DBRP mappings) and by 3.x, so
    the API's queries work on all three; ``write`` is the v1 writer (see ``make_writer`` for v2).
    """

    def __init__(self, settings: InfluxSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._client = client or httpx.AsyncClient(
            base_url=settings.url, timeout=settings.timeout_s
        )
        self._writer = V1Writer(settings, client=self._client)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def ping(self) -> str:
        """The server's version (``X-Influxdb-Version``); raises InfluxError when unreachable."""
        try:
            resp = await self._client.get("/ping", headers=auth_headers(self.settings))
        except httpx.HTTPError as exc:
            raise InfluxError(
                f"InfluxDB unreachable: {exc!r}", status=None, retryable=True
            ) from exc
        if resp.status_code not in (200, 204):  # 1.x/2.x: 204; 3.x: 200 with a JSON body
            raise InfluxError(
                f"/ping answered {resp.status_code}", status=resp.status_code, retryable=True
            )
        return str(resp.headers.get("X-Influxdb-Version", "unknown"))

    async def ensure_database(self) -> None:
        await self.execute(f"CREATE DATABASE {ident(self.settings.database)}")

    async def drop_database(self) -> None:
        await self.execute(f"DROP DATABASE {ident(self.settings.database)}")

    async def execute(self, q: str, *, secret: bool = False) -> list[dict[str, Any]]:
        """POST one InfluxQL statement (DDL, ``SELECT ... INTO``); raise InfluxError on an error.

        A statement's own error (e.g. ``retention policy already exists``) comes back with HTTP
        200 inside the result; it is raised with ``status=200`` and ``retryable=False``.
        ``secret``: the statement holds a password (1.x user management): sent in the form body
        rather than the URL, and never quoted in an error.
        """
        params = {"q": q, "db": self.settings.database}
        what = "InfluxQL statement" if secret else repr(q)
        try:
            resp = await self._client.post(
                "/query",
                params=None if secret else params,
                data=params if secret else None,
                headers=auth_headers(self.settings),
            )
        except httpx.HTTPError as exc:
            raise InfluxError(
                f"InfluxDB unreachable: {exc!r}", status=None, retryable=True
            ) from exc
        if resp.status_code >= 300:
            raise classify(resp.status_code, resp.content, what=what, who=login_name(self.settings))
        results: list[dict[str, Any]] = resp.json().get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxError(f"{what} failed: {result['error']}", status=200, retryable=False)
        return results

    async def write(self, lines: list[str]) -> None:
        """Write line protocol (ns precision) through ``/write``; see V1Writer."""
        await self._writer.write(lines)

    async def query(self, q: str) -> list[Series]:
        """Run one InfluxQL statement; timestamps come back as epoch milliseconds."""
        params = {"db": self.settings.database, "q": q, "epoch": "ms"}
        try:
            resp = await self._client.get(
                "/query", params=params, headers=auth_headers(self.settings)
            )
        except httpx.HTTPError as exc:
            raise InfluxError(f"query failed: {exc!r}", status=None, retryable=True) from exc
        if resp.status_code != 200:
            who = f" as {login_name(self.settings)}" if resp.status_code in (401, 403) else ""
            raise InfluxError(
                f"query answered {resp.status_code}{who}: {resp.text[:300]}",
                status=resp.status_code,
                retryable=resp.status_code >= 500,
            )
        data = resp.json()
        out: list[Series] = []
        for result in data.get("results", []):
            if "error" in result:
                if "database not found" in result["error"]:
                    return []
                raise InfluxError(f"query error: {result['error']}", status=200, retryable=False)
            for s in result.get("series", []):
                out.append(
                    Series(
                        name=s.get("name", ""),
                        tags=s.get("tags") or {},
                        columns=s["columns"],
                        values=s.get("values") or [],
                    )
                )
        return out


def ident(name: str) -> str:
    """An InfluxQL identifier, double-quoted."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def influxql_time(at: datetime) -> str:
    """An RFC3339 UTC literal for an InfluxQL WHERE clause."""
    return "'" + at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "'"


# ---- retention and downsampling (1.x) -----------------------------------------------------------

RP_RAW = "raw"
RP_HOURLY = "hourly"


@dataclass(frozen=True)
class Downsample:
    """One hourly roll-up: a 1.x continuous query, and the same SELECT INTO for backfills."""

    name: str  # the CQ's name and the target measurement (in the "hourly" RP)
    source: str  # measurement in the "raw" RP
    select: str
    group_by: str  # tags kept as tags

    def select_into(self, database: str, where: str = "") -> str:
        # Identifiers go through ident(); select, group_by and where are this module's own.
        db = ident(database)
        target = f"{db}.{ident(RP_HOURLY)}.{ident(self.name)}"
        source = f"{db}.{ident(RP_RAW)}.{ident(self.source)}"
        where_clause = f" WHERE {where}" if where else ""
        group = f"GROUP BY time(1h), {self.group_by}"
        return f"SELECT {self.select} INTO {target} FROM {source}{where_clause} {group}"  # noqa: S608

    def create_cq(self, database: str, lookback: str) -> str:
        return (
            f"CREATE CONTINUOUS QUERY {ident(self.name)} ON {ident(database)} "
            f"RESAMPLE EVERY 1h FOR {lookback} BEGIN {self.select_into(database)} END"
        )


DOWNSAMPLES = (
    Downsample(
        name="deposit_1h",
        source=DEPOSIT,
        select=(
            'sum("net_g") AS "net_g", count("net_g") AS "deposits", '
            'sum("amount_idr") AS "amount_idr"'
        ),
        group_by="*",  # bank, kecamatan, category, source
    ),
    Downsample(
        name="fill_level_1h",
        source=FILL,
        select=(
            'mean("filling_level") AS "filling_level_mean", '
            'max("filling_level") AS "filling_level_max", count("filling_level") AS "readings"'
        ),
        group_by='"tps", "sensor"',
    ),
)


async def ensure_schema(influx: Influx, settings: InfluxSettings | None = None) -> bool:
    """Create the database, its retention policies and hourly continuous queries (1.x).

    * RP ``raw`` (``retention_raw``, DEFAULT: writes without ``rp`` land there) and ``hourly``
      (``retention_hourly``); an existing policy is altered to the configured duration.
    * CQs ``deposit_1h`` and ``fill_level_1h`` into ``"hourly"``, each recomputing the last
      ``downsample_lookback`` every hour (late store-and-forward data is counted); a CQ whose
      definition changed is dropped and created again.

    Idempotent: running it twice, or from several ingesters, is harmless. Returns False (and
    changes nothing) on 2.x/3.x, where retention and downsampling are set up on the server (see
    docs/protocol.md). Raises InfluxError.

    With auth on, creating a database and its retention policies takes a 1.x admin (`services
    up` or `wastebank influx setup` run them as one). A user who may not (the ingester's own)
    only checks that they are there (:func:`check_schema`): InfluxSchemaError names what is
    missing.
    """
    s = settings or influx.settings
    version = await influx.ping()
    if api_for_version(version) != "v1" or not _VERSION.match(version.strip()):
        log.info(
            "InfluxDB %s: retensi & downsampling diatur di server / retention and downsampling "
            "are configured on the server (docs/protocol.md)",
            version,
        )
        return False
    db = ident(s.database)
    try:
        await influx.execute(f"CREATE DATABASE {db}")
    except InfluxError as exc:
        if exc.status != 403:  # 403: a user without admin rights; 401 is a refused login
            raise
        await check_schema(influx, s)
        return True
    for rp, duration, default in (
        (RP_RAW, s.retention_raw, " DEFAULT"),
        (RP_HOURLY, s.retention_hourly, ""),
    ):
        try:
            await influx.execute(
                f"CREATE RETENTION POLICY {ident(rp)} ON {db} DURATION {duration} "
                f"REPLICATION 1{default}"
            )
        except InfluxError as exc:  # exists with other attributes: bring it to the settings
            if "already exists" not in str(exc):
                raise
            await influx.execute(
                f"ALTER RETENTION POLICY {ident(rp)} ON {db} DURATION {duration}{default}"
            )
    for ds in DOWNSAMPLES:
        statement = ds.create_cq(s.database, s.downsample_lookback)
        try:
            await influx.execute(statement)  # identical definition: accepted, no change
        except InfluxError as exc:  # same name, other definition: replace it
            if "already exists" not in str(exc):
                raise
            await influx.execute(f"DROP CONTINUOUS QUERY {ident(ds.name)} ON {db}")
            await influx.execute(statement)
    return True


class InfluxSchemaError(InfluxError):
    """A 1.x database lacks parts of the schema and this login may not create them."""

    def __init__(self, database: str, missing: Sequence[str], who: str) -> None:
        super().__init__(
            f"skema InfluxDB belum lengkap / InfluxDB schema incomplete in database "
            f"{database!r}: {'; '.join(missing)}. {who} may not create it (1.x admin only): run "
            "`wastebank influx setup --database NAME` (this checkout's InfluxDB; `services up` "
            "does it for the city's), or as another server's admin the statements in "
            'docs/operations.md, "InfluxDB users"',
            status=403,
            retryable=False,
        )
        self.database = database
        self.missing = list(missing)


def influxql_duration(spec: str) -> str:
    """A retention setting (``90d``, ``2w``, ``12h``, ``INF``) as 1.x shows a policy's duration
    (``2160h0m0s``; ``0s`` for INF)."""
    if spec == "INF":
        return "0s"
    hours = int(spec[:-1]) * {"h": 1, "d": 24, "w": 168}[spec[-1]]
    return f"{hours}h0m0s"


async def check_schema(influx: Influx, settings: InfluxSettings | None = None) -> None:
    """That the database, its retention policies and continuous queries exist (1.x), as a user
    who may read it but not create them. A policy whose duration differs from the settings is
    logged, not refused (an admin may have chosen it); anything missing raises
    InfluxSchemaError listing every missing part."""
    s = settings or influx.settings
    who = login_name(influx.settings)
    databases = {row[0] for series in await influx.query("SHOW DATABASES") for row in series.values}
    if s.database not in databases:
        # 1.x lists only the databases a user may read: missing, or no grant on it.
        raise InfluxSchemaError(
            s.database,
            [f"the database itself (or a grant on it for {who})"],
            who,
        )
    missing: list[str] = []
    policies = {
        row["name"]: row
        for series in await influx.query(f"SHOW RETENTION POLICIES ON {ident(s.database)}")
        for row in series.rows()
    }
    for rp, spec, default in (
        (RP_RAW, s.retention_raw, True),
        (RP_HOURLY, s.retention_hourly, False),
    ):
        found = policies.get(rp)
        if found is None:
            missing.append(f"retention policy {rp!r}" + (" (DEFAULT)" if default else ""))
            continue
        if default and not found.get("default"):
            missing.append(f"retention policy {rp!r} as the DEFAULT one")
        if found.get("duration") != influxql_duration(spec):
            log.warning(
                "InfluxDB %s: kebijakan retensi / retention policy %r is %s, settings say %s",
                s.database,
                rp,
                found.get("duration"),
                spec,
            )
    queries = {
        row[0]
        for series in await influx.query("SHOW CONTINUOUS QUERIES")
        if series.name == s.database
        for row in series.values
    }
    missing += [f"continuous query {ds.name!r}" for ds in DOWNSAMPLES if ds.name not in queries]
    if missing:
        raise InfluxSchemaError(s.database, missing, who)


# ---- users and grants (1.x) ---------------------------------------------------------------------


def influxql_string(text: str) -> str:
    """An InfluxQL string literal (a password)."""
    if "\n" in text or "\r" in text:
        raise ValueError("a line break cannot be part of an InfluxDB password")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def can_log_in(settings: InfluxSettings, client: httpx.AsyncClient | None = None) -> bool:
    """Whether the server accepts these settings' login (``SHOW DATABASES``: any user may run
    it); False on 401, InfluxError on anything else but success."""
    influx = Influx(settings, client)
    try:
        await influx.query("SHOW DATABASES")
    except InfluxError as exc:
        if exc.status == 401:
            return False
        raise
    finally:
        if client is None:
            await influx.aclose()
    return True


NO_ADMIN_YET = "create admin user first"  # 1.x, auth on, no user: every query but one refused


async def bootstrap_admin(admin: InfluxSettings) -> bool:
    """Make ``admin`` (username, password) the server's first admin when it has no user yet
    (1.x with auth on lets an anonymous client do only that). True when created; False when
    it already logs in. Raises InfluxError when the server has users and refuses this one."""
    if admin.username is None or admin.password is None:
        raise ValueError("bootstrap_admin needs a username and a password")
    try:
        if await can_log_in(admin):
            return False
    except InfluxError as exc:
        if NO_ADMIN_YET not in str(exc):
            raise
    anonymous = Influx(admin.model_copy(update={"username": None, "password": None}))
    try:
        await anonymous.execute(
            f"CREATE USER {ident(admin.username)} WITH PASSWORD "
            f"{influxql_string(admin.password.get_secret_value())} WITH ALL PRIVILEGES",
            secret=True,
        )
    except InfluxError as exc:
        if exc.status != 401:
            raise
        raise InfluxError(
            f"InfluxDB {admin.url} sudah punya pengguna dan menolak / already has users and "
            f"refuses {admin.username!r} with the password given (docs/operations.md, "
            '"InfluxDB users": a lost admin password)',
            status=401,
            retryable=False,
        ) from None
    finally:
        await anonymous.aclose()
    return True


async def ensure_user(
    admin: Influx, username: str, password: str
) -> Literal["created", "reset", "kept"]:
    """``username`` exists (not an admin) and logs in with ``password``: created, its password
    set again (a rotated secret file), or kept as it was."""
    users = {row[0] for series in await admin.query("SHOW USERS") for row in series.values}
    literal = influxql_string(password)
    if username not in users:
        try:
            await admin.execute(
                f"CREATE USER {ident(username)} WITH PASSWORD {literal}", secret=True
            )
            return "created"
        except InfluxError as exc:
            if "user already exists" not in str(exc):  # another `up` made it meanwhile
                raise
    user = admin.settings.model_copy(update={"username": username, "password": SecretStr(password)})
    if await can_log_in(user):
        return "kept"
    await admin.execute(f"SET PASSWORD FOR {ident(username)} = {literal}", secret=True)
    return "reset"


async def grant(admin: Influx, database: str, grants: Mapping[str, str]) -> None:
    """``GRANT`` each user its privilege (ALL, READ, WRITE) on ``database`` (idempotent)."""
    for username, privilege in grants.items():
        await admin.execute(f"GRANT {privilege} ON {ident(database)} TO {ident(username)}")


async def downsample(
    influx: Influx, start: datetime, end: datetime, settings: InfluxSettings | None = None
) -> None:
    """Run every roll-up's SELECT INTO for ``[start, end)`` (whole hours): a backfill for data
    that arrived later than ``downsample_lookback``, or to fill ``"hourly"`` from older data."""
    s = settings or influx.settings
    where = f"time >= {influxql_time(start)} AND time < {influxql_time(end)}"
    for ds in DOWNSAMPLES:
        await influx.execute(ds.select_into(s.database, where))
