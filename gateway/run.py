"""``wastebank gateway``: the gateway process, put together (:func:`run`).

The app (:class:`gateway.app.Gateway`) and, when ``http_port`` is set, the local endpoint
(:mod:`gateway.http`) in one TaskGroup; only here do the two meet, so neither imports the other.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from pathlib import Path
from typing import Final

from gateway.app import Gateway
from gateway.outbox import OutboxDamaged, is_damage
from gateway.reconnect import quiet
from gateway.settings import GatewaySettings

OUTBOX_DAMAGED: Final = 3
"""The exit status when the outbox file is damaged: the unit file's RestartPreventExitStatus
(no restart every 2 s: a person must recover or replace the file, docs/deploy-pi.md §7a)."""

log = logging.getLogger("wastebank.gateway")


async def run(settings: GatewaySettings) -> None:
    """Until SIGTERM (a clean return) or a task fails; a damaged outbox file, at start or
    later, is a message and :data:`OUTBOX_DAMAGED` (SystemExit)."""
    quiet()
    keep_out_unused()
    try:
        gateway = Gateway(settings)
        beside = {"http": lambda: _serve_http(gateway)} if settings.http_port else {}
        await gateway.run(beside)
    except Exception as exc:
        damaged = _damage(exc, settings.outbox.path)
        if damaged is None:
            raise
        log.critical(
            "berkas outbox rusak, gateway berhenti (status keluar %(status)d, systemd tidak "
            "memulainya lagi): %(file)s: %(why)s. Jangan hapus berkas itu: setoran yang belum "
            "terkirim ada di dalamnya. Pulihkan dengan sqlite3 .recover, atau pindahkan ke "
            "samping untuk mulai install baru; lihat docs/deploy-pi.md §7a. / the outbox file is "
            "damaged, the gateway stops (exit status %(status)d, systemd does not restart it): "
            "%(file)s: %(why)s. Do not delete it: the deposits not yet sent are in it. Recover "
            "it with sqlite3 .recover, or move it aside to start a new install; see "
            "docs/deploy-pi.md §7a.",
            {"status": OUTBOX_DAMAGED, "file": damaged.path, "why": damaged.why},
        )
        raise SystemExit(OUTBOX_DAMAGED) from None


def _damage(exc: BaseException, path: Path) -> OutboxDamaged | None:
    """The damaged outbox behind ``exc`` (a task's error, in its group), if that is what it is."""
    if isinstance(exc, OutboxDamaged):
        return exc
    if isinstance(exc, sqlite3.DatabaseError) and is_damage(exc):
        return OutboxDamaged(path, str(exc))
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _damage(inner, path)) is not None:
                return found
    return None


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
