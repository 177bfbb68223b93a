"""InfluxDB 1.x, 2.x and 3.x: line-protocol writers, InfluxQL on ``/query``, 1.x retention.

Every public name is here (``from wastebank.influx import X``); the modules behind it each have
one reason to change:

- ``lines``: the line protocol of every point (:func:`line`, :func:`fill_line`, ...);
- ``errors``: :class:`InfluxError` and how an HTTP answer is classified;
- ``auth``: who a process logs in as;
- ``writers``: ``V1Writer`` (``/write``) and ``V2Writer`` (``/api/v2/write``, 2.x and 3.x);
- ``versions``: which API a server speaks, and :func:`make_writer`;
- ``client``: :class:`Influx`, InfluxQL on ``/query`` (which every version serves);
- ``schema``: the 1.x retention policies and hourly roll-ups (:func:`ensure_schema`);
- ``users``: 1.x users and grants.
"""

from wastebank.influx.auth import auth_headers, login_name
from wastebank.influx.client import Influx, Series, ident, influxql_time
from wastebank.influx.errors import InfluxError, classify, parse_retry_after, retry_wait
from wastebank.influx.lines import (
    ALERT,
    DEPOSIT,
    FILL,
    GATEWAY_HEALTH,
    SCALE_HEALTH,
    FieldValue,
    alert_line,
    deposit_line,
    event_seq,
    fill_line,
    health_lines,
    line,
    point_time_ns,
)
from wastebank.influx.schema import (
    DOWNSAMPLES,
    RP_HOURLY,
    RP_RAW,
    Downsample,
    InfluxSchemaError,
    check_schema,
    downsample,
    ensure_schema,
    influxql_duration,
)
from wastebank.influx.users import (
    NO_ADMIN_YET,
    bootstrap_admin,
    can_log_in,
    ensure_user,
    grant,
    influxql_string,
)
from wastebank.influx.versions import api_for_version, detect_api, make_writer
from wastebank.influx.writers import (
    LOOPBACK_HOSTS,
    ApiVersion,
    InfluxWriter,
    V1Writer,
    V2Writer,
    encode_body,
    gzip_wanted,
)
from wastebank.messages import CLOCK_AHEAD_TOLERANCE  # the core's: the ledger counts by it too

__all__ = [
    "ALERT",
    "CLOCK_AHEAD_TOLERANCE",
    "DEPOSIT",
    "DOWNSAMPLES",
    "FILL",
    "GATEWAY_HEALTH",
    "LOOPBACK_HOSTS",
    "NO_ADMIN_YET",
    "RP_HOURLY",
    "RP_RAW",
    "SCALE_HEALTH",
    "ApiVersion",
    "Downsample",
    "FieldValue",
    "Influx",
    "InfluxError",
    "InfluxSchemaError",
    "InfluxWriter",
    "Series",
    "V1Writer",
    "V2Writer",
    "alert_line",
    "api_for_version",
    "auth_headers",
    "bootstrap_admin",
    "can_log_in",
    "check_schema",
    "classify",
    "deposit_line",
    "detect_api",
    "downsample",
    "encode_body",
    "ensure_schema",
    "ensure_user",
    "event_seq",
    "fill_line",
    "grant",
    "gzip_wanted",
    "health_lines",
    "ident",
    "influxql_duration",
    "influxql_string",
    "influxql_time",
    "line",
    "login_name",
    "make_writer",
    "parse_retry_after",
    "point_time_ns",
    "retry_wait",
]
