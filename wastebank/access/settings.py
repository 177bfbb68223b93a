"""Tokens, sessions, login limits and hashing: the ``[auth]`` settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from wastebank.config import RUN_DIR

PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "password", "dev", "test"})


class AuthSettings(BaseModel):
    """Tokens, sessions, login limits and hashing (``WASTEBANK_AUTH__*``)."""

    secret_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="key that signs tokens and session cookies (WASTEBANK_AUTH__SECRET_KEY), at "
        "least 32 random characters; the same in every API process of a city. Unset: one is "
        "generated into secret_file on first start.",
    )
    secret_file: Path = Field(
        default_factory=lambda: RUN_DIR / "api-secret.key",
        description="where the generated key is kept (mode 0600) when secret_key is unset",
    )
    token_ttl: timedelta = Field(default=timedelta(hours=1), gt=timedelta(0))
    session_ttl: timedelta = Field(
        default=timedelta(hours=12), gt=timedelta(0), description="page session cookies"
    )
    cookie_secure: bool | Literal["auto"] = Field(
        default="auto",
        description="Secure cookies: auto = when the request came over https (behind a proxy: "
        "its X-Forwarded-Proto, from a proxy in WASTEBANK_HTTP__TRUSTED_PROXIES)",
    )
    login_max_failures: int = Field(default=5, ge=1, description="per account, per window")
    login_max_failures_per_ip: int = Field(default=20, ge=1, description="per client address")
    login_window: timedelta = Field(default=timedelta(minutes=15), gt=timedelta(0))
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)

    @field_validator("secret_key")
    @classmethod
    def _not_a_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        if raw.strip().lower() in PLACEHOLDER_SECRETS or len(set(raw)) < 8:
            raise ValueError("a placeholder, not a random key")
        return value
