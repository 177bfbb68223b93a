"""The login system's tables: users and their roles, login failures, revoked tokens and the audit
log; on the ledger's :class:`~wastebank.ledger.Base` (migration 0003), so they are in the
ledger's database and its backups and a write and its audit entry commit in one transaction."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from wastebank.ledger import Base, City, Member, UtcDateTime, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    DLH = "dlh"
    ATTENDANT = "attendant"
    CITIZEN = "citizen"


class User(Base):
    """A login: staff (admin, DLH, attendant) with a password, or a nasabah with a PIN."""

    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint(
            "role IN ('admin', 'dlh', 'attendant', 'citizen')", name="ck_app_user_role"
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(
        String(64), unique=True, doc="staff: their staff id; citizen: their member number"
    )
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(200), doc="argon2id of the password or PIN")
    city_id: Mapped[int | None] = mapped_column(ForeignKey("city.id"), nullable=True)
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("member.id"), nullable=True, unique=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    secret_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    city: Mapped[City | None] = relationship()
    member: Mapped[Member | None] = relationship()


class LoginFailure(Base):
    """One failed login, counted against its account and its client address (one row each)."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_key_at", "key", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), doc="account:<login> or ip:<address>")
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class RevokedToken(Base):
    """A token ended before its expiry (a logout), by its ``jti``. Kept until the token would
    have expired anyway (then purged at the next revocation): every API process refuses it."""

    __tablename__ = "revoked_token"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), nullable=True
    )
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    revoked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AuditEntry(Base):
    """One write: who, what, when (UTC), from where. Added in the write's own transaction."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    actor: Mapped[str] = mapped_column(String(80), doc="username, or cli:<os user>")
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64), doc="e.g. withdrawal.approve")
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(120))
    summary: Mapped[str] = mapped_column(Text, default="")
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)
