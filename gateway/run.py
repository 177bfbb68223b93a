"""``wastebank gateway``: the gateway process, put together (:func:`run`).

The app (:class:`gateway.app.Gateway`) and, when ``http_port`` is set, the local endpoint
(:mod:`gateway.http`) in one TaskGroup; only here do the two meet, so neither imports the other.
"""

from __future__ import annotations

from gateway.app import Gateway
from gateway.reconnect import quiet
from gateway.settings import GatewaySettings


async def run(settings: GatewaySettings) -> None:
    """Until SIGTERM (a clean return) or a task fails."""
    quiet()
    gateway = Gateway(settings)
    beside = {"http": lambda: _serve_http(gateway)} if settings.http_port else {}
    await gateway.run(beside)


async def _serve_http(gateway: Gateway) -> None:
    # Imported here: FastAPI and uvicorn are heavy on a Pi (docs/scaling.md), and a site may
    # run without the endpoint.
    from gateway.http.local_api import serve

    await serve(gateway)
