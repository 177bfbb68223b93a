"""Fill readings from InfluxDB (``fill_level``, written by the ingester): a period's per sensor,
each sensor's last time, a window before it, which TPS have readings at all."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from wastebank.influx import FILL, Influx, influxql_time
from wastebank.tps.analytics import WINDOW, Reading

SeriesKey = tuple[str, str]  # (tps, sensor)


def _influx_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def fill_readings(
    influx: Influx, tps_codes: Iterable[str] | None, start: datetime, end: datetime
) -> dict[SeriesKey, list[Reading]]:
    """Readings per (TPS, sensor) in ``[start, end)`` (``tps_codes`` None: every TPS)."""
    where = f"time >= {influxql_time(start)} AND time < {influxql_time(end)}"
    if tps_codes is not None:
        codes = list(tps_codes)
        if not codes:
            return {}
        where += " AND (" + " OR ".join(f'"tps" = {_influx_string(c)}' for c in codes) + ")"
    q = f'SELECT "filling_level" FROM "{FILL}" WHERE {where} GROUP BY "tps", "sensor"'  # noqa: S608
    out: dict[SeriesKey, list[Reading]] = {}
    for s in await influx.query(q):
        key = (s.tags.get("tps", ""), s.tags.get("sensor", ""))
        rows = out.setdefault(key, [])
        for t, level in s.values:
            if level is not None:
                rows.append(Reading(datetime.fromtimestamp(t / 1000, UTC), float(level)))
    return out


async def last_seen(influx: Influx) -> dict[SeriesKey, datetime]:
    """The time of each (TPS, sensor)'s latest reading."""
    q = f'SELECT last("filling_level") FROM "{FILL}" GROUP BY "tps", "sensor"'  # noqa: S608
    out: dict[SeriesKey, datetime] = {}
    for s in await influx.query(q):
        for row in s.values:
            out[s.tags.get("tps", ""), s.tags.get("sensor", "")] = datetime.fromtimestamp(
                row[0] / 1000, UTC
            )
    return out


PRIME_CHUNK = 100  # statements per InfluxDB request


async def prime_windows(
    influx: Influx, last: dict[SeriesKey, datetime], span: timedelta = WINDOW
) -> dict[SeriesKey, list[Reading]]:
    """Each sensor's readings in the ``span`` up to its last one (``last``): one statement per
    sensor, ``PRIME_CHUNK`` a request."""
    keys = sorted(last)
    out: dict[SeriesKey, list[Reading]] = {}
    for k in range(0, len(keys), PRIME_CHUNK):
        q = ";".join(
            f'SELECT "filling_level" FROM "{FILL}" WHERE "tps" = {_influx_string(code)} '  # noqa: S608
            f'AND "sensor" = {_influx_string(sensor)} '
            f"AND time >= {influxql_time(last[code, sensor] - span)} "
            f"AND time <= {influxql_time(last[code, sensor] + timedelta(seconds=1))} "
            'GROUP BY "tps", "sensor"'
            for code, sensor in keys[k : k + PRIME_CHUNK]
        )
        for s in await influx.query(q):
            key = (s.tags.get("tps", ""), s.tags.get("sensor", ""))
            rows = out.setdefault(key, [])
            rows.extend(
                Reading(datetime.fromtimestamp(t / 1000, UTC), float(v))
                for t, v in s.values
                if v is not None
            )
    return out


PICKUP_MARGIN = timedelta(hours=12)
"""Readings read before ``start`` and after ``end``: the level before a drop at ``start`` and the
persisting low readings after one just before ``end``."""


READINGS_CHECK_CHUNK = 100  # statements per InfluxDB request


async def tps_with_readings(
    influx: Influx, codes: Iterable[str], start: datetime, end: datetime
) -> set[str]:
    """Which of these TPS have at least one reading in ``[start, end)``: one ``LIMIT 1``
    statement per TPS (InfluxDB stops at the first point), ``READINGS_CHECK_CHUNK`` a request."""
    todo = list(codes)
    seen: set[str] = set()
    span = f"time >= {influxql_time(start)} AND time < {influxql_time(end)}"
    for k in range(0, len(todo), READINGS_CHECK_CHUNK):
        q = ";".join(
            f'SELECT "filling_level" FROM "{FILL}" WHERE "tps" = {_influx_string(c)} '  # noqa: S608
            f'AND {span} GROUP BY "tps" LIMIT 1'
            for c in todo[k : k + READINGS_CHECK_CHUNK]
        )
        for series in await influx.query(q):
            if series.values:
                seen.add(series.tags.get("tps", ""))
    return seen
