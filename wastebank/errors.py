"""One exception base for the whole project, in families a caller can catch by what went wrong.

The model is httpx's ``_exceptions.py``: one base, a handful of families named for what the caller
does about them, the concrete errors in the modules that raise them. A family carries the HTTP
status and the bilingual title an answer starts with, so the API maps every error to HTTP in one
handler (``api.deps.wastebank_error``) and the CLI maps every error to an exit code in one place
(``wastebank.cli``), with no table of classes to keep in step.

- :class:`Refused`: a request a rule refuses (not found, not allowed, conflicting, invalid). The
  caller changes the request. 4xx.
- :class:`BadInput`: bytes, a payload or a file that cannot be read (a scale frame, an MQTT
  payload, an upload). Counted and kept where an operator can inspect it, never coerced.
- :class:`SetupError`: configuration, schema or services an operator must fix before this works;
  the CLI exits 2 with the message, no traceback.
- :class:`Unavailable`: something we depend on is down or busy; trying again later may work. 503.

Families refine :class:`WastebankError` only; a concrete error may also derive from a builtin
(``ValueError``, ``LookupError``) where callers already catch that.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ALREADY_VOIDED",
    "BadInput",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "Refused",
    "SetupError",
    "TooMany",
    "Unavailable",
    "WastebankError",
]


class WastebankError(Exception):
    """Base of every error this project raises on purpose.

    ``status`` is the HTTP status an answer carries if the error reaches an API client; ``title``
    the bilingual words it starts with, before the error's own message.
    """

    status: ClassVar[int] = 500
    title: ClassVar[str] = "kesalahan sistem / internal error"


class Refused(WastebankError):
    """A request refused by a rule: the caller must change it (or its author, or wait)."""

    status = 400
    title = "permintaan ditolak / request refused"


class NotFound(Refused):
    status = 404
    title = "tidak ditemukan / not found"


class Forbidden(Refused):
    status = 403
    title = "tidak diizinkan / not allowed"


class Conflict(Refused):
    """The request is well formed but the state it meets does not allow it."""

    status = 409
    title = "bentrok dengan data yang ada / conflicts with existing data"


ALREADY_VOIDED = "sudah dibatalkan / already voided"
"""The title of the 409 a second void of a deposit gets (``wastebank.ledger.AlreadyVoided``): a
gateway resending a void whose answer it lost tells by it that the void is done, from any other
409 (the money withdrawn, the waste sold), which is a refusal it must show."""


class Invalid(Refused):
    status = 422
    title = "tidak sah / invalid"


class TooMany(Refused):
    status = 429
    title = "terlalu banyak percobaan / too many attempts"


class BadInput(WastebankError):
    """Bytes, a payload or a file that cannot be read as what it claims to be."""

    status = 422
    title = "masukan tidak terbaca / unreadable input"


class SetupError(WastebankError):
    """Configuration, schema or services an operator must fix first."""

    status = 500
    title = "perlu pengaturan / setup needed"


class Unavailable(WastebankError):
    """A dependency is down or busy; the same request may succeed later."""

    status = 503
    title = "layanan tidak tersedia / service unavailable"
