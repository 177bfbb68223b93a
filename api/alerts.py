"""The system's alerts for admins (wastebank/alerts.py): deposit conflicts, gateway clashes,
InfluxDB drift.

GET /api/alerts?all=false    admin: active alerts (``all``: cleared ones too), newest first
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import PrincipalDep, SessionDep, forbidden, refusals
from wastebank import access, alerts

router = APIRouter(tags=["alerts"])


class AlertOut(BaseModel):
    id: int
    code: str
    subject: str
    message: str
    detail: dict[str, Any]
    raised_at: datetime
    cleared_at: datetime | None
    cleared_by: str | None
    clear_note: str | None


@router.get("/api/alerts", responses=refusals(401, 403, 422))
def system_alerts(
    p: PrincipalDep,
    session: SessionDep,
    show_all: Annotated[bool, Query(alias="all")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AlertOut]:
    """Active alerts (or all), newest first. Each is raised once per (code, subject) while it
    is active; ``wastebank alert clear`` clears one with a note."""
    if p.role != access.Role.ADMIN:
        raise forbidden("peringatan sistem hanya untuk admin / system alerts are for admins")
    return [
        AlertOut(
            id=a.id,
            code=a.code,
            subject=a.subject,
            message=a.message,
            detail=a.details,
            raised_at=a.raised_at,
            cleared_at=a.cleared_at,
            cleared_by=a.cleared_by,
            clear_note=a.clear_note,
        )
        for a in alerts.alerts(session, active_only=not show_all, limit=limit)
    ]
