"""The typer application, put together in one place: every command, in the order
`hf --help` lists them. Each is a function of a `*_cmds.py` module that parses,
calls one library function and renders its result (`options.command` marks
how it is shown)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from hf_fanout.cli import (
    agent_cmds,
    core_cmds,
    guard_cmds,
    liveness_cmds,
    record_cmds,
    remote_cmds,
    report_cmds,
    shell_cmds,
    tabs_cmds,
)

HELP = ("Run one coding task as parallel parts, each in its own git worktree, "
        "and join the results back as one safe commit.\n\n"
        "Example: hf split b1 --part api='src/api/**' --part ui='src/ui/**' --task 'add search'")

COMMANDS: list[Callable[..., Any]] = [
    core_cmds.split, core_cmds.status, core_cmds.done, core_cmds.blocked, core_cmds.join,
    core_cmds.undo,
    core_cmds.sync, core_cmds.publish, core_cmds.doctor, core_cmds.demo,
    guard_cmds.commit, guard_cmds.trust,
    tabs_cmds.open_, tabs_cmds.task, tabs_cmds.handoff, tabs_cmds.queue, tabs_cmds.next_,
    remote_cmds.take,
    liveness_cmds.run, liveness_cmds.heartbeat, liveness_cmds.sweep, liveness_cmds.stop,
    liveness_cmds.drop, liveness_cmds.gc, liveness_cmds.install, liveness_cmds.uninstall,
    shell_cmds.cd, shell_cmds.shell_init,
    agent_cmds.agent_event, core_cmds.diff, core_cmds.board,
    core_cmds.widen,
    record_cmds.log, report_cmds.report, report_cmds.note,
    record_cmds.pause, record_cmds.resume, record_cmds.init,
]
# Command groups: name -> (help, their commands).
GROUPS: dict[str, tuple[str, list[Callable[..., Any]]]] = {
    "guard": (guard_cmds.GROUP_HELP,
              [guard_cmds.guard_env_cmd, guard_cmds.explain, guard_cmds.install_cmd]),
}


def names() -> list[str]:
    """Every command and group name, in order."""
    return [c.hf_command["name"] for c in COMMANDS] + list(GROUPS)  # type: ignore[attr-defined]


def functions() -> dict[str, Callable[..., Any]]:
    """The function behind each command path ('' is the root, `guard env` a group's)."""
    found: dict[str, Callable[..., Any]] = {"": _root}
    found.update({c.hf_command["name"]: c for c in COMMANDS})  # type: ignore[attr-defined]
    for group, (_help, members) in GROUPS.items():
        found.update({f"{group} {c.hf_command['name']}": c  # type: ignore[attr-defined]
                      for c in members})
    return found


def build(only: str | None = None) -> typer.Typer:
    """The app; with `only` (a command or group name), just that one: typer builds
    click's object of every command it holds before parsing (about 0.03 s for
    all of hf's), and a call uses one."""
    app = typer.Typer(
        name="hf", help=HELP, no_args_is_help=True, add_completion=False,
        pretty_exceptions_enable=False, rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]})
    app.callback()(_root)
    for function in COMMANDS:
        if only is None or function.hf_command["name"] == only:  # type: ignore[attr-defined]
            _add(app, function)
    for name, (help_text, functions) in GROUPS.items():
        if only is None or name == only:
            group = typer.Typer(help=help_text, no_args_is_help=True)
            for function in functions:
                _add(group, function)
            app.add_typer(group, name=name)
    return app


def _add(app: typer.Typer, function: Callable[..., Any]) -> None:
    shown = function.hf_command  # type: ignore[attr-defined]
    settings = {"context_settings": shown["context_settings"]} if shown["context_settings"] \
        else {}
    app.command(shown["name"], epilog=shown["epilog"], **settings)(function)


def _print_version(value: bool) -> None:
    if value:
        from hf_fanout.cli import light

        light.version()
        raise typer.Exit(0)


def _root(
    version: Annotated[bool, typer.Option(
        "--version", help="Print hf's version.", callback=_print_version,
        is_eager=True)] = False,
) -> None:
    # --version is eager: it must answer before click asks for a command.
    return None
