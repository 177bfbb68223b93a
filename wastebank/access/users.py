"""Users: finding a login as typed, adding users, setting their secret, enabling and disabling."""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wastebank.access.audit import Actor, audit
from wastebank.access.errors import AccessError
from wastebank.access.models import Role, User
from wastebank.access.passwords import check_secret
from wastebank.ledger import Attendant, City, Member, utcnow

if TYPE_CHECKING:
    from argon2 import PasswordHasher


# A staff username (an attendant's is their ledger staff_id): lower case, no colon, so it never
# looks like a citizen's author string ("nasabah:<member no>").
STAFF_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def login_key(login: str) -> str:
    """What a typed login names, for the login limits and the lookup alike: NFKC (a phone's
    full-width ``ＡＭＢ－０００１``, the long s of ``ſby-0001``) and case folded, at most 64
    characters. Usernames are ASCII (staff ids lower case, member numbers as issued), so every
    spelling that folds to one key is one account."""
    return unicodedata.normalize("NFKC", login.strip()).casefold()[:64]


def find_login(session: Session, login: str) -> User | None:
    """The user whose username is ``login``: as typed (NFKC), else its :func:`login_key`
    upper-cased (a member number typed in lower case on a phone), else the key itself (a
    staff id). A login longer than any username (64) names nobody."""
    typed = unicodedata.normalize("NFKC", login.strip())
    if not typed or len(typed) > 64:
        return None  # no username is longer: never cut to match a real one
    key = login_key(login)
    for candidate in dict.fromkeys((typed, key.upper(), key)):
        user = session.scalar(select(User).where(User.username == candidate))
        if user is not None:
            return user
    return None


def get_user(session: Session, username: str) -> User:
    user = find_login(session, username)
    if user is None:
        raise AccessError(f"pengguna tidak ada / no user {username!r}")
    return user


def add_user(
    session: Session,
    *,
    role: str,
    secret: str,
    hasher: PasswordHasher,
    actor: Actor,
    username: str | None = None,
    name: str | None = None,
    city_code: str | None = None,
    member_no: str | None = None,
) -> User:
    """Add a login. A citizen's username is their member number (``member_no``) and their name
    the member's; an attendant's username must be a staff id in the ledger's attendant table;
    a DLH user names their city. Audited; flushes, the caller commits."""
    if role not in set(Role):
        raise AccessError(f"peran tidak dikenal / unknown role {role!r}: {', '.join(Role)}")
    member_id = None
    if role == Role.CITIZEN:
        username, name, member_id = _citizen(session, member_no, name)
    else:
        username, name = _staff(session, role, username, name, member_no)
    city_id = _city_of(session, role, city_code)
    if find_login(session, username) is not None:
        raise AccessError(f"pengguna {username} sudah ada / user {username} exists already")
    check_secret(role, secret, username)
    user = User(
        username=username,
        role=role,
        name=(name or username)[:200],
        secret_hash=hasher.hash(secret),
        city_id=city_id,
        member_id=member_id,
        active=True,
        token_version=0,
        secret_changed_at=utcnow(),
    )
    session.add(user)
    session.flush()
    audit(session, actor, "user.add", "user", user.username, f"role {role}")
    return user


def _citizen(session: Session, member_no: str | None, name: str | None) -> tuple[str, str, int]:
    """A citizen login's username, name and member: their member number, the member's name."""
    if not member_no:
        raise AccessError("nasabah perlu --member / a citizen login needs a member number")
    member = session.scalar(select(Member).where(Member.member_no == member_no))
    if member is None:
        raise AccessError(f"nasabah {member_no} tidak ada / no member {member_no}")
    return member.member_no, name or member.name, member.id


def _staff(
    session: Session, role: str, username: str | None, name: str | None, member_no: str | None
) -> tuple[str, str | None]:
    """A staff login's username and name: an attendant's is a staff id of the ledger's attendant
    table (their name the attendant's by default); no other staff's username is one."""
    if member_no:
        raise AccessError("hanya nasabah punya nomor nasabah / only citizens have a member no")
    if not username or not STAFF_USERNAME.fullmatch(username):
        raise AccessError(
            "nama pengguna staf: huruf kecil, angka, . _ - (2-64) / a staff username is 2-64 "
            f"lower-case letters, digits, '.', '_' or '-': {username!r}"
        )
    attends = session.scalar(
        select(func.count()).select_from(Attendant).where(Attendant.staff_id == username)
    )
    if role == Role.ATTENDANT and not attends:
        raise AccessError(
            f"{username} bukan petugas di bank mana pun / {username} is no attendant's "
            "staff id: add them to their bank (attendant table) first"
        )
    if role == Role.ATTENDANT and not name:
        name = session.scalar(select(Attendant.name).where(Attendant.staff_id == username).limit(1))
    if role != Role.ATTENDANT and attends:
        raise AccessError(f"{username} adalah id petugas / {username} is an attendant's staff id")
    return username, name


def _city_of(session: Session, role: str, city_code: str | None) -> int | None:
    """A DLH user's city (they need one); no one else has a city."""
    if role != Role.DLH:
        if city_code:
            raise AccessError("hanya staf DLH terikat pada kota / only DLH users have a city")
        return None
    if not city_code:
        raise AccessError("staf DLH perlu --city / a DLH user needs a city")
    city = session.scalar(select(City).where(City.code == city_code))
    if city is None:
        raise AccessError(f"kota {city_code} tidak ada / no city {city_code}")
    return city.id


def set_secret(
    session: Session, username: str, secret: str, hasher: PasswordHasher, actor: Actor
) -> User:
    """Set a user's PIN or password; every token they hold stops working. Audited; flushes."""
    user = get_user(session, username)
    check_secret(user.role, secret, user.username)
    user.secret_hash = hasher.hash(secret)
    user.secret_changed_at = utcnow()
    user.token_version += 1
    session.flush()
    audit(session, actor, "user.set_secret", "user", user.username)
    return user


def set_active(session: Session, username: str, active: bool, actor: Actor) -> User:
    """Disable (every token they hold stops working) or enable a user. Audited; flushes."""
    user = get_user(session, username)
    if user.active != active:
        user.active = active
        user.token_version += 1
        session.flush()
        audit(session, actor, "user.enable" if active else "user.disable", "user", user.username)
    return user


def users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.role, User.username)))
