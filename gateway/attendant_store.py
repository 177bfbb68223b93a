"""What the attendant page keeps in the gateway's SQLite file, so it works while the bank's
internet is down: cached logins, the live sessions, the member directory and price list, and the
journal of the deposits recorded here (with voids queued for the central API).

The file is the outbox's (mode 0600, see :func:`gateway.outbox.private_file`): it holds the key
that signs sessions and the cached password hashes.

Pure storage on the outbox's connection (one file, one connection, the gateway's event loop):
no HTTP, no clock of its own (callers pass ``now``), no password hashing (callers hash, off the
event loop, and pass the hash in).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from gateway import member_search
from gateway.outbox import Outbox, write_transaction
from gateway.stock_store import StockStore
from gateway.withdrawal_store import WithdrawalStore
from wastebank.money_rules import amount_for

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attendant_login (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    bank_codes TEXT NOT NULL,
    cached_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS directory_member (
    member_no TEXT PRIMARY KEY,
    bank_code TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS directory_card (
    uid TEXT PRIMARY KEY,
    member_no TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS directory_price (
    category_code TEXT PRIMARY KEY,
    category_name TEXT NOT NULL,
    unit TEXT NOT NULL,
    price_idr INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS directory_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deposit_journal (
    event_id TEXT PRIMARY KEY,
    outbox_id INTEGER NOT NULL,
    scale_id TEXT NOT NULL,
    member_no TEXT,
    member_name TEXT,
    card_uid TEXT,
    category_code TEXT NOT NULL,
    net_g INTEGER NOT NULL,
    price_per_kg_idr INTEGER,
    attendant TEXT,
    recorded_at TEXT NOT NULL,
    sent_at TEXT,
    void_state TEXT,
    void_reason TEXT,
    void_by TEXT,
    void_requested_at TEXT,
    void_attempts INTEGER NOT NULL DEFAULT 0,
    void_retry_at TEXT,
    void_error TEXT,
    void_done_at TEXT,
    applied_amount_idr INTEGER,
    applied_price_idr INTEGER,
    applied_at TEXT,
    applied_checked_at TEXT
);
CREATE INDEX IF NOT EXISTS deposit_journal_outbox ON deposit_journal (outbox_id);
CREATE INDEX IF NOT EXISTS deposit_journal_recorded ON deposit_journal (recorded_at);
CREATE TABLE IF NOT EXISTS gateway_secret (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS attendant_session (
    sid TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    started_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attendant_session_user ON attendant_session (username);
"""

SendStatus = Literal["pending", "sent", "dropped"]
VoidState = Literal["pending", "done", "refused"]


class AttendantDb:
    """The tables on the outbox's connection (like :class:`gateway.outbox.CalibrationLog`)."""

    def __init__(self, outbox: Outbox) -> None:
        self._db = outbox.connection
        self._db.executescript(_SCHEMA)
        self.logins = LoginCache(self._db)
        self.sessions = Sessions(self._db)
        self.directory = Directory(self._db)
        self.journal = Journal(self._db)
        self.withdrawals = WithdrawalStore(self._db)
        self.stock = StockStore(self._db)  # stock moves queued, last stock (gateway/stock_store.py)

    def secret(self, name: str) -> bytes:
        """A random key of 32 bytes kept in the file (made on first use): e.g. the one that
        signs attendant sessions, so a restart does not sign everybody out."""
        row = self._db.execute("SELECT value FROM gateway_secret WHERE name=?", (name,)).fetchone()
        if row is not None:
            return bytes(row[0])
        value = secrets.token_bytes(32)
        self._db.execute(
            "INSERT OR IGNORE INTO gateway_secret (name, value) VALUES (?, ?)", (name, value)
        )
        (stored,) = self._db.execute(
            "SELECT value FROM gateway_secret WHERE name=?", (name,)
        ).fetchone()
        return bytes(stored)


# ---- logins -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CachedLogin:
    username: str
    password_hash: str
    role: str
    name: str
    bank_codes: tuple[str, ...]
    cached_at: datetime
    expires_at: datetime


class LoginCache:
    """An argon2 hash of each attendant's password (never the password), their role and banks,
    from their last login the central API accepted; good for offline logins until it expires."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def put(
        self,
        username: str,
        password_hash: str,
        *,
        role: str,
        name: str,
        bank_codes: Sequence[str],
        now: datetime,
        ttl: timedelta,
    ) -> CachedLogin:
        login = CachedLogin(
            username, password_hash, role, name, tuple(sorted(bank_codes)), now, now + ttl
        )
        self._db.execute(
            "INSERT OR REPLACE INTO attendant_login (username, password_hash, role, name,"
            " bank_codes, cached_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                username,
                password_hash,
                role,
                name,
                json.dumps(login.bank_codes),
                now.isoformat(),
                login.expires_at.isoformat(),
            ),
        )
        return login

    def get(self, username: str, now: datetime) -> CachedLogin | None:
        """The cached login of ``username`` unless it has expired (an expired one is deleted)."""
        row = self._db.execute(
            "SELECT username, password_hash, role, name, bank_codes, cached_at, expires_at"
            " FROM attendant_login WHERE username=?",
            (username,),
        ).fetchone()
        if row is None:
            return None
        login = CachedLogin(
            str(row[0]),
            str(row[1]),
            str(row[2]),
            str(row[3]),
            tuple(json.loads(row[4])),
            datetime.fromisoformat(row[5]),
            datetime.fromisoformat(row[6]),
        )
        if login.expires_at <= now:
            self.forget(username)
            return None
        return login

    def forget(self, username: str) -> bool:
        """Delete the cached login of ``username``; whether there was one."""
        cur = self._db.execute("DELETE FROM attendant_login WHERE username=?", (username,))
        return cur.rowcount > 0

    def usernames(self) -> list[str]:
        """Every cached login's username, expired or not (the sync asks the central API about
        each)."""
        rows = self._db.execute("SELECT username FROM attendant_login ORDER BY username")
        return [str(r[0]) for r in rows]


# ---- sessions ---------------------------------------------------------------------------------


class Sessions:
    """The live sessions of the local endpoint, one row per login (the cookie names its ``sid``):
    a cookie is good only while its row is here, so a logout, a disabled account or a password
    changed centrally ends it at once, however long the cookie itself would have lasted."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def start(self, username: str, now: datetime, ttl: timedelta) -> str:
        """A new session of ``username``: its id (random, 128 bits)."""
        sid = secrets.token_urlsafe(16)
        self._db.execute(
            "INSERT INTO attendant_session (sid, username, started_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (sid, username, _utc_text(now), _utc_text(now + ttl)),
        )
        return sid

    def alive(self, sid: str, username: str, now: datetime) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM attendant_session WHERE sid=? AND username=? AND expires_at > ?",
            (sid, username, _utc_text(now)),
        ).fetchone()
        return row is not None

    def end(self, sid: str) -> bool:
        cur = self._db.execute("DELETE FROM attendant_session WHERE sid=?", (sid,))
        return cur.rowcount > 0

    def end_user(self, username: str) -> int:
        """End every session of ``username``; how many there were."""
        cur = self._db.execute("DELETE FROM attendant_session WHERE username=?", (username,))
        return int(cur.rowcount)

    def usernames(self, now: datetime) -> list[str]:
        """Who has a live session."""
        rows = self._db.execute(
            "SELECT DISTINCT username FROM attendant_session WHERE expires_at > ?"
            " ORDER BY username",
            (_utc_text(now),),
        )
        return [str(r[0]) for r in rows]

    def prune(self, now: datetime) -> int:
        cur = self._db.execute(
            "DELETE FROM attendant_session WHERE expires_at <= ?", (_utc_text(now),)
        )
        return int(cur.rowcount)


# ---- the member directory and the price list -------------------------------------------------


@dataclass(frozen=True)
class MemberEntry:
    member_no: str
    name: str
    kind: str
    cards: tuple[str, ...] = ()


@dataclass(frozen=True)
class PriceEntry:
    category_code: str
    category_name: str
    unit: str
    price_idr: int


class Directory:
    """The bank's members (number, name, cards) and its price list, as last fetched from the
    central API; searched offline."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def replace_members(self, bank_code: str, members: Iterable[MemberEntry], now: datetime) -> int:
        rows = list(members)
        with write_transaction(self._db) as db:
            db.execute("DELETE FROM directory_member")
            db.execute("DELETE FROM directory_card")
            db.executemany(
                "INSERT OR REPLACE INTO directory_member (member_no, bank_code, name, kind)"
                " VALUES (?, ?, ?, ?)",
                [(m.member_no, bank_code, m.name, m.kind) for m in rows],
            )
            db.executemany(
                "INSERT OR REPLACE INTO directory_card (uid, member_no) VALUES (?, ?)",
                [(uid.upper(), m.member_no) for m in rows for uid in m.cards],
            )
            self._set(db, "members_synced_at", now.isoformat())
        return len(rows)

    def replace_prices(self, prices: Iterable[PriceEntry], now: datetime) -> int:
        rows = list(prices)
        with write_transaction(self._db) as db:
            db.execute("DELETE FROM directory_price")
            db.executemany(
                "INSERT INTO directory_price (category_code, category_name, unit, price_idr)"
                " VALUES (?, ?, ?, ?)",
                [(p.category_code, p.category_name, p.unit, p.price_idr) for p in rows],
            )
            self._set(db, "prices_synced_at", now.isoformat())
        return len(rows)

    def put_member(self, bank_code: str, member: MemberEntry) -> None:
        """One member registered (or a card bound) through this gateway: in the directory at
        once, before the next sync brings the whole list."""
        with write_transaction(self._db) as db:
            db.execute(
                "INSERT OR REPLACE INTO directory_member (member_no, bank_code, name, kind)"
                " VALUES (?, ?, ?, ?)",
                (member.member_no, bank_code, member.name, member.kind),
            )
            db.executemany(
                "INSERT OR REPLACE INTO directory_card (uid, member_no) VALUES (?, ?)",
                [(uid.upper(), member.member_no) for uid in member.cards],
            )

    def mark_synced(self, what: Literal["members", "prices"], now: datetime) -> None:
        """The central API said the list is unchanged (a 304): it is as fresh as ``now``."""
        with write_transaction(self._db) as db:
            self._set(db, f"{what}_synced_at", now.isoformat())

    @staticmethod
    def _set(db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO directory_meta (key, value) VALUES (?, ?)", (key, value))

    def synced_at(self, what: Literal["members", "prices"]) -> datetime | None:
        row = self._db.execute(
            "SELECT value FROM directory_meta WHERE key=?", (f"{what}_synced_at",)
        ).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def set_bank_name(self, name: str) -> None:
        """The bank's name from the central API (kept for the header while offline)."""
        with write_transaction(self._db) as db:
            self._set(db, "bank_name", name)

    def bank_name(self) -> str | None:
        row = self._db.execute("SELECT value FROM directory_meta WHERE key='bank_name'").fetchone()
        return None if row is None else str(row[0])

    def count(self) -> int:
        (n,) = self._db.execute("SELECT count(*) FROM directory_member").fetchone()
        return int(n)

    def search(self, query: str, limit: int = 20) -> list[MemberEntry]:
        """Members found by what the attendant typed (:mod:`gateway.member_search`: the number
        with or without its prefix, dashes or spaces, a name's words in any case and without
        accents, a card UID), best first. Ranked in Python over the bank's members: a few
        thousand at most, in a few milliseconds on a Pi."""
        if not query.strip():
            return []
        cards: dict[str, list[str]] = {}
        for member_no, uid in self._db.execute(
            "SELECT member_no, uid FROM directory_card ORDER BY uid"
        ):
            cards.setdefault(str(member_no), []).append(str(uid))
        found: list[tuple[int, str, str, MemberEntry]] = []
        for member_no, name, kind in self._db.execute(
            "SELECT member_no, name, kind FROM directory_member"
        ):
            held = tuple(cards.get(member_no, ()))
            rank = member_search.rank(query, member_no, name, held)
            if rank is not None:
                entry = MemberEntry(str(member_no), str(name), str(kind), held)
                found.append((rank, member_search.fold(name), member_no, entry))
        found.sort(key=lambda f: f[:3])
        return [f[3] for f in found[:limit]]

    def member(self, member_no: str) -> MemberEntry | None:
        rows = self._db.execute(
            "SELECT member_no, name, kind FROM directory_member WHERE member_no=?", (member_no,)
        ).fetchall()
        found = self._with_cards(rows)
        return found[0] if found else None

    def by_card(self, uid: str) -> MemberEntry | None:
        rows = self._db.execute(
            "SELECT m.member_no, m.name, m.kind FROM directory_member m"
            " JOIN directory_card c ON c.member_no = m.member_no WHERE c.uid=?",
            (uid.strip().upper(),),
        ).fetchall()
        found = self._with_cards(rows)
        return found[0] if found else None

    def _with_cards(self, rows: list[tuple[str, str, str]]) -> list[MemberEntry]:
        out = []
        for member_no, name, kind in rows:
            cards = self._db.execute(
                "SELECT uid FROM directory_card WHERE member_no=? ORDER BY uid", (member_no,)
            ).fetchall()
            out.append(MemberEntry(member_no, name, kind, tuple(str(c[0]) for c in cards)))
        return out

    def prices(self) -> list[PriceEntry]:
        rows = self._db.execute(
            "SELECT category_code, category_name, unit, price_idr FROM directory_price"
            " ORDER BY category_name"
        ).fetchall()
        return [PriceEntry(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    def price(self, category_code: str) -> PriceEntry | None:
        row = self._db.execute(
            "SELECT category_code, category_name, unit, price_idr FROM directory_price"
            " WHERE category_code=?",
            (category_code,),
        ).fetchone()
        return None if row is None else PriceEntry(str(row[0]), str(row[1]), str(row[2]), row[3])


# ---- the journal of deposits recorded here, and their voids -----------------------------------


@dataclass(frozen=True)
class JournalEntry:
    event_id: str
    scale_id: str
    member_no: str | None
    member_name: str | None
    card_uid: str | None
    category_code: str
    net_g: int
    price_per_kg_idr: int | None
    attendant: str | None
    recorded_at: datetime
    status: SendStatus
    sent_at: datetime | None
    void_state: VoidState | None
    void_reason: str | None
    void_by: str | None
    void_error: str | None
    applied_amount_idr: int | None = None
    """What the ledger credited (learnt from the central API once it applied the deposit)."""
    applied_price_idr: int | None = None
    """The price per unit the ledger applied (its ``price_in_force`` at the deposit's time)."""

    @property
    def amount_idr(self) -> int | None:
        """The estimate at the price cached when it was recorded (not what a receipt shows:
        see :func:`gateway.http.attendant.receipts.deposit_figures`)."""
        if self.price_per_kg_idr is None:
            return None
        return amount_for(self.net_g, self.price_per_kg_idr)


@dataclass(frozen=True)
class PendingVoid:
    event_id: str
    reason: str
    by: str
    attempts: int


_ENTRY = (
    "SELECT j.event_id, j.scale_id, j.member_no, j.member_name, j.card_uid, j.category_code,"
    " j.net_g, j.price_per_kg_idr, j.attendant, j.recorded_at, j.sent_at,"
    " (SELECT 1 FROM outbox o WHERE o.id = j.outbox_id), j.void_state, j.void_reason, j.void_by,"
    " j.void_error, j.applied_amount_idr, j.applied_price_idr FROM deposit_journal j"
)


def _entry(r: sqlite3.Row | tuple[object, ...]) -> JournalEntry:
    sent_at = None if r[10] is None else datetime.fromisoformat(str(r[10]))
    status: SendStatus = "sent" if sent_at is not None else ("pending" if r[11] else "dropped")
    return JournalEntry(
        event_id=str(r[0]),
        scale_id=str(r[1]),
        member_no=None if r[2] is None else str(r[2]),
        member_name=None if r[3] is None else str(r[3]),
        card_uid=None if r[4] is None else str(r[4]),
        category_code=str(r[5]),
        net_g=int(str(r[6])),
        price_per_kg_idr=None if r[7] is None else int(str(r[7])),
        attendant=None if r[8] is None else str(r[8]),
        recorded_at=datetime.fromisoformat(str(r[9])),
        status=status,
        sent_at=sent_at,
        void_state=None if r[12] is None else r[12],  # type: ignore[arg-type]
        void_reason=None if r[13] is None else str(r[13]),
        void_by=None if r[14] is None else str(r[14]),
        void_error=None if r[15] is None else str(r[15]),
        applied_amount_idr=None if r[16] is None else int(str(r[16])),
        applied_price_idr=None if r[17] is None else int(str(r[17])),
    )


class Journal:
    """Every deposit this gateway stored, written in the outbox's own transaction (see
    :meth:`Outbox.transaction`): "pending" while its row waits in the outbox, "sent"
    once the broker acknowledged it ("dropped" if the outbox's bounds took it first).

    A void asked for here waits in the same row until the central API has taken it. What the
    ledger credited is kept in the row once the central API says it applied the deposit
    (:meth:`set_applied`): receipts show that, not the estimate.
    """

    APPLIED_COLUMNS = (
        ("applied_amount_idr", "INTEGER"),
        ("applied_price_idr", "INTEGER"),
        ("applied_at", "TEXT"),
        ("applied_checked_at", "TEXT"),
    )
    """Added to files made before receipts showed the ledger's amount (CREATE TABLE IF NOT
    EXISTS does not add columns)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        have = {str(r[1]) for r in db.execute("PRAGMA table_info(deposit_journal)")}
        for name, kind in self.APPLIED_COLUMNS:
            if name not in have:
                db.execute(f"ALTER TABLE deposit_journal ADD COLUMN {name} {kind}")

    def add(
        self,
        *,
        event_id: str,
        outbox_id: int,
        scale_id: str,
        member_no: str | None,
        member_name: str | None,
        card_uid: str | None,
        category_code: str,
        net_g: int,
        price_per_kg_idr: int | None,
        attendant: str | None,
        recorded_at: datetime,
    ) -> None:
        """Inside the outbox's transaction: no BEGIN/COMMIT of its own."""
        self._db.execute(
            "INSERT INTO deposit_journal (event_id, outbox_id, scale_id, member_no, member_name,"
            " card_uid, category_code, net_g, price_per_kg_idr, attendant, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                outbox_id,
                scale_id,
                member_no,
                member_name,
                card_uid,
                category_code,
                net_g,
                price_per_kg_idr,
                attendant,
                recorded_at.isoformat(),
            ),
        )

    def mark_sent(self, outbox_ids: Sequence[int], now: datetime) -> int:
        """The broker acknowledged these outbox rows; return how many journal entries they were."""
        if not outbox_ids:
            return 0
        with write_transaction(self._db) as db:
            cur = db.executemany(
                "UPDATE deposit_journal SET sent_at=? WHERE outbox_id=? AND sent_at IS NULL",
                [(now.isoformat(), i) for i in outbox_ids],
            )
        return int(cur.rowcount)

    def get(self, event_id: str) -> JournalEntry | None:
        row = self._db.execute(f"{_ENTRY} WHERE j.event_id=?", (event_id,)).fetchone()  # noqa: S608
        return None if row is None else _entry(row)

    def between(self, start: datetime, end: datetime) -> list[JournalEntry]:
        """Entries recorded in [start, end), newest first (``start``/``end`` aware, any zone)."""
        rows = self._db.execute(
            f"{_ENTRY} WHERE j.recorded_at >= ? AND j.recorded_at < ?"  # noqa: S608
            " ORDER BY j.recorded_at DESC, j.rowid DESC",
            (_utc_text(start), _utc_text(end)),
        ).fetchall()
        return [_entry(r) for r in rows]

    def prune(self, before: datetime) -> int:
        """Forget entries recorded before ``before`` that are sent and have no open void."""
        cur = self._db.execute(
            "DELETE FROM deposit_journal WHERE recorded_at < ? AND sent_at IS NOT NULL"
            " AND (void_state IS NULL OR void_state != 'pending')",
            (_utc_text(before),),
        )
        return int(cur.rowcount)

    # -- what the ledger applied --

    def unapplied(self, since: datetime, checked_before: datetime, limit: int = 50) -> list[str]:
        """Event ids of deposits recorded since ``since`` that the broker has taken, not voided,
        whose ledger amount is not known yet and which were not asked about since
        ``checked_before``; oldest first."""
        rows = self._db.execute(
            "SELECT event_id FROM deposit_journal WHERE recorded_at >= ? AND sent_at IS NOT NULL"
            " AND applied_amount_idr IS NULL AND (void_state IS NULL OR void_state != 'done')"
            " AND (applied_checked_at IS NULL OR applied_checked_at < ?)"
            " ORDER BY recorded_at LIMIT ?",
            (_utc_text(since), _utc_text(checked_before), limit),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def set_applied(
        self, event_id: str, amount_idr: int, price_idr: int | None, applied_at: datetime
    ) -> bool:
        """The ledger applied the deposit: its credit and price; whether it changed the row."""
        cur = self._db.execute(
            "UPDATE deposit_journal SET applied_amount_idr=?, applied_price_idr=?, applied_at=?"
            " WHERE event_id=? AND (applied_amount_idr IS NOT ? OR applied_price_idr IS NOT ?)",
            (amount_idr, price_idr, _utc_text(applied_at), event_id, amount_idr, price_idr),
        )
        return cur.rowcount > 0

    def applied_checked(self, event_ids: Sequence[str], now: datetime) -> None:
        """Asked the central API about these now (not applied yet): asked again later."""
        self._db.executemany(
            "UPDATE deposit_journal SET applied_checked_at=? WHERE event_id=?",
            [(_utc_text(now), e) for e in event_ids],
        )

    # -- voids --

    def request_void(self, event_id: str, reason: str, by: str, now: datetime) -> JournalEntry:
        """Queue a void; :class:`ValueError` if there is no such entry or it is already voided
        (or a void is waiting)."""
        entry = self.get(event_id)
        if entry is None:
            raise KeyError(event_id)
        if entry.void_state in ("pending", "done"):
            raise ValueError("sudah dibatalkan / already voided")
        self._db.execute(
            "UPDATE deposit_journal SET void_state='pending', void_reason=?, void_by=?,"
            " void_requested_at=?, void_attempts=0, void_retry_at=NULL, void_error=NULL"
            " WHERE event_id=?",
            (reason, by, now.isoformat(), event_id),
        )
        got = self.get(event_id)
        assert got is not None
        return got

    def due_voids(self, now: datetime) -> list[PendingVoid]:
        """Queued voids of deposits the broker has taken whose retry time has come."""
        rows = self._db.execute(
            "SELECT event_id, void_reason, void_by, void_attempts FROM deposit_journal"
            " WHERE void_state='pending' AND sent_at IS NOT NULL"
            " AND (void_retry_at IS NULL OR void_retry_at <= ?) ORDER BY void_requested_at",
            (_utc_text(now),),
        ).fetchall()
        return [PendingVoid(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    def pending_voids(self) -> int:
        (n,) = self._db.execute(
            "SELECT count(*) FROM deposit_journal WHERE void_state='pending'"
        ).fetchone()
        return int(n)

    def void_done(self, event_id: str, now: datetime) -> None:
        self._db.execute(
            "UPDATE deposit_journal SET void_state='done', void_done_at=?, void_error=NULL"
            " WHERE event_id=?",
            (now.isoformat(), event_id),
        )

    def void_refused(self, event_id: str, error: str, now: datetime) -> None:
        """The central API refused it for good (e.g. 403, 422): shown, not retried."""
        self._db.execute(
            "UPDATE deposit_journal SET void_state='refused', void_error=?, void_done_at=?"
            " WHERE event_id=?",
            (error[:300], now.isoformat(), event_id),
        )

    def void_retry(self, event_id: str, error: str, retry_at: datetime) -> None:
        self._db.execute(
            "UPDATE deposit_journal SET void_attempts=void_attempts+1, void_error=?,"
            " void_retry_at=? WHERE event_id=?",
            (error[:300], _utc_text(retry_at), event_id),
        )


def _utc_text(at: datetime) -> str:
    """ISO text in UTC, comparable with the stored ``datetime.now(UTC).isoformat()`` values."""
    return at.astimezone(UTC).isoformat()
