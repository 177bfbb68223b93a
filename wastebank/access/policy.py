"""Who is asking, and what they may do: the principal of a token, and the rules by role."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from wastebank.access.models import RevokedToken, Role, User
from wastebank.ledger import Attendant, Bank, Member


@dataclass(frozen=True)
class Principal:
    """The signed-in user as the policy sees them, loaded for each request."""

    user_id: int
    username: str
    role: Role
    name: str
    city_id: int | None = None  # dlh
    member_id: int | None = None  # citizen
    member_no: str | None = None  # citizen
    bank_ids: frozenset[int] = field(default_factory=frozenset)  # attendant: where they act

    @property
    def author(self) -> str:
        """What the ledger records as the author of this user's entries."""
        return f"nasabah:{self.member_no}" if self.role == Role.CITIZEN else self.username


# Every API request loads its principal: one statement, built once (a citizen's member number
# joined in), not the ORM's User and Member loads (several times the Python time of the query).
_PRINCIPAL = (
    select(
        User.id,
        User.username,
        User.role,
        User.name,
        User.city_id,
        User.member_id,
        Member.member_no,
    )
    .outerjoin(Member, Member.id == User.member_id)
    .where(
        User.id == bindparam("user_id"),
        User.active,
        User.token_version == bindparam("token_version"),
        ~select(RevokedToken.jti).where(RevokedToken.jti == bindparam("jti")).exists(),
    )
)


def principal(
    session: Session, user_id: int, token_version: int, jti: str | None = None
) -> Principal | None:
    """The principal of a token: None when the user is gone, disabled, the token is from
    before their secret last changed, or it was revoked (``jti``, a logout)."""
    # on the session's connection: Core rows, without the ORM's execution path
    row = (
        session.connection()
        .execute(_PRINCIPAL, {"user_id": user_id, "token_version": token_version, "jti": jti or ""})
        .one_or_none()
    )
    if row is None:
        return None
    user_id, username, role, name, city_id, member_id, member_no = row
    return _principal(session, user_id, username, Role(role), name, city_id, member_id, member_no)


def principal_of(session: Session, user: User) -> Principal:
    return _principal(
        session,
        user.id,
        user.username,
        Role(user.role),
        user.name,
        user.city_id,
        user.member_id,
        user.member.member_no if user.member is not None else None,
    )


def _principal(
    session: Session,
    user_id: int,
    username: str,
    role: Role,
    name: str,
    city_id: int | None,
    member_id: int | None,
    member_no: str | None,
) -> Principal:
    bank_ids: frozenset[int] = frozenset()
    if role == Role.ATTENDANT:
        own = set(
            session.scalars(
                select(Attendant.bank_id).where(Attendant.staff_id == username, Attendant.active)
            )
        )
        units = (
            set(session.scalars(select(Bank.id).where(Bank.parent_id.in_(own)))) if own else set()
        )
        bank_ids = frozenset(own | units)
    return Principal(
        user_id=user_id,
        username=username,
        role=role,
        name=name,
        city_id=city_id,
        member_id=member_id,
        member_no=member_no,
        bank_ids=bank_ids,
    )


def can_read_bank(p: Principal, bank: Bank) -> bool:
    """Members, stock, sales and withdrawals of ``bank``: admin; DLH of its city; its
    attendants (an induk's also its units')."""
    return can_read_bank_at(p, bank.id, bank.city_id)


def can_read_bank_at(p: Principal, bank_id: int, city_id: int) -> bool:
    """:func:`can_read_bank` for the bank ``bank_id`` in the city ``city_id``."""
    if p.role == Role.ADMIN:
        return True
    if p.role == Role.DLH:
        return p.city_id is not None and city_id == p.city_id
    if p.role == Role.ATTENDANT:
        return bank_id in p.bank_ids
    return False


def can_act_at(p: Principal, bank: Bank, *, admin: bool = True) -> bool:
    """Write at ``bank``: its attendants, and admins where ``admin`` (prices, members,
    withdrawal decisions; not deposits or sales, which only the bank's own staff record)."""
    if p.role == Role.ADMIN:
        return admin
    return p.role == Role.ATTENDANT and bank.id in p.bank_ids


def can_read_member(p: Principal, member: Member) -> bool:
    """A member's account (balance, deposits, withdrawals): the member, and whoever reads
    their bank."""
    if p.role == Role.CITIZEN:
        return p.member_id is not None and member.id == p.member_id
    return can_read_bank(p, member.bank)


def can_read_member_at(p: Principal, member_id: int, bank_id: int, city_id: int) -> bool:
    """:func:`can_read_member` for the member ``member_id`` of the bank ``bank_id`` in the
    city ``city_id`` (a read that has these ids without loading the rows)."""
    if p.role == Role.CITIZEN:
        return p.member_id is not None and member_id == p.member_id
    return can_read_bank_at(p, bank_id, city_id)


def can_see_personal(p: Principal, member: Member) -> bool:
    """Name, phone, address, cards, payout accounts (UU 27/2022): the member, their bank's
    attendants and admins; not DLH, who see member numbers and aggregates."""
    if p.role == Role.DLH:
        return False
    return can_read_member(p, member)


def can_see_personal_at(p: Principal, member_id: int, bank_id: int, city_id: int) -> bool:
    """:func:`can_see_personal` by ids (as :func:`can_read_member_at`)."""
    return p.role != Role.DLH and can_read_member_at(p, member_id, bank_id, city_id)
