"""``ktes users add|remove|list``: the basic-auth users file (``KTES_AUTH_USERS_FILE``, bcrypt hashes)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ktes.auth import users_file

FileOption = Annotated[
    Path | None,
    typer.Option(
        "--file",
        envvar="KTES_AUTH_USERS_FILE",
        metavar="PATH",
        help="The users file [KTES_AUTH_USERS_FILE]",
        show_default=False,
    ),
]


def _file(path: Path | None) -> Path:
    if path is None:
        typer.echo("error: name the users file with --file or KTES_AUTH_USERS_FILE", err=True)
        raise typer.Exit(2)
    return path


def add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The user name", show_default=False)],
    file: FileOption = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (else: a prompt)")
    ] = False,
    rounds: Annotated[int, typer.Option("--rounds", min=4, max=31, help="bcrypt cost")] = users_file.DEFAULT_ROUNDS,
) -> None:
    """Add a user, or set a user's password."""
    path = _file(file)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        new = users_file.add_user(path, name, password, rounds)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{'added' if new else 'changed the password of'} {name} in {path}")


def remove(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The user name", show_default=False)],
    file: FileOption = None,
) -> None:
    """Remove a user (their tasks stay, visible to admins)."""
    path = _file(file)
    if not users_file.remove_user(path, name):
        typer.echo(f"error: no user {name} in {path}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {name} from {path}")


def list_(file: FileOption = None) -> None:
    """The user names, one a line."""
    for name in sorted(users_file.read_users(_file(file))):
        typer.echo(name)


def register(app: typer.Typer) -> None:
    users_app = typer.Typer(help="Manage the users of HTTP basic authentication.", no_args_is_help=True)
    users_app.command("add")(add)
    users_app.command("remove")(remove)
    users_app.command("list")(list_)
    app.add_typer(users_app, name="users")
