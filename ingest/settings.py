"""The ingester's settings (``WASTEBANK_*``; docs/operations.md): broker, InfluxDB, ledger,
batching, the kinds of message it takes, and the daily reconciliation."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from ingest.metrics import MetricsSettings
from wastebank.config import (
    InfluxSettings,
    MqttSettings,
    WastebankSettings,
    default_ledger_url,
)
from wastebank.money_rules import MoneyRules

Kind = Literal["deposit", "fill", "health", "alert"]
KINDS: tuple[Kind, ...] = ("deposit", "fill", "health", "alert")


class ReconcileSettings(BaseModel):
    """The daily comparison of the ledger with InfluxDB (wastebank/reconcile/), run by an
    ingester that takes deposits. ``WASTEBANK_RECONCILE__*``; see docs/operations.md, "Ledger
    and InfluxDB agree"."""

    interval_s: float = Field(
        default=86_400, ge=0, description="seconds between runs; 0: no reconciliation here"
    )
    days: int = Field(
        default=2, ge=1, le=366, description="local days compared, today included (2: yesterday)"
    )
    first_delay_s: float = Field(
        default=60, ge=0, description="the first run, this long after the ingester starts"
    )
    settle_s: float = Field(
        default=30,
        ge=0,
        description="a drift is compared again after this long (a deposit between its ledger "
        "commit and its point is not drift)",
    )


class IngestSettings(WastebankSettings):
    broker_user: ClassVar[str | None] = "ingest"
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    ledger_url: str = Field(default_factory=default_ledger_url)
    client_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.@-]{1,64}$",
        description="this instance's MQTT session: '{username}@{client_id}'; unset: "
        "'{host}.{n}', n the lowest number no other ingester on this host holds (one "
        "persistent session per instance, kept across restarts)",
    )
    shared_group: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="subscribe as $share/<group>/...: ingesters of one group split the stream",
    )
    metrics: MetricsSettings = MetricsSettings()
    batch_size: int = Field(default=2000, ge=1, le=50_000)
    batch_max_age_s: float = Field(default=0.2, gt=0, le=60)
    kinds: tuple[Kind, ...] = Field(
        default=KINDS,
        min_length=1,
        description="message kinds to subscribe to; without 'deposit' the ledger (SQLAlchemy) "
        "is loaded only if a dead letter has to be stored. With 'deposit' also the broker's "
        "refusal events (session_takeover alerts in the ledger)",
    )
    reconcile: ReconcileSettings = ReconcileSettings()
    money: MoneyRules = Field(
        default_factory=MoneyRules,
        description="the money rules (wastebank/money_rules.py): a scale deposit heavier than "
        "its scale's limit is an 'over_limit' dead letter, never credited unseen",
    )
