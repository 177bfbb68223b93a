"""Replaying dead letters after a fix, through the ingester's own processing, each applied once.

A replay runs each stored message through ``Ingester.process`` (the same validation, identity
check and ledger application as live ingest, without its dead-letter side effect), writes the
returned points to InfluxDB, then marks the row replayed. A message that still fails keeps its
row: the new reason goes to ``last_error`` and ``replay_attempts`` counts up; it is never stored
again as a new row.

Once-only: the ledger applies a deposit once by its event id and InfluxDB keeps one point per
series and timestamp, so a replay interrupted between applying and marking (InfluxDB down, the
process killed) can be run again and changes nothing it already did. A row already marked
replayed is skipped.

A replayed row is kept, marked with ``replayed_at``, rather than deleted: the table stays the
record of what was rejected, why, and when it was put right (a deposit's money arrived late;
someone will ask why), and ``wastebank deadletter purge --replayed`` removes such rows once that
record is no longer wanted.
"""

from __future__ import annotations

import asyncio
import logging
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ingest.consumer import Ingester
from ingest.items import Rejected
from ingest.settings import IngestSettings
from wastebank import ledger
from wastebank.errors import Unavailable
from wastebank.influx import (
    Influx,
    InfluxError,
    InfluxWriter,
    ensure_schema,
    make_writer,
    retry_wait,
)
from wastebank.mqtt import retrying

log = logging.getLogger("wastebank.ingest.deadletter")

REPLAY_WRITE_ATTEMPTS = 5
"""Tries of one InfluxDB write that fails retryably before the replay stops (rows then stay as
they were; running the replay again later is safe)."""

_UNAVAILABLE = "InfluxDB tidak tersedia / unavailable: {}"

ProgressCallback = Callable[[int, int], None]
"""Called with (done, total) after each chunk of messages."""


@dataclass
class ReplaySummary:
    replayed: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)
    """Rows already marked replayed (nothing is done again)."""
    missing: list[int] = field(default_factory=list)
    """Ids asked for that are not in the table."""


class ReplayAborted(Unavailable):
    """InfluxDB stayed unavailable; the rows of the unfinished chunk are unchanged."""

    def __init__(self, message: str, summary: ReplaySummary) -> None:
        super().__init__(message)
        self.summary = summary


async def replay_dead_letters(
    settings: IngestSettings,
    ids: Sequence[int] | None,
    progress: ProgressCallback | None = None,
) -> ReplaySummary:
    """Replay the dead letters ``ids`` (None: every one not yet replayed), oldest first.

    InfluxDB is reached as ``wastebank ingest`` reaches it: the writer its settings ask for (or
    detected from ``/ping``), after ensuring the schema. Raises :class:`ReplayAborted` when
    InfluxDB stays unavailable.
    """
    summary = ReplaySummary()
    engine = ledger.make_engine(settings.ledger_url)
    influx = Influx(settings.influx)
    try:
        todo = await asyncio.to_thread(_select, engine, ids, summary)
        if progress is not None:
            progress(0, len(todo))
        if not todo:
            return summary
        try:
            writer = await make_writer(settings.influx)
            await ensure_schema(influx, settings.influx)
        except InfluxError as exc:
            raise ReplayAborted(_UNAVAILABLE.format(exc), summary) from exc
        try:
            ingester = Ingester(settings, engine, influx, writer)
            await _replay(ingester, engine, writer, todo, summary, progress, settings.batch_size)
        finally:
            await writer.aclose()
    finally:
        await influx.aclose()
        engine.dispose()
    log.info(
        "diputar ulang / replayed %d, gagal / failed %d",
        len(summary.replayed),
        len(summary.failed),
    )
    return summary


async def _replay(
    ingester: Ingester,
    engine: Engine,
    writer: InfluxWriter,
    todo: list[int],
    summary: ReplaySummary,
    progress: ProgressCallback | None,
    chunk_size: int,
) -> None:
    for start in range(0, len(todo), chunk_size):
        chunk = await asyncio.to_thread(_load, engine, todo[start : start + chunk_size])
        ok: list[tuple[int, list[str]]] = []
        failed: dict[int, str] = {}
        for row_id, topic, payload, truncated in chunk:
            if truncated is not None:
                failed[row_id] = truncated
                continue
            try:
                ok.append((row_id, await ingester.process(topic, payload)))
            except Rejected as exc:
                failed[row_id] = str(exc)
        try:
            await _write(writer, [line for _, lines in ok for line in lines], summary)
        except InfluxError:
            # Refused (4xx, or too large): find which messages InfluxDB will not take.
            kept: list[tuple[int, list[str]]] = []
            for row_id, lines in ok:
                try:
                    await _write(writer, lines, summary)
                    kept.append((row_id, lines))
                except InfluxError as exc:
                    failed[row_id] = f"InfluxDB refused: {exc}"
            ok = kept
        done = [row_id for row_id, _ in ok]
        await asyncio.to_thread(_record, engine, done, failed)
        summary.replayed.extend(done)
        summary.failed.update(failed)
        if progress is not None:
            progress(min(start + chunk_size, len(todo)), len(todo))


def _select(engine: Engine, ids: Sequence[int] | None, summary: ReplaySummary) -> list[int]:
    """The ids to replay, oldest first; fills in ``skipped`` and ``missing``."""
    dl = ledger.DeadLetter
    with Session(engine) as session:
        # A row an operator resolved (``deadletter resolve``) is settled like a replayed one.
        if ids is None:
            pending = (
                select(dl.id)
                .where(dl.replayed_at.is_(None), dl.resolved_at.is_(None))
                .order_by(dl.id)
            )
            return list(session.scalars(pending))
        rows = session.execute(
            select(dl.id, dl.replayed_at, dl.resolved_at).where(dl.id.in_(list(ids)))
        )
        replayed = {row_id: at is not None or done is not None for row_id, at, done in rows}
    wanted = list(dict.fromkeys(ids))
    summary.missing = [i for i in wanted if i not in replayed]
    summary.skipped = [i for i in wanted if replayed.get(i)]
    return sorted(i for i in wanted if replayed.get(i) is False)


def _load(engine: Engine, ids: Sequence[int]) -> list[tuple[int, str, bytes, str | None]]:
    """(id, topic, payload, why it cannot be replayed: only its first bytes are kept, or None)."""
    with Session(engine) as session:
        rows = ledger.dead_letters(session, limit=None, ids=ids)
        return [
            (
                row.id,
                row.topic,
                bytes(row.payload),
                ledger.truncated_text(row) if row.truncated else None,
            )
            for row in rows
        ]


def _record(engine: Engine, done: list[int], failed: dict[int, str]) -> None:
    with Session(engine) as session:
        ledger.mark_replayed(session, done)
        for row_id, error in failed.items():
            ledger.record_replay_failure(session, row_id, error)
        session.commit()


async def _write(writer: InfluxWriter, lines: list[str], summary: ReplaySummary) -> None:
    """Write ``lines``; a retryable failure is tried REPLAY_WRITE_ATTEMPTS times in all, then
    the replay stops (an operator runs it, and waits for it: a few tries, not live ingest's
    patience). A refusal is raised at once."""
    if not lines:
        return
    try:
        async for attempt in retrying(on=retry_wait, attempts=REPLAY_WRITE_ATTEMPTS):
            with attempt:
                try:
                    await writer.write(lines)
                except InfluxError as exc:
                    if not exc.beyond_retention:
                        raise
                    # As live ingest: older than the raw retention, InfluxDB kept the rest of
                    # the batch; the ledger has the deposits and these points would expire.
                    log.warning("titik di luar retensi / points beyond retention: %s", exc)
    except InfluxError as exc:
        if exc.retryable:
            raise ReplayAborted(_UNAVAILABLE.format(exc), summary) from exc
        raise


# ---- showing a payload ------------------------------------------------------------------------

_PRINTABLE = frozenset(string.printable) - frozenset("\x0b\x0c")


def payload_text(payload: bytes) -> str | None:
    """The payload as text if it is UTF-8 without control characters (tab/newline allowed)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if all(ch in _PRINTABLE or (ch.isprintable() and not ch.isascii()) for ch in text):
        return text
    return None


def hex_dump(payload: bytes, width: int = 16) -> str:
    """``offset  hex bytes  |ascii|`` lines, as ``hexdump -C`` prints them."""
    lines = []
    for offset in range(0, len(payload), width):
        chunk = payload[offset : offset + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        shown = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<{width * 3 - 1}}  |{shown}|")
    return "\n".join(lines)
