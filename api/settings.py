"""The API process's settings (``WASTEBANK_*``; see wastebank/config.py)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from wastebank.access import AuthSettings
from wastebank.config import InfluxSettings, MqttSettings, WastebankSettings, default_ledger_url
from wastebank.reports import ReportSettings


class ApiSettings(WastebankSettings):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(default=None, description="base URL printed for people")
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    ledger_url: str = Field(default_factory=default_ledger_url)
    default_timezone: str = "Asia/Jakarta"
    auth: AuthSettings = Field(default_factory=AuthSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)  # DLH: generation, targets
    nik_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="HMAC key for NIK hashes (WASTEBANK_NIK_KEY, as for `wastebank seed`); "
        "unset: a member's NIK cannot be recorded through the API",
    )
