"""What applying a deposit gives back: its outcome, and the deposit as the ledger keeps it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class AppliedDeposit:
    outcome: Outcome
    event_id: str
    member_no: str
    bank_code: str
    kecamatan: str
    category_code: str
    net_g: int
    amount_idr: int
    price_per_kg_idr: int
    measured_at: datetime | None = None
    gateway_id: str = ""
    clock_synced: bool | None = None
    """Where and when, as the ledger keeps them, and whether the gateway's clock was
    synchronized when it stamped the time: what the deposit's InfluxDB point is made of."""
