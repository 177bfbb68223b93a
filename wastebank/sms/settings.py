"""`wastebank sms run`'s settings: ``[sms]`` of its TOML (``--config``), or ``WASTEBANK_SMS__*``;
the ledger by ``ledger_url`` (``WASTEBANK_LEDGER_URL``, as the ingester's)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from wastebank.config import RUN_DIR, WastebankSettings, default_ledger_url


class SmsOptions(BaseModel):
    smsdrc: Path = Field(
        default=RUN_DIR / "gammu" / "smsdrc",
        description="Gammu SMSD's config (Service = files); its folders are read from it",
    )
    processed_path: Path | None = Field(
        default=None,
        description="where read inbox files are moved (default: beside the inbox, "
        "<inbox>-processed)",
    )
    interval_s: float = Field(default=5.0, gt=0, le=3600, description="seconds between passes")
    batch: int = Field(default=100, ge=1, le=10_000, description="messages handed per pass")
    max_age_h: float = Field(
        default=24.0,
        gt=0,
        description="a receipt still queued after this many hours is not sent (failed, "
        "'expired'): the modem was away and old news costs money",
    )
    balance_replies_per_day: int = Field(
        default=5, ge=0, description="balance replies per member in 24 hours; 0: none"
    )
    banks: list[str] = Field(
        default_factory=list,
        description="send only these banks' members' messages (a modem at a bank); empty: all",
    )


class SmsSettings(WastebankSettings):
    ledger_url: str = Field(default_factory=default_ledger_url)
    sms: SmsOptions = Field(default_factory=SmsOptions)
