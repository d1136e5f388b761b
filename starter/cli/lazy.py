"""Sub-apps that are imported when they run, not when `crm` starts.

The root group knows each sub-app by its name, where its `typer.Typer` lives
and its one-line help (`SubApp`). Listing them (`crm --help`, a typo's
"did you mean", completing the first word) reads only those declarations;
running one (`crm lead status L1`, `crm lead --help`) imports that one module
and builds it as `add_typer` would. So `crm --help` builds the root's own
four commands, not the twenty groups and their eighty-odd commands, and `crm
lead ...` the lead commands only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import typer.main
from typer import _click  # the click Typer vendors, which its groups are built on
from typer.core import TyperCommand, TyperGroup
from typer.models import TyperInfo

from domain.registry import load


@dataclass(frozen=True)
class SubApp:
    """A sub-app as the root lists it; its help is declared here only."""

    name: str
    app: str  # its `typer.Typer`, `module:attribute`
    help: str


class LazyGroup(TyperGroup):
    """A Typer group whose `sub_apps` are imported when one of them runs.

    Until then each is a listing entry in the group's commands (a command with
    the sub-app's name and help, and nothing to run), so help, suggestions
    and completion treat it as any other command; `resolve_command`, which
    click calls before running a command, swaps in the real group."""

    sub_apps: ClassVar[tuple[SubApp, ...]] = ()
    # What `add_typer` would hand each sub-app from the root `typer.Typer`.
    pretty_exceptions_short: ClassVar[bool] = True

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for sub in self.sub_apps:
            self.add_command(TyperCommand(name=sub.name, help=sub.help))

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        sub = next((sub for sub in self.sub_apps if sub.name == name), None)
        if sub is not None and not isinstance(command, TyperGroup):
            command = self.commands[sub.name] = self.sub_app(sub)
        return name, command, rest

    def sub_app(self, sub: SubApp) -> TyperGroup:
        """The sub-app's group, built as `add_typer(app, name=..., help=...)` builds it."""
        return typer.main.get_group_from_info(
            TyperInfo(load(sub.app), name=sub.name, help=sub.help),
            pretty_exceptions_short=self.pretty_exceptions_short,
            rich_markup_mode=self.rich_markup_mode,
            suggest_commands=self.suggest_commands,
        )
