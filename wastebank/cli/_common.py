"""What the command modules share: the common options, logging, progress bars, the one way a
command fails, and the processes' settings as the root hands them over.

No command module imports the processes (gateway, ingest, api, firmware_sim): the root
(wastebank/cli/__init__.py) does, and gives them what they need of those through
:func:`processes`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from wastebank.process import FAILED
from wastebank.process import setup_logging as setup_logging  # the commands import it from here

if TYPE_CHECKING:
    from rich.progress import Progress

    from wastebank.access import AuthSettings
    from wastebank.config import InfluxSettings
    from wastebank.money_rules import MoneyRules
    from wastebank.reports import ReportSettings


class LogFormat(StrEnum):
    text = "text"
    json = "json"


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="berkas pengaturan TOML / TOML settings file (or WASTEBANK_CONFIG)"
    ),
]


LogFormatOption = Annotated[
    LogFormat,
    typer.Option(
        "--log-format", help="text, or json: one JSON object per line (for a log collector)"
    ),
]


LedgerUrlOption = Annotated[
    str | None,
    typer.Option(
        help="URL SQLAlchemy buku besar (bawaan: pengaturan ingester) / SQLAlchemy URL of the "
        "ledger (default: the ingester's settings)"
    ),
]
ApiLedgerUrlOption = Annotated[
    str | None,
    typer.Option(
        help="URL SQLAlchemy buku besar (bawaan: pengaturan API, ledger_url / "
        "WASTEBANK_LEDGER_URL) / SQLAlchemy URL of the ledger (default: the API's settings)"
    ),
]
"""``--ledger-url`` of a command that reads the API's settings (`wastebank fleet`)."""
WHEN_HELP = "ISO 8601 date or time, e.g. 2026-11-23 or 2026-11-23T09:00+09:00 (no offset: local)"


def fail(exc: Exception) -> typer.Exit:
    """Say what went wrong, without a traceback, and exit :data:`FAILED`. The root does this
    for every :class:`~wastebank.errors.WastebankError` a command lets through; a command calls
    it for the builtin errors (``ValueError``, ``OSError``) it expects."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=FAILED)


def count_progress(description: str) -> tuple[Progress, Callable[[int, int], None]]:
    """A progress bar of done / total on stderr (off when stderr is not a terminal), and the
    ``progress(done, total)`` callback long commands pass to the work; use the bar as a
    context manager around the work."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    task = bar.add_task(description, total=None)

    def progress(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, progress


def parse_when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not a date or time: {value!r}", param_hint=option) from None
    return parsed if parsed.tzinfo else parsed.astimezone()  # naive: this machine's local time


def parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not a date: {value!r} (2026-11-01)", param_hint=option) from None


def resolve_ledger_url(ledger_url: str | None, config: Path | None) -> str:
    """``--ledger-url``, or the ingester's (the one writer of device deposits)."""
    if ledger_url:
        return ledger_url
    return processes().ingest_settings(config).ledger_url


# ---- what the commands need of the processes, given by the root --------------------------------


class IngestSettingsView(Protocol):
    """The ingester's settings (ingest.settings.IngestSettings), as commands read them."""

    @property
    def ledger_url(self) -> str: ...
    @property
    def influx(self) -> InfluxSettings: ...
    @property
    def money(self) -> MoneyRules: ...


class ApiSettingsView(Protocol):
    """The API's settings (api.settings.ApiSettings), as commands read them."""

    @property
    def ledger_url(self) -> str: ...
    @property
    def money(self) -> MoneyRules: ...
    @property
    def auth(self) -> AuthSettings: ...
    @property
    def reports(self) -> ReportSettings: ...


class ReplaySummaryView(Protocol):
    """What a replay of dead letters did (ingest.deadletter.ReplaySummary)."""

    @property
    def replayed(self) -> list[int]: ...
    @property
    def failed(self) -> dict[int, str]: ...
    @property
    def skipped(self) -> list[int]: ...
    @property
    def missing(self) -> list[int]: ...


SiteGrants = tuple[str, str, list[tuple[str, str]], list[str], str]
"""From a gateway's site file: its bank and id, the TPS sensors it publishes fill readings for,
the uplink topics it subscribes to, its topic prefix."""


class Processes(Protocol):
    """What the command modules need of the processes' own code, given by the root."""

    def ingest_settings(self, config: Path | None, **overrides: Any) -> IngestSettingsView:
        """The ingester's settings (a bad one: ConfigError)."""
        ...

    def api_settings(self, config: Path | None) -> ApiSettingsView:
        """The API's settings (a bad one: ConfigError)."""
        ...

    def site_grants(self, path: Path) -> SiteGrants:
        """What a gateway's site file grants it on the broker (a bad file: BadParameter)."""
        ...

    def payload_text(self, payload: bytes) -> str | None:
        """A dead letter's payload as text, if it is readable text."""
        ...

    def hex_dump(self, payload: bytes) -> str:
        """A dead letter's payload as ``hexdump -C`` shows it."""
        ...

    def replay_dead_letters(
        self,
        settings: IngestSettingsView,
        ids: list[int] | None,
        progress: Callable[[int, int], None],
    ) -> tuple[ReplaySummaryView, str | None]:
        """Replay dead letters as the ingester; what was done, and why it stopped early
        (None: it did not)."""
        ...


_processes: Processes | None = None


def give_processes(given: Processes) -> None:
    global _processes  # set once, by the root, as it is imported
    _processes = given


def processes() -> Processes:
    if _processes is None:
        raise RuntimeError("wastebank.cli (the root) gives the processes; import it first")
    return _processes
