"""Importing members: each row checked against the ledger and the rest of the file, then
registered through :func:`wastebank.ledger.create_member`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
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
from wastebank.bulk_import.values import (
    cell_text,
    checked,
    match_key,
    missing_field,
    nik_problem,
    normalize_phone,
    rt_rw,
)

MEMBER_KINDS = {
    "individual": ledger.MemberKind.INDIVIDUAL,
    "perorangan": ledger.MemberKind.INDIVIDUAL,
    "pribadi": ledger.MemberKind.INDIVIDUAL,
    "individu": ledger.MemberKind.INDIVIDUAL,
    "group": ledger.MemberKind.GROUP,
    "kelompok": ledger.MemberKind.GROUP,
    "institution": ledger.MemberKind.INSTITUTION,
    "lembaga": ledger.MemberKind.INSTITUTION,
    "instansi": ledger.MemberKind.INSTITUTION,
    "badan": ledger.MemberKind.INSTITUTION,
}
MEMBER_NO = re.compile(r"[0-9A-Za-z][0-9A-Za-z._/-]{0,31}")
CARD_UID = re.compile(r"(?:[0-9A-F]{2}){4,10}")  # 4, 7 or 10 bytes (ISO 14443), as hex


MEMBER_COLUMNS: dict[str, tuple[str, ...]] = {
    "member_no": ("no_nasabah", "nomor_nasabah", "nomor_anggota", "no_anggota", "member_number"),
    "name": ("nama", "nama_nasabah", "nama_lengkap"),
    "bank": ("kode_bank", "bank_code", "bank_sampah"),
    "kind": ("jenis", "jenis_nasabah", "tipe"),
    "phone": ("telepon", "no_hp", "nomor_hp", "hp", "no_telepon", "telp", "whatsapp", "wa"),
    "kelurahan": ("desa", "kelurahan_desa", "desa_kelurahan"),
    "kecamatan": (),
    "rt": (),
    "rw": (),
    "nik": ("no_nik", "nomor_induk_kependudukan"),
    "cards": ("card", "kartu", "uid_kartu", "card_uid", "no_kartu"),
}
MEMBER_LABELS = {"member_no": "no_nasabah", "name": "nama", "bank": "kode_bank"}


@dataclass
class _MemberRow:
    member_no: str
    name: str
    bank: ledger.Bank
    kind: str
    phone: str | None
    kelurahan: ledger.Kelurahan | None
    rt: str | None
    rw: str | None
    nik: str | None
    cards: list[str]


_CHUNK = 500  # values per IN (...) query


def _split_cards(text: str | None) -> list[str]:
    return [c.upper() for c in re.split(r"[\s,;]+", text or "") if c]


class _MemberChecks:
    """The reference data member rows are checked against, read once."""

    def __init__(self, session: Session, nik_key: bytes | None) -> None:
        self.s = session
        self.nik_key = nik_key
        self.banks = {b.code: b for b in session.scalars(select(ledger.Bank))}
        self.areas: dict[int, list[ledger.Kelurahan]] = {}  # city id -> its kelurahan
        self.seen_members: dict[str, int] = {}  # in this file: member_no -> row
        self.seen_cards: dict[str, int] = {}
        self.seen_niks: dict[str, int] = {}
        self.taken_members: set[str] = set()  # of the file's member numbers, those in the ledger
        self.taken_cards: set[str] = set()

    def prefetch(self, rows: list[tuple[int, dict[str, Cell]]]) -> None:
        """Which of the file's member numbers and cards the ledger has, in a few queries."""
        numbers = sorted({no for _, cells in rows if (no := cell_text(cells.get("member_no")))})
        uids = sorted(
            {uid for _, cells in rows for uid in _split_cards(cell_text(cells.get("cards")))}
        )
        for start in range(0, len(numbers), _CHUNK):
            self.taken_members.update(
                self.s.scalars(
                    select(ledger.Member.member_no).where(
                        ledger.Member.member_no.in_(numbers[start : start + _CHUNK])
                    )
                )
            )
        for start in range(0, len(uids), _CHUNK):
            self.taken_cards.update(
                self.s.scalars(
                    select(ledger.Card.uid).where(ledger.Card.uid.in_(uids[start : start + _CHUNK]))
                )
            )

    def kelurahan_of(self, bank: ledger.Bank, name: str, kecamatan: str | None) -> ledger.Kelurahan:
        if bank.city_id not in self.areas:
            self.areas[bank.city_id] = list(
                self.s.scalars(
                    select(ledger.Kelurahan)
                    .join(ledger.Kecamatan)
                    .where(ledger.Kecamatan.city_id == bank.city_id)
                )
            )
        found = [
            k
            for k in self.areas[bank.city_id]
            if match_key(k.name) == match_key(name)
            and (kecamatan is None or match_key(k.kecamatan.name) == match_key(kecamatan))
        ]
        where = f"{name} (kec. {kecamatan})" if kecamatan else name
        if not found:
            raise ValueError(
                f"kelurahan/desa tidak dikenal / unknown kelurahan {where!r} in {bank.city.name}"
            )
        if len(found) > 1:
            raise ValueError(
                f"kelurahan {name!r} ada di beberapa kecamatan, isi kolom kecamatan / is in "
                f"several kecamatan: give the kecamatan column"
            )
        return found[0]

    def check(self, number: int, cells: dict[str, Cell]) -> tuple[_MemberRow | None, list[str]]:
        """The row as it would be registered, or None; and every reason it is refused."""
        reasons: list[str] = []
        member_no, name, bank = self._identity(number, cells, reasons)
        kind = self._kind(cell_text(cells.get("kind")), reasons)
        phone = None
        if cell_text(cells.get("phone")):
            phone = checked(reasons, normalize_phone, cells["phone"])
        kelurahan = self._kelurahan(bank, cells, reasons)
        rt = checked(reasons, rt_rw, cells.get("rt"), "RT")
        rw = checked(reasons, rt_rw, cells.get("rw"), "RW")
        nik = cell_text(cells.get("nik"))
        if nik is not None:
            reasons += self._nik(number, cells["nik"])
        cards = self._cards(number, cell_text(cells.get("cards")), reasons)
        if reasons or member_no is None or name is None or bank is None or kind is None:
            return None, reasons
        return (
            _MemberRow(member_no, name, bank, kind, phone, kelurahan, rt, rw, nik, cards),
            reasons,
        )

    def _identity(
        self, number: int, cells: dict[str, Cell], reasons: list[str]
    ) -> tuple[str | None, str | None, ledger.Bank | None]:
        """The member number, the name and the bank, each required; the number well formed and
        new (in the ledger and in the file), the bank known."""
        member_no, name, bank_code = (
            cell_text(cells.get(k)) for k in ("member_no", "name", "bank")
        )
        for key, value in (("member_no", member_no), ("name", name), ("bank", bank_code)):
            if value is None:
                reasons.append(missing_field(key, MEMBER_LABELS[key]))
        if member_no is not None:
            reasons += self._member_no(number, member_no)
        if name is not None and len(name) > 200:
            reasons.append("nama terlalu panjang / name over 200 characters")
        bank = self.banks.get(bank_code) if bank_code else None
        if bank_code is not None and bank is None:
            reasons.append(f"bank tidak dikenal / unknown bank {bank_code!r}")
        return member_no, name, bank

    def _member_no(self, number: int, member_no: str) -> list[str]:
        earlier = self.seen_members.setdefault(member_no, number)
        if not MEMBER_NO.fullmatch(member_no):
            return [
                f"nomor nasabah tidak sah / bad member number {member_no!r}: up to 32 "
                "letters, digits and . _ / - (e.g. AMB-0001)"
            ]
        if earlier != number:
            return [
                f"nomor nasabah ganda (baris {earlier}) / duplicate member number "
                f"{member_no} (row {earlier})"
            ]
        if member_no in self.taken_members:
            return [f"nomor nasabah sudah terdaftar / member number {member_no} already exists"]
        return []

    @staticmethod
    def _kind(text: str | None, reasons: list[str]) -> str | None:
        if text is None:
            return ledger.MemberKind.INDIVIDUAL
        kind = MEMBER_KINDS.get(match_key(text))
        if kind is None:
            reasons.append(
                f"jenis tidak dikenal / unknown kind {text!r}: perorangan/individual, "
                "kelompok/group or lembaga/institution"
            )
        return kind

    def _kelurahan(
        self, bank: ledger.Bank | None, cells: dict[str, Cell], reasons: list[str]
    ) -> ledger.Kelurahan | None:
        name = cell_text(cells.get("kelurahan"))
        if name is None or bank is None:
            return None
        return checked(reasons, self.kelurahan_of, bank, name, cell_text(cells.get("kecamatan")))

    def _nik(self, number: int, value: Cell) -> list[str]:
        if (problem := nik_problem(value)) is not None:
            return [problem]
        if self.nik_key is None:
            return [
                "NIK tidak dapat dicatat tanpa kunci NIK (WASTEBANK_NIK_KEY) / a NIK cannot be "
                "recorded without the NIK key"
            ]
        digest = ledger.hash_nik(str(value), self.nik_key)
        if (earlier := self.seen_niks.setdefault(digest, number)) != number:
            return [f"NIK ganda (baris {earlier}) / duplicate NIK (row {earlier})"]
        holders = ledger.members_with_nik(self.s, str(value), self.nik_key)
        if holders:
            nos = ", ".join(m.member_no for m in holders)
            return [f"NIK sudah terdaftar / NIK already registered: {nos}"]
        return []

    def _cards(self, number: int, text: str | None, reasons: list[str]) -> list[str]:
        cards = _split_cards(text)
        for uid in cards:
            if not CARD_UID.fullmatch(uid):
                reasons.append(
                    f"UID kartu tidak sah / bad card UID {uid!r} (8, 14 or 20 hex digits)"
                )
            elif (earlier := self.seen_cards.setdefault(uid, number)) != number:
                reasons.append(
                    f"kartu ganda (baris {earlier}) / duplicate card {uid} (row {earlier})"
                )
            elif uid in self.taken_cards:
                reasons.append(f"kartu sudah dipakai / card {uid} already belongs to a member")
        return cards


def import_members(
    engine: Engine,
    path: Path,
    *,
    mode: Mode = Mode.ALL_OR_NOTHING,
    dry_run: bool = False,
    nik_key: bytes | None = None,
    sheet: str | None = None,
    progress: Progress | None = None,
    limits: ImportLimits | None = None,
) -> ImportReport:
    """Register the members listed in ``path`` (see the module's doc). Raises
    :class:`ImportFileError` when the file cannot be read at all (:class:`ArchiveTooLarge`
    when it would unpack beyond ``limits``)."""
    table = read_table(path, MEMBER_COLUMNS, sheet, limits)
    results: list[RowResult] = []
    total = len(table.rows)
    with import_session(engine) as session:
        checks = _MemberChecks(session, nik_key)
        checks.prefetch(table.rows)
        for done, (number, cells) in enumerate(table.rows, start=1):
            row, reasons = checks.check(number, cells)
            result = RowResult(number, cell_text(cells.get("member_no")) or "", RowStatus.REFUSED)
            result.reasons = reasons
            if row is not None:
                try:
                    with session.begin_nested():
                        ledger.create_member(
                            session,
                            bank=row.bank,
                            member_no=row.member_no,
                            name=row.name,
                            kind=row.kind,
                            phone=row.phone,
                            kelurahan=row.kelurahan,
                            rt=row.rt,
                            rw=row.rw,
                            nik=row.nik,
                            nik_key=nik_key,
                            cards=row.cards,
                        )
                    result.status = RowStatus.IMPORTED
                except (IntegrityError, ValueError, ledger.LedgerError) as exc:
                    result.reasons.append(f"ditolak basis data / refused by the ledger: {exc}")
            results.append(result)
            if progress is not None:
                progress(done, total)
        finish(session, results, mode, dry_run)
    return ImportReport(ImportKind.MEMBERS, path.name, mode, dry_run, results, table.ignored)
