"""Importing prices: each row checked (bank, category, whole Rupiah, effective date, the author an
attendant of the bank), then set through :func:`wastebank.ledger.set_price`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.bulk_import.files import Cell, ImportLimits, read_table
from wastebank.bulk_import.report import (
    ImportKind,
    ImportReport,
    Mode,
    Progress,
    RowResult,
    RowStatus,
)
from wastebank.bulk_import.transaction import finish, import_session
from wastebank.bulk_import.values import cell_text, checked, missing_field, parse_price, parse_when
from wastebank.money_rules import DEFAULT_RULES, MoneyRules

PRICE_COLUMNS: dict[str, tuple[str, ...]] = {
    "bank": ("kode_bank", "bank_code", "bank_sampah"),
    "category": ("kategori", "kode_kategori", "jenis_sampah", "category_code"),
    "price": ("harga", "harga_rp", "price_idr", "harga_per_kg", "harga_beli"),
    "effective_from": (
        "berlaku_mulai",
        "mulai_berlaku",
        "tanggal_berlaku",
        "berlaku_sejak",
        "effective_date",
        "tanggal",
    ),
}


def import_prices(
    engine: Engine,
    path: Path,
    *,
    author: str,
    mode: Mode = Mode.ALL_OR_NOTHING,
    dry_run: bool = False,
    sheet: str | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    limits: ImportLimits | None = None,
    rules: MoneyRules = DEFAULT_RULES,
) -> ImportReport:
    """Set the prices listed in ``path`` through :func:`wastebank.ledger.set_price`, as
    ``author`` (an attendant of each bank or of its induk), each held to the price limits of
    ``rules`` (a row beyond them is refused with the setting named). A row without an effective
    date takes effect at ``now`` (the moment of the import). See the module's doc."""
    table = read_table(path, PRICE_COLUMNS, sheet, limits)
    results: list[RowResult] = []
    total = len(table.rows)
    with import_session(engine) as session:
        checks = _PriceChecks(session, author, now or ledger.utcnow())
        for done, (number, cells) in enumerate(table.rows, start=1):
            row, key, reasons = checks.check(number, cells)
            result = RowResult(number, key, RowStatus.REFUSED, reasons)
            if row is not None:
                try:
                    ledger.set_price(
                        session,
                        row.bank.code,
                        row.category.code,
                        row.price_idr,
                        row.when,
                        author=author,
                        rules=rules,
                    )
                    result.status = RowStatus.IMPORTED
                except (ValueError, ledger.LedgerError) as exc:
                    result.reasons.append(f"ditolak buku besar / refused by the ledger: {exc}")
            results.append(result)
            if progress is not None:
                progress(done, total)
        finish(session, results, mode, dry_run)
    return ImportReport(ImportKind.PRICES, path.name, mode, dry_run, results, table.ignored)


@dataclass(frozen=True)
class _PriceRow:
    bank: ledger.Bank
    category: ledger.Category
    price_idr: int
    when: datetime


class _PriceChecks:
    """The banks and categories price rows are checked against, read once, and the rows seen."""

    def __init__(self, session: Session, author: str, now: datetime) -> None:
        self.s = session
        self.author = author
        self.now = now
        self.banks = {b.code: b for b in session.scalars(select(ledger.Bank))}
        self.categories = {c.code: c for c in session.scalars(select(ledger.Category))}
        self.seen: dict[tuple[str, str, datetime], int] = {}  # -> the row that set it first

    def check(self, number: int, cells: dict[str, Cell]) -> tuple[_PriceRow | None, str, list[str]]:
        """The price as it would be set, or None; the row's key (bank/category@when); and every
        reason it is refused."""
        reasons: list[str] = []
        bank_code, category_code = cell_text(cells.get("bank")), cell_text(cells.get("category"))
        bank = self._bank(bank_code, reasons)
        category = self._category(category_code, reasons)
        price = self._price(cells, reasons)
        when = self._when(cells, bank, reasons)
        if bank is not None and not bank.use_parent_price:
            self._attendant(bank, reasons)
        key = f"{bank_code or '?'}/{category_code or '?'}@{when.isoformat()}"
        if bank_code and category_code:
            earlier = self.seen.setdefault((bank_code, category_code, when), number)
            if earlier != number:
                reasons.append(f"baris ganda (baris {earlier}) / duplicate of row {earlier}")
        if reasons or bank is None or category is None or price is None:
            return None, key, reasons
        return _PriceRow(bank, category, price, when), key, reasons

    def _bank(self, code: str | None, reasons: list[str]) -> ledger.Bank | None:
        bank = self.banks.get(code) if code else None
        if code is None:
            reasons.append(missing_field("bank", "kode_bank"))
        elif bank is None:
            reasons.append(f"bank tidak dikenal / unknown bank {code!r}")
        elif bank.use_parent_price:
            parent = bank.parent.code if bank.parent else "?"
            reasons.append(
                f"{bank.code} memakai harga induk {parent} / buys at its induk's prices: "
                f"set them for {parent}"
            )
        return bank

    def _category(self, code: str | None, reasons: list[str]) -> ledger.Category | None:
        category = self.categories.get(code) if code else None
        if code is None:
            reasons.append(missing_field("category", "kategori"))
        elif category is None:
            reasons.append(f"kategori tidak dikenal / unknown category {code!r}")
        return category

    @staticmethod
    def _price(cells: dict[str, Cell], reasons: list[str]) -> int | None:
        if cell_text(cells.get("price")) is None:
            reasons.append(missing_field("price", "harga"))
            return None
        return checked(reasons, parse_price, cells["price"])

    def _when(
        self, cells: dict[str, Cell], bank: ledger.Bank | None, reasons: list[str]
    ) -> datetime:
        """The effective date in the bank's city (the import's moment when none is given, or
        when it cannot be read: that row is refused then)."""
        if cell_text(cells.get("effective_from")) is None:
            return self.now
        tz = ZoneInfo(bank.city.timezone) if bank else ZoneInfo("UTC")
        when = checked(reasons, parse_when, cells["effective_from"], tz)
        return self.now if when is None else when

    def _attendant(self, bank: ledger.Bank, reasons: list[str]) -> None:
        try:
            ledger.require_attendant(self.s, bank, self.author)
        except ledger.NotAllowed:
            reasons.append(
                f"{self.author!r} bukan petugas {bank.code} / is not an attendant of {bank.code}"
            )
