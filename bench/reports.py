"""DLH report: the 12-month tonnage report by kecamatan x category over 2,000,000 deposits.

Data (generated, timed separately):

* a PostgreSQL ledger (a database of its own on the project's server, dropped at the end; or,
  ``--backend sqlite``, a temporary SQLite file) with the demo city plus ``--banks`` extra
  banks, and ``--deposits`` deposits spread over 2026 in WIT daytime hours, written with COPY
  (SQLite: executemany): 2 % manual (estimated), 0.1 % voided. COPY writes around the ledger's
  summaries, so the script then makes them with ``ledger.rebuild_deposit_days`` (what
  ``wastebank ledger rebuild-summary`` runs; timed and printed apart);
* ``--fill-sensors`` TPS sensors x a year of 15-minute fill readings (500 x 35,040 = 17.5 M) in
  an InfluxDB database of its own (raw retention INF so a year fits; dropped at the end), each
  line from the project's encoder (``wastebank.influx.line``), 10,000 lines a write, two writes
  in flight; then the project's hourly roll-up (``downsample``, the CQs' SELECT INTO) and a
  prototype daily roll-up (per WIT day and TPS, in a retention policy with 52-week shards).

Timed, each against a baseline measured in the same run (median of ``--runs``, after one
untimed run):

* the ledger report: ``reports.cells`` + ``reports.tonnage(..., "kecamatan"/"category",
  "month")`` for the year, i.e. what ``/api/dlh/tonnage?period=month`` and the monthly report
  do, from the monthly roll-up ``deposit_month`` (migration 0006); baseline: the same from the
  daily summary ``deposit_day`` alone (what 0005 read). Goal: < 300 ms;
* the monthly mean fill per TPS for the 12 WIT months, from the hourly roll-up and from the
  daily prototype; baseline: from the raw readings. All three give the same means (checked).
  Goal: < 300 ms.

The exit status is the ledger goal's; the fill figures are printed with their own verdicts.

    .venv/bin/python bench/reports.py [--deposits 2000000] [--fill-sensors 500] [--runs 5]
        [--backend postgresql|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import make_url, select, text
from sqlalchemy.orm import Session

from wastebank import ledger, reports, services
from wastebank.config import InfluxSettings, load_settings
from wastebank.influx import (
    FILL,
    Influx,
    downsample,
    ensure_schema,
    ident,
    influxql_time,
    line,
)
from wastebank.seed import seed_demo

GOAL_MS = 300.0
YEAR = 2026
WIT_OFFSET = timedelta(hours=9)
YEAR_START = datetime(YEAR, 1, 1, tzinfo=UTC) - WIT_OFFSET  # 00:00 WIT on 1 January


def progress(label: str, done: int, total: int) -> None:
    print(f"\r  {label}: {done:,}/{total:,} ({100 * done / total:.0f} %)", end="", flush=True)
    if done >= total:
        print()


def admin_url() -> str:
    settings = load_settings(services.ServicesSettings)
    return services.postgresql_url(settings)


def create_ledger(admin: str) -> tuple[str, str]:
    name = f"bench_reports_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_dsn(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    return name, url


def drop_ledger(admin: str, name: str) -> None:
    with psycopg.connect(_dsn(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def add_banks(url: str, n: int) -> None:
    """``n`` more banks in the demo city's kelurahan, each with one member."""
    engine = ledger.make_engine(url)
    with Session(engine) as s:
        city = s.scalars(select(ledger.City)).one()
        kelurahan = list(s.scalars(select(ledger.Kelurahan)))
        for i in range(n):
            bank = ledger.Bank(
                code=f"bs-bench-{i:03d}",
                name=f"Bank Sampah Bench {i}",
                city_id=city.id,
                kelurahan_id=kelurahan[i % len(kelurahan)].id,
                kind="unit",
            )
            s.add(bank)
            s.flush()
            s.add(ledger.Member(member_no=f"BEN-{i:04d}", name=f"Bench {i}", bank_id=bank.id))
        s.commit()
    engine.dispose()


def _generated(
    url: str, n: int, seed: int, expected: dict[str, int], voided: list[str]
) -> Iterator[tuple[str, int, int, int, int, datetime, bool]]:
    """``n`` deposits (event id, member, bank, category, grams, measured_at, manual) spread over
    the year; counts the non-voided ones into ``expected`` and lists the voided in ``voided``."""
    rng = random.Random(seed)
    engine = ledger.make_engine(url)
    with Session(engine) as s:
        members = [(m.id, m.bank_id) for m in s.scalars(select(ledger.Member))]
        cats = [c.id for c in s.scalars(select(ledger.Category))]
    engine.dispose()
    start = datetime(YEAR, 1, 1, tzinfo=UTC) - WIT_OFFSET  # 00:00 WIT on 1 Jan
    for i in range(n):
        member_id, bank_id = members[rng.randrange(len(members))]
        day = rng.randrange(365)
        # WIT 07:00-18:00, plus a few around midnight for the month boundaries
        minute = rng.randrange(7 * 60, 18 * 60) if i % 100 else rng.randrange(24 * 60)
        at = start + timedelta(days=day, minutes=minute, seconds=rng.randrange(60))
        net_g = rng.randrange(100, 20_000)
        manual = i % 50 == 0
        if i % 1000 == 7:
            voided.append(f"bench-{i}")
        else:
            expected["net_g"] += net_g
            expected["deposits"] += 1
            expected["manual_g"] += net_g if manual else 0
        yield f"bench-{i}", member_id, bank_id, cats[i % len(cats)], net_g, at, manual


COLUMNS = (
    "event_id, member_id, bank_id, category_id, net_g, tare_g, price_per_kg_idr, amount_idr, "
    "measured_at, recorded_at, gateway_id, scale_id, protocol, stable, raw_frames, flow, "
    "manual"
)
CHUNK = 100_000


def write_deposits(url: str, n: int, seed: int = 6) -> dict[str, int]:
    """``n`` deposits with COPY (PostgreSQL) or executemany (SQLite), 0.1 % voided, and the
    daily summary rebuilt; returns expected totals (non-voided) for a check."""
    expected = {"net_g": 0, "deposits": 0, "manual_g": 0}
    voided: list[str] = []
    rows = _generated(url, n, seed, expected, voided)
    if make_url(url).get_backend_name() == "sqlite":
        _write_sqlite(url, n, rows, voided)
    else:
        _write_postgresql(url, n, rows, voided)
    # COPY wrote around the ledger's daily summary (what the reports read): make it, as
    # migration 0005 does for an existing ledger, and time it
    t = time.perf_counter()
    engine = ledger.make_engine(url)
    with Session(engine) as s:
        count = ledger.rebuild_deposit_days(s)
        s.execute(text("ANALYZE"))
        s.commit()
    engine.dispose()
    print(f"  daily summary (deposit_day): {count:,} rows in {time.perf_counter() - t:.1f} s")
    return expected


def _write_postgresql(
    url: str,
    n: int,
    rows: Iterator[tuple[str, int, int, int, int, datetime, bool]],
    voided: list[str],
) -> None:
    with psycopg.connect(_dsn(url)) as conn:
        for base in range(0, n, CHUNK):
            buf = io.StringIO()
            for event_id, member_id, bank_id, cat, net_g, at, manual in itertools.islice(
                rows, CHUNK
            ):
                buf.write(
                    f"{event_id}\t{member_id}\t{bank_id}\t{cat}\t{net_g}\t0\t"
                    f"1000\t{net_g}\t{at.isoformat()}\t{at.isoformat()}\tgw\tsc\tgs_nt\tt\t[]\t"
                    f"kiosk\t{'t' if manual else 'f'}\n"
                )
            with conn.cursor().copy(f"COPY deposit ({COLUMNS}) FROM STDIN") as copy:
                copy.write(buf.getvalue())
            progress("deposits", min(n, base + CHUNK), n)
        conn.execute(
            "INSERT INTO deposit_void (deposit_id, reason, author, voided_at) "
            "SELECT id, 'bench', 'bench', now() FROM deposit WHERE event_id = ANY(%s)",
            (voided,),
        )
        conn.commit()


def _write_sqlite(
    url: str,
    n: int,
    rows: Iterator[tuple[str, int, int, int, int, datetime, bool]],
    voided: list[str],
) -> None:
    path = make_url(url).database
    assert path
    stamp = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's DateTime text on SQLite, in UTC
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for base in range(0, n, CHUNK):
            batch = [
                (eid, m, b, c, g, 0, 1000, g, at.strftime(stamp), at.strftime(stamp), "gw", "sc",
                 "gs_nt", 1, "[]", "kiosk", int(manual))
                for eid, m, b, c, g, at, manual in itertools.islice(rows, CHUNK)
            ]  # fmt: skip
            conn.executemany(
                f"INSERT INTO deposit ({COLUMNS}) VALUES ({', '.join('?' * 17)})",  # noqa: S608
                batch,
            )
            conn.commit()
            progress("deposits", min(n, base + CHUNK), n)
        conn.executemany(
            "INSERT INTO deposit_void (deposit_id, reason, author, voided_at) "
            "SELECT id, 'bench', 'bench', '2027-01-01 00:00:00.000000' FROM deposit "
            "WHERE event_id = ?",
            [(e,) for e in voided],
        )
        conn.commit()


ROLL_UP_STEP = timedelta(days=7)
FILL_BATCH = 10_000  # lines per /write (~0.7 MB)
FILL_IN_FLIGHT = 2  # concurrent writes: InfluxDB parses one while Python encodes the next


async def write_fill(settings: InfluxSettings, sensors: int, days: int) -> int:
    """``sensors`` x ``days`` x 96 fill readings, time-major as sensors report, each line from
    the project's encoder (:func:`wastebank.influx.line`): a sensor's level follows a daily
    sawtooth (its own phase), so each (sensor, level) line is encoded once and the time appended
    to it (what ``line(..., time_ns)`` appends); then the hourly roll-up, month by month."""
    influx = Influx(settings)
    try:
        await influx.drop_database()
        await ensure_schema(influx, settings)
        per_sensor = days * 96
        total = sensors * per_sensor
        t0 = int(YEAR_START.timestamp()) * 10**9
        step = 15 * 60 * 10**9
        tags = [{"sensor": f"us-{sn:03d}", "tps": f"tps-{sn // 2:03d}"} for sn in range(sensors)]
        encoded: dict[tuple[int, int], str] = {}

        def encode(sn: int, q: int) -> str:
            level = q / 96
            fields = {"distance_mm": int(2000 * (1 - level)), "filling_level": level}
            return line(FILL, tags[sn], fields)

        def lines() -> Iterator[str]:
            for k in range(per_sensor):
                ts = f" {t0 + k * step}"
                for sn in range(sensors):
                    q = (k + 7 * sn) % 96
                    head = encoded.get((sn, q)) or encoded.setdefault((sn, q), encode(sn, q))
                    yield head + ts

        written = 0
        pending: set[asyncio.Task[None]] = set()
        source = lines()
        while batch := list(itertools.islice(source, FILL_BATCH)):
            if len(pending) >= FILL_IN_FLIGHT:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            pending.add(asyncio.create_task(influx.write(batch)))
            written += len(batch)
            if written % 500_000 < FILL_BATCH:
                progress("fill readings", written, total)
        for task in pending:
            await task
        progress("fill readings", written, total)
        return written
    finally:
        await influx.aclose()


async def roll_up(settings: InfluxSettings, days: int) -> None:
    """The hourly roll-up (``downsample``: the CQs' SELECT INTO) of the written range, a week
    at a time (a month of 500 sensors took more than the client's 10 s)."""
    influx = Influx(settings)
    try:
        month = YEAR_START
        end = month + timedelta(days=days)
        while month < end:
            nxt = min(end, month + ROLL_UP_STEP)
            await downsample(influx, month, nxt, settings)
            month = nxt
    finally:
        await influx.aclose()


def local_months() -> list[tuple[datetime, datetime]]:
    """The 12 local (WIT) months of the year, as UTC bounds."""
    firsts = [datetime(YEAR, m, 1, tzinfo=UTC) - WIT_OFFSET for m in range(1, 13)]
    return list(
        zip(firsts, [*firsts[1:], datetime(YEAR + 1, 1, 1, tzinfo=UTC) - WIT_OFFSET], strict=True)
    )


# The prototype daily roll-up (not in wastebank/influx.py yet, see docs/scaling.md): per local
# (WIT) day and TPS (both sensors of a TPS in one mean: the report is per TPS; the hourly one
# keeps each sensor), from the hourly one, in a retention policy of its own whose shards span
# 52 weeks (1.x gives an INF policy 7-day shards: a year is 53 shards x 500 series, and a query's
# cost here grows with series x shards far more than with points).
RP_DAILY = "daily"
DAILY_SHARD = "52w"
WIT_DAY_OFFSET = "15h"  # 00:00 WIT = 15:00 UTC: time(1d, 15h) buckets are WIT days


async def roll_up_daily(settings: InfluxSettings, days: int) -> None:
    """``daily.fill_level_1d`` from ``hourly.fill_level_1h``, a week at a time."""
    influx = Influx(settings)
    db = ident(settings.database)
    try:
        await influx.execute(
            f"CREATE RETENTION POLICY {ident(RP_DAILY)} ON {db} DURATION INF REPLICATION 1 "
            f"SHARD DURATION {DAILY_SHARD}"
        )
        week = YEAR_START
        end = week + timedelta(days=days)
        while week < end:
            nxt = min(end, week + ROLL_UP_STEP)
            await influx.execute(
                'SELECT mean("filling_level_mean") AS "filling_level_mean", '  # noqa: S608
                'max("filling_level_max") AS "filling_level_max", sum("readings") AS "readings" '
                f'INTO {db}.{ident(RP_DAILY)}."fill_level_1d" FROM {db}."hourly"."fill_level_1h" '
                f"WHERE time >= {influxql_time(week)} AND time < {influxql_time(nxt)} "
                f'GROUP BY time(1d, {WIT_DAY_OFFSET}), "tps"'
            )
            week = nxt
    finally:
        await influx.aclose()


FILL_SOURCES = {  # what the report reads: (retention policy, measurement, field)
    "raw": ("raw", "fill_level", "filling_level"),
    "hourly": ("hourly", "fill_level_1h", "filling_level_mean"),
    "daily": (RP_DAILY, "fill_level_1d", "filling_level_mean"),
}


def fill_statements(settings: InfluxSettings, source: str) -> str:
    """The monthly mean fill per TPS for the year: one statement per local month (InfluxQL has
    no calendar months), sent as one request. From the roll-ups it is the mean of the hours'
    (days') means: every hour holds 4 readings here, so it is the same figure."""
    rp, measurement, field = FILL_SOURCES[source]
    table = f"{ident(settings.database)}.{ident(rp)}.{ident(measurement)}"
    return ";".join(
        f"SELECT mean({ident(field)}) FROM {table} "  # noqa: S608
        f'WHERE time >= {influxql_time(lo)} AND time < {influxql_time(hi)} GROUP BY "tps"'
        for lo, hi in local_months()
    )


async def fill_query(
    settings: InfluxSettings, source: str, runs: int
) -> tuple[list[float], dict[tuple[str, int], float]]:
    """Times of the monthly fill report from ``source`` over ``runs`` runs, and the means it
    gave per (TPS, month)."""
    influx = Influx(settings)
    times = []
    try:
        q = fill_statements(settings, source)
        for _ in range(runs):
            t = time.perf_counter()
            series = await influx.query(q)
            times.append((time.perf_counter() - t) * 1000)
        means = {}
        for s in series:
            for at, mean in s.values:
                month = datetime.fromtimestamp(at / 1000, UTC) + WIT_OFFSET
                means[s.tags["tps"], month.month] = mean
        return times, means
    finally:
        await influx.aclose()


def daily_cells(s: Session, scope: reports.Scope, first: date, last: date) -> list[reports.Cell]:
    """The baseline: the year by month from the daily summary alone (what the reports read
    before the monthly roll-up, migration 0006)."""
    rows = reports._summed(s, scope, ledger.DepositDay.local_date, first, last, "month", first)
    return [reports.Cell(*row) for row in rows]


def timed_report(
    url: str, runs: int, *, baseline: bool = False
) -> tuple[list[float], reports.Tonnage, reports.Tonnage]:
    """``runs`` times of the 12-month report by kecamatan and by category (``baseline``: from
    the daily summary alone), and the last run's two tonnages."""
    engine = ledger.make_engine(url, writer=False)
    times = []
    try:
        with Session(engine) as s:
            scope = reports.load_scope(s)
            first, last = date(YEAR, 1, 1), date(YEAR, 12, 31)
            for run in range(runs + 1):  # the first, untimed: caches and compiled statements
                t = time.perf_counter()
                if baseline:
                    data = daily_cells(s, scope, first, last)
                else:
                    data = reports.cells(s, scope, first, last, "month")
                by_kec = reports.tonnage(s, scope, first, last, "kecamatan", "month", data=data)
                by_cat = reports.tonnage(s, scope, first, last, "category", "month", data=data)
                if run:
                    times.append((time.perf_counter() - t) * 1000)
    finally:
        engine.dispose()
    return times, by_kec, by_cat


def figures(times: list[float]) -> str:
    return (
        f"median {statistics.median(times):.0f} ms, min {min(times):.0f}, max {max(times):.0f} "
        f"over {len(times)} runs"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deposits", type=int, default=2_000_000)
    ap.add_argument("--banks", type=int, default=40)
    ap.add_argument("--fill-sensors", type=int, default=500)
    ap.add_argument("--fill-days", type=int, default=365)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--backend",
        choices=["postgresql", "sqlite"],
        default="postgresql",
        help="the ledger's database (sqlite: a temporary file)",
    )
    args = ap.parse_args()

    services_settings = load_settings(services.ServicesSettings)
    scratch = tempfile.TemporaryDirectory(prefix="wastebank-bench-reports-")
    if args.backend == "sqlite":
        admin, name = "", ""
        url = f"sqlite:///{Path(scratch.name) / 'ledger.db'}"
    else:
        admin = admin_url()
        name, url = create_ledger(admin)
    influx = InfluxSettings(
        url=f"http://127.0.0.1:{services_settings.influx_port}",
        database=f"bench_reports_{uuid.uuid4().hex[:8]}",
        retention_raw="INF",
        timeout_s=120,  # a week's SELECT INTO while other work shares the machine
    )
    met = True
    try:
        t = time.perf_counter()
        seed_demo(url)
        add_banks(url, args.banks)
        expected = write_deposits(url, args.deposits)
        gen_ledger_s = time.perf_counter() - t
        print(f"data: {args.deposits:,} deposits in {args.backend}: {gen_ledger_s:.1f} s")

        base, base_kec, _ = timed_report(url, args.runs, baseline=True)
        times, by_kec, by_cat = timed_report(url, args.runs)
        assert by_kec.total_g == expected["net_g"], (by_kec.total_g, expected)
        assert by_kec.estimated_g == expected["manual_g"]
        assert sum(r.deposits for r in by_cat.rows) == expected["deposits"]
        assert by_kec.rows == base_kec.rows  # the roll-up gives what the days give
        kec: dict[str, int] = defaultdict(int)
        for r in by_kec.rows:
            kec[r.key] += r.net_g
        print("12-month tonnage by kecamatan (t):")
        for k, g in sorted(kec.items()):
            print(f"  {k:<22} {g / 1e6:10.3f}")
        print(
            f"  total {by_kec.total_g / 1e6:.3f} t (measured {by_kec.measured_g / 1e6:.3f}, "
            f"estimated {by_kec.estimated_g / 1e6:.3f}); {len(by_cat.rows)} month x category "
            f"rows; voids excluded: totals match the generator's and the daily summary's"
        )
        median = statistics.median(times)
        met = median < GOAL_MS
        print(f"report (ledger, {args.backend}, {args.deposits:,} deposits):")
        print(f"  baseline, from the daily summary (deposit_day): {figures(base)}")
        print(
            f"  from the monthly roll-up (deposit_month):       {figures(times)}; "
            f"{statistics.median(base) / median:.1f}x faster; "
            f"goal < {GOAL_MS:.0f} ms: {'MET' if met else 'NOT MET'}"
        )

        if args.fill_sensors:
            t = time.perf_counter()
            n = asyncio.run(write_fill(influx, args.fill_sensors, args.fill_days))
            write_s = time.perf_counter() - t
            t = time.perf_counter()
            asyncio.run(roll_up(influx, args.fill_days))
            roll_s = time.perf_counter() - t
            t = time.perf_counter()
            asyncio.run(roll_up_daily(influx, args.fill_days))
            daily_s = time.perf_counter() - t
            print(
                f"data: {n:,} fill readings ({args.fill_sensors} sensors x {args.fill_days} d "
                f"x 96) written in {write_s:.1f} s ({n / write_s:,.0f} readings/s); hourly "
                f"roll-up (downsample: SELECT INTO hourly.fill_level_1h) {roll_s:.1f} s; "
                f"daily roll-up (prototype) {daily_s:.1f} s"
            )
            found = {src: asyncio.run(fill_query(influx, src, args.runs)) for src in FILL_SOURCES}
            raw_means = found["raw"][1]
            for src, (_, means) in found.items():
                assert means.keys() == raw_means.keys(), src
                assert all(math.isclose(means[k], v, abs_tol=1e-9) for k, v in raw_means.items())
            base_ms = statistics.median(found["raw"][0])
            print(
                f"monthly mean fill per TPS, 12 WIT months ({len(raw_means):,} TPS x month "
                "means, the same from every source):"
            )
            for src, label in (
                ("raw", "baseline, from the raw readings (raw.fill_level)        "),
                ("hourly", "from the hourly roll-up (hourly.fill_level_1h)          "),
                ("daily", "from a daily roll-up per TPS, 52-week shards (prototype)"),
            ):
                times = found[src][0]
                median = statistics.median(times)
                verdict = "MET" if median < GOAL_MS else "NOT MET"
                ratio = "" if src == "raw" else f"; {base_ms / median:.1f}x faster"
                print(f"  {label}: {figures(times)}{ratio}; goal < {GOAL_MS:.0f} ms: {verdict}")
        return 0 if met else 1
    finally:
        if admin:
            drop_ledger(admin, name)
        scratch.cleanup()
        if args.fill_sensors:
            asyncio.run(_drop_influx(influx))


async def _drop_influx(settings: InfluxSettings) -> None:
    influx = Influx(settings)
    try:
        await influx.drop_database()
    finally:
        await influx.aclose()


if __name__ == "__main__":
    sys.exit(main())
