"""Conditional GETs for the lists a gateway polls (a bank's price list and members): an ``ETag``
of what the list holds, and ``304 Not Modified`` when the caller's ``If-None-Match`` has it.

Every gateway asks for its bank's lists twice a minute (so that a new member or a new price
reaches it within 60 s, docs/attendant.md); an unchanged list then costs a few bytes instead of
the whole list. The tag is a digest of the list's content, not of the whole answer (the price
list's ``at`` changes every second), so it changes exactly when the list does.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import Request, Response


def etag_of(content: Any) -> str:
    """A strong ETag of ``content`` (JSON-able; datetimes as text)."""
    raw = json.dumps(content, sort_keys=True, default=str, separators=(",", ":")).encode()
    return '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'


def conditional(
    request: Request, response: Response, content: Any, *, private: bool = False
) -> Response | None:
    """Tag ``response`` with the ETag of ``content``; a 304 to return instead when the request's
    ``If-None-Match`` names it (or ``*``), else None (answer as usual). ``private``: the list is
    the caller's own view (personal data): no shared cache may keep it."""
    tag = etag_of(content)
    headers = {"ETag": tag, "Cache-Control": "private, no-cache" if private else "no-cache"}
    response.headers.update(headers)
    asked = {
        t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")
    }
    if tag in asked or "*" in asked:
        return Response(status_code=304, headers=headers)
    return None
