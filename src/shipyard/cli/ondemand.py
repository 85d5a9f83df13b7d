"""The ``shipyard`` command as click runs it, each subcommand built when it is first looked up.

Typer turns every registered function into a click command before it parses anything: fifty
signatures read and their options converted, whichever one command was asked for. Here the
root group is built with its own options only and keeps the registrations; ``get_command``
builds the one a user named, through Typer's own conversion, and ``--help`` lists the
commands from their docstrings without building any. Commands are still defined one way (the
``register(app)`` of each module); only the moment click sees them changes.
"""

from __future__ import annotations

import inspect
from typing import Any

import typer
import typer.main
from typer.core import TyperGroup
from typer.models import CommandInfo, TyperInfo

Registration = CommandInfo | TyperInfo
# Typer builds on a copy of click of its own (``typer._click``, private): click's objects are
# reached through TyperGroup's base class rather than by importing a click.
_click_core: Any = inspect.getmodule(TyperGroup.__mro__[1])
SHORT_HELP = 150


class OnDemandGroup(TyperGroup):
    """A Typer group whose subcommands are built on first lookup (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending: dict[str, Registration] = {}
        self.source: typer.Typer | None = None

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(name for name in self.pending if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        registration = self.pending.pop(cmd_name, None)
        if registration is not None and self.source is not None:
            self.add_command(_build(self.source, registration), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, _short_help(command)) for name, command in self.commands.items()]
        rows += [(name, _short_help(r)) for name, r in self.pending.items() if not _hidden(r)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def click_command(app: typer.Typer) -> OnDemandGroup:
    """``app`` (made with ``cls=OnDemandGroup``) as a click group that builds on demand."""
    commands, groups = app.registered_commands, app.registered_groups
    app.registered_commands, app.registered_groups = [], []
    try:
        group = typer.main.get_group(app)
    finally:
        app.registered_commands, app.registered_groups = commands, groups
    if not isinstance(group, OnDemandGroup):
        raise TypeError("the app must be made with typer.Typer(cls=OnDemandGroup)")
    group.source = app
    registrations: list[Registration] = [*commands, *groups]
    group.pending = {_name(r): r for r in registrations}
    return group


def _build(app: typer.Typer, registration: Registration) -> Any:
    if isinstance(registration, TyperInfo):
        return typer.main.get_group_from_info(
            registration,
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
            suggest_commands=app.suggest_commands,
        )
    return typer.main.get_command_from_info(
        registration,
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
    )


def _name(registration: Registration) -> str:
    if isinstance(registration, TyperInfo):
        name = registration.name
        if not isinstance(name, str):  # a Default placeholder: the sub-app's own name
            name = registration.typer_instance.info.name if registration.typer_instance else None
        if not isinstance(name, str):
            raise ValueError("every sub-app of shipyard needs a name")
        return name
    if isinstance(registration.name, str):
        return registration.name
    assert registration.callback is not None
    return typer.main.get_command_name(registration.callback.__name__)


def _short_help(item: Any) -> str:
    """A built command's short help, or the same words from a registration."""
    if isinstance(item, CommandInfo | TyperInfo):
        return str(_click_core.make_default_short_help(_help_text(item) or "", SHORT_HELP))
    return str(item.get_short_help_str(limit=SHORT_HELP))


def _help_text(registration: Registration) -> str | None:
    """The text Typer would show: the help given at registration, else the docstring."""
    if isinstance(registration, CommandInfo):
        if isinstance(registration.short_help, str):
            return registration.short_help
        if isinstance(registration.help, str):
            return registration.help
        return inspect.getdoc(registration.callback) if registration.callback else None
    sub = registration.typer_instance
    candidates = [registration.help]
    if sub is not None:
        candidates += [sub.info.help]
        if sub.registered_callback is not None:
            callback = sub.registered_callback
            candidates += [callback.help, inspect.getdoc(callback.callback)]
    return next((text for text in candidates if isinstance(text, str) and text), None)


def _hidden(registration: Registration) -> bool:
    return registration.hidden is True
