"""1.x users and grants: the first admin, the processes' own users, their privileges."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import httpx
import msgspec

from wastebank.config import InfluxSettings, SecretStr
from wastebank.influx.client import Influx, ident
from wastebank.influx.errors import InfluxError


def influxql_string(text: str) -> str:
    """An InfluxQL string literal (a password)."""
    if "\n" in text or "\r" in text:
        raise ValueError("a line break cannot be part of an InfluxDB password")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def can_log_in(settings: InfluxSettings, client: httpx.AsyncClient | None = None) -> bool:
    """Whether the server accepts these settings' login (``SHOW DATABASES``: any user may run
    it); False on 401, InfluxError on anything else but success."""
    influx = Influx(settings, client)
    try:
        await influx.query("SHOW DATABASES")
    except InfluxError as exc:
        if exc.server_status == 401:
            return False
        raise
    finally:
        if client is None:
            await influx.aclose()
    return True


NO_ADMIN_YET = "create admin user first"  # 1.x, auth on, no user: every query but one refused


async def bootstrap_admin(admin: InfluxSettings) -> bool:
    """Make ``admin`` (username, password) the server's first admin when it has no user yet
    (1.x with auth on lets an anonymous client do only that). True when created; False when
    it already logs in. Raises InfluxError when the server has users and refuses this one."""
    if admin.username is None or admin.password is None:
        raise ValueError("bootstrap_admin needs a username and a password")
    try:
        if await can_log_in(admin):
            return False
    except InfluxError as exc:
        if NO_ADMIN_YET not in str(exc):
            raise
    anonymous = Influx(msgspec.structs.replace(admin, username=None, password=None))
    try:
        await anonymous.execute(
            f"CREATE USER {ident(admin.username)} WITH PASSWORD "
            f"{influxql_string(admin.password.get_secret_value())} WITH ALL PRIVILEGES",
            secret=True,
        )
    except InfluxError as exc:
        if exc.server_status != 401:
            raise
        raise InfluxError(
            f"InfluxDB {admin.url} sudah punya pengguna dan menolak / already has users and "
            f"refuses {admin.username!r} with the password given (docs/operations.md, "
            '"InfluxDB users": a lost admin password)',
            status=401,
            retryable=False,
        ) from None
    finally:
        await anonymous.aclose()
    return True


async def ensure_user(
    admin: Influx, username: str, password: str
) -> Literal["created", "reset", "kept"]:
    """``username`` exists (not an admin) and logs in with ``password``: created, its password
    set again (a rotated secret file), or kept unchanged."""
    users = {row[0] for series in await admin.query("SHOW USERS") for row in series.values}
    literal = influxql_string(password)
    if username not in users:
        try:
            await admin.execute(
                f"CREATE USER {ident(username)} WITH PASSWORD {literal}", secret=True
            )
            return "created"
        except InfluxError as exc:
            if "user already exists" not in str(exc):  # another `up` made it meanwhile
                raise
    user = msgspec.structs.replace(admin.settings, username=username, password=SecretStr(password))
    if await can_log_in(user):
        return "kept"
    await admin.execute(f"SET PASSWORD FOR {ident(username)} = {literal}", secret=True)
    return "reset"


async def grant(admin: Influx, database: str, grants: Mapping[str, str]) -> None:
    """``GRANT`` each user its privilege (ALL, READ, WRITE) on ``database`` (idempotent)."""
    for username, privilege in grants.items():
        await admin.execute(f"GRANT {privilege} ON {ident(database)} TO {ident(username)}")
