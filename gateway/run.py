"""``wastebank gateway``: the gateway process, put together (:func:`run`).

The app (:class:`gateway.app.Gateway`) and, when ``http_port`` is set, the local endpoint
(:mod:`gateway.http`) in one TaskGroup; only here do the two meet, so neither imports the other.
"""

from __future__ import annotations

import sys
from typing import Final

from gateway.app import Gateway
from gateway.reconnect import quiet
from gateway.settings import GatewaySettings


async def run(settings: GatewaySettings) -> None:
    """Until SIGTERM (a clean return) or a task fails."""
    quiet()
    keep_out_unused()
    gateway = Gateway(settings)
    beside = {"http": lambda: _serve_http(gateway)} if settings.http_port else {}
    await gateway.run(beside)


async def _serve_http(gateway: Gateway) -> None:
    # Imported here: Starlette and uvicorn are heavy on a Pi (docs/scaling.md), and a site may
    # run without the endpoint.
    from gateway.http.local_api import serve

    await serve(gateway)


UNUSED: Final = {
    "cryptography": "PyJWT imports it, whenever it is installed, for the RSA and EC algorithms; "
    "the gateway signs its sessions with HS256 (the standard library's hmac) and uses the "
    "standard library's ssl for TLS",
    "httpx._main": "httpx imports its command line (click, rich, pygments) whenever they are "
    "installed (Typer brings them); the gateway only calls the central API",
}
"""What this process keeps out of memory, and why nothing here needs it (docs/scaling.md: 8 MB
and 2 MB resident on a Pi)."""


def keep_out_unused() -> None:
    """Keep :data:`UNUSED` out of this process. A ``None`` in ``sys.modules`` makes an import
    raise ModuleNotFoundError, which PyJWT and httpx take as "not installed". The process's own,
    so only here."""
    for name in UNUSED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
