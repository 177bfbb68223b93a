"""How the gateway reopens what it keeps open (a serial port, the broker): with stamina, forever,
waits growing and capped, and no log line per attempt (each caller logs the loss once and the
recovery once)."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import TYPE_CHECKING

from wastebank.mqtt import BACKOFF_BASE_S, BACKOFF_CAP_S

if TYPE_CHECKING:
    import stamina

FIRST_WAIT_S = 1.0
"""About as long as a USB adapter takes to come back after a replug."""
_quiet: list[bool] = []


def reconnecting(
    on: type[Exception] | tuple[type[Exception], ...],
) -> AsyncIterable[stamina.Attempt]:
    """Attempts (``async for attempt in reconnecting(...): with attempt: ...``) until one does
    not raise ``on``. No attempt limit and no deadline: a gateway waits out an unplugged adapter
    or a broker outage however long it lasts (the outbox keeps the deposits meanwhile); the wait
    grows by BACKOFF_BASE_S per attempt, up to BACKOFF_CAP_S, so a port or a broker that is back
    is found within half a minute."""
    import stamina  # lazily: only a lost port or broker needs it, and a Pi's memory is small

    if _quiet:
        stamina.instrumentation.set_on_retry_hooks([])
    return stamina.retry_context(
        on=on,
        attempts=None,
        timeout=None,
        wait_initial=FIRST_WAIT_S,
        wait_max=BACKOFF_CAP_S,
        wait_jitter=FIRST_WAIT_S,
        wait_exp_base=BACKOFF_BASE_S,
    )


def quiet() -> None:
    """No stamina log line per scheduled retry in this process (its default): a gateway logs a
    lost port or broker once and its return once, not every attempt of a night-long outage.
    For the gateway's own process only: the setting is the whole process's."""
    _quiet.append(True)
