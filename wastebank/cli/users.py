"""`wastebank user`: logins for the API and pages, and their roles (wastebank/access/)."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wastebank.cli._common import ConfigOption, LedgerUrlOption, processes

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from wastebank import ledger
    from wastebank.access import AuthSettings

    UserWork = Callable[[ledger.Session, PasswordHasher], object]


user_app = typer.Typer(
    help="pengguna dan peran / users and roles: admin, dlh, attendant, citizen",
    no_args_is_help=True,
)


class UserRole(StrEnum):
    admin = "admin"
    dlh = "dlh"
    attendant = "attendant"
    citizen = "citizen"


def _user_settings(config: Path | None, ledger_url: str | None) -> tuple[str, AuthSettings]:
    """The ledger URL and the API's auth settings (argon2 cost) from the API's settings."""
    settings = processes().api_settings(config)
    return ledger_url or settings.ledger_url, settings.auth


def _secret(role: str, pin: str | None, password: str | None) -> tuple[str, bool]:
    """The PIN or password given; else a citizen gets a generated PIN (shown once) and staff
    are asked for a password. Returns (secret, generated)."""
    from wastebank import access

    if pin is not None and password is not None:
        raise typer.BadParameter("--pin atau --password, bukan keduanya / not both")
    if role == UserRole.citizen:
        if password is not None:
            raise typer.BadParameter(
                "nasabah memakai PIN / citizens use a PIN", param_hint="--password"
            )
        return (pin, False) if pin is not None else (access.generate_pin(), True)
    if pin is not None:
        raise typer.BadParameter(
            "staf memakai kata sandi / staff use a password", param_hint="--pin"
        )
    if password is None:
        password = typer.prompt("Kata sandi / password", hide_input=True, confirmation_prompt=True)
    return password, False


def _with_users(config: Path | None, ledger_url: str | None, work: UserWork) -> object:
    """Run ``work(session, hasher)`` on the ledger in one transaction (committed if it returns)."""
    from wastebank import access, ledger

    url, auth = _user_settings(config, ledger_url)
    engine = ledger.make_engine(url)
    try:
        with ledger.Session(engine) as session:  # closed unfinished: rolled back
            result = work(session, access.password_hasher(auth))
            session.commit()
            return result
    finally:
        engine.dispose()


UsernameArg = Annotated[str, typer.Argument(help="staff username, or a member number")]


PinOption = Annotated[
    str | None, typer.Option(help="citizen: 6-digit PIN (default: a random one, shown once)")
]


PasswordOption = Annotated[
    str | None, typer.Option(help="staff: password (default: asked for, not echoed)")
]


@user_app.command("add")
def user_add(
    role: Annotated[UserRole, typer.Option(help="admin, dlh, attendant or citizen")],
    username: Annotated[
        str | None,
        typer.Option(help="staff: login name (an attendant's is their staff id at their bank)"),
    ] = None,
    member: Annotated[
        str | None, typer.Option(help="citizen: member number (their login name)")
    ] = None,
    city: Annotated[str | None, typer.Option(help="dlh: the city's code, e.g. ambon")] = None,
    name: Annotated[str | None, typer.Option(help="full name (citizen: the member's)")] = None,
    pin: PinOption = None,
    password: PasswordOption = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Add a login: a nasabah (member number + PIN) or staff (username + password)."""
    from wastebank import access

    secret, generated = _secret(role, pin, password)

    def add(session: ledger.Session, hasher: PasswordHasher) -> str:
        user = access.add_user(
            session,
            role=role.value,
            username=username,
            name=name,
            secret=secret,
            hasher=hasher,
            actor=access.cli_actor(),
            city_code=city,
            member_no=member,
        )
        return user.username

    login = _with_users(config, ledger_url, add)
    typer.echo(f"ditambahkan / added: {login} ({role.value})")
    if generated:
        typer.echo(f"PIN: {secret}  (berikan kepada nasabah / give it to the member; shown once)")


@user_app.command("list")
def user_list(
    role: Annotated[UserRole | None, typer.Option(help="only this role")] = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """List logins: username, role, name, scope (city, banks or member), active."""
    from sqlalchemy import select

    from wastebank import access, ledger

    def rows(session: ledger.Session, _hasher: PasswordHasher) -> list[str]:
        out = []
        for user in access.users(session):
            if role is not None and user.role != role.value:
                continue
            p = access.principal_of(session, user)
            if p.role == access.Role.DLH:
                scope = f"city {user.city.code if user.city else '?'}"
            elif p.role == access.Role.ATTENDANT:
                codes = session.scalars(
                    select(ledger.Bank.code).where(ledger.Bank.id.in_(p.bank_ids))
                )
                scope = "banks " + (",".join(sorted(codes)) or "-")
            elif p.role == access.Role.CITIZEN:
                scope = f"member {p.member_no}"
            else:
                scope = "all"
            state = "aktif / active" if user.active else "nonaktif / disabled"
            out.append(
                f"{user.username:<24} {user.role:<10} {user.name[:30]:<30} {scope:<30} {state}"
            )
        return out

    lines = _with_users(config, ledger_url, rows)
    assert isinstance(lines, list)
    for line in lines:
        typer.echo(line)
    if not lines:
        typer.echo("(belum ada pengguna / no users yet)")


@user_app.command("disable")
def user_disable(
    username: UsernameArg, config: ConfigOption = None, ledger_url: LedgerUrlOption = None
) -> None:
    """Disable a login; every token and session it holds stops working at once."""
    from wastebank import access

    _with_users(
        config,
        ledger_url,
        lambda s, _h: access.set_active(s, username, False, access.cli_actor()),
    )
    typer.echo(f"dinonaktifkan / disabled: {username}")


@user_app.command("enable")
def user_enable(
    username: UsernameArg, config: ConfigOption = None, ledger_url: LedgerUrlOption = None
) -> None:
    """Enable a disabled login again."""
    from wastebank import access

    _with_users(
        config,
        ledger_url,
        lambda s, _h: access.set_active(s, username, True, access.cli_actor()),
    )
    typer.echo(f"diaktifkan / enabled: {username}")


@user_app.command("set-pin")
def user_set_pin(
    username: UsernameArg,
    pin: PinOption = None,
    password: PasswordOption = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Set a citizen's PIN (default: a random one, shown once) or a staff user's password;
    their tokens and sessions stop working."""
    from wastebank import access

    def role_of(session: ledger.Session, _hasher: PasswordHasher) -> str:
        return access.get_user(session, username).role

    role = _with_users(config, ledger_url, role_of)
    assert isinstance(role, str)
    secret, generated = _secret(role, pin, password)
    _with_users(
        config,
        ledger_url,
        lambda s, h: access.set_secret(s, username, secret, h, access.cli_actor()),
    )
    typer.echo(f"diubah / changed: {username}")
    if generated:
        typer.echo(f"PIN: {secret}  (berikan kepada nasabah / give it to the member; shown once)")
