"""SMS for members without a smartphone: deposit and withdrawal receipts, and a balance reply,
through Gammu SMSD (a USB modem at the bank or the city office; Gammu's dummy phone in tests).

- :mod:`~wastebank.sms.texts`: every text, GSM-7 only and one SMS long (the limits, tested);
- :mod:`~wastebank.sms.numbers`: phone numbers in one form, ``+62...``, and which are mobile;
- :mod:`~wastebank.sms.models`: ``sms_message`` and ``sms_inbound`` (ledger database, 0013);
- :mod:`~wastebank.sms.queue`: queueing a receipt in the transaction that moves the money;
- :mod:`~wastebank.sms.gammu`: SMSD's FILES backend (outbox, sent, error, inbox), its dummy
  phone;
- :mod:`~wastebank.sms.delivery`: one pass of `wastebank sms run`;
- :mod:`~wastebank.sms.settings`: its settings.

A domain package: it imports the ledger, and neither the ledger nor any process is imported
here. The edges call it: the ingester's batch (deposits), the API's pay route (withdrawals),
the CLI (`wastebank sms run`). Only members with ``member.sms_opt_in`` get messages.
"""

from __future__ import annotations

from wastebank.sms.delivery import Delivery, RunnerBusy, RunStats, UnknownBank, answer, exclusive
from wastebank.sms.gammu import (
    GAMMU_SMSD,
    GammuConfigError,
    GammuFiles,
    Inbound,
    dummy_config,
    start_smsd,
)
from wastebank.sms.models import (
    InboundOutcome,
    SmsInbound,
    SmsKind,
    SmsMessage,
    SmsStatus,
)
from wastebank.sms.numbers import mobile, normalize
from wastebank.sms.queue import opted_in_with, queue_deposits, queue_withdrawal
from wastebank.sms.settings import SmsOptions, SmsSettings
from wastebank.sms.texts import (
    MAX_SEPTETS,
    balance_text,
    deposit_text,
    gsm7,
    is_balance_request,
    is_gsm7,
    septets,
    withdrawal_text,
)

__all__ = [
    "GAMMU_SMSD",
    "MAX_SEPTETS",
    "Delivery",
    "GammuConfigError",
    "GammuFiles",
    "Inbound",
    "InboundOutcome",
    "RunStats",
    "RunnerBusy",
    "SmsInbound",
    "SmsKind",
    "SmsMessage",
    "SmsOptions",
    "SmsSettings",
    "SmsStatus",
    "UnknownBank",
    "answer",
    "balance_text",
    "deposit_text",
    "dummy_config",
    "exclusive",
    "gsm7",
    "is_balance_request",
    "is_gsm7",
    "mobile",
    "normalize",
    "opted_in_with",
    "queue_deposits",
    "queue_withdrawal",
    "septets",
    "start_smsd",
    "withdrawal_text",
]
