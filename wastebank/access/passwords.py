"""Secrets: argon2id hashing of passwords and PINs, and which secrets are refused."""

from __future__ import annotations

import functools
import re
import secrets
from typing import TYPE_CHECKING

from wastebank.access.errors import AccessError
from wastebank.access.models import Role
from wastebank.access.settings import AuthSettings

if TYPE_CHECKING:  # argon2 is imported when used: commands that hash nothing never load it
    from argon2 import PasswordHasher


PIN = re.compile(r"^[0-9]{6}$")
MIN_PASSWORD = 10


def password_hasher(settings: AuthSettings) -> PasswordHasher:
    """argon2id with the settings' cost (tests lower it; production keeps argon2-cffi's own)."""
    from argon2 import PasswordHasher

    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )


def _weak_pin(pin: str) -> bool:
    digits = [int(c) for c in pin]
    steps = {b - a for a, b in zip(digits, digits[1:], strict=False)}
    return len(set(pin)) == 1 or steps in ({1}, {-1})


def check_secret(role: str, secret: str, username: str = "") -> None:
    """Refuse a PIN that is not 6 digits (or is 000000, 123456, ...), a password shorter than
    ``MIN_PASSWORD`` or equal to the username."""
    if role == Role.CITIZEN:
        if not PIN.fullmatch(secret):
            raise AccessError("PIN harus 6 angka / a PIN is 6 digits")
        if _weak_pin(secret):
            raise AccessError("PIN terlalu mudah ditebak / the PIN is too easy to guess")
        return
    if len(secret) < MIN_PASSWORD:
        raise AccessError(
            f"kata sandi minimal {MIN_PASSWORD} karakter / a password has at least "
            f"{MIN_PASSWORD} characters"
        )
    if secret.lower() == username.lower():
        raise AccessError("kata sandi sama dengan nama pengguna / the password is the username")


def generate_pin() -> str:
    """A random 6-digit PIN that :func:`check_secret` accepts."""
    while True:
        pin = f"{secrets.randbelow(10**6):06d}"
        if not _weak_pin(pin):
            return pin


@functools.cache
def _dummy_hash(time_cost: int, memory_kib: int, parallelism: int) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost, memory_kib, parallelism=parallelism).hash(
        secrets.token_hex(16)
    )


def verify_secret(hasher: PasswordHasher, stored: str | None, secret: str) -> bool:
    """Whether ``secret`` matches ``stored``; with no stored hash, the same work on a dummy one,
    so that an unknown login takes as long as a wrong secret."""
    from argon2.exceptions import InvalidHashError, VerificationError

    target = stored or _dummy_hash(hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    try:
        return hasher.verify(target, secret) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
