"""Tokens, sessions, login limits and hashing: the ``[auth]`` settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from msgspec import Meta, field

from wastebank.config import (
    PLACEHOLDER_SECRETS,
    RUN_DIR,
    FieldError,
    SecretStr,
    Settings,
    check_key,
)


class AuthSettings(Settings, kw_only=True):
    """Tokens, sessions, login limits and hashing (``WASTEBANK_AUTH__*``)."""

    secret_key: Annotated[
        SecretStr | None,
        Meta(
            description="key that signs tokens and session cookies (WASTEBANK_AUTH__SECRET_KEY), "
            "at "
            "least 32 random characters; the same in every API process of a city. Unset: one is "
            "generated into secret_file on first start."
        ),
    ] = None
    secret_file: Annotated[
        Path,
        Meta(description="where the generated key is kept (mode 0600) when secret_key is unset"),
    ] = field(default_factory=lambda: RUN_DIR / "api-secret.key")
    token_ttl: timedelta = timedelta(hours=1)
    session_ttl: Annotated[timedelta, Meta(description="page session cookies")] = timedelta(
        hours=12
    )
    cookie_secure: Annotated[
        bool | Literal["auto"],
        Meta(
            description="Secure cookies: auto = when the request came over https (behind a proxy: "
            "its X-Forwarded-Proto, from a proxy in WASTEBANK_HTTP__TRUSTED_PROXIES)"
        ),
    ] = "auto"
    login_max_failures: Annotated[int, Meta(ge=1, description="per account, per window")] = 5
    login_max_failures_per_ip: Annotated[int, Meta(ge=1, description="per client address")] = 20
    login_window: timedelta = timedelta(minutes=15)
    argon2_time_cost: Annotated[int, Meta(ge=1)] = 3
    argon2_memory_kib: Annotated[int, Meta(ge=8)] = 65536
    argon2_parallelism: Annotated[int, Meta(ge=1)] = 4

    def __post_init__(self) -> None:
        check_key("secret_key", self.secret_key)
        if self.secret_key is not None:
            raw = self.secret_key.get_secret_value()
            if raw.strip().lower() in PLACEHOLDER_SECRETS or len(set(raw)) < 8:
                raise FieldError("secret_key", "a placeholder, not a random key")
        for name in ("token_ttl", "session_ttl", "login_window"):
            if getattr(self, name) <= timedelta(0):
                raise FieldError(name, "harus lebih dari 0 / must be more than 0")
