"""`wastebank attend` and `wastebank calibrate`: the attendant's commands at a waste bank, against
its gateway's local endpoint (wastebank/gateway_client.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from wastebank.gateway_client import GatewayClient

attendant_app = typer.Typer()
"""Top-level commands (added to the root without a group name)."""


GatewayOption = Annotated[
    str,
    typer.Option("--gateway", help="the gateway's local endpoint", envvar="WASTEBANK_GATEWAY_URL"),
]


GatewayUserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        help="your login (an attendant's staff id, or an admin's); asked for when not given",
        envvar="WASTEBANK_GATEWAY_USER",
    ),
]


PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="read the password from standard input (for scripts), not from a prompt; there "
        "is no password option: a password on the command line is seen by every user",
    ),
]


SessionFileOption = Annotated[
    Path | None,
    typer.Option(
        "--session-file",
        help="where the gateway session is kept (0600) so the password is asked once per "
        "session; default $XDG_STATE_HOME/wastebank/gateway-sessions.json",
        envvar="WASTEBANK_GATEWAY_SESSION_FILE",
    ),
]


NoSessionFileOption = Annotated[
    bool, typer.Option("--no-session-file", help="keep no session: log in every time")
]


GatewayCaOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-file",
        help="the site CA (ca.crt) that signed the gateway's HTTPS certificate",
        envvar="WASTEBANK_GATEWAY_CA",
        exists=True,
        dir_okay=False,
    ),
]


def _gateway_client(
    gateway_url: str,
    user: str | None,
    password_stdin: bool,
    session_file: Path | None,
    no_session_file: bool,
    ca_file: Path | None,
) -> GatewayClient:
    """A client of the gateway's local endpoint that logs in when it has no session."""
    from wastebank.gateway_client import GatewayClient, default_session_file

    def username() -> str:
        return user or str(typer.prompt("Nama pengguna / username", err=True))

    def password() -> str:
        if password_stdin:
            line = sys.stdin.readline().rstrip("\r\n")
            if not line:
                typer.echo("kata sandi kosong di stdin / no password on standard input", err=True)
                raise typer.Exit(code=2)
            return line
        return str(typer.prompt("Kata sandi / password", hide_input=True, err=True))

    return GatewayClient(
        gateway_url,
        username=username,
        password=password,
        session_file=None if no_session_file else session_file or default_session_file(),
        ca_file=ca_file,
    )


def _gateway_call(
    client: GatewayClient, method: str, path: str, body: dict[str, object] | None = None
) -> object:
    from wastebank.gateway_client import GatewayError

    try:
        answer = client.call(method, path, body)
    except GatewayError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from None
    if client.logged_in_as is not None:
        typer.echo(f"masuk sebagai / signed in as {client.logged_in_as}", err=True)
    return answer


@attendant_app.command()
def attend(
    scale: Annotated[str | None, typer.Option(help="scale id at this bank")] = None,
    member: Annotated[str | None, typer.Option(help="member number (nomor nasabah)")] = None,
    category: Annotated[str | None, typer.Option(help="waste category code")] = None,
    cancel: Annotated[bool, typer.Option(help="cancel what is armed")] = False,
    logout: Annotated[
        bool, typer.Option("--logout", help="end the kept session on the gateway, and forget it")
    ] = False,
    gateway_url: GatewayOption = "http://127.0.0.1:8081",
    user: GatewayUserOption = None,
    password_stdin: PasswordStdinOption = False,
    session_file: SessionFileOption = None,
    no_session_file: NoSessionFileOption = False,
    ca_file: GatewayCaOption = None,
) -> None:
    """Attendant flow: name the member and category; the next settled load is their deposit.

    Logs in to the gateway with your central account (asks for the password, once per session)."""
    client = _gateway_client(
        gateway_url, user, password_stdin, session_file, no_session_file, ca_file
    )
    with client:
        if logout:
            ended = client.logout()
            typer.echo("keluar / signed out" if ended else "tidak ada sesi / no session kept")
            return
        if not scale:
            typer.echo("perlu --scale / need --scale", err=True)
            raise typer.Exit(code=2)
        if cancel:
            _gateway_call(client, "POST", f"/scales/{scale}/cancel")
            typer.echo("dibatalkan / cancelled")
            return
        if not member or not category:
            typer.echo("perlu --member dan --category / need --member and --category", err=True)
            raise typer.Exit(code=2)
        view = _gateway_call(
            client,
            "POST",
            f"/scales/{scale}/arm",
            {"member_no": member, "category_code": category},
        )
    assert isinstance(view, dict)
    typer.echo(
        f"siap menimbang / ready: {view['armed_member_no']} {view['armed_category_code']} "
        f"on {scale}; letakkan sampah di timbangan / put the waste on the scale"
    )


@attendant_app.command()
def calibrate(
    scale: Annotated[str, typer.Option(help="scale id at this bank")],
    reference_g: Annotated[int, typer.Option(help="the reference mass on the scale, grams")],
    note: Annotated[str, typer.Option(help="who checked, which weight set")] = "",
    gateway_url: GatewayOption = "http://127.0.0.1:8081",
    user: GatewayUserOption = None,
    password_stdin: PasswordStdinOption = False,
    session_file: SessionFileOption = None,
    no_session_file: NoSessionFileOption = False,
    ca_file: GatewayCaOption = None,
) -> None:
    """Record a calibration check: put a known mass on the scale, then run this.

    Logs in to the gateway as `wastebank attend` does."""
    client = _gateway_client(
        gateway_url, user, password_stdin, session_file, no_session_file, ca_file
    )
    with client:
        check = _gateway_call(
            client,
            "POST",
            f"/scales/{scale}/calibration",
            {"reference_g": reference_g, "note": note},
        )
    assert isinstance(check, dict)
    typer.echo(
        f"kalibrasi / calibration {check['version']}: acuan / reference {check['reference_g']} g, "
        f"terbaca / read {check['reading_g']} g, selisih / error {check['error_g']:+d} g"
    )
