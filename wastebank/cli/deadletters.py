"""`wastebank deadletter`: the messages the ingester refused, kept for an operator: list, show,
replay after a fix, settle by hand, purge."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated

import typer

from wastebank.cli._common import (
    WHEN_HELP,
    ConfigOption,
    LedgerUrlOption,
    ReplaySummaryView,
    count_progress,
    parse_when,
    processes,
    resolve_ledger_url,
)
from wastebank.formats import terminal_text as _safe

if TYPE_CHECKING:
    from wastebank import ledger
    from wastebank.cli._common import IngestSettingsView

deadletter_app = typer.Typer(help="rejected messages / pesan yang ditolak", no_args_is_help=True)


def _replay_state(row: ledger.DeadLetter) -> str:
    if row.resolved_at is not None:
        return f"diselesaikan / resolved {row.resolved_at.isoformat(timespec='seconds')}"
    if row.replayed_at is not None:
        return f"diputar ulang / replayed {row.replayed_at.isoformat(timespec='seconds')}"
    if row.replay_attempts:
        n = row.replay_attempts
        return f"gagal diputar ulang {n}x / replay failed {n}x"
    return "belum diputar ulang / not replayed"


@deadletter_app.command("list")
def deadletter_list(
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
    topic_contains: Annotated[
        str | None, typer.Option(help="only topics containing this text")
    ] = None,
    since: Annotated[str | None, typer.Option(help=f"received at or after: {WHEN_HELP}")] = None,
    limit: Annotated[int, typer.Option(min=1, help="show at most the newest N")] = 1000,
) -> None:
    """List rejected messages: id, time, replay state, topic, error (the latest, if replayed)."""
    from wastebank import ledger

    engine = ledger.make_engine(resolve_ledger_url(ledger_url, config))
    try:
        with ledger.Session(engine) as session:
            rows = ledger.dead_letters(
                session,
                limit + 1,
                topic_contains=topic_contains,
                since=parse_when(since, "--since"),
                newest_first=True,
            )
    finally:
        engine.dispose()
    more = len(rows) > limit
    rows = rows[:limit][::-1]
    for row in rows:
        # The topic and the error are the sender's text (a field name it made up): escaped.
        typer.echo(
            f"{row.id}\t{row.received_at.isoformat(timespec='seconds')}\t{row.reason}"
            f"\t{_replay_state(row)}{_repeats(row)}\t{_safe(row.topic)}"
            f"\t{_safe(row.current_error)}"
        )
    typer.echo(f"{len(rows)} pesan ditolak / {len(rows)} dead letter(s)")
    if more:
        typer.echo(f"hanya {limit} terbaru / only the newest {limit} shown (--limit)")


def _repeats(row: ledger.DeadLetter) -> str:
    n = row.times_received
    return f", diterima {n}x / received {n}x" if n > 1 else ""


SHOWN_BYTES = 4096
"""``deadletter show`` prints at most this many bytes of a payload unless asked for all."""


@deadletter_app.command("show")
def deadletter_show(
    dead_letter_id: Annotated[int, typer.Argument(metavar="ID", help="the dead letter's id")],
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
    full: Annotated[
        bool,
        typer.Option("--full", help=f"the whole payload kept, not its first {SHOWN_BYTES} bytes"),
    ] = False,
) -> None:
    """Show one rejected message: topic, times, reason, errors and the raw payload (text or
    hex, its first 4096 bytes unless --full; control characters escaped); for a conflict, also
    the deposit the ledger keeps under that event id."""
    from wastebank import ledger

    engine = ledger.make_engine(resolve_ledger_url(ledger_url, config))
    try:
        with ledger.Session(engine) as session:
            row = ledger.get_dead_letter(session, dead_letter_id)
            kept = (
                ledger.deposit_by_event_id(session, row.event_id)
                if row is not None and row.event_id
                else None
            )
            kept_text = _deposit_text(kept) if kept is not None else None
    finally:
        engine.dispose()
    if row is None:
        typer.echo(f"tidak ada / no dead letter #{dead_letter_id}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"id: {row.id}")
    typer.echo(f"topik / topic: {_safe(row.topic)}")
    typer.echo(f"diterima / received: {row.received_at.isoformat()}")
    if row.times_received > 1 and row.last_received_at is not None:
        typer.echo(
            f"diterima {row.times_received}x, terakhir / received {row.times_received}x, "
            f"last: {row.last_received_at.isoformat()}"
        )
    typer.echo(f"alasan / reason: {row.reason}")
    if row.event_id:
        typer.echo(f"event id: {_safe(row.event_id)}")
    typer.echo(f"galat / error: {_safe(row.error)}")
    typer.echo(f"status: {_replay_state(row)}")
    if row.resolution:
        typer.echo(f"penyelesaian / resolution: {_safe(row.resolution)} ({row.resolved_by})")
    if kept_text is not None:
        typer.echo("di buku besar / in the ledger (tidak berubah / unchanged):")
        typer.echo(kept_text)
        typer.echo("versi yang ditolak / the rejected version:")
    if row.replay_attempts:
        typer.echo(f"percobaan ulang / replay attempts: {row.replay_attempts}")
    if row.last_error:
        typer.echo(f"galat terakhir / last error: {_safe(row.last_error)}")
    if row.last_attempt_at:
        typer.echo(f"percobaan terakhir / last attempt: {row.last_attempt_at.isoformat()}")
    _show_payload(row, full)


def _show_payload(row: ledger.DeadLetter, full: bool) -> None:
    """The payload kept, as text (UTF-8 without control characters) or a hex dump; its first
    :data:`SHOWN_BYTES` (characters of a text) unless ``full``; a truncated row says so, with
    the whole size and hash."""
    from wastebank import ledger

    payload = bytes(row.payload)
    if row.truncated:
        typer.echo(f"terpotong / {ledger.truncated_text(row)}")
    text = processes().payload_text(payload)
    limit = len(payload) if full else SHOWN_BYTES
    typer.echo(f"muatan / payload ({len(payload)} bytes, {'hex' if text is None else 'UTF-8'}):")
    if text is not None:
        typer.echo(text[:limit])
        more = len(text) - limit
    else:
        typer.echo(processes().hex_dump(payload[:limit]))
        more = len(payload) - limit
    if more > 0:
        typer.echo(f"... {more} lagi / {more} more (--full)")


def _deposit_text(d: ledger.Deposit) -> str:
    """A deposit as ``deadletter show`` prints it beside a conflicting payload."""
    return json.dumps(
        {
            "event_id": d.event_id,
            "bank_code": d.bank.code,
            "gateway_id": d.gateway_id,
            "scale_id": d.scale_id,
            "member_no": d.member.member_no,
            "category_code": d.category.code,
            "net_g": d.net_g,
            "amount_idr": d.amount_idr,
            "measured_at": d.measured_at.isoformat(),
            "recorded_at": d.recorded_at.isoformat(),
        },
        indent=2,
    )


@deadletter_app.command("resolve")
def deadletter_resolve(
    dead_letter_id: Annotated[int, typer.Argument(metavar="ID", help="the dead letter's id")],
    reason: Annotated[str, typer.Option(help="why (kept on the dead letter and in the audit)")],
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="a conflict: apply it as a new deposit R-<ID>; over_limit: apply it as sent",
        ),
    ] = False,
    discard: Annotated[bool, typer.Option("--discard", help="keep it, settled, unapplied")] = False,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Settle a dead letter a replay cannot settle: --apply a conflict as a deposit of its own
    (id R-<ID>; the deposit already under its event id is not touched) or a deposit over its
    scale's limit under its own id (you vouch for the weight), or --discard it. Once, with a
    reason, audited. The deposit's InfluxDB point is written with the ingester's settings; if
    InfluxDB is unreachable, `wastebank influx rebuild-deposits` writes it later.
    """
    from wastebank import access, alerts, ledger

    if apply == discard:
        typer.echo("pilih --apply atau --discard / choose --apply or --discard", err=True)
        raise typer.Exit(code=2)
    overrides = {"ledger_url": ledger_url} if ledger_url else {}
    settings = processes().ingest_settings(config, **overrides)
    actor = access.cli_actor()
    engine = ledger.make_engine(settings.ledger_url)
    try:
        with ledger.Session(engine) as session:
            try:
                row, applied = ledger.resolve_dead_letter(
                    session,
                    dead_letter_id,
                    apply=apply,
                    reason=reason,
                    author=actor.name,
                    rules=settings.money,
                )
            except ledger.LedgerError as exc:
                typer.echo(f"ditolak / refused: {exc}", err=True)
                raise typer.Exit(code=1) from None
            resolution = row.resolution or ""
            conflict = row.event_id if row.reason == ledger.DeadLetterReason.CONFLICT else None
            if conflict and not ledger.unsettled_conflicts(session, conflict):
                alerts.clear_alert(
                    session,
                    alerts.AlertCode.DEPOSIT_CONFLICT,
                    conflict,
                    by=actor.name,
                    note=resolution,
                )
            access.audit(session, actor, "deadletter.resolve", "dead_letter", row.id, resolution)
            session.commit()
    finally:
        engine.dispose()
    typer.echo(f"#{dead_letter_id}: {resolution}")
    if applied is not None:
        try:
            asyncio.run(_write_deposit_point(settings, applied))
        except Exception as exc:  # noqa: BLE001 - the ledger holds; say how to mend InfluxDB
            typer.echo(
                f"titik InfluxDB belum ditulis / InfluxDB point not written ({exc}): "
                "wastebank influx rebuild-deposits",
                err=True,
            )


async def _write_deposit_point(settings: IngestSettingsView, d: ledger.AppliedDeposit) -> None:
    from wastebank.influx import deposit_line, make_writer

    assert d.measured_at is not None
    writer = await make_writer(settings.influx)
    try:
        await writer.write(
            [
                deposit_line(
                    event_id=d.event_id,
                    bank=d.bank_code,
                    kecamatan=d.kecamatan,
                    category=d.category_code,
                    net_g=d.net_g,
                    amount_idr=d.amount_idr,
                    gateway=d.gateway_id,
                    measured_at=d.measured_at,
                    clock_synced=d.clock_synced,
                )
            ]
        )
    finally:
        await writer.aclose()


@deadletter_app.command("replay")
def deadletter_replay(
    ids: Annotated[list[int] | None, typer.Argument(metavar="[ID]...", show_default=False)] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="every dead letter not yet replayed")
    ] = False,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Run rejected messages through the ingester again, after a fix; each is applied once.

    Uses the ingester's settings (--config / WASTEBANK_*). A message that still fails keeps its
    row with the new error and a count of attempts; one that succeeds is marked replayed.
    Exit status 1 if any message failed again or an ID does not exist.
    """
    if bool(ids) == replay_all:
        typer.echo("sebutkan ID atau --all / give IDs or --all (not both)", err=True)
        raise typer.Exit(code=2)
    overrides = {"ledger_url": ledger_url} if ledger_url else {}
    settings = processes().ingest_settings(config, **overrides)
    bar, progress = count_progress("memutar ulang / replaying")
    with bar:
        summary, aborted = processes().replay_dead_letters(settings, ids or None, progress)
    _report_replay(summary)
    if aborted is not None:
        typer.echo(f"dihentikan / stopped: {aborted}", err=True)
        raise typer.Exit(code=1)
    if summary.failed or summary.missing:
        raise typer.Exit(code=1)


REPLAY_FAILURES_SHOWN = 20


def _report_replay(summary: ReplaySummaryView) -> None:
    for row_id, error in list(summary.failed.items())[:REPLAY_FAILURES_SHOWN]:
        typer.echo(f"#{row_id} gagal / failed: {error}")
    if len(summary.failed) > REPLAY_FAILURES_SHOWN:
        more = len(summary.failed) - REPLAY_FAILURES_SHOWN
        typer.echo(f"... dan {more} lagi / and {more} more: wastebank deadletter list")
    for row_id in summary.missing:
        typer.echo(f"#{row_id} tidak ada / not found")
    typer.echo(
        f"diputar ulang / replayed: {len(summary.replayed)}, gagal / failed: "
        f"{len(summary.failed)}, sudah diputar ulang / already replayed: {len(summary.skipped)}"
    )


@deadletter_app.command("purge")
def deadletter_purge(
    replayed: Annotated[bool, typer.Option("--replayed", help="rows already replayed")] = False,
    before: Annotated[str | None, typer.Option(help=f"received before: {WHEN_HELP}")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="really delete")] = False,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Delete dead letters: replayed ones and/or those received before a date (both: both)."""
    from wastebank import ledger

    if not replayed and before is None:
        typer.echo("perlu --replayed dan/atau --before / need --replayed and/or --before", err=True)
        raise typer.Exit(code=2)
    cutoff = parse_when(before, "--before")
    engine = ledger.make_engine(resolve_ledger_url(ledger_url, config))
    try:
        with ledger.Session(engine) as session:
            count = ledger.purge_dead_letters(
                session, replayed=replayed, before=cutoff, dry_run=not yes
            )
            session.commit()
    finally:
        engine.dispose()
    if not yes:
        typer.echo(
            f"{count} akan dihapus; ulangi dengan --yes / {count} would be deleted; "
            "repeat with --yes",
            err=True,
        )
        raise typer.Exit(code=1)
    typer.echo(f"{count} dihapus / {count} deleted")
