"""How many password checks an account or a client address may have: the gateway's lock on
guessing (docs/deploy-pi.md §9, "Login cache").

A login takes its try before its password is checked (:meth:`LoginLimit.attempt`): the tries in
progress count with the recent failures, so many logins at once get no more checks than one
after another. The failures are rows of the gateway's SQLite file (the outbox's), with their
wall-clock time, so a restart keeps the lock; each expires after :data:`WINDOW_S`, and a row
dated in the future (the clock set back) is dropped. Only failures are kept, and an address
stops adding any once locked, so the table stays small: at most ``per_client`` rows per address
in a window, and at most :data:`MAX_ROWS` (the oldest go first).

Failed and locked logins are logged on ``wastebank.gateway``: the first of a kind, then one line
a minute with the count since (a flood never writes a line per try)."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Final

from gateway.outbox import write_transaction
from wastebank.errors import TooMany
from wastebank.http_limits import LogEveryMinute

WINDOW_S: Final = 900.0
"""A failure counts for 15 minutes."""
MAX_ROWS: Final = 10_000
"""The most failures the file keeps (far more than a LAN's addresses can make in a window)."""
EXPIRE_EVERY_S: Final = 60.0
FUTURE_S: Final = 60.0
"""A failure dated later than this ahead of the clock does not count (the clock was set back)."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS attendant_login_failure (
    kind TEXT NOT NULL,          -- 'account' (the username, case-folded) or 'client' (address)
    key TEXT NOT NULL,
    at REAL NOT NULL             -- Unix time
);
CREATE INDEX IF NOT EXISTS attendant_login_failure_key ON attendant_login_failure (kind, key, at);
CREATE INDEX IF NOT EXISTS attendant_login_failure_at ON attendant_login_failure (at);
"""


class Locked(TooMany):
    """Too many failures (with the tries in progress) for the account or the address:
    ``busy`` when the failures alone would leave a try (one ends soon)."""

    def __init__(self, kind: str, busy: bool) -> None:
        super().__init__(kind)
        self.kind, self.busy = kind, busy


class Attempt:
    """One login's try, taken: :meth:`failed` when its password was wrong."""

    def __init__(self) -> None:
        self.wrong = False

    def failed(self) -> None:
        self.wrong = True


class LoginLimit:
    """At most ``per_account`` failures of one username and ``per_client`` of one address
    within :data:`WINDOW_S`, tries in progress included."""

    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        per_account: int,
        per_client: int,
        logger: logging.Logger,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.db.executescript(_SCHEMA)
        self.limits = {"account": per_account, "client": per_client}
        self.log = logger
        self.clock = clock
        self.in_progress: Counter[tuple[str, str]] = Counter()
        """Tries taken and not yet decided, by (kind, key): gone when back to 0."""
        self.counts: Counter[str] = Counter()
        """Since the start: ``wrong`` (a wrong password or unknown name), ``locked`` (refused
        untried)."""
        self._logged = LogEveryMinute()
        self._expired_at = -float("inf")

    @contextlib.contextmanager
    def attempt(self, username: str, client: str | None) -> Iterator[Attempt]:
        """Take a try for ``username`` from ``client`` (:class:`Locked` when either has no try
        left), held until the block ends; a failure marked on it is kept."""
        keys = [("account", username.casefold()), ("client", client or "?")]
        now = self.clock()
        self._expire(now)
        for kind, key in keys:
            failures = self._failures(kind, key, now)
            if failures + self.in_progress[kind, key] >= self.limits[kind]:
                self._note("locked", username, client)
                raise Locked(kind, busy=failures < self.limits[kind])
        for k in keys:
            self.in_progress[k] += 1
        attempt = Attempt()
        try:
            yield attempt
        finally:
            for k in keys:
                self.in_progress[k] -= 1
                if not self.in_progress[k]:
                    del self.in_progress[k]
            if attempt.wrong:
                self._record(keys, self.clock())
                self._note("wrong", username, client)

    def _failures(self, kind: str, key: str, now: float) -> int:
        (n,) = self.db.execute(
            "SELECT COUNT(*) FROM attendant_login_failure WHERE kind=? AND key=? AND at>? "
            "AND at<=?",
            (kind, key, now - WINDOW_S, now + FUTURE_S),
        ).fetchone()
        return int(n)

    def _record(self, keys: list[tuple[str, str]], now: float) -> None:
        with write_transaction(self.db) as db:
            db.executemany(
                "INSERT INTO attendant_login_failure (kind, key, at) VALUES (?, ?, ?)",
                [(kind, key, now) for kind, key in keys],
            )
            (rows,) = db.execute("SELECT COUNT(*) FROM attendant_login_failure").fetchone()
            if rows > MAX_ROWS:
                db.execute(
                    "DELETE FROM attendant_login_failure WHERE rowid IN (SELECT rowid FROM "
                    "attendant_login_failure ORDER BY at LIMIT ?)",
                    (rows - MAX_ROWS,),
                )

    def _expire(self, now: float) -> None:
        """Drop the failures past the window, and those from the future (the clock was set
        back: a Pi without an RTC; their age is unknown), at most once a minute."""
        if time.monotonic() - self._expired_at < EXPIRE_EVERY_S:
            return
        self._expired_at = time.monotonic()
        self.db.execute(
            "DELETE FROM attendant_login_failure WHERE at<=? OR at>?",
            (now - WINDOW_S, now + FUTURE_S),
        )

    def _note(self, kind: str, username: str, client: str | None) -> None:
        self.counts[kind] += 1
        count = self._logged.due(kind)
        if not count:
            return
        self.log.warning(
            "%s: %d sejak baris terakhir / since the last line; yang terakhir / the last: "
            "%s dari / from %s",
            "login gagal / failed login"
            if kind == "wrong"
            else "login dikunci / login locked (429)",
            count,
            ascii(username),
            ascii(client or "?"),
        )
