"""The ingester's settings (``WASTEBANK_*``; docs/operations.md): broker, InfluxDB, ledger,
batching, the kinds of message it takes, and the daily reconciliation."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from msgspec import Meta, field

from ingest.metrics import MetricsSettings
from wastebank.config import (
    InfluxSettings,
    MqttSettings,
    Settings,
    WastebankSettings,
    default_ledger_url,
)
from wastebank.money_rules import MoneyRules

Kind = Literal["deposit", "fill", "health", "alert"]
KINDS: tuple[Kind, ...] = ("deposit", "fill", "health", "alert")


class ReconcileSettings(Settings, kw_only=True):
    """The daily comparison of the ledger with InfluxDB (wastebank/reconcile/), run by an
    ingester that takes deposits. ``WASTEBANK_RECONCILE__*``; see docs/operations.md, "Ledger
    and InfluxDB agree"."""

    interval_s: Annotated[
        float, Meta(ge=0, description="seconds between runs; 0: no reconciliation here")
    ] = 86_400
    days: Annotated[
        int, Meta(ge=1, le=366, description="local days compared, today included (2: yesterday)")
    ] = 2
    first_delay_s: Annotated[
        float, Meta(ge=0, description="the first run, this long after the ingester starts")
    ] = 60
    settle_s: Annotated[
        float,
        Meta(
            ge=0,
            description="a drift is compared again after this long (a deposit between its ledger "
            "commit and its point is not drift)",
        ),
    ] = 30


class IngestSettings(WastebankSettings, kw_only=True):
    broker_user: ClassVar[str | None] = "ingest"
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    influx: InfluxSettings = field(default_factory=InfluxSettings)
    ledger_url: str = field(default_factory=default_ledger_url)
    client_id: (
        Annotated[
            str,
            Meta(
                pattern=r"^[A-Za-z0-9_.@-]{1,64}$",
                description="this instance's MQTT session: '{username}@{client_id}'; unset: "
                "'{host}.{n}', n the lowest number no other ingester on this host holds (one "
                "persistent session per instance, kept across restarts)",
            ),
        ]
        | None
    ) = None
    shared_group: (
        Annotated[
            str,
            Meta(
                pattern=r"^[A-Za-z0-9_-]{1,64}$",
                description="subscribe as $share/<group>/...: ingesters of one group split the "
                "stream",
            ),
        ]
        | None
    ) = None
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    batch_size: Annotated[int, Meta(ge=1, le=50_000)] = 2000
    batch_max_age_s: Annotated[float, Meta(gt=0, le=60)] = 0.2
    kinds: Annotated[
        tuple[Kind, ...],
        Meta(
            min_length=1,
            description="message kinds to subscribe to; without 'deposit' the ledger (SQLAlchemy) "
            "is loaded only if a dead letter has to be stored. With 'deposit' also the broker's "
            "refusal events (session_takeover alerts in the ledger)",
        ),
    ] = KINDS
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    money: Annotated[
        MoneyRules,
        Meta(
            description="the money rules (wastebank/money_rules.py): a scale deposit heavier than "
            "its scale's limit is an 'over_limit' dead letter, never credited unseen"
        ),
    ] = field(default_factory=MoneyRules)
