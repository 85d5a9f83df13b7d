"""One set of commands: the same command prints the same thing on the state directory and
through a server (a real uvicorn on 127.0.0.1 serving that state directory)."""

from __future__ import annotations

import pytest
from click.testing import Result
from typer.testing import CliRunner

from shipyard.cli.app import app
from shipyard.domain import TokenRole
from shipyard.errors import InvalidInput, NotFound, ShipyardError, Unauthorized

from .conftest import Live, Seed

runner = CliRunner()


def local(live: Live, *args: str) -> Result:
    return runner.invoke(app, [*args, "--state", str(live.services.adapters.state.root)])


def remote(live: Live, token: str, *args: str) -> Result:
    return runner.invoke(app, [*args, "--server", live.url], env={"SHIPYARD_TOKEN": token})


def error_of(result: Result) -> ShipyardError:
    assert isinstance(result.exception, ShipyardError), result.output
    return result.exception


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["status", "--json"],
        ["status", "2", "--project", "tiny"],
        ["status", "2", "--project", "tiny", "--json"],
        ["logs", "2", "--project", "tiny"],
        ["logs", "1", "build", "--project", "tiny", "--follow"],
        ["token", "list"],
        ["token", "list", "--json"],
    ],
)
def test_a_command_prints_the_same_locally_and_through_a_server(
    live: Live, tokens: dict[TokenRole, str], seed: Seed, no_server_env: None, command: list[str]
) -> None:
    seed(), seed(upto="staging"), seed("wine")
    # Through the server first: its call marks the admin token used, which `token list` shows.
    through = remote(live, tokens[TokenRole.ADMIN], *command)
    here = local(live, *command)
    assert through.exit_code == here.exit_code == 0, (through.output, here.output)
    assert through.output == here.output
    assert "tiny" in here.output or "token" in here.output


def test_cancel_through_a_server_cancels_as_locally(
    live: Live, tokens: dict[TokenRole, str], seed: Seed, no_server_env: None
) -> None:
    seed(finished=False), seed(finished=False)
    through = remote(live, tokens[TokenRole.DEVELOPER], "cancel", "1", "--project", "tiny")
    here = local(live, "cancel", "2", "--project", "tiny")
    assert through.output == "cancel requested for tiny#1 (cancelled)\n"
    assert here.output == "cancel requested for tiny#2 (cancelled)\n"
    statuses = [r.status for r in live.services.runs.list("tiny")]
    assert statuses == ["cancelled", "cancelled"]


def test_errors_come_back_as_the_same_error_with_the_same_message_and_hint(
    live: Live, tokens: dict[TokenRole, str], seed: Seed, no_server_env: None
) -> None:
    seed()
    through = error_of(remote(live, tokens[TokenRole.VIEWER], "status", "9", "-p", "tiny"))
    here = error_of(local(live, "status", "9", "-p", "tiny"))
    assert type(through) is type(here) is NotFound
    assert (through.message, through.hint) == (here.message, here.hint)
    stage = error_of(remote(live, tokens[TokenRole.VIEWER], "logs", "1", "lint", "-p", "tiny"))
    assert isinstance(stage, InvalidInput) and "There is no stage 'lint'" in stage.message


def test_a_role_too_low_or_a_missing_token_is_said_plainly(
    live: Live, tokens: dict[TokenRole, str], seed: Seed, no_server_env: None
) -> None:
    seed(finished=False)
    refused = error_of(remote(live, tokens[TokenRole.VIEWER], "cancel", "1", "-p", "tiny"))
    assert refused.status_code == 403
    assert refused.message == "Token 'viewer-token' has role viewer; this needs developer or above."
    bad = error_of(remote(live, "shy_forged", "status"))
    assert isinstance(bad, Unauthorized)
    missing = error_of(runner.invoke(app, ["status", "--server", live.url]))
    assert isinstance(missing, InvalidInput) and "SHIPYARD_TOKEN" in missing.message


def test_an_unreachable_server_is_named_with_what_to_check(
    tokens: dict[TokenRole, str], no_server_env: None
) -> None:
    result = runner.invoke(
        app, ["status", "--server", "http://127.0.0.1:9"], env={"SHIPYARD_TOKEN": "shy_x"}
    )
    failure = error_of(result)
    assert failure.message.startswith("Could not reach the Shipyard server at http://127.0.0.1:9")
    assert failure.hint is not None and "SHIPYARD_SERVER" in failure.hint
