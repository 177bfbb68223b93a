"""The ledger: cities, banks, members, cards, categories, prices, deposits, a double-entry journal.

SQLite by default (SQLAlchemy 2), PostgreSQL for multi-node. Money is integer Rupiah, weights are
integer grams, timestamps are stored in UTC and always returned with a time zone.

A deposit is applied exactly once by its ``event_id`` (unique constraint; a replay is reported as a
duplicate, never applied twice) and priced at the bank's price in force at ``measured_at``. Each
applied deposit writes two journal entries that sum to zero: the member's account is credited and
the bank's waste-purchase account is debited. Balances are sums of entries, never stored.

Beside the money journal (integer Rupiah) there is a stock journal (integer grams per category):
a deposit puts its weight into the bank's stock; sales to a pengepul, transfers from a unit to its
induk, and residue or burned waste take it out. Nothing is edited or deleted: a wrong deposit is
voided by reversal entries (and, for a correction, replaced by a new deposit). :func:`verify`
recomputes every entry from the documents (deposits, voids, withdrawals, stock movements) and
reports any difference, any unbalanced transaction and any negative balance or stock.

No function here commits: the caller owns the unit of work (the API request, the CLI command,
the ingester's batch, an import) and commits it or rolls it back. Functions that add reference
data (``create_*``) flush. Operations on money or stock (manual deposits, voids, prices,
withdrawals, stock movements) check under row locks that hold until the caller's transaction
ends (see :func:`request_withdrawal`), and run in a savepoint of it: one that refuses rolls
back whatever it wrote, and the caller's transaction goes on
(:func:`wastebank.ledger.errors.atomic`).

The package's modules, one reason to change each (this ``__init__`` exports their public
names):

- :mod:`~wastebank.ledger.models`, :mod:`~wastebank.ledger.tps_tables`: the tables;
- :mod:`~wastebank.ledger.engine`: engines, migrations at start, PostgreSQL passwords;
- :mod:`~wastebank.ledger.errors`: the refusals, and the savepoint that undoes one;
- :mod:`~wastebank.ledger.registry`: areas, banks, attendants, members, cards, collectors;
- :mod:`~wastebank.ledger.balances`: account names, balances, stock, the balance rule;
- :mod:`~wastebank.ledger.pricing`: the price in force, amounts, setting a price;
- :mod:`~wastebank.ledger.applied`, :mod:`~wastebank.ledger.deposits`: applying deposits;
- :mod:`~wastebank.ledger.summary`: the daily and monthly summaries of deposits;
- :mod:`~wastebank.ledger.manual`: manual deposits, voids, corrections;
- :mod:`~wastebank.ledger.withdrawals`, :mod:`~wastebank.ledger.stock`: money and waste out;
- :mod:`~wastebank.ledger.days`: a bank's day, its totals and its close with the cash counted;
- :mod:`~wastebank.ledger.verify`: checking the books;
- :mod:`~wastebank.ledger.deadletters`: what the ingester could not apply.

It imports nothing of the packages built on it (:mod:`wastebank.access`, :mod:`wastebank.alerts`,
:mod:`wastebank.reconcile`); :func:`wastebank.tables.metadata` gathers their tables.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from wastebank.ledger.applied import (
    AppliedDeposit,
    Outcome,
)
from wastebank.ledger.balances import (
    MemberAccount,
    bank_funds_account,
    bank_purchase_account,
    bank_sales_account,
    bank_stock,
    member_account,
    member_account_summary,
    member_balance,
    member_balances,
    member_pending,
    stock_account,
    stock_flow_account,
    stock_of,
)
from wastebank.ledger.days import (
    Cash,
    CategoryTotal,
    DayAlreadyClosed,
    DayInvalid,
    DayNotClosable,
    DayNotReopenable,
    DayTotals,
    MethodTotal,
    cash_for_close,
    close_day,
    closes_of,
    day_totals,
    day_window,
    latest_close,
    local_day,
    reopen_day,
    zone_of,
)
from wastebank.ledger.deadletters import (
    OVERSIZED_KEPT_BYTES,
    RESOLVED_ID_PREFIX,
    NewDeadLetter,
    add_dead_letters,
    dead_letters,
    deposit_by_event_id,
    get_dead_letter,
    mark_replayed,
    purge_dead_letters,
    record_replay_failure,
    resolve_dead_letter,
    truncated_text,
    unsettled_conflicts,
)
from wastebank.ledger.deposits import (
    apply_deposits,
    member_deposits,
)
from wastebank.ledger.engine import (
    make_engine,
    plain_engine,
    postgresql_conninfo,
    postgresql_password_file,
)
from wastebank.ledger.errors import (
    AlreadyVoided,
    BelowMinimum,
    DepositConflict,
    DepositOverLimit,
    DepositRejected,
    IdempotencyKeyReused,
    InsufficientBalance,
    InsufficientStock,
    InvalidTransition,
    LedgerError,
    NotAllowed,
    NotFound,
    OverLimit,
    PriceHistoryLocked,
    SecondPersonRequired,
)
from wastebank.ledger.manual import (
    MANUAL_ID_ALPHABET,
    MANUAL_ID_ATTEMPTS,
    MANUAL_ID_PATTERN,
    correct_deposit,
    new_manual_id,
    record_manual_deposit,
    void_deposit,
)
from wastebank.ledger.models import (
    NAMING_CONVENTION,
    OPEN_WITHDRAWALS,
    AreaKind,
    Attendant,
    Bank,
    BankKind,
    Base,
    Card,
    Category,
    City,
    Collector,
    DayClose,
    DeadLetter,
    DeadLetterReason,
    Deposit,
    DepositDay,
    DepositMonth,
    DepositVoid,
    JournalEntry,
    Kecamatan,
    Kelurahan,
    MaterialClass,
    Member,
    MemberKind,
    MovementKind,
    PayoutMethod,
    Price,
    SipsnClass,
    StockEntry,
    StockMovement,
    Unit,
    UtcDateTime,
    Withdrawal,
    WithdrawalStatus,
    utcnow,
)
from wastebank.ledger.pricing import (
    amount_for_quantity,
    list_in_force,
    price_in_force,
    set_price,
)
from wastebank.ledger.registry import (
    MemberPrivacySettings,
    create_attendant,
    create_bank,
    create_collector,
    create_member,
    first_city,
    get_member,
    hash_nik,
    members_with_nik,
    require_attendant,
)
from wastebank.ledger.stock import (
    MovementKeyReused,
    StockLine,
    dispose_stock,
    movement_by_key,
    sell_stock,
    stock_lines,
    transfer_stock,
)
from wastebank.ledger.summary import (
    DayKey,
    month_of,
    rebuild_deposit_days,
)
from wastebank.ledger.tps_tables import (
    Tps,
    TpsAlert,
    TpsPickup,
)
from wastebank.ledger.verify import (
    Problem,
    clock_ahead_deposits,
    clock_note,
    unsynced_clock_deposits,
    verify,
    verify_summaries,
)
from wastebank.ledger.withdrawals import (
    approve_withdrawal,
    cancel_withdrawal,
    pay_withdrawal,
    reject_withdrawal,
    repeats_payment,
    request_withdrawal,
)
from wastebank.money_rules import amount_for

__all__ = [
    "AlreadyVoided",
    "AppliedDeposit",
    "AreaKind",
    "Attendant",
    "Bank",
    "BankKind",
    "Base",
    "BelowMinimum",
    "Card",
    "Cash",
    "Category",
    "CategoryTotal",
    "City",
    "Collector",
    "DayAlreadyClosed",
    "DayClose",
    "DayInvalid",
    "DayKey",
    "DayNotClosable",
    "DayNotReopenable",
    "DayTotals",
    "DeadLetter",
    "DeadLetterReason",
    "Deposit",
    "DepositConflict",
    "DepositDay",
    "DepositMonth",
    "DepositOverLimit",
    "DepositRejected",
    "DepositVoid",
    "IdempotencyKeyReused",
    "InsufficientBalance",
    "InsufficientStock",
    "InvalidTransition",
    "JournalEntry",
    "Kecamatan",
    "Kelurahan",
    "LedgerError",
    "MANUAL_ID_ALPHABET",
    "MANUAL_ID_ATTEMPTS",
    "MANUAL_ID_PATTERN",
    "MaterialClass",
    "Member",
    "MemberAccount",
    "MemberKind",
    "MemberPrivacySettings",
    "MethodTotal",
    "MovementKeyReused",
    "MovementKind",
    "NAMING_CONVENTION",
    "NewDeadLetter",
    "OVERSIZED_KEPT_BYTES",
    "NotAllowed",
    "NotFound",
    "OPEN_WITHDRAWALS",
    "Outcome",
    "OverLimit",
    "PayoutMethod",
    "Price",
    "PriceHistoryLocked",
    "Problem",
    "RESOLVED_ID_PREFIX",
    "SecondPersonRequired",
    "Session",
    "SipsnClass",
    "StockEntry",
    "StockLine",
    "StockMovement",
    "Tps",
    "TpsAlert",
    "TpsPickup",
    "Unit",
    "UtcDateTime",
    "Withdrawal",
    "WithdrawalStatus",
    "add_dead_letters",
    "amount_for",
    "amount_for_quantity",
    "apply_deposits",
    "approve_withdrawal",
    "bank_funds_account",
    "bank_purchase_account",
    "bank_sales_account",
    "bank_stock",
    "cancel_withdrawal",
    "cash_for_close",
    "close_day",
    "closes_of",
    "correct_deposit",
    "create_attendant",
    "create_bank",
    "create_collector",
    "create_member",
    "day_totals",
    "day_window",
    "dead_letters",
    "deposit_by_event_id",
    "dispose_stock",
    "first_city",
    "get_dead_letter",
    "get_member",
    "hash_nik",
    "latest_close",
    "local_day",
    "make_engine",
    "mark_replayed",
    "member_account",
    "member_account_summary",
    "member_balance",
    "member_balances",
    "member_deposits",
    "member_pending",
    "members_with_nik",
    "month_of",
    "movement_by_key",
    "new_manual_id",
    "pay_withdrawal",
    "plain_engine",
    "postgresql_conninfo",
    "postgresql_password_file",
    "list_in_force",
    "price_in_force",
    "purge_dead_letters",
    "rebuild_deposit_days",
    "record_manual_deposit",
    "record_replay_failure",
    "reject_withdrawal",
    "reopen_day",
    "repeats_payment",
    "request_withdrawal",
    "require_attendant",
    "resolve_dead_letter",
    "truncated_text",
    "sell_stock",
    "set_price",
    "stock_account",
    "stock_flow_account",
    "stock_lines",
    "stock_of",
    "transfer_stock",
    "unsettled_conflicts",
    "utcnow",
    "unsynced_clock_deposits",
    "clock_ahead_deposits",
    "clock_note",
    "verify",
    "verify_summaries",
    "void_deposit",
    "zone_of",
]
