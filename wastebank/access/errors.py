"""Refusals of the login system."""

from __future__ import annotations


class AccessError(Exception):
    """A request about users that is refused; the message says why (Bahasa Indonesia first)."""


class LoginRefused(AccessError):
    """Wrong login or secret, or a disabled user (not told apart)."""


class TooManyAttempts(AccessError):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"terlalu banyak percobaan, coba lagi dalam {retry_after_s} detik / too many failed "
            f"logins, try again in {retry_after_s} s"
        )
        self.retry_after_s = retry_after_s


class InvalidToken(AccessError):
    pass
