"""Which API a server speaks (from its ``/ping``), and the writer made for it."""

from __future__ import annotations

import logging
import re

from wastebank.config import InfluxSettings
from wastebank.influx.client import Influx
from wastebank.influx.writers import ApiVersion, InfluxWriter, V1Writer, V2Writer

log = logging.getLogger("wastebank.influx")

SERVER_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


def api_for_version(version: str | None, *, token: bool = False) -> ApiVersion:
    """The write API for a server's ``X-Influxdb-Version``.

    1.x (1.0-1.7 have no v2 API; 1.8+ has both, v1 is simpler) -> v1. 2.x (``v2.7.10``) -> v2.
    3.x -> v2 (its v2-compatible write endpoint, bucket = database). Unknown or missing (InfluxDB
    Cloud sends none) -> v2 when a token is configured, else v1.
    """
    m = SERVER_VERSION.match((version or "").strip())
    if m is None:
        return "v2" if token else "v1"
    return "v1" if int(m.group(1)) <= 1 else "v2"


async def detect_api(settings: InfluxSettings) -> tuple[ApiVersion, str]:
    """``settings.api`` resolved: (api, server version); raises InfluxError when unreachable."""
    influx = Influx(settings)
    try:
        version = await influx.ping()
    finally:
        await influx.aclose()
    if settings.api != "auto":
        return settings.api, version
    return api_for_version(version, token=settings.token is not None), version


async def make_writer(settings: InfluxSettings) -> InfluxWriter:
    """The writer ``settings`` ask for (``api = "auto"``: detected from ``/ping``).

    Raises InfluxError (retryable) when InfluxDB does not answer the ping.
    """
    if settings.api == "v1":
        return V1Writer(settings)
    if settings.api == "v2":
        return V2Writer(settings)
    api, version = await detect_api(settings)
    log.info("InfluxDB %s: menulis lewat / writing through the %s API", version, api)
    return V1Writer(settings) if api == "v1" else V2Writer(settings)
