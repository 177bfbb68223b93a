"""InfluxDB's failures, classified for the caller: retry, split the batch, or give it up.

:class:`InfluxError` is an :class:`~wastebank.errors.Unavailable` (an API answer that needed
InfluxDB is a 503); its own ``retryable``, ``too_large`` and ``permanent`` say what a writer
does with the batch. :func:`classify` turns an HTTP answer into one.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from wastebank.errors import Unavailable


class InfluxError(Unavailable):
    """A failed InfluxDB request, classified for the caller.

    ``server_status`` is the HTTP status InfluxDB answered (None: no answer), given to the
    constructor as ``status``; the class's own ``status`` is the family's (503), what an API
    answer that needed InfluxDB carries.

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
        self.server_status = status
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


def retry_wait(exc: BaseException) -> bool | float:
    """stamina's ``on`` hook for InfluxDB calls: False (raise it) unless ``exc`` is a retryable
    InfluxError; then the server's ``Retry-After`` in seconds when it sent one, else True (the
    caller's backoff)."""
    if not isinstance(exc, InfluxError) or not exc.retryable:
        return False
    return exc.retry_after_s or True


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
