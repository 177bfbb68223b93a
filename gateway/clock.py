"""Whether the gateway's clock can be trusted: has it been synchronized since this boot?

A Raspberry Pi has no real-time clock: after a power cut without network it starts at the time
it last saved (systemd's ``/var/lib/systemd/timesync/clock``), hours or days behind, and every
event it stamps until the first synchronization is wrong by that much. The gateway does not
correct those times (it cannot know by how much); it says so: each deposit and fill reading
stamped before the first synchronization since boot carries ``clock_synced=false``, and health
reports the clock (docs/operations.md, "Clock honesty").

Probes (``[clock] probe`` in the site file):

* ``timesyncd``: systemd-timesyncd creates ``/run/systemd/timesync/synchronized`` at its first
  synchronization (``/run`` is emptied at boot, so the file means "since this boot"); its
  modification time is when. No file while its directory exists: not yet. No directory:
  timesyncd is not running, the probe cannot tell.
* ``chrony``: ``chronyc -c tracking`` (CSV); its leap status ``Not synchronised``, or the
  local reference (``7F7F0101``), is not synchronized; the system time field is the offset.
  An offset beyond :data:`SYNCED_OFFSET_MAX_MS` is not synchronized either: chrony only slews
  a clock once it is past its first updates (Debian's ``makestep 1 3``), about 0.5 ms a second
  at most, so a clock a day off stamps a day off for months while its leap status says Normal.
* ``auto`` (the default): timesyncd if its directory exists, else chrony if ``chronyc`` is on
  the PATH; if neither is there yet (timesyncd may start after the gateway), the choice is made
  again at every check until one is.
* ``none``: not probed; events carry no ``clock_synced`` (unknown).

A probe that cannot run (``chronyc`` missing or failing, timesyncd's directory absent, ``auto``
finding neither) says why (:attr:`Reading.problem`): logged once as a warning until a probe
works again, and in health (``clock.problem``).

**Per boot, not per process.** The first synchronization is remembered with the kernel's boot id
(``/proc/sys/kernel/random/boot_id``) in the gateway's file (:class:`SyncMemory`, the outbox): a
gateway restarted within the same boot (a crash, an upgrade) whose probe says "not synchronized"
(chrony lost its source meanwhile) still knows its clock was synchronized at that time. chrony
cannot say when it first synchronized, and timesyncd's file is lost when timesyncd is restarted,
so neither probe alone can answer that. Without a readable boot id it is per process.

Both paths are settings (``sync_file``, ``chronyc``), so a test or an unusual image can point
them elsewhere (a file it creates, a script printing chronyc's CSV).
"""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Final, Literal, Protocol

from msgspec import Meta, field

from wastebank.config import Settings
from wastebank.formats import terminal_text
from wastebank.messages import CLOCK_OFFSET_MS_MAX, ClockHealth

log = logging.getLogger("wastebank.gateway")

TIMESYNCD_FILE: Final = Path("/run/systemd/timesync/synchronized")
BOOT_ID_FILE: Final = Path("/proc/sys/kernel/random/boot_id")
CHRONY_LOCAL_REF: Final = "7F7F0101"
"""chrony's reference id while it serves its own clock (``local`` directive): not synchronized."""
PROBE_TIMEOUT_S: Final = 5.0

Source = Literal["timesyncd", "chrony", "none", "unknown"]


class ClockSettings(Settings, kw_only=True):
    """How the gateway finds out whether its clock is synchronized (the site file's ``[clock]``)."""

    probe: Literal["auto", "timesyncd", "chrony", "none"] = "auto"
    sync_file: Annotated[
        Path, Meta(description="timesyncd: the file it creates at its first sync")
    ] = TIMESYNCD_FILE
    chronyc: Annotated[
        list[str],
        Meta(
            min_length=1, description="chrony: the command that prints its tracking report as CSV"
        ),
    ] = field(default_factory=lambda: ["chronyc", "-c", "tracking"])
    boot_id_file: Annotated[
        Path,
        Meta(description="this boot's id: the first synchronization is remembered per boot"),
    ] = BOOT_ID_FILE
    check_interval_s: Annotated[
        float, Meta(gt=0, le=3600, description="how often the probe runs")
    ] = 15.0


@dataclass(frozen=True)
class Reading:
    """What one probe said."""

    source: Source
    synchronized: bool | None
    offset_ms: int | None = None
    synced_at: datetime | None = None
    """When the source says it first synchronized (timesyncd's file), if it says."""
    problem: str | None = None
    """Why the probe could not tell (it could not run), when it could not."""


PROBLEM_MAX = 200
SYNCED_OFFSET_MAX_MS: Final = 10_000
"""A clock further than this from its time source is not synchronized, whatever the source's
leap status says: its stamps could put a deposit on another day (docs/operations.md)."""


def _failed(problem: str) -> Reading:
    # escaped: a command's output or a path may hold a tab; health's text refuses control characters
    return Reading("unknown", None, problem=terminal_text(problem)[:PROBLEM_MAX])


def read_timesyncd(sync_file: Path) -> Reading:
    try:
        mtime = sync_file.stat().st_mtime
    except FileNotFoundError:
        if sync_file.parent.is_dir():
            return Reading("timesyncd", False)
        return _failed(f"timesyncd: no {sync_file.parent} (timesyncd not running)")
    except OSError as exc:
        return _failed(f"timesyncd: {sync_file}: {exc.strerror or exc}")
    return Reading("timesyncd", True, synced_at=datetime.fromtimestamp(mtime, UTC))


def parse_chrony_tracking(csv_line: str) -> Reading:
    """``chronyc -c tracking``'s line: reference id, name, stratum, reference time, system time
    (seconds; positive: the clock is slow of NTP time), last offset, RMS offset, frequency,
    residual frequency, skew, root delay, root dispersion, update interval, leap status."""
    fields = csv_line.strip().split(",")
    if len(fields) < 14:
        return _failed(f"chrony: not a tracking report: {csv_line.strip()[:80]!r}")
    ref_id, leap = fields[0].upper(), fields[13].strip()
    try:
        slow_s: float | None = float(fields[4])
    except ValueError:
        slow_s = None
    if slow_s is not None and not math.isfinite(slow_s):
        return _failed(f"chrony: system time is not a number: {fields[4].strip()[:20]!r}")
    synchronized = leap != "Not synchronised" and ref_id not in ("00000000", CHRONY_LOCAL_REF)
    offset_ms = None
    if synchronized and slow_s is not None:
        # clock minus NTP time, in ms: positive when the clock is ahead
        offset_ms = max(-CLOCK_OFFSET_MS_MAX, min(CLOCK_OFFSET_MS_MAX, round(-slow_s * 1000)))
        synchronized = abs(offset_ms) <= SYNCED_OFFSET_MAX_MS
    return Reading("chrony", synchronized, offset_ms)


def read_chrony(command: list[str]) -> Reading:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return _failed(f"chrony: {command[0]} gave no answer within {PROBE_TIMEOUT_S:g} s")
    except OSError as exc:
        return _failed(f"chrony: {command[0]}: {exc.strerror or exc}")
    if done.returncode != 0:  # chronyd not running: "506 Cannot talk to daemon"
        said = (done.stderr or done.stdout).strip().splitlines()
        return _failed(
            f"chrony: {command[0]} exit status {done.returncode}" + (f": {said[0]}" if said else "")
        )
    return parse_chrony_tracking(done.stdout.splitlines()[0] if done.stdout else "")


def read_boot_id(boot_id_file: Path) -> str:
    """This boot's id (the kernel's), or "" where there is none to read."""
    try:
        return boot_id_file.read_text().strip()[:64]
    except OSError:
        return ""


class SyncMemory(Protocol):
    """Where this boot's first synchronization is kept across the gateway's restarts."""

    def clock_synced_at(self, boot: str) -> datetime | None:
        """The first synchronization remembered for ``boot`` (None: none is)."""

    def remember_clock_sync(self, boot: str, at: datetime) -> None: ...


class ClockWatch:
    """The clock's state, from the configured probe, and this boot's first synchronization."""

    def __init__(self, settings: ClockSettings, memory: SyncMemory | None = None) -> None:
        """``memory``: where this boot's first synchronization is remembered (the outbox)."""
        self.settings = settings
        self.probe = self._choose(settings)
        self.last = Reading("none" if settings.probe == "none" else "unknown", None)
        self.memory = memory
        self.boot = read_boot_id(settings.boot_id_file) if memory is not None else ""
        self.synced_at: datetime | None = None
        """The first synchronization seen since boot (from the source, else when seen)."""
        if memory is not None and self.boot:
            self.synced_at = memory.clock_synced_at(self.boot)
            if self.synced_at is not None:
                log.info(
                    "jam sudah tersinkron di boot ini pada %s (diingat berkas outbox) / clock "
                    "synchronized earlier this boot at %s (remembered in the outbox file)",
                    self.synced_at.isoformat(),
                    self.synced_at.isoformat(),
                )
        self.lost_since: datetime | None = None
        """When a probe after :attr:`synced_at` first said "not synchronized" (None: it has not,
        or a later probe said synchronized again); events stay marked synchronized meanwhile."""
        self._problem: str | None = None
        """The probe's problem last logged (None: it works, or has not failed yet)."""

    @staticmethod
    def _choose(s: ClockSettings) -> Literal["timesyncd", "chrony", "none"]:
        if s.probe != "auto":
            return s.probe
        if s.sync_file.parent.is_dir():
            return "timesyncd"
        if shutil.which(s.chronyc[0]) is not None:
            return "chrony"
        return "none"

    def probe_now(self) -> Reading:
        """What the probe says now, nothing kept (chrony's probe runs a command: call it off the
        event loop, then :meth:`update` on it). ``auto`` that found nothing looks again."""
        if self.settings.probe == "auto" and self.probe == "none":
            self.probe = self._choose(self.settings)
        if self.probe == "timesyncd":
            return read_timesyncd(self.settings.sync_file)
        if self.probe == "chrony":
            return read_chrony(self.settings.chronyc)
        if self.settings.probe == "auto":
            return _failed(
                f"auto: neither timesyncd ({self.settings.sync_file.parent}) nor "
                f"{self.settings.chronyc[0]} found"
            )
        return Reading("none", None)

    def check(self) -> Reading:
        """Probe now and take the reading (on the event loop: :meth:`probe_now` blocks)."""
        reading = self.probe_now()
        self.update(reading)
        return reading

    def _note_problem(self, reading: Reading) -> None:
        """A probe that cannot run: logged once (and again once it has worked in between)."""
        if reading.problem is None:
            if self._problem is not None:
                log.info(
                    "pemeriksaan jam berjalan lagi / the clock probe works again (%s)",
                    reading.source,
                )
            self._problem = None
        elif self._problem is None:
            self._problem = reading.problem
            marks = (
                "events carry no clock_synced until it can"
                if self.synced_at is None
                else f"events stay clock_synced=true (synchronized at {self.synced_at.isoformat()})"
            )
            log.warning(
                "jam tidak dapat diperiksa / the clock probe cannot run (probe = %r): %s; %s "
                "(tried again every %g s)",
                self.settings.probe,
                reading.problem,
                marks,
                self.settings.check_interval_s,
            )

    def update(self, reading: Reading) -> None:
        """Take a probe's reading; log the first synchronization of this boot, a probe saying
        "not synchronized" before it (each time it starts saying so), and after it each loss
        of the time source (once, until a probe says synchronized again) and its return."""
        was = self.last.synchronized
        self.last = reading
        self._note_problem(reading)
        if self.synced_at is None:
            if reading.synchronized:
                self.synced_at = reading.synced_at or datetime.now(UTC)
                if self.memory is not None and self.boot:
                    self.memory.remember_clock_sync(self.boot, self.synced_at)
                log.info(
                    "jam tersinkron / clock synchronized (%s) at %s",
                    reading.source,
                    self.synced_at.isoformat(),
                )
            elif reading.synchronized is False and was is not False:
                log.warning(
                    "jam belum tersinkron / clock not synchronized (%s): events are marked "
                    "clock_synced=false until it is",
                    reading.source,
                )
        elif reading.synchronized is False and self.lost_since is None:
            self.lost_since = datetime.now(UTC)
            log.warning(
                "sumber waktu jam hilang sejak %(lost)s (%(source)s); jam tersinkron %(synced)s, "
                "peristiwa tetap ditandai clock_synced=true selama boot ini / the clock's time "
                "source lost since %(lost)s (%(source)s); synchronized at %(synced)s, events stay "
                "marked clock_synced=true this boot",
                {
                    "lost": self.lost_since.isoformat(),
                    "source": reading.source,
                    "synced": self.synced_at.isoformat(),
                },
            )
        elif reading.synchronized and self.lost_since is not None:
            log.info(
                "sumber waktu jam kembali (%(source)s), hilang sejak %(lost)s / the clock's time "
                "source is back (%(source)s), lost since %(lost)s",
                {"source": reading.source, "lost": self.lost_since.isoformat()},
            )
            self.lost_since = None

    def stamp(self) -> bool | None:
        """What an event stamped now carries as ``clock_synced``: True once this boot's clock
        has been synchronized (it keeps good time after, even if the source is lost later);
        False while it has not; None when the probe cannot tell."""
        if self.synced_at is not None:
            return True
        return None if self.last.synchronized is None else False

    def health(self) -> ClockHealth:
        return ClockHealth(
            synchronized=self.last.synchronized,
            source=self.last.source,
            offset_ms=self.last.offset_ms,
            synced_at=self.synced_at,
            problem=self.last.problem,
        )
