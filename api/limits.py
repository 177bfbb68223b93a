"""The API's body limits: which routes take an upload. The middleware itself, the one rule for
the API and the gateway, is :class:`wastebank.http_limits.BodyLimit` (api/app.py wires it):
routes that take a file (a ``File`` parameter: the member import, ``POST /admin/impor``) get
``max_upload_bytes``, every other route ``max_body_bytes`` (settings ``WASTEBANK_HTTP__*``,
api/settings.py); refusals are logged on ``api.limits``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from fastapi import params

log = logging.getLogger("api.limits")
"""Where the API's body-limit refusals are logged (docs/operations.md)."""

refused: Counter[str] = Counter()
"""This process's size-limit refusals by kind: ``declared`` and ``streamed`` (a body's 413,
:class:`~wastebank.http_limits.BodyLimit`), ``head`` (a request head's 431, api/server.py);
an admin's ``GET /health`` shows them (``capacity.too_large``)."""

closed: Counter[str] = Counter()
"""This process's connections closed by :class:`~wastebank.http_limits.ReadDeadline`:
``head_timeout`` (no whole request head within ``http.read_timeout_s``) and ``connections``
(beyond ``http.max_connections`` or its per-client share); an admin's ``GET /health`` shows
them (``capacity.closed``)."""

too_slow: Counter[str] = Counter()
"""This process's 408s: a body not whole within ``http.read_timeout_s`` (``body``); an admin's
``GET /health`` shows them (``capacity.too_slow``)."""


def flat_routes(routes: list[Any]) -> list[Any]:
    """Every route of the app, those of included routers too: FastAPI >= 0.16x keeps an included
    router whole (``fastapi.routing.iter_route_contexts`` walks it); older ones copy its routes
    into the app's list, which is then already flat."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return routes
    return list(iter_route_contexts(routes))


def upload_paths(routes: Iterable[object]) -> list[re.Pattern[str]]:
    """The path patterns of the routes that take a file (``File``/``UploadFile`` parameters),
    from FastAPI's own view of each route's body."""
    out = []
    for route in flat_routes(list(routes)):
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        if any(isinstance(p.field_info, params.File) for p in dependant.body_params):
            out.append(route.path_regex)
    return out
