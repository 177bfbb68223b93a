"""``wastebank gateway``: the gateway process, put together (:func:`run`).

The app (:class:`gateway.app.Gateway`) and, when ``http_port`` is set, the local endpoint
(:mod:`gateway.http`) in one TaskGroup; only here do the two meet, so neither imports the other.
"""

from __future__ import annotations

import sys

from gateway.app import Gateway
from gateway.reconnect import quiet
from gateway.settings import GatewaySettings


async def run(settings: GatewaySettings) -> None:
    """Until SIGTERM (a clean return) or a task fails."""
    quiet()
    without_cryptography()
    gateway = Gateway(settings)
    beside = {"http": lambda: _serve_http(gateway)} if settings.http_port else {}
    await gateway.run(beside)


async def _serve_http(gateway: Gateway) -> None:
    # Imported here: FastAPI and uvicorn are heavy on a Pi (docs/scaling.md), and a site may
    # run without the endpoint.
    from gateway.http.local_api import serve

    await serve(gateway)


def without_cryptography() -> None:
    """Keep cryptography out of this process: 8 MB resident on a Pi (docs/scaling.md).

    PyJWT imports it, whenever it is installed, for the RSA and EC algorithms; the gateway signs
    its sessions with HS256 (the standard library's hmac) and uses the standard library's ssl for
    TLS, so nothing here needs it. A ``None`` in ``sys.modules`` makes its import raise
    ModuleNotFoundError, which PyJWT takes as "not installed". The process's own, so only here.
    """
    sys.modules.setdefault("cryptography", None)  # type: ignore[arg-type]
