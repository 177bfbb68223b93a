"""The schema a city's 1.x database needs: retention policies ``raw`` and ``hourly`` and the
hourly roll-ups (continuous queries), set up by an admin or checked by a user who may not;
and the same roll-ups run by hand for a backfill (:func:`downsample`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from wastebank.config import InfluxSettings
from wastebank.errors import SetupError
from wastebank.influx.auth import login_name
from wastebank.influx.client import Influx, ident, influxql_time
from wastebank.influx.errors import InfluxError
from wastebank.influx.lines import DEPOSIT, FILL
from wastebank.influx.versions import SERVER_VERSION, api_for_version

log = logging.getLogger("wastebank.influx")


RP_RAW = "raw"
RP_HOURLY = "hourly"


@dataclass(frozen=True)
class Downsample:
    """One hourly roll-up: a 1.x continuous query, and the same SELECT INTO for backfills."""

    name: str  # the CQ's name and the target measurement (in the "hourly" RP)
    source: str  # measurement in the "raw" RP
    select: str
    group_by: str  # tags kept as tags

    def select_into(self, database: str, where: str = "") -> str:
        # Identifiers go through ident(); select, group_by and where are this module's own.
        db = ident(database)
        target = f"{db}.{ident(RP_HOURLY)}.{ident(self.name)}"
        source = f"{db}.{ident(RP_RAW)}.{ident(self.source)}"
        where_clause = f" WHERE {where}" if where else ""
        group = f"GROUP BY time(1h), {self.group_by}"
        return f"SELECT {self.select} INTO {target} FROM {source}{where_clause} {group}"  # noqa: S608

    def create_cq(self, database: str, lookback: str) -> str:
        return (
            f"CREATE CONTINUOUS QUERY {ident(self.name)} ON {ident(database)} "
            f"RESAMPLE EVERY 1h FOR {lookback} BEGIN {self.select_into(database)} END"
        )


DOWNSAMPLES = (
    Downsample(
        name="deposit_1h",
        source=DEPOSIT,
        select=(
            'sum("net_g") AS "net_g", count("net_g") AS "deposits", '
            'sum("amount_idr") AS "amount_idr"'
        ),
        group_by="*",  # bank, kecamatan, category, source
    ),
    Downsample(
        name="fill_level_1h",
        source=FILL,
        select=(
            'mean("filling_level") AS "filling_level_mean", '
            'max("filling_level") AS "filling_level_max", count("filling_level") AS "readings"'
        ),
        group_by='"tps", "sensor"',
    ),
)


async def ensure_schema(influx: Influx, settings: InfluxSettings | None = None) -> bool:
    """Create the database, its retention policies and hourly continuous queries (1.x).

    * RP ``raw`` (``retention_raw``, DEFAULT: writes without ``rp`` land there) and ``hourly``
      (``retention_hourly``); an existing policy is altered to the configured duration.
    * CQs ``deposit_1h`` and ``fill_level_1h`` into ``"hourly"``, each recomputing the last
      ``downsample_lookback`` every hour (late store-and-forward data is counted); a CQ whose
      definition changed is dropped and created again.

    Idempotent: running it twice, or from several ingesters, is harmless. Returns False (and
    changes nothing) on 2.x/3.x, where retention and downsampling are set up on the server (see
    docs/protocol.md). Raises InfluxError.

    With auth on, creating a database and its retention policies takes a 1.x admin (`services
    up` or `wastebank influx setup` run them as one). A user who may not (the ingester's own)
    only checks that they are there (:func:`check_schema`): InfluxSchemaError names what is
    missing.
    """
    s = settings or influx.settings
    version = await influx.ping()
    if api_for_version(version) != "v1" or not SERVER_VERSION.match(version.strip()):
        log.info(
            "InfluxDB %s: retensi & downsampling diatur di server / retention and downsampling "
            "are configured on the server (docs/protocol.md)",
            version,
        )
        return False
    db = ident(s.database)
    try:
        await influx.execute(f"CREATE DATABASE {db}")
    except InfluxError as exc:
        if exc.server_status != 403:  # 403: no admin rights; 401 is a refused login
            raise
        await check_schema(influx, s)
        return True
    for rp, duration, default in (
        (RP_RAW, s.retention_raw, " DEFAULT"),
        (RP_HOURLY, s.retention_hourly, ""),
    ):
        try:
            await influx.execute(
                f"CREATE RETENTION POLICY {ident(rp)} ON {db} DURATION {duration} "
                f"REPLICATION 1{default}"
            )
        except InfluxError as exc:  # exists with other attributes: bring it to the settings
            if "already exists" not in str(exc):
                raise
            await influx.execute(
                f"ALTER RETENTION POLICY {ident(rp)} ON {db} DURATION {duration}{default}"
            )
    for ds in DOWNSAMPLES:
        statement = ds.create_cq(s.database, s.downsample_lookback)
        try:
            await influx.execute(statement)  # identical definition: accepted, no change
        except InfluxError as exc:  # same name, other definition: replace it
            if "already exists" not in str(exc):
                raise
            await influx.execute(f"DROP CONTINUOUS QUERY {ident(ds.name)} ON {db}")
            await influx.execute(statement)
    return True


class InfluxSchemaError(SetupError, InfluxError):
    """A 1.x database lacks parts of the schema and this login may not create them.

    A setup error (an admin's step is missing: the CLI says which, exit 2) that is also an
    InfluxError, not retryable, for callers that catch every InfluxDB failure.
    """

    def __init__(self, database: str, missing: Sequence[str], who: str) -> None:
        super().__init__(
            f"skema InfluxDB belum lengkap / InfluxDB schema incomplete in database "
            f"{database!r}: {'; '.join(missing)}. {who} may not create it (1.x admin only): run "
            "`wastebank influx setup --database NAME` (this checkout's InfluxDB; `services up` "
            "does it for the city's), or as another server's admin the statements in "
            'docs/operations.md, "InfluxDB users"',
            status=403,
            retryable=False,
        )
        self.database = database
        self.missing = list(missing)


def influxql_duration(spec: str) -> str:
    """A retention setting (``90d``, ``2w``, ``12h``, ``INF``) as 1.x shows a policy's duration
    (``2160h0m0s``; ``0s`` for INF)."""
    if spec == "INF":
        return "0s"
    hours = int(spec[:-1]) * {"h": 1, "d": 24, "w": 168}[spec[-1]]
    return f"{hours}h0m0s"


async def check_schema(influx: Influx, settings: InfluxSettings | None = None) -> None:
    """That the database, its retention policies and continuous queries exist (1.x), as a user
    who may read it but not create them. A policy whose duration differs from the settings is
    logged, not refused (an admin may have chosen it); anything missing raises
    InfluxSchemaError listing every missing part."""
    s = settings or influx.settings
    who = login_name(influx.settings)
    databases = {row[0] for series in await influx.query("SHOW DATABASES") for row in series.values}
    if s.database not in databases:
        # 1.x lists only the databases a user may read: missing, or no grant on it.
        raise InfluxSchemaError(
            s.database,
            [f"the database itself (or a grant on it for {who})"],
            who,
        )
    missing: list[str] = []
    policies = {
        row["name"]: row
        for series in await influx.query(f"SHOW RETENTION POLICIES ON {ident(s.database)}")
        for row in series.rows()
    }
    for rp, spec, default in (
        (RP_RAW, s.retention_raw, True),
        (RP_HOURLY, s.retention_hourly, False),
    ):
        found = policies.get(rp)
        if found is None:
            missing.append(f"retention policy {rp!r}" + (" (DEFAULT)" if default else ""))
            continue
        if default and not found.get("default"):
            missing.append(f"retention policy {rp!r} as the DEFAULT one")
        if found.get("duration") != influxql_duration(spec):
            log.warning(
                "InfluxDB %s: kebijakan retensi / retention policy %r is %s, settings say %s",
                s.database,
                rp,
                found.get("duration"),
                spec,
            )
    queries = {
        row[0]
        for series in await influx.query("SHOW CONTINUOUS QUERIES")
        if series.name == s.database
        for row in series.values
    }
    missing += [f"continuous query {ds.name!r}" for ds in DOWNSAMPLES if ds.name not in queries]
    if missing:
        raise InfluxSchemaError(s.database, missing, who)


async def downsample(
    influx: Influx, start: datetime, end: datetime, settings: InfluxSettings | None = None
) -> None:
    """Run every roll-up's SELECT INTO for ``[start, end)`` (whole hours): a backfill for data
    that arrived later than ``downsample_lookback``, or to fill ``"hourly"`` from older data."""
    s = settings or influx.settings
    where = f"time >= {influxql_time(start)} AND time < {influxql_time(end)}"
    for ds in DOWNSAMPLES:
        await influx.execute(ds.select_into(s.database, where))
