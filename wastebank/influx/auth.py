"""Who a process logs in to InfluxDB as: the header it sends, and its name for messages."""

from __future__ import annotations

import base64

from wastebank.config import InfluxSettings


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
