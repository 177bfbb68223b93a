"""The API process's settings (``WASTEBANK_*``; see wastebank/config.py)."""

from __future__ import annotations

import os
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, ClassVar
from urllib.parse import urlsplit

from msgspec import Meta, field

from wastebank.access import AuthSettings
from wastebank.bulk_import import ImportLimits
from wastebank.config import (
    FieldError,
    InfluxSettings,
    MqttSettings,
    SecretStr,
    Settings,
    WastebankSettings,
    check_key,
    default_ledger_url,
    share_within,
)
from wastebank.fleet.view import FleetSettings
from wastebank.money_rules import MoneyRules
from wastebank.reports import ReportSettings

REPO_ROOT = Path(__file__).resolve().parent.parent


OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = (
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)


class PagesSettings(Settings, kw_only=True):
    """``[pages]`` (environment ``WASTEBANK_PAGES__*``): the HTML pages' front-end files and map."""

    node_modules: Annotated[
        Path,
        Meta(
            description="where `npm ci` (make install) put Chart.js and Leaflet; served under "
            "/static/vendor (no CDN at run time)"
        ),
    ] = REPO_ROOT / "node_modules"
    map_tile_url: Annotated[
        str,
        Meta(
            description="the DLH map's base-map tiles, a URL template with {z}, {x}, {y} (and "
            "optionally {s}, {r}); default OpenStreetMap's (its tile usage policy applies: "
            "https://operations.osmfoundation.org/policies/tiles/). The page's "
            "Content-Security-Policy "
            "lets images come from this host only. Empty: no base map, markers on a plain "
            "background. When the browser cannot reach the host, the page shows the plain map too"
        ),
    ] = OSM_TILES
    map_tile_attribution: Annotated[
        str,
        Meta(
            description="the tile provider's attribution, shown on the map (HTML: a link is "
            "allowed)"
        ),
    ] = OSM_ATTRIBUTION
    broker_run_dir: Annotated[
        Path | None,
        Meta(
            description="where the broker's device registry is, when it is on this machine: "
            "the services' run dir (.run, WASTEBANK_RUN_DIR) or the broker's files directory in "
            "it (.run/mosquitto, holding devices.toml, passwd and acl). The admin's device page "
            "lists (and adds) devices there; the fleet leaves removed devices out and checks "
            "which gateway serves which sensor against it (a directory without a registry is "
            "logged and said on the fleet)"
        ),
    ] = None

    def __post_init__(self) -> None:
        run_dir = self.broker_run_dir
        if run_dir is not None and run_dir.is_file():
            what = (
                ("berkas registri", "the registry file")
                if run_dir.name == "devices.toml"
                else ("berkas, bukan direktori", "a file, not a directory")
            )
            raise FieldError(
                "broker_run_dir",
                f"{run_dir}: ini {what[0]}; berikan direktorinya / this is {what[1]}; give its "
                f"directory: {run_dir.parent}",
            )
        url = self.map_tile_url = self.map_tile_url.strip()
        if not url:
            return
        parts = urlsplit(url.replace("{s}", "a").replace("{r}", ""))
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise FieldError("map_tile_url", f"map_tile_url {url!r}: not an http(s) URL template")
        if not all(k in url for k in ("{z}", "{x}", "{y}")):
            raise FieldError("map_tile_url", f"map_tile_url {url!r}: needs {{z}}, {{x}} and {{y}}")

    def tile_source(self) -> str | None:
        """The tile host as a Content-Security-Policy source (``https://tile.example``; a
        ``{s}`` subdomain as ``*.``); None without a base map."""
        if not self.map_tile_url:
            return None
        parts = urlsplit(self.map_tile_url.replace("{r}", ""))
        host = parts.netloc.replace("{s}", "*")
        return f"{parts.scheme}://{host}"


class HttpSettings(Settings, kw_only=True):
    """``[http]`` (environment ``WASTEBANK_HTTP__*``): request size limits and the reverse
    proxies whose forwarding headers are believed (api/limits.py, docs/operations.md)."""

    max_body_bytes: Annotated[
        int,
        Meta(
            ge=1024,
            description="the largest request body of a JSON or form route (the largest real one, a "
            "member with ten cards, is ~2 KB): larger is 413 before it is parsed or the caller is "
            "checked",
        ),
    ] = 64 * 1024
    read_timeout_s: Annotated[
        float,
        Meta(
            ge=1,
            le=300,
            description="the longest a request's head may take to arrive (from the connection's "
            "start or the previous answer), and then its body (a slow phone sends a login form "
            "in well under a second): a head later is the connection closed, a body later is 408 "
            "and closed, so a client that sends a byte at a time holds nothing for longer",
        ),
    ] = 10.0
    max_connections: Annotated[
        int,
        Meta(
            ge=32,
            le=65536,
            description="connections one API process keeps open at once (idle ones too), of them "
            "max_connections_per_client from one address: one more is closed as it opens",
        ),
    ] = 1024
    max_connections_per_client: Annotated[
        int,
        Meta(
            ge=8,
            le=65536,
            description="of max_connections, from one client address (behind a reverse proxy "
            "every client is the proxy's: raise it there, the proxy bounds its clients)",
        ),
    ] = 64
    max_head_bytes: Annotated[
        int,
        Meta(
            ge=4096,
            le=1024 * 1024,
            description="the largest request head, the request line and headers together (URL, "
            "query string, cookies, a bearer token; a browser's largest, a page with its session "
            "cookie, is ~2 KB): larger is 431 and the connection closed before anything is parsed "
            "further (api/server.py)",
        ),
    ] = 16 * 1024
    max_upload_bytes: Annotated[
        int,
        Meta(
            ge=1024,
            description="the largest request body of an upload route (the member import: the file "
            "and its form together)",
        ),
    ] = 5 * 1024 * 1024
    trusted_proxies: Annotated[
        list[str],
        Meta(
            description="addresses or networks (10.0.0.5, 10.0.0.0/24) of the reverse proxies in "
            "front of the API: only a request from one of them has its X-Forwarded-For (the client "
            "address the login limits count) and X-Forwarded-Proto (https: Secure cookies) "
            "believed; empty (the default): never, the connection's own address counts"
        ),
    ] = field(default_factory=list)

    def __post_init__(self) -> None:
        share_within(
            "max_connections_per_client",
            self.max_connections_per_client,
            "max_connections",
            self.max_connections,
        )
        try:
            self.trusted_proxies = [str(ip_network(p)) for p in self.trusted_proxies]
        except ValueError as exc:
            raise FieldError("trusted_proxies", str(exc)) from None


def _half_the_cores() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


class CapacitySettings(Settings, kw_only=True):
    """``[capacity]`` (environment ``WASTEBANK_CAPACITY__*``): how much one API process takes
    on at once and how it refuses the rest (api/capacity.py; docs/operations.md, "When the API
    is saturated"). Its worker threads (``requests + logins``) and ledger connections are sized
    from these; /health, /metrics and static files are never queued or refused."""

    requests: Annotated[
        int,
        Meta(
            ge=1,
            le=1000,
            description="requests served at once (logins apart); more wait (queue, wait_s). On one "
            "core's worth of Python more do not answer sooner: they share the core, and each holds "
            "a worker thread and up to two ledger connections",
        ),
    ] = 16
    queue: Annotated[
        int, Meta(ge=0, le=100_000, description="requests waiting for a slot; more: 503 at once")
    ] = 64
    per_client: Annotated[
        int,
        Meta(
            ge=1,
            le=100_000,
            description="requests one client address may have in progress or waiting at once "
            "(logins too; /health, /metrics and static files apart): one more is 503 at once, so "
            "one client cannot take every slot (behind a reverse proxy, the address it forwards)",
        ),
    ] = 8
    wait_s: Annotated[
        float,
        Meta(
            gt=0,
            le=60,
            description="the longest a request waits for a slot (or a ledger connection); then 503",
        ),
    ] = 0.5
    logins: Annotated[
        int,
        Meta(
            ge=1,
            le=256,
            description="password hashes at once (POST /api/token, POST /masuk: argon2id, 64 MiB "
            "and ~0.25 s of CPU each at production cost); default: half the cores, at least 1",
        ),
    ] = field(default_factory=_half_the_cores)
    login_nice: Annotated[
        int,
        Meta(
            ge=0,
            le=19,
            description="how much lower the CPU priority of password hashing is (Linux nice; 0: "
            "the same as the rest): when the cores are busy, reads go first and hashes take what "
            "is left",
        ),
    ] = 10
    login_queue: Annotated[
        int, Meta(ge=0, le=10_000, description="logins waiting for a slot; more: 503 at once")
    ] = 8
    login_wait_s: Annotated[
        float, Meta(gt=0, le=60, description="the longest a login waits for a slot; then 503")
    ] = 0.5
    retry_after_s: Annotated[
        int, Meta(ge=1, le=3600, description="the Retry-After of a 503 (seconds)")
    ] = 2
    health_ttl_s: Annotated[
        float,
        Meta(
            ge=0,
            le=60,
            description="GET /health reuses its last probe of the broker, InfluxDB and the ledger "
            "for this long (one probe at a time whatever the number of callers)",
        ),
    ] = 1.0

    @property
    def total(self) -> int:
        """The most requests in progress or waiting at once: every request slot and its queue,
        every login slot and its queue."""
        return self.requests + self.queue + self.logins + self.login_queue

    def __post_init__(self) -> None:
        share_within(
            "per_client", self.per_client, "requests + queue + logins + login_queue", self.total
        )


class ApiSettings(WastebankSettings, kw_only=True):
    broker_user: ClassVar[str | None] = "api"
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 8000
    public_url: Annotated[str | None, Meta(description="base URL printed for people")] = None
    access_log: Annotated[
        bool,
        Meta(
            description="uvicorn's line per request (WASTEBANK_ACCESS_LOG=true); off: it costs a "
            "noticeable share of a balance's CPU (docs/scaling.md), and the reverse proxy in front "
            "logs requests anyway; writes are in the audit log either way"
        ),
    ] = False
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    influx: InfluxSettings = field(default_factory=InfluxSettings)
    ledger_url: str = field(default_factory=default_ledger_url)
    default_timezone: str = "Asia/Jakarta"
    auth: AuthSettings = field(default_factory=AuthSettings)
    reports: ReportSettings = field(default_factory=ReportSettings)  # DLH: generation, targets
    pages: PagesSettings = field(default_factory=PagesSettings)
    capacity: CapacitySettings = field(default_factory=CapacitySettings)  # load: api/capacity.py
    money: MoneyRules = field(default_factory=MoneyRules)  # limits, second approval
    http: HttpSettings = field(default_factory=HttpSettings)
    imports: ImportLimits = field(default_factory=ImportLimits)  # uploads: XLSX archive limits
    fleet: FleetSettings = field(default_factory=FleetSettings)  # offline after: docs/fleet.md
    nik_key: Annotated[
        SecretStr | None,
        Meta(
            description="HMAC key for NIK hashes (WASTEBANK_NIK_KEY, as for `wastebank seed`); "
            "unset: a member's NIK cannot be recorded through the API"
        ),
    ] = None

    def __post_init__(self) -> None:
        check_key("nik_key", self.nik_key)
        super().__post_init__()
