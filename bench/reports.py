"""DLH report: the 12-month tonnage report by kecamatan x category over 2,000,000 deposits.

Data (generated, timed separately):

* a PostgreSQL ledger (a database of its own on the project's server, dropped at the end; or,
  ``--backend sqlite``, a temporary SQLite file) with the demo city plus ``--banks`` extra
  banks, and ``--deposits`` deposits spread over 2026 in WIT daytime hours, written with COPY
  (SQLite: executemany): 2 % manual (estimated), 0.1 % voided;
* ``--fill-sensors`` TPS sensors x a year of 15-minute fill readings (500 x 35,040 = 17.5 M) in
  an InfluxDB database of its own (raw retention INF so a year fits), written as line protocol
  in batches of 5,000 with progress, then rolled up into ``hourly.fill_level_1h``. The report
  does not read them; they are there so the report runs beside a realistic telemetry store,
  and the script times the monthly mean fill per TPS from the hourly roll-up as a second figure.

COPY writes around the ledger's daily summary (``deposit_day``), so the script then builds it
with ``ledger.rebuild_deposit_days`` (what migration 0005 does for an existing ledger; timed and
printed apart).

Timed: ``reports.cells`` + ``reports.tonnage(..., "kecamatan"/"category", "month")`` for the
year, i.e. what ``/api/dlh/tonnage?period=month`` and the monthly report do, from the ledger's
daily summary (voids excluded, manual apart). Goal: < 300 ms (median of ``--runs``).

    .venv/bin/python bench/reports.py [--deposits 2000000] [--fill-sensors 500] [--runs 5]
        [--backend postgresql|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
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
from wastebank.influx import Influx, downsample, ensure_schema, ident
from wastebank.seed import seed_demo

GOAL_MS = 300.0
YEAR = 2026
WIT_OFFSET = timedelta(hours=9)


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


async def write_fill(settings: InfluxSettings, sensors: int, days: int) -> int:
    influx = Influx(settings)
    try:
        await influx.drop_database()
        await ensure_schema(influx, settings)
        per_sensor = days * 96
        total = sensors * per_sensor
        t0 = int((datetime(YEAR, 1, 1, tzinfo=UTC) - WIT_OFFSET).timestamp()) * 10**9
        step = 15 * 60 * 10**9
        batch: list[str] = []
        written = 0
        for k in range(per_sensor):  # time-major, as sensors report
            ts = t0 + k * step
            level = (k % 96) / 96
            for sn in range(sensors):
                batch.append(
                    f"fill_level,sensor=us-{sn:03d},tps=tps-{sn // 2:03d} "
                    f"distance_mm={int(2000 * (1 - level))}i,filling_level={level:.3f} {ts}"
                )
                if len(batch) == 5000:
                    await influx.write(batch)
                    written += len(batch)
                    batch = []
                    if written % 500_000 == 0:
                        progress("fill readings", written, total)
        if batch:
            await influx.write(batch)
            written += len(batch)
        progress("fill readings", written, total)
        month = datetime(YEAR, 1, 1, tzinfo=UTC) - WIT_OFFSET
        end = month + timedelta(days=days)
        while month < end:
            nxt = min(end, month + timedelta(days=31))
            await downsample(influx, month, nxt, settings)
            month = nxt
        return written
    finally:
        await influx.aclose()


async def fill_query(settings: InfluxSettings) -> float:
    influx = Influx(settings)
    try:
        db = ident(settings.database)
        q = (
            f'SELECT mean("filling_level_mean") FROM {db}."hourly"."fill_level_1h" '  # noqa: S608
            "WHERE time >= '2025-12-31T15:00:00Z' AND time < '2026-12-31T15:00:00Z' "
            "GROUP BY time(30d), \"tps\" tz('Asia/Jayapura')"
        )
        t = time.perf_counter()
        await influx.query(q)
        return (time.perf_counter() - t) * 1000
    finally:
        await influx.aclose()


def timed_report(url: str, runs: int) -> tuple[list[float], reports.Tonnage, reports.Tonnage]:
    engine = ledger.make_engine(url, writer=False)
    times = []
    try:
        with Session(engine) as s:
            scope = reports.load_scope(s)
            first, last = date(YEAR, 1, 1), date(YEAR, 12, 31)
            for _ in range(runs):
                t = time.perf_counter()
                data = reports.cells(s, scope, first, last, "month")
                by_kec = reports.tonnage(s, scope, first, last, "kecamatan", "month", data=data)
                by_cat = reports.tonnage(s, scope, first, last, "category", "month", data=data)
                times.append((time.perf_counter() - t) * 1000)
    finally:
        engine.dispose()
    return times, by_kec, by_cat


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
    )
    try:
        t = time.perf_counter()
        seed_demo(url)
        add_banks(url, args.banks)
        expected = write_deposits(url, args.deposits)
        gen_ledger_s = time.perf_counter() - t
        print(f"data: {args.deposits:,} deposits in {args.backend}: {gen_ledger_s:.1f} s")
        fill_ms: float | None = None
        if args.fill_sensors:
            t = time.perf_counter()
            n = asyncio.run(write_fill(influx, args.fill_sensors, args.fill_days))
            gen_fill_s = time.perf_counter() - t
            print(
                f"data: {n:,} fill readings ({args.fill_sensors} sensors x {args.fill_days} d "
                f"x 96) in InfluxDB + hourly roll-up: {gen_fill_s:.1f} s "
                f"({n / gen_fill_s:,.0f} readings/s)"
            )
            fill_ms = asyncio.run(fill_query(influx))

        times, by_kec, by_cat = timed_report(url, args.runs)
        assert by_kec.total_g == expected["net_g"], (by_kec.total_g, expected)
        assert by_kec.estimated_g == expected["manual_g"]
        assert sum(r.deposits for r in by_cat.rows) == expected["deposits"]
        kec: dict[str, int] = defaultdict(int)
        for r in by_kec.rows:
            kec[r.key] += r.net_g
        print("12-month tonnage by kecamatan (t):")
        for k, g in sorted(kec.items()):
            print(f"  {k:<22} {g / 1e6:10.3f}")
        print(
            f"  total {by_kec.total_g / 1e6:.3f} t (measured {by_kec.measured_g / 1e6:.3f}, "
            f"estimated {by_kec.estimated_g / 1e6:.3f}); {len(by_cat.rows)} month x category "
            f"rows; voids excluded: totals match the generator's"
        )
        median = statistics.median(times)
        print(
            f"report (ledger, {args.backend}, {args.deposits:,} deposits): median {median:.0f} ms, "
            f"min {min(times):.0f} ms, max {max(times):.0f} ms over {args.runs} runs; "
            f"goal < {GOAL_MS:.0f} ms: {'MET' if median < GOAL_MS else 'NOT MET'}"
        )
        if fill_ms is not None:
            print(f"monthly mean fill per TPS from hourly.fill_level_1h: {fill_ms:.0f} ms")
        return 0 if median < GOAL_MS else 1
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
