"""The fleet in words, for the page (/armada) and ``wastebank fleet``: each condition's mark,
each problem's and field's words (Bahasa Indonesia, English), durations, and a device described
with its times in its site's zone (docs/fleet.md, "Each field")."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from wastebank import formats
from wastebank.fleet.view import (
    FAULT_STATES,
    ClockRow,
    Condition,
    FleetDevice,
    Lang,
    Problem,
    ScaleRow,
)

CONDITION_TEXTS: dict[Condition, tuple[str, str, str]] = {
    Condition.OFFLINE: ("⛔", "LURING", "OFFLINE"),
    Condition.FAULT: ("⚠", "GANGGUAN", "FAULT"),
    Condition.CLOCK: ("🕓", "JAM BELUM SINKRON", "CLOCK NOT SYNCED"),
    Condition.UNKNOWN: ("❔", "TIDAK DIKETAHUI", "UNKNOWN"),
    Condition.OK: ("✓", "BAIK", "OK"),
}
"""A condition's mark and words: the page and the CLI say it in text, never by colour alone."""

SCALE_STATE_TEXTS: dict[str, tuple[str, str]] = {
    "ok": ("stabil", "stable"),
    "unsettled": ("bergerak", "moving"),
    "overload": ("kelebihan beban", "overload"),
    "underload": ("di bawah nol", "underload"),
    "indicator_error": ("indikator galat", "indicator error"),
    "disconnected": ("tidak terhubung", "disconnected"),
    "zero_drift": ("nol bergeser", "zero drift"),
    "undetected": ("protokol belum dikenali", "protocol not detected yet"),
    "stale": ("tidak ada bacaan baru", "no fresh reading"),
}
"""Each scale state (every messages.ScaleState) in the words the gateway's /scales, its attendant
page and docs/operations.md ("Scale states") use: the gateway's ``STATE_TEXT``, which wastebank/
may not import (a test holds the two equal), lower case as the fleet's other phrases."""

TEXTS: dict[str, tuple[str, str]] = {
    # problems: scale states (a sensor's port closed is "disconnected" too), gateway alert codes
    # (messages.AlertCode), TPS alert codes
    **SCALE_STATE_TEXTS,
    "scale_offline": ("timbangan tidak terhubung", "scale offline"),
    "outbox_dropped": ("outbox membuang data", "outbox dropped rows"),
    "publish_refused": ("broker menolak kiriman", "broker refused publishes"),
    "fill_high": ("TPS hampir penuh", "TPS nearly full"),
    "sensor_offline": ("sensor tidak terdengar", "sensor silent"),
    "no_target": ("tidak ada target", "no target"),
    "unreadable_report": ("laporan tersimpan tak terbaca", "stored report unreadable"),
    "unserved_sensor": (
        "melaporkan sensor yang tidak dilayaninya",
        "reports a sensor it does not serve",
    ),
    "removed_but_heard": (
        "dihapus dari registri tetapi masih terdengar",
        "removed from the registry but still heard",
    ),
    # why offline
    "status": ("status: luring", "status: offline"),
    "silent": ("tidak terdengar", "silent"),
    "never": ("belum pernah terdengar", "never heard"),
    # why unknown
    "via_offline": ("lewat gateway yang luring", "via an offline gateway"),
    "unknown": ("tidak diketahui", "unknown"),
    # the words of a device's description
    "gateway": ("Gateway", "Gateway"),
    "fill_sensor": ("Sensor TPS", "TPS sensor"),
    "via": ("lewat", "via"),
    "not_registered": ("tidak terdaftar", "not registered"),
    "last_seen": ("Terakhir terdengar", "Last seen"),
    "why_offline": ("Sebab luring", "Why offline"),
    "why_unknown": ("Sebab tidak diketahui", "Why unknown"),
    "version": ("Versi", "Version"),
    "outbox": ("Outbox", "Outbox"),
    "clock": ("Jam", "Clock"),
    "scales": ("Timbangan", "Scales"),
    "no_target_count": ("Bingkai tanpa target", "No-target frames"),
    "since_gateway_start": ("sejak gateway mulai", "since the gateway started"),
    "all_no_target_since": ("semuanya tanpa target sejak", "every one since"),
    "problems": ("Masalah aktif", "Active problems"),
    "ago": ("lalu", "ago"),
    "queued": ("antre", "queued"),
    "oldest": ("tertua", "oldest"),
    "synced": ("tersinkron", "synchronized"),
    "not_synced": ("belum sinkron", "not synchronized"),
    "offset": ("selisih", "offset"),
    "synced_at": ("sinkron sejak", "synced at"),
    "time_source_lost": ("sumber waktu hilang", "time source lost"),
    "over_a_year": ("lebih dari 1 tahun", "over a year"),
    "over_a_year_behind": ("mundur lebih dari 1 tahun", "over a year behind"),
    "over_a_year_ahead": ("maju lebih dari 1 tahun", "over a year ahead"),
    "serving_unchecked": (
        "Registri perangkat tidak dibaca: sensor yang dilaporkan gateway tidak diperiksa "
        "terhadap registri (hanya gateway bank terdaftar, di kota yang sama dengan TPS-nya).",
        "Device registry not read: the sensors a gateway reports are not checked against the "
        "registry (only a gateway of a registered bank, in its TPS's city).",
    ),
    "since": ("sejak", "since"),
    "no_sites": (
        "Ledger ini tidak berisi bank sampah maupun TPS: ledger yang salah? (WASTEBANK_LEDGER_URL "
        "atau --ledger-url; untuk demo, perintah yang dicetak wastebank demo)",
        "This ledger has no waste bank and no TPS: the wrong ledger? (WASTEBANK_LEDGER_URL or "
        "--ledger-url; for the demo, the command wastebank demo prints)",
    ),
}


def say(code: str, lang: Lang) -> str:
    return formats.bilingual(code, lang, TEXTS)


def condition_text(c: Condition, lang: Lang) -> str:
    mark, id_, en = CONDITION_TEXTS[c]
    return f"{mark} {formats.in_lang((id_, en), lang)}"


DURATION_MAX_S = 365 * 86400
"""Longer is said "over a year": an age that long is a clock far off (a gateway's stamped
before its clock was set), not a figure to read."""


def duration(seconds: float | None, lang: Lang) -> str:
    """``45 dtk``, ``12 mnt``, ``3 jam 5 mnt``, ``2 hari 4 jam`` (``45 s``, ``3 h 5 min`` in
    English); ``lebih dari 1 tahun`` / ``over a year`` past :data:`DURATION_MAX_S`;
    ``tidak diketahui`` / ``unknown`` for None."""
    if seconds is None:
        return say("unknown", lang)
    if seconds > DURATION_MAX_S:
        return say("over_a_year", lang)
    s = max(0, int(seconds))
    units = (("hari", "d", 86400), ("jam", "h", 3600), ("mnt", "min", 60), ("dtk", "s", 1))
    for i, (id_, en, size) in enumerate(units):
        if s >= size or size == 1:
            text = f"{formats.thousands(s // size)} {formats.in_lang((id_, en), lang)}"
            if i + 1 < len(units):
                next_id, next_en, next_size = units[i + 1]
                if rest := (s % size) // next_size:
                    text += f" {rest} {formats.in_lang((next_id, next_en), lang)}"
            return text
    raise AssertionError("unreachable: the last unit is one second")


def problems_text(problems: Iterable[Problem], lang: Lang) -> list[str]:
    """Each problem as one phrase: ``kelebihan beban: scale-01``."""
    return [say(p.code, lang) + (f": {p.subject}" if p.subject else "") for p in problems]


@dataclass(frozen=True)
class Described:
    """A device in words, for the page and ``wastebank fleet``: times in its site's zone."""

    condition: str
    last_seen: str
    why_offline: str | None
    why_unknown: str | None
    version: str
    outbox: str | None  # gateways only
    clock: str | None  # gateways only
    scales: list[tuple[str, str, bool]]  # (scale, its state and since, a fault)
    problems: list[str]
    no_target: str | None = None  # sensors a gateway reports


def describe(d: FleetDevice, now: datetime, lang: Lang) -> Described:
    tz = ZoneInfo(d.timezone)
    unknown = say("unknown", lang)

    def when(at: datetime | None) -> str:
        return unknown if at is None else formats.tanggal_waktu(at, tz, lang)

    def since(at: datetime | None) -> str:
        return f" ({say('since', lang)} {when(at)})" if at is not None else ""

    last_seen = unknown
    if d.last_seen is not None:
        gap = duration((now - d.last_seen).total_seconds(), lang)
        last_seen = f"{when(d.last_seen)} ({gap} {say('ago', lang)})"
    return Described(
        condition=condition_text(d.condition, lang),
        last_seen=last_seen,
        why_offline=say(d.offline_reason, lang) if d.offline_reason else None,
        why_unknown=_why_unknown(d, lang),
        version=d.version or unknown,
        outbox=_outbox_text(d, lang) if d.kind == "gateway" else None,
        clock=_clock_text(d.clock, when, lang) if d.kind == "gateway" else None,
        scales=[
            (sc.scale_id, say(sc.state or "unknown", lang) + since(sc.since), _faulty(sc))
            for sc in d.scales
        ],
        problems=[
            text + since(p.since)
            for text, p in zip(problems_text(d.problems, lang), d.problems, strict=True)
        ],
        no_target=None if d.no_target is None else _no_target_text(d, when, lang),
    )


def _no_target_text(d: FleetDevice, when: Callable[[datetime | None], str], lang: Lang) -> str:
    text = f"{formats.thousands(d.no_target or 0)} {say('since_gateway_start', lang)}"
    if d.no_target_since is not None:
        text += f"; {say('all_no_target_since', lang)} {when(d.no_target_since)}"
    return text


def _why_unknown(d: FleetDevice, lang: Lang) -> str | None:
    if d.unknown_reason is None:
        return None
    return say(d.unknown_reason, lang) + (f" ({d.via})" if d.via else "")


def _faulty(sc: ScaleRow) -> bool:
    return (sc.state or ("disconnected" if not sc.connected else "")) in FAULT_STATES


def _outbox_text(d: FleetDevice, lang: Lang) -> str:
    if d.outbox_depth is None:
        return say("unknown", lang)
    text = f"{formats.thousands(d.outbox_depth)} {say('queued', lang)}"
    if d.outbox_oldest_age_s is not None:
        text += f", {say('oldest', lang)} {duration(d.outbox_oldest_age_s, lang)}"
    return text


def _clock_text(clock: ClockRow | None, when: Callable[[datetime | None], str], lang: Lang) -> str:
    if clock is not None and clock.synchronized is False and clock.synced_at is not None:
        # synced this boot, its source lost since: its events are still trusted
        text = f"{say('synced_at', lang)} {when(clock.synced_at)}, {say('time_source_lost', lang)}"
    elif clock is None or clock.synchronized is None:
        text = say("unknown", lang)
    else:
        text = say("synced" if clock.synchronized else "not_synced", lang)
    if clock is not None and clock.source != "unknown":
        text += f" ({clock.source})"
    if clock is not None and clock.offset_ms is not None:
        text += f", {say('offset', lang)} {offset(clock.offset_ms, lang)}"
    return text


def offset(ms: int, lang: Lang) -> str:
    """A clock offset without a thousands or decimal separator, which an English reader would
    misread in id-ID figures (``-4.321 ms`` reads as about 4 ms): ``-321 ms``, ``-4 dtk 321 ms``
    (``-4 s 321 ms``), from a minute on as :func:`duration` says it (``-2 mnt 5 dtk``); past
    :data:`DURATION_MAX_S` in words that carry the sign (chrony's: negative is slow), ``mundur
    lebih dari 1 tahun`` / ``over a year behind``, ``maju ...`` / ``... ahead``."""
    sign, size = ("-" if ms < 0 else ""), abs(ms)
    if size // 1000 > DURATION_MAX_S:
        return say("over_a_year_behind" if ms < 0 else "over_a_year_ahead", lang)
    if size < 1000:
        return f"{sign}{size} ms"
    text = duration(size // 1000, lang)
    if size < 60_000 and size % 1000:
        text += f" {size % 1000} ms"
    return sign + text
