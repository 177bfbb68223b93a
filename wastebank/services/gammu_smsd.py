"""Gammu SMSD on Gammu's dummy phone, for development and the demo (`services up --with sms`).

Its config, dummy phone and FILES folders are under ``run_dir/gammu`` (wastebank.sms.gammu's
:func:`~wastebank.sms.gammu.dummy_config`); `wastebank sms run` finds them through the default
``[sms] smsdrc``. A real modem is set up by hand (docs/attendant.md, "SMS"): Debian's own
``gammu-smsd.service`` with ``/etc/gammu-smsdrc``; `up` never touches that one, and `down` stops
only the daemon our pid file names, running our config.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from wastebank import pidfiles
from wastebank.services.core import POLL_S, ServiceError, ServicesSettings, log
from wastebank.sms.gammu import GAMMU_SMSD, dummy_config

PROGRAM = "gammu-smsd"


def smsd_dir(settings: ServicesSettings) -> Path:
    return settings.run_dir / "gammu"


def _pid_file(settings: ServicesSettings) -> Path:
    return smsd_dir(settings) / "smsd.pid"


def _config(settings: ServicesSettings) -> Path:
    return smsd_dir(settings) / "smsdrc"


def smsd_pid(settings: ServicesSettings) -> int | None:
    """Our SMSD's pid, if it runs our config."""
    return pidfiles.our_pid(_pid_file(settings), PROGRAM, _config(settings))


def start_dummy_smsd(settings: ServicesSettings) -> None:
    """Start ours (daemonized: it writes its pid file) unless it runs already."""
    pid = smsd_pid(settings)
    if pid is not None:
        log.info("%s sudah berjalan / already running (pid %s)", PROGRAM, pid)
        return
    config = dummy_config(smsd_dir(settings))
    pid_file = _pid_file(settings)
    pid_file.unlink(missing_ok=True)
    result = subprocess.run(
        [str(GAMMU_SMSD), "-c", str(config), "-p", str(pid_file), "-d"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ServiceError(
            f"{PROGRAM} gagal mulai / failed to start (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()}"
        )
    deadline = time.monotonic() + settings.start_timeout_s
    while (pid := smsd_pid(settings)) is None:  # the forked daemon writes its pid file
        if time.monotonic() > deadline:
            raise ServiceError(f"{PROGRAM} tidak mulai / did not start; see its log in {config}")
        time.sleep(POLL_S)
    log.info("%s berjalan / running on a dummy phone in %s (pid %s)", PROGRAM, config.parent, pid)


def stop_dummy_smsd(settings: ServicesSettings) -> None:
    pid = smsd_pid(settings)
    if pid is None:
        return
    log.info("menghentikan / stopping %s (pid %s)", PROGRAM, pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pidfiles.alive(pid):
        if time.monotonic() > deadline:
            raise ServiceError(f"{PROGRAM} (pid {pid}) did not stop")
        time.sleep(POLL_S)
    _pid_file(settings).unlink(missing_ok=True)
