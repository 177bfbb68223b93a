"""Which running daemon is ours: the pid our pid file names, alive, the right program, started
with our own config.

`wastebank services` starts and stops the development daemons by these checks, and
`wastebank device` signals our Mosquitto by them; a system daemon of the same program (Debian's
mosquitto or influxd) or another checkout's never matches, so it is never touched.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# Daemons this interpreter started as its own children: kept so `alive` can reap them (no
# zombies, no "still running" ResourceWarning when a Popen object is garbage-collected).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def track_child(proc: subprocess.Popen[bytes]) -> None:
    """Remember a daemon started as our child (`alive` then polls it, which reaps it)."""
    _CHILDREN[proc.pid] = proc


def forget_child(pid: int) -> None:
    _CHILDREN.pop(pid, None)


def our_pid(pid_file: Path, program: str, conf: Path) -> int | None:
    """The pid in ``pid_file``, if that process is alive, is ``program`` (its
    ``/proc/<pid>/comm``) and has ``conf`` on its command line."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if not alive(pid):
        return None
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:  # exited meanwhile, or not ours to read
        return None
    if comm != program or os.fsencode(conf) not in argv:
        return None
    return pid


def alive(pid: int) -> bool:
    """Running and not a zombie (a killed daemon stays a zombie until its parent reaps it)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # Format "pid (comm) state ..."; comm may contain spaces or parentheses.
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
