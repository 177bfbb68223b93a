"""The audit log: who wrote what, when and from where, in the write's own transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from wastebank.access.models import AuditEntry
from wastebank.ledger import utcnow


@dataclass(frozen=True)
class Actor:
    """Who writes, and from where: a signed-in user (API) or an operator (``wastebank`` CLI)."""

    name: str
    role: str
    user_id: int | None = None
    client_ip: str | None = None
    user_agent: str | None = None


def cli_actor() -> Actor:
    import getpass

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor(name=f"cli:{who}"[:80], role="cli", user_agent="wastebank-cli")


def audit(
    session: Session, actor: Actor, action: str, entity: str, entity_id: object, summary: str = ""
) -> AuditEntry:
    """Add an audit entry to ``session``'s transaction (flushed, not committed): it commits or
    rolls back with the write it describes."""
    entry = AuditEntry(
        at=utcnow(),
        user_id=actor.user_id,
        actor=actor.name[:80],
        role=actor.role[:16],
        action=action[:64],
        entity=entity[:32],
        entity_id=str(entity_id)[:120],
        summary=summary[:2000],
        client_ip=actor.client_ip[:64] if actor.client_ip else None,
        user_agent=actor.user_agent[:300] if actor.user_agent else None,
    )
    session.add(entry)
    session.flush()
    return entry


def audit_entries(
    session: Session,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Audit entries, newest first, filtered by what is given."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if entity is not None:
        stmt = stmt.where(AuditEntry.entity == entity)
    if entity_id is not None:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    return list(session.scalars(stmt))
