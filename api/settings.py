"""The API process's settings (``WASTEBANK_*``; see wastebank/config.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr, field_validator

from wastebank.access import AuthSettings
from wastebank.bulk_import import ImportLimits
from wastebank.config import InfluxSettings, MqttSettings, WastebankSettings, default_ledger_url
from wastebank.fleet.view import FleetSettings
from wastebank.money_rules import MoneyRules
from wastebank.reports import ReportSettings

REPO_ROOT = Path(__file__).resolve().parent.parent


OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = (
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)


class PagesSettings(BaseModel):
    """``[pages]`` (environment ``WASTEBANK_PAGES__*``): the HTML pages' front-end files and map."""

    node_modules: Path = Field(
        default=REPO_ROOT / "node_modules",
        description="where `npm ci` (make install) put Chart.js and Leaflet; served under "
        "/static/vendor (no CDN at run time)",
    )
    map_tile_url: str = Field(
        default=OSM_TILES,
        description="the DLH map's base-map tiles, a URL template with {z}, {x}, {y} (and "
        "optionally {s}, {r}); default OpenStreetMap's (its tile usage policy applies: "
        "https://operations.osmfoundation.org/policies/tiles/). The page's Content-Security-Policy "
        "lets images come from this host only. Empty: no base map, markers on a plain "
        "background. When the browser cannot reach the host, the page shows the plain map too",
    )
    map_tile_attribution: str = Field(
        default=OSM_ATTRIBUTION,
        description="the tile provider's attribution, shown on the map (HTML: a link is allowed)",
    )
    broker_run_dir: Path | None = Field(
        default=None,
        description="the run dir of the broker's files (devices.toml, passwd, acl) when they "
        "are on this machine: the admin's device page lists them (and can add devices)",
    )

    @field_validator("map_tile_url")
    @classmethod
    def _tile_template(cls, url: str) -> str:
        url = url.strip()
        if not url:
            return url
        parts = urlsplit(url.replace("{s}", "a").replace("{r}", ""))
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"map_tile_url {url!r}: not an http(s) URL template")
        if not all(k in url for k in ("{z}", "{x}", "{y}")):
            raise ValueError(f"map_tile_url {url!r}: needs {{z}}, {{x}} and {{y}}")
        return url

    def tile_source(self) -> str | None:
        """The tile host as a Content-Security-Policy source (``https://tile.example``; a
        ``{s}`` subdomain as ``*.``); None without a base map."""
        if not self.map_tile_url:
            return None
        parts = urlsplit(self.map_tile_url.replace("{r}", ""))
        host = parts.netloc.replace("{s}", "*")
        return f"{parts.scheme}://{host}"


class HttpSettings(BaseModel):
    """``[http]`` (environment ``WASTEBANK_HTTP__*``): request size limits and the reverse
    proxies whose forwarding headers are believed (api/limits.py, docs/operations.md)."""

    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="the largest request body of a JSON or form route (the largest real one, a "
        "member with ten cards, is ~2 KB): larger is 413 before it is parsed or the caller is "
        "checked",
    )
    max_head_bytes: int = Field(
        default=16 * 1024,
        ge=4096,
        le=1024 * 1024,
        description="the largest request head, the request line and headers together (URL, "
        "query string, cookies, a bearer token; a browser's largest, a page with its session "
        "cookie, is ~2 KB): larger is 431 and the connection closed before anything is parsed "
        "further (api/server.py)",
    )
    max_upload_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1024,
        description="the largest request body of an upload route (the member import: the file "
        "and its form together)",
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="addresses or networks (10.0.0.5, 10.0.0.0/24) of the reverse proxies in "
        "front of the API: only a request from one of them has its X-Forwarded-For (the client "
        "address the login limits count) and X-Forwarded-Proto (https: Secure cookies) "
        "believed; empty (the default): never, the connection's own address counts",
    )


def _half_the_cores() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


class CapacitySettings(BaseModel):
    """``[capacity]`` (environment ``WASTEBANK_CAPACITY__*``): how much one API process takes
    on at once and how it refuses the rest (api/capacity.py; docs/operations.md, "When the API
    is saturated"). Its worker threads (``requests + logins``) and ledger connections are sized
    from these; /health, /metrics and static files are never queued or refused."""

    requests: int = Field(
        default=16,
        ge=1,
        le=1000,
        description="requests served at once (logins apart); more wait (queue, wait_s). On one "
        "core's worth of Python more do not answer sooner: they share the core, and each holds "
        "a worker thread and up to two ledger connections",
    )
    queue: int = Field(
        default=64, ge=0, le=100_000, description="requests waiting for a slot; more: 503 at once"
    )
    wait_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="the longest a request waits for a slot (or a ledger connection); then 503",
    )
    logins: int = Field(
        default_factory=_half_the_cores,
        ge=1,
        le=256,
        description="password hashes at once (POST /api/token, POST /masuk: argon2id, 64 MiB "
        "and ~0.25 s of CPU each at production cost); default: half the cores, at least 1",
    )
    login_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="how much lower the CPU priority of password hashing is (Linux nice; 0: the "
        "same as the rest): when the cores are busy, reads go first and hashes take what is left",
    )
    login_queue: int = Field(
        default=8, ge=0, le=10_000, description="logins waiting for a slot; more: 503 at once"
    )
    login_wait_s: float = Field(
        default=0.5, gt=0, le=60, description="the longest a login waits for a slot; then 503"
    )
    retry_after_s: int = Field(
        default=2, ge=1, le=3600, description="the Retry-After of a 503 (seconds)"
    )
    health_ttl_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="GET /health reuses its last probe of the broker, InfluxDB and the ledger "
        "for this long (one probe at a time whatever the number of callers)",
    )


class ApiSettings(WastebankSettings):
    broker_user: ClassVar[str | None] = "api"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(default=None, description="base URL printed for people")
    access_log: bool = Field(
        default=False,
        description="uvicorn's line per request (WASTEBANK_ACCESS_LOG=true); off: it costs a "
        "noticeable share of a balance's CPU (docs/scaling.md), and the reverse proxy in front "
        "logs requests anyway; writes are in the audit log either way",
    )
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    ledger_url: str = Field(default_factory=default_ledger_url)
    default_timezone: str = "Asia/Jakarta"
    auth: AuthSettings = Field(default_factory=AuthSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)  # DLH: generation, targets
    pages: PagesSettings = Field(default_factory=PagesSettings)
    capacity: CapacitySettings = Field(default_factory=CapacitySettings)  # load: api/capacity.py
    money: MoneyRules = Field(default_factory=MoneyRules)  # limits, second approval
    http: HttpSettings = Field(default_factory=HttpSettings)
    imports: ImportLimits = Field(default_factory=ImportLimits)  # uploads: XLSX archive limits
    fleet: FleetSettings = Field(default_factory=FleetSettings)  # offline after: docs/fleet.md
    nik_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="HMAC key for NIK hashes (WASTEBANK_NIK_KEY, as for `wastebank seed`); "
        "unset: a member's NIK cannot be recorded through the API",
    )
