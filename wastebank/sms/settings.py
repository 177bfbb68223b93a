"""`wastebank sms run`'s settings: ``[sms]`` of its TOML (``--config``), or ``WASTEBANK_SMS__*``;
the ledger by ``ledger_url`` (``WASTEBANK_LEDGER_URL``, as the ingester's)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from msgspec import Meta, field

from wastebank.config import RUN_DIR, Settings, WastebankSettings, default_ledger_url


class SmsOptions(Settings, kw_only=True):
    smsdrc: Annotated[
        Path,
        Meta(description="Gammu SMSD's config (Service = files); its folders are read from it"),
    ] = RUN_DIR / "gammu" / "smsdrc"
    processed_path: Annotated[
        Path | None,
        Meta(
            description="where read inbox files are moved (default: beside the inbox, "
            "<inbox>-processed)"
        ),
    ] = None
    interval_s: Annotated[float, Meta(gt=0, le=3600, description="seconds between passes")] = 5.0
    batch: Annotated[int, Meta(ge=1, le=10_000, description="messages handed per pass")] = 100
    max_age_h: Annotated[
        float,
        Meta(
            gt=0,
            description="a receipt still queued after this many hours is not sent (failed, "
            "'expired'): the modem was away and old news costs money",
        ),
    ] = 24.0
    balance_replies_per_day: Annotated[
        int, Meta(ge=0, description="balance replies per member in 24 hours; 0: none")
    ] = 5
    banks: Annotated[
        list[str],
        Meta(
            description="send only these banks' members' messages (a modem at a bank); empty: all"
        ),
    ] = field(default_factory=list)


class SmsSettings(WastebankSettings, kw_only=True):
    ledger_url: str = field(default_factory=default_ledger_url)
    sms: SmsOptions = field(default_factory=SmsOptions)
