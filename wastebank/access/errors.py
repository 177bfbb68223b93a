"""Refusals of the login system, each in the family (:mod:`wastebank.errors`) that says what the
caller does about it."""

from __future__ import annotations

from wastebank import errors


class AccessError(errors.Invalid):
    """A request about users that is refused; the message says why (Bahasa Indonesia first)."""


class LoginRefused(AccessError):
    """Wrong login or secret, or a disabled user (not told apart)."""

    status = 401
    title = "gagal masuk / login refused"


class TooManyAttempts(AccessError, errors.TooMany):
    status = errors.TooMany.status
    title = errors.TooMany.title

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"terlalu banyak percobaan, coba lagi dalam {retry_after_s} detik / too many failed "
            f"logins, try again in {retry_after_s} s"
        )
        self.retry_after_s = retry_after_s


class InvalidToken(AccessError):
    status = 401
    title = "token tidak sah atau kedaluwarsa / invalid or expired token"
