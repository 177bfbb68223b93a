"""The API process's settings (``WASTEBANK_*``; see wastebank/config.py)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr

from wastebank.access import AuthSettings
from wastebank.bulk_import import ImportLimits
from wastebank.config import InfluxSettings, MqttSettings, WastebankSettings, default_ledger_url
from wastebank.money_rules import MoneyRules
from wastebank.reports import ReportSettings

REPO_ROOT = Path(__file__).resolve().parent.parent


class PagesSettings(BaseModel):
    """``[pages]`` (environment ``WASTEBANK_PAGES__*``): the HTML pages' front-end files and map."""

    node_modules: Path = Field(
        default=REPO_ROOT / "node_modules",
        description="where `npm ci` (make install) put Chart.js and Leaflet; served under "
        "/static/vendor (no CDN at run time)",
    )
    map_tile_url: str | None = Field(
        default=None,
        description="a tile server for the DLH map, e.g. https://tiles.example/{z}/{x}/{y}.png; "
        "unset (the default: sites reach no tile server): markers on a plain background",
    )
    map_tile_attribution: str = ""
    broker_run_dir: Path | None = Field(
        default=None,
        description="the run dir of the broker's files (devices.toml, passwd, acl) when they "
        "are on this machine: the admin's device page lists them (and can add devices)",
    )


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


class ApiSettings(WastebankSettings):
    broker_user: ClassVar[str | None] = "api"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(default=None, description="base URL printed for people")
    access_log: bool = Field(
        default=False,
        description="uvicorn's line per request (WASTEBANK_ACCESS_LOG=true); off: it costs ~8 % "
        "of a balance's CPU (bench/api.py), and the reverse proxy in front logs requests anyway; "
        "writes are in the audit log either way",
    )
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    ledger_url: str = Field(default_factory=default_ledger_url)
    default_timezone: str = "Asia/Jakarta"
    auth: AuthSettings = Field(default_factory=AuthSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)  # DLH: generation, targets
    pages: PagesSettings = Field(default_factory=PagesSettings)
    money: MoneyRules = Field(default_factory=MoneyRules)  # limits, second approval
    http: HttpSettings = Field(default_factory=HttpSettings)
    imports: ImportLimits = Field(default_factory=ImportLimits)  # uploads: XLSX archive limits
    nik_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="HMAC key for NIK hashes (WASTEBANK_NIK_KEY, as for `wastebank seed`); "
        "unset: a member's NIK cannot be recorded through the API",
    )
