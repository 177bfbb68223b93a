"""The SIPSN bank sampah export (wastebank/reports/sipsn.py) as a download, for DLH staff (their
own city) and admins (any city, ``city=``); docs/reports.md, "Ekspor SIPSN".

  GET /api/dlh/report/sipsn?period=2026-S1&format=xlsx|csv&csv_dialect=id|plain
"""

from __future__ import annotations

from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api.deps import PrincipalDep, StateDep, refusals
from api.dlh import CityQuery, CsvDialectQuery, attachment, read_in_city
from wastebank import reports

router = APIRouter(prefix="/api/dlh", tags=["dlh"])


@router.get(
    "/report/sipsn",
    response_class=Response,
    responses={
        200: {
            "description": "the export file",
            "content": {
                media.split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
                for media in reports.SIPSN_MEDIA_TYPES.values()
            },
        },
        **refusals(401, 403, 404, 422),
    },
)
async def sipsn(
    state: StateDep,
    p: PrincipalDep,
    period: Annotated[
        str,
        Query(
            pattern=r"^\d{4}(-S[12]|-\d{2})?$",
            description="a year (2026), a half year (2026-S1, 2026-S2) or a month (2026-10)",
            examples=["2026-S1"],
        ),
    ],
    fmt: Annotated[Literal["xlsx", "csv"], Query(alias="format")] = "xlsx",
    csv_dialect: CsvDialectQuery = "id",
    city: CityQuery = None,
) -> Response:
    """One row per bank and category: the period's kg (measured / estimated), deposits and
    value, with each bank's kind (BSI/BSU), units, members and location."""
    settings = state["settings"].reports

    def work(session: Session, scope: reports.Scope) -> tuple[bytes, str]:
        export = reports.sipsn_export(session, scope, period, settings)
        body = reports.sipsn_render(export, fmt, csv_dialect=csv_dialect)
        return body, reports.sipsn_filename(export, fmt)

    body, name = await anyio.to_thread.run_sync(read_in_city, state, p, city, work)
    return attachment(body, name, reports.SIPSN_MEDIA_TYPES[fmt])
