"""InfluxQL on ``/query`` (every version serves it), ``/ping``, and the v1 write through
:class:`Influx`; the literals a statement is built from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from wastebank.config import InfluxSettings
from wastebank.influx.auth import auth_headers, login_name
from wastebank.influx.errors import InfluxError, classify
from wastebank.influx.writers import V1Writer


@dataclass(frozen=True)
class Series:
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, v, strict=True)) for v in self.values]


class Influx:
    """An async v1-API client: ``/ping``, ``/write`` (line protocol) and ``/query`` (InfluxQL).

    ``/query`` is served by 1.x, by 2.x (v1 compatibility, through DBRP mappings) and by 3.x, so
    the API's queries work on all three; ``write`` is the v1 writer (see ``make_writer`` for v2).
    """

    def __init__(self, settings: InfluxSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._client = client or httpx.AsyncClient(
            base_url=settings.url, timeout=settings.timeout_s
        )
        self._writer = V1Writer(settings, client=self._client)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def ping(self) -> str:
        """The server's version (``X-Influxdb-Version``); raises InfluxError when unreachable."""
        try:
            resp = await self._client.get("/ping", headers=auth_headers(self.settings))
        except httpx.HTTPError as exc:
            raise InfluxError(
                f"InfluxDB unreachable: {exc!r}", status=None, retryable=True
            ) from exc
        if resp.status_code not in (200, 204):  # 1.x/2.x: 204; 3.x: 200 with a JSON body
            raise InfluxError(
                f"/ping answered {resp.status_code}", status=resp.status_code, retryable=True
            )
        return str(resp.headers.get("X-Influxdb-Version", "unknown"))

    async def ensure_database(self) -> None:
        await self.execute(f"CREATE DATABASE {ident(self.settings.database)}")

    async def drop_database(self) -> None:
        await self.execute(f"DROP DATABASE {ident(self.settings.database)}")

    async def execute(self, q: str, *, secret: bool = False) -> list[dict[str, Any]]:
        """POST one InfluxQL statement (DDL, ``SELECT ... INTO``); raise InfluxError on an error.

        A statement's own error (e.g. ``retention policy already exists``) comes back with HTTP
        200 inside the result; it is raised with ``status=200`` and ``retryable=False``.
        ``secret``: the statement holds a password (1.x user management): sent in the form body
        rather than the URL, and never quoted in an error.
        """
        params = {"q": q, "db": self.settings.database}
        what = "InfluxQL statement" if secret else repr(q)
        try:
            resp = await self._client.post(
                "/query",
                params=None if secret else params,
                data=params if secret else None,
                headers=auth_headers(self.settings),
            )
        except httpx.HTTPError as exc:
            raise InfluxError(
                f"InfluxDB unreachable: {exc!r}", status=None, retryable=True
            ) from exc
        if resp.status_code >= 300:
            raise classify(resp.status_code, resp.content, what=what, who=login_name(self.settings))
        results: list[dict[str, Any]] = resp.json().get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxError(f"{what} failed: {result['error']}", status=200, retryable=False)
        return results

    async def write(self, lines: list[str]) -> None:
        """Write line protocol (ns precision) through ``/write``; see V1Writer."""
        await self._writer.write(lines)

    async def query(self, q: str) -> list[Series]:
        """Run one InfluxQL statement; timestamps come back as epoch milliseconds."""
        params = {"db": self.settings.database, "q": q, "epoch": "ms"}
        try:
            resp = await self._client.get(
                "/query", params=params, headers=auth_headers(self.settings)
            )
        except httpx.HTTPError as exc:
            raise InfluxError(f"query failed: {exc!r}", status=None, retryable=True) from exc
        if resp.status_code != 200:
            who = f" as {login_name(self.settings)}" if resp.status_code in (401, 403) else ""
            raise InfluxError(
                f"query answered {resp.status_code}{who}: {resp.text[:300]}",
                status=resp.status_code,
                retryable=resp.status_code >= 500,
            )
        data = resp.json()
        out: list[Series] = []
        for result in data.get("results", []):
            if "error" in result:
                if "database not found" in result["error"]:
                    return []
                raise InfluxError(f"query error: {result['error']}", status=200, retryable=False)
            for s in result.get("series", []):
                out.append(
                    Series(
                        name=s.get("name", ""),
                        tags=s.get("tags") or {},
                        columns=s["columns"],
                        values=s.get("values") or [],
                    )
                )
        return out


def ident(name: str) -> str:
    """An InfluxQL identifier, double-quoted."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def influxql_time(at: datetime) -> str:
    """An RFC3339 UTC literal for an InfluxQL WHERE clause."""
    return "'" + at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "'"
