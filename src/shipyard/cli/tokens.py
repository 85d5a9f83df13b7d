"""`shipyard token create|list|revoke`: the API's tokens, each with a role."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from shipyard.cli.common import JsonOption, ServerOption, StateOption, console, services
from shipyard.cli.render import print_json
from shipyard.domain import TokenRole

if TYPE_CHECKING:
    from shipyard.services.tokens import TokenView

token_app = typer.Typer(
    name="token",
    help="API tokens: create one per person or machine, with the least role it needs.",
    no_args_is_help=True,
)

ROLES = ", ".join(TokenRole)
NameArgument = Annotated[str, typer.Argument(help="The token's name (who or what uses it).")]


@token_app.command()
def create(
    name: NameArgument,
    role: Annotated[TokenRole, typer.Option("--role", help=f"One of {ROLES}.")],
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token; its secret is printed once and only its digest is kept."""
    token, secret = services(state, server, create=True).tokens.create(name, role)
    if as_json:
        from shipyard.services.tokens import NewToken

        print_json(console, NewToken(token=token, secret=secret).model_dump(mode="json"))
        return
    console.print(
        f"token [bold]{token.name}[/] ({token.role}) created; it will not be shown again:"
    )
    sys.stdout.write(secret + "\n")


@token_app.command("list")
def list_tokens(
    state: StateOption = None, server: ServerOption = None, as_json: JsonOption = False
) -> None:
    """List the tokens: name, role, created, last used, revoked."""
    tokens = services(state, server).tokens.list()
    if as_json:
        print_json(console, [token.model_dump(mode="json") for token in tokens])
        return
    console.print(tokens_table(tokens))


@token_app.command()
def revoke(
    name: NameArgument,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a token: from now on it is refused (401)."""
    token = services(state, server).tokens.revoke(name)
    if as_json:
        print_json(console, token.model_dump(mode="json"))
        return
    console.print(f"token [bold]{token.name}[/] revoked at {_when(token.revoked_at)}")


def tokens_table(tokens: list[TokenView]) -> Table:
    from shipyard.cli.render import make_table

    columns = ("name", "role", "created", "by", "last used", "revoked")
    table = make_table(*columns, typed=("name",), title="tokens")
    for token in tokens:
        table.add_row(
            token.name,
            token.role.value,
            _when(token.created_at),
            token.created_by,
            _when(token.last_used_at),
            _when(token.revoked_at),
        )
    return table


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
