"""How the gateway reopens what it keeps open (a serial port, the broker): the project's policy
(:func:`wastebank.mqtt.retrying`: no attempt limit and no deadline, waits growing and capped at
half a minute), and no log line per attempt (each caller logs the loss once and the recovery
once)."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import TYPE_CHECKING

from wastebank.mqtt import retrying

if TYPE_CHECKING:
    import stamina

_quiet: list[bool] = []


def reconnecting(
    on: type[Exception] | tuple[type[Exception], ...],
) -> AsyncIterable[stamina.Attempt]:
    """Attempts (``async for attempt in reconnecting(...): with attempt: ...``) until one does
    not raise ``on``: a gateway waits out an unplugged adapter or a broker outage however long it
    lasts (the outbox keeps the deposits meanwhile), and finds a port or a broker that is back
    within half a minute."""
    attempts = retrying(on)  # imports stamina: only a lost port or broker needs it
    if _quiet:
        import stamina

        stamina.instrumentation.set_on_retry_hooks([])
    return attempts


def quiet() -> None:
    """No stamina log line per scheduled retry in this process (its default): a gateway logs a
    lost port or broker once and its return once, not every attempt of a night-long outage.
    For the gateway's own process only: the setting is the whole process's."""
    _quiet.append(True)
