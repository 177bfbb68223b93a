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
* ``auto`` (the default): timesyncd if its directory exists, else chrony if ``chronyc`` is on
  the PATH, else none.
* ``none``: not probed; events carry no ``clock_synced`` (unknown).

Both paths are settings (``sync_file``, ``chronyc``), so a test or an unusual image can point
them elsewhere (a file it creates, a script printing chronyc's CSV).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Final, Literal

from msgspec import Meta, field

from wastebank.config import Settings
from wastebank.messages import CLOCK_OFFSET_MS_MAX, ClockHealth

log = logging.getLogger("wastebank.gateway")

TIMESYNCD_FILE: Final = Path("/run/systemd/timesync/synchronized")
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


def read_timesyncd(sync_file: Path) -> Reading:
    try:
        mtime = sync_file.stat().st_mtime
    except FileNotFoundError:
        running = sync_file.parent.is_dir()
        return Reading("timesyncd" if running else "unknown", False if running else None)
    except OSError:
        return Reading("unknown", None)
    return Reading("timesyncd", True, synced_at=datetime.fromtimestamp(mtime, UTC))


def parse_chrony_tracking(csv_line: str) -> Reading:
    """``chronyc -c tracking``'s line: reference id, name, stratum, reference time, system time
    (seconds; positive: the clock is slow of NTP time), last offset, RMS offset, frequency,
    residual frequency, skew, root delay, root dispersion, update interval, leap status."""
    fields = csv_line.strip().split(",")
    if len(fields) < 14:
        return Reading("unknown", None)
    ref_id, leap = fields[0].upper(), fields[13].strip()
    try:
        slow_s = float(fields[4])
    except ValueError:
        slow_s = None
    synchronized = leap != "Not synchronised" and ref_id not in ("00000000", CHRONY_LOCAL_REF)
    offset_ms = None
    if synchronized and slow_s is not None:
        # clock minus NTP time, in ms: positive when the clock is ahead
        offset_ms = max(-CLOCK_OFFSET_MS_MAX, min(CLOCK_OFFSET_MS_MAX, round(-slow_s * 1000)))
    return Reading("chrony", synchronized, offset_ms)


def read_chrony(command: list[str]) -> Reading:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("chronyc: %s", exc)
        return Reading("unknown", None)
    if done.returncode != 0:  # chronyd not running: "506 Cannot talk to daemon"
        return Reading("unknown", None)
    return parse_chrony_tracking(done.stdout.splitlines()[0] if done.stdout else "")


class ClockWatch:
    """The clock's state, from the configured probe, and this boot's first synchronization."""

    def __init__(self, settings: ClockSettings) -> None:
        self.settings = settings
        self.probe = self._choose(settings)
        self.last = Reading("none" if self.probe == "none" else "unknown", None)
        self.synced_at: datetime | None = None
        """The first synchronization seen since boot (from the source, else when seen)."""
        self.lost_since: datetime | None = None
        """When a probe after :attr:`synced_at` first said "not synchronized" (None: it has not,
        or a later probe said synchronized again); events stay marked synchronized meanwhile."""

    @staticmethod
    def _choose(s: ClockSettings) -> Literal["timesyncd", "chrony", "none"]:
        if s.probe != "auto":
            return s.probe
        if s.sync_file.parent.is_dir():
            return "timesyncd"
        if shutil.which(s.chronyc[0]) is not None:
            return "chrony"
        return "none"

    def check(self) -> Reading:
        """Probe now (chrony's probe runs a command: call it off the event loop)."""
        if self.probe == "timesyncd":
            reading = read_timesyncd(self.settings.sync_file)
        elif self.probe == "chrony":
            reading = read_chrony(self.settings.chronyc)
        else:
            reading = Reading("none", None)
        self.update(reading)
        return reading

    def update(self, reading: Reading) -> None:
        """Take a probe's reading; log the first synchronization of this boot, a probe saying
        "not synchronized" before it (each time it starts saying so), and after it each loss
        of the time source (once, until a probe says synchronized again) and its return."""
        was = self.last.synchronized
        self.last = reading
        if self.synced_at is None:
            if reading.synchronized:
                self.synced_at = reading.synced_at or datetime.now(UTC)
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
        )
