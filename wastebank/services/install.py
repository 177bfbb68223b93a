"""Installing the Debian packages the services need, when they are missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Collection
from pathlib import Path

from wastebank.services.core import ServiceError, ServicesSettings, log
from wastebank.services.influxdb import INFLUXD_BIN
from wastebank.services.mosquitto import MOSQUITTO_BIN
from wastebank.services.postgres import postgresql_bindir

PACKAGES = {
    "mosquitto": MOSQUITTO_BIN,
    "influxdb": INFLUXD_BIN,
    # To build the broker's client-id plugin (deploy/mosquitto/wastebank_clientid.c).
    "mosquitto-dev": Path("/usr/include/mosquitto_broker.h"),
    "libmosquitto-dev": Path("/usr/include/mosquitto.h"),
    "gcc": Path("/usr/bin/gcc"),
    # SMS to members (wastebank/sms/): `services up --with sms`, the SMS tests.
    "gammu-smsd": Path("/usr/bin/gammu-smsd"),
}


def install_missing(settings: ServicesSettings, services: Collection[str]) -> None:
    """apt-get install the Debian packages of ``services`` (daemon names) that are missing."""
    needed = {
        "mosquitto": ("mosquitto", "mosquitto-dev", "libmosquitto-dev", "gcc"),
        "influxd": ("influxdb",),
        "postgres": ("postgresql",),
        "gammu-smsd": ("gammu-smsd",),
    }
    missing = [
        pkg for name in needed if name in services for pkg in needed[name] if not _installed(pkg)
    ]
    if not missing:
        return
    names = " ".join(missing)
    if not settings.install:
        raise ServiceError(
            f"{names} belum terpasang / not installed, and install is off "
            f"(sudo apt-get install {names})"
        )
    if shutil.which("apt-get") is None:
        raise ServiceError(f"{names} not installed and apt-get not found; install them by hand")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    log.info("memasang / installing %s (apt-get)", names)
    _run([*sudo, "apt-get", "update"])
    _run(
        [
            *sudo,
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
            *missing,
        ]
    )
    still_missing = [pkg for pkg in missing if not _installed(pkg)]
    if still_missing:
        raise ServiceError(f"apt-get finished but {' '.join(still_missing)} is still missing")
    log.info("%s terpasang / installed", names)


def _installed(package: str) -> bool:
    if package == "postgresql":
        return postgresql_bindir() is not None
    return PACKAGES[package].exists()


def _run(cmd: list[str]) -> None:
    try:
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ServiceError(f"gagal / failed: {' '.join(cmd)}: {exc}") from exc
