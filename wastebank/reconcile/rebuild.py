"""Rebuilding InfluxDB's ``deposit`` points from the ledger (``wastebank influx rebuild-deposits``):
a range's points deleted (InfluxQL ``DELETE`` on 1.x, ``/api/v2/delete`` on 2.x) and written again
from the ledger's device deposits, as the ingester would have; then the hourly roll-up recomputed
on 1.x."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Literal

import httpx
from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.orm import Session

from wastebank.config import InfluxSettings
from wastebank.errors import SetupError
from wastebank.influx import (
    CLOCK_AHEAD_TOLERANCE,
    DEPOSIT,
    DOWNSAMPLES,
    Influx,
    InfluxError,
    InfluxWriter,
    api_for_version,
    classify,
    deposit_line,
    ident,
    influxql_time,
    make_writer,
)
from wastebank.ledger import Bank, Category, Deposit, Kecamatan, Kelurahan
from wastebank.reconcile.drift import day_bounds, ledger_zones

WRITE_CHUNK = 5000
"""Lines per InfluxDB write when rebuilding (InfluxDB's advice, as the ingester)."""


class RebuildUnsupported(SetupError):
    """The server cannot delete points (InfluxDB 3.x): an operator deletes the range with the
    server's own tools."""


@dataclass
class RebuildSummary:
    server: str
    start: datetime  # UTC: the points in [start, end) were deleted and written again
    end: datetime
    written: int = 0
    beyond_retention: int = 0
    hours: tuple[datetime, datetime] | None = None  # the hourly roll-up recomputed (1.x)
    notes: list[str] = field(default_factory=list)


Server = Literal["v1", "v2"]


def server_kind(version: str, settings: InfluxSettings) -> Server:
    """How points are deleted: InfluxQL ``DELETE`` (1.x) or ``/api/v2/delete`` (2.x). Unknown
    versions (InfluxDB Cloud sends none) go as the writer does: v2 with a token, else v1.
    Raises :class:`RebuildUnsupported` for 3.x."""
    m = re.match(r"^v?(\d+)\.", version.strip())
    if m is not None and int(m.group(1)) >= 3:
        raise RebuildUnsupported(
            f"InfluxDB {version}: menghapus titik tidak didukung oleh 3.x / deleting points is "
            "not supported on 3.x (no DELETE, no /api/v2/delete); delete the range with the "
            "server's own tools, then write the points again"
        )
    return api_for_version(version if m else None, token=settings.token is not None)


def _rfc3339_ns(ns: int) -> str:
    """Nanoseconds since 1970 as an RFC3339 UTC time, for /api/v2/delete."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    at = datetime.fromtimestamp(seconds, UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


def _ns(at: datetime) -> int:
    delta = at.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


async def _delete_v2(settings: InfluxSettings, start: datetime, end: datetime) -> None:
    """``POST /api/v2/delete`` of the ``deposit`` points in [start, end). Its range is inclusive
    at both ends, so ``stop`` is ``end`` less a nanosecond."""
    headers = {}
    if settings.token is not None:
        headers["Authorization"] = f"Token {settings.token.get_secret_value()}"
    elif settings.username and settings.password:
        headers["Authorization"] = f"Token {settings.username}:"
        headers["Authorization"] += settings.password.get_secret_value()
    body = {
        "start": _rfc3339_ns(_ns(start)),
        "stop": _rfc3339_ns(_ns(end) - 1),
        "predicate": f'_measurement="{DEPOSIT}"',
    }
    params = {"org": settings.org or "-", "bucket": settings.bucket or settings.database}
    async with httpx.AsyncClient(base_url=settings.url, timeout=settings.timeout_s) as client:
        try:
            resp = await client.post("/api/v2/delete", params=params, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise InfluxError(f"delete failed: {exc!r}", status=None, retryable=True) from exc
    if resp.status_code != 204:
        raise classify(resp.status_code, resp.content, what="delete")


def _retention(duration: str) -> timedelta | None:
    """An InfluxQL duration (``90d``, ``12w``, ``48h``); None for ``INF``."""
    if duration == "INF":
        return None
    unit = {"h": 1, "d": 24, "w": 24 * 7}[duration[-1]]
    return timedelta(hours=int(duration[:-1]) * unit)


def _hour_floor(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_ceil(at: datetime) -> datetime:
    floor = _hour_floor(at)
    return floor if floor == at else floor + timedelta(hours=1)


def _count_deposits(engine: Engine, start: datetime, end: datetime) -> int:
    d = Deposit
    with Session(engine) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(d)
                .where(d.manual.is_(False), d.measured_at >= start, d.measured_at < end)
            )
            or 0
        )


def _page(
    engine: Engine,
    start: datetime,
    end: datetime,
    after: tuple[datetime, int] | None,
    limit: int,
    clock_ahead: Callable[[datetime, datetime | None], int | None],
) -> tuple[list[str], tuple[datetime, int] | None]:
    """The next ``limit`` device deposits in [start, end) after ``after`` (measured_at, id), as
    their points; and where the page ended."""
    d = Deposit
    stmt = (
        select(
            d.id,
            d.event_id,
            Bank.code,
            Kecamatan.name,
            Category.code,
            d.net_g,
            d.amount_idr,
            d.gateway_id,
            d.measured_at,
            d.recorded_at,
            d.clock_synced,
        )
        .select_from(d)
        .join(Bank, d.bank_id == Bank.id)
        .join(Kelurahan, Bank.kelurahan_id == Kelurahan.id)
        .join(Kecamatan, Kelurahan.kecamatan_id == Kecamatan.id)
        .join(Category, d.category_id == Category.id)
        .where(d.manual.is_(False), d.measured_at >= start, d.measured_at < end)
        .order_by(d.measured_at, d.id)
        .limit(limit)
    )
    if after is not None:
        at, last_id = after
        stmt = stmt.where(or_(d.measured_at > at, and_(d.measured_at == at, d.id > last_id)))
    lines: list[str] = []
    last: tuple[datetime, int] | None = None
    with Session(engine) as session:
        for (
            row_id,
            event_id,
            bank,
            kecamatan,
            category,
            net_g,
            amount,
            gateway,
            at,
            rec,
            synced,
        ) in session.execute(stmt):
            lines.append(
                deposit_line(
                    event_id=event_id,
                    bank=bank,
                    kecamatan=kecamatan,
                    category=category,
                    net_g=net_g,
                    amount_idr=amount,
                    gateway=gateway,
                    measured_at=at,
                    clock_ahead_s=clock_ahead(at, rec),
                    clock_synced=synced,
                )
            )
            last = (at, row_id)
    return lines, last


async def rebuild_deposits(
    engine: Engine,
    settings: InfluxSettings,
    date_from: date,
    date_to: date,
    *,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = WRITE_CHUNK,
) -> RebuildSummary:
    """Delete the ``deposit`` points of the local days ``[date_from, date_to]`` and write one
    for every device deposit of the ledger in them, as the ingester would have (voided ones
    too); then, on 1.x, recompute the hourly roll-up ``deposit_1h`` of the hours they cover.

    With cities in several zones, the range is from the earliest local midnight to the latest.
    Idempotent: a second run leaves the same points. ``progress(done, total)`` is told after each
    write. Raises :class:`RebuildUnsupported` (3.x) or InfluxError."""
    if date_to < date_from:
        raise ValueError(f"{date_to} is before {date_from}")
    zones = await asyncio.to_thread(ledger_zones, engine)
    start, end = day_bounds(zones, date_from, date_to)
    influx = Influx(settings)
    try:
        version = await influx.ping()
        kind = server_kind(version, settings)
        summary = RebuildSummary(server=version, start=start, end=end)
        total = await asyncio.to_thread(_count_deposits, engine, start, end)
        if progress is not None:
            progress(0, total)
        await _delete(influx, settings, kind, start, end)
        await _write_points(engine, settings, summary, total, chunk, progress)
        await _after_write(influx, settings, kind, summary)
    finally:
        await influx.aclose()
    return summary


async def _delete(
    influx: Influx, settings: InfluxSettings, kind: Server, start: datetime, end: datetime
) -> None:
    """The ``deposit`` points in [start, end) deleted, the server's way."""
    if kind == "v1":
        where = f"time >= {influxql_time(start)} AND time < {influxql_time(end)}"
        await influx.execute(f"DELETE FROM {ident(DEPOSIT)} WHERE {where}")  # noqa: S608
    else:
        await _delete_v2(settings, start, end)


async def _write_points(
    engine: Engine,
    settings: InfluxSettings,
    summary: RebuildSummary,
    total: int,
    chunk: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Every device deposit in the summary's range as its point, ``chunk`` a write, the ledger
    read a page at a time; counted in ``summary`` (written, beyond retention)."""
    clock_ahead = partial(_clock_ahead, tolerance=CLOCK_AHEAD_TOLERANCE)
    writer = await make_writer(settings)
    try:
        after: tuple[datetime, int] | None = None
        done = 0
        while True:
            lines, after = await asyncio.to_thread(
                _page, engine, summary.start, summary.end, after, chunk, clock_ahead
            )
            if not lines:
                break
            summary.beyond_retention += await _write(writer, lines)
            summary.written += len(lines)
            done += len(lines)
            if progress is not None:
                progress(done, max(total, done))
            if len(lines) < chunk:
                break
    finally:
        await writer.aclose()
    summary.written -= summary.beyond_retention


def _clock_ahead(
    measured_at: datetime, recorded_at: datetime | None, *, tolerance: timedelta
) -> int | None:
    """The ingester's clock-ahead field, from when the ledger recorded the deposit."""
    if recorded_at is None or measured_at - recorded_at <= tolerance:
        return None
    return int((measured_at - recorded_at).total_seconds())


async def _write(writer: InfluxWriter, lines: list[str]) -> int:
    """Write ``lines``; how many the server refused as beyond its retention."""
    try:
        await writer.write(lines)
    except InfluxError as exc:
        if not exc.beyond_retention:
            raise
        # 1.x stored the rest of the chunk; the refused ones are past `raw`.
        return exc.dropped or 0
    return 0


async def _after_write(
    influx: Influx, settings: InfluxSettings, kind: Server, summary: RebuildSummary
) -> None:
    """1.x: the hourly roll-up recomputed; 2.x: a note that the server's task does it."""
    if kind == "v1" and _VERSION_1.match(summary.server.strip()):
        await _rollup_hours(influx, settings, summary.start, summary.end, summary)
    elif kind == "v2":
        summary.notes.append(
            "InfluxDB 2.x: ringkasan per jam dihitung task server (jendela 2d) / the hourly "
            "roll-up is the server's task (a 2d window): run it for older days "
            "(docs/protocol.md)"
        )


_VERSION_1 = re.compile(r"^v?1\.")


async def _rollup_hours(
    influx: Influx, settings: InfluxSettings, start: datetime, end: datetime, s: RebuildSummary
) -> None:
    """1.x: ``deposit_1h`` again for the whole hours covering [start, end): those hours' rows
    are deleted (an hour left without deposits must lose its row) and the roll-up's
    ``SELECT ... INTO`` (as ``downsample`` runs it) recomputes them. Hours older than the raw
    retention are left alone: their raw points are gone, the roll-up is all there is."""
    lo, hi = _hour_floor(start), _hour_ceil(end)
    keep = _retention(settings.retention_raw)
    if keep is not None:
        oldest = _hour_ceil(datetime.now(UTC) - keep)
        if lo < oldest:
            s.notes.append(
                f"jam sebelum {oldest.isoformat()} tidak dihitung ulang (di luar retensi raw) / "
                "hours before it were not recomputed (beyond the raw retention)"
            )
            lo = oldest
    if lo >= hi:
        return
    where = f"time >= {influxql_time(lo)} AND time < {influxql_time(hi)}"
    for ds in DOWNSAMPLES:
        if ds.source == DEPOSIT:
            await influx.execute(f"DELETE FROM {ident(ds.name)} WHERE {where}")  # noqa: S608
            await influx.execute(ds.select_into(settings.database, where))
    s.hours = (lo, hi)
