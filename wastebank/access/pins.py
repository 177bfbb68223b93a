"""A nasabah's PIN issued at the bank: the citizen login made (or its PIN reset) from a page, with
a random PIN shown once, limited like logins and audited without the PIN.

The hash is made by the caller before the write transaction (argon2id is slow by design; on
SQLite a write holds the whole database): :func:`new_pin` gives the PIN, the caller hashes it
and passes the hash to :func:`issue_pin`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wastebank import errors
from wastebank.access.audit import Actor, audit
from wastebank.access.errors import AccessError
from wastebank.access.models import AuditEntry, Role, User
from wastebank.access.passwords import generate_pin
from wastebank.access.settings import AuthSettings
from wastebank.ledger import Member, utcnow

ISSUE = "member.pin_issue"
RESET = "member.pin_reset"


class PinExists(AccessError, errors.Conflict):
    """The member has a login already: a new PIN is a reset, asked for as one."""

    status = errors.Conflict.status
    title = errors.Conflict.title


class PinLoginDisabled(AccessError, errors.Conflict):
    status = errors.Conflict.status
    title = errors.Conflict.title


class TooManyPins(AccessError, errors.TooMany):
    """Too many PINs issued for one member, or by one person, within the login window."""

    status = errors.TooMany.status
    title = errors.TooMany.title

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"terlalu banyak PIN diterbitkan, coba lagi dalam {retry_after_s} detik / too many "
            f"PINs issued, try again in {retry_after_s} s"
        )
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class IssuedPin:
    member_no: str
    name: str
    username: str
    created: bool  # a new login; False: the PIN of an existing one was reset
    at: datetime


def new_pin() -> str:
    """A random PIN of the citizens' rule (:data:`wastebank.access.PIN`, 6 digits, not an easy
    one): shown once, never stored."""
    return generate_pin()


def _wait(
    session: Session, where: object, limit: int, window: timedelta, now: datetime
) -> int | None:
    """Seconds until one more PIN may be issued under ``where`` (None: now)."""
    recent = session.scalars(
        select(AuditEntry.at)
        .where(AuditEntry.action.in_((ISSUE, RESET)), where, AuditEntry.at > now - window)  # type: ignore[arg-type]
        .order_by(AuditEntry.at.desc())
        .limit(limit)
    ).all()
    if len(recent) < limit:
        return None
    return max(1, int((recent[-1] + window - now).total_seconds()) + 1)


def pin_wait(
    session: Session, member_no: str, actor: Actor, settings: AuthSettings, now: datetime
) -> int | None:
    """The login limits applied to PINs issued (counted from the audit log, so every API
    process shares them): at most ``login_max_failures`` per member and
    ``login_max_failures_per_ip`` per person, each within ``login_window``. Seconds to wait,
    or None."""
    waits = [
        w
        for where, limit in (
            (AuditEntry.entity_id == member_no, settings.login_max_failures),
            (AuditEntry.actor == actor.name[:80], settings.login_max_failures_per_ip),
        )
        if (w := _wait(session, where, limit, settings.login_window, now)) is not None
    ]
    return max(waits) if waits else None


def issue_pin(
    session: Session,
    member: Member,
    pin_hash: str,
    actor: Actor,
    *,
    reset: bool,
    settings: AuthSettings,
    now: datetime | None = None,
) -> IssuedPin:
    """Give ``member`` the PIN hashed as ``pin_hash``: their citizen login is made if they have
    none; with ``reset``, an existing login's PIN is replaced and every token and page session
    it had ends (its ``token_version`` goes up). Refused with :class:`PinExists` (a login exists
    and ``reset`` is not asked), :class:`PinLoginDisabled`, :class:`TooManyPins`. Audited (who,
    when, which member; never the PIN); flushes, the caller commits."""
    now = now or utcnow()
    wait = pin_wait(session, member.member_no, actor, settings, now)
    if wait is not None:
        raise TooManyPins(wait)
    user = session.scalar(select(User).where(User.member_id == member.id))
    created = user is None
    if user is None:
        taken = session.scalar(
            select(func.count()).select_from(User).where(User.username == member.member_no)
        )
        if taken:
            raise AccessError(f"nama pengguna {member.member_no} sudah dipakai / username taken")
        user = User(
            username=member.member_no,
            role=Role.CITIZEN,
            name=member.name[:200],
            secret_hash=pin_hash,
            member_id=member.id,
            active=True,
            token_version=0,
            secret_changed_at=now,
        )
        session.add(user)
    elif not reset:
        raise PinExists(
            f"nasabah {member.member_no} sudah punya PIN; pilih Setel ulang PIN / the member has "
            "a PIN already: reset it instead"
        )
    elif not user.active:
        raise PinLoginDisabled(
            f"login {user.username} dinonaktifkan; minta admin mengaktifkannya / the login is "
            "disabled: an admin enables it first"
        )
    else:
        user.secret_hash = pin_hash
        user.secret_changed_at = now
        user.token_version += 1  # every token and page session of theirs ends
    session.flush()
    action = ISSUE if created else RESET
    summary = f"login {user.username}, bank {member.bank.code}"
    audit(session, actor, action, "member", member.member_no, summary)
    return IssuedPin(member.member_no, member.name, user.username, created, now)
