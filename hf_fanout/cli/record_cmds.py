"""Commands of the record of work: log, report, note."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any

import typer

from hf_fanout.cli import output
from hf_fanout.cli.options import DryRun, Json, RepoOpt, command, open_ws
from hf_fanout.cli.output import emit

# --------------------------------------------------------------------- log


@command(epilog="Example: hf log   |   hf log b1 --part api --since 2h   |   "
             "hf log --follow --json")
def log(
    batch: Annotated[str | None, typer.Argument(help="Only this batch's events.")] = None,
    part: Annotated[str | None, typer.Option(
        "--part", help="Only this part's events (PART, or BATCH/PART).")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only events since then: a duration back from now (90s, 30m, 2h, "
        "1d) or a time (2026-01-01T12:00:00Z).")] = None,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing events as they are written (Ctrl-C stops); "
        "with --json one envelope per event, one per line.")] = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Show the audit log: every state change with its time, actor, batch and part."""
    from hf_fanout import timefmt
    from hf_fanout.orchestrator.log import event_data, make_filter, read_log
    from hf_fanout.orchestrator.log import follow as follow_log

    keep = make_filter(batch, part, since)
    ws = open_ws(repo)
    if follow:
        def shown(event: Any) -> None:
            if json:
                output.emit({"event": event_data(event)})
            else:
                print(_event_line(event, timefmt.clock()), flush=True)

        def torn(line: Any) -> None:
            output.notice(f"{ws.store.audit_file} line {line.number} is torn (a writer was "
                          f"cut off); kept as it is: {line.text[:80]}", "")

        follow_log(ws, keep, shown, torn)
        return
    view = read_log(ws, keep)
    for line in view.torn:
        output.notice(f"{ws.store.audit_file} line {line.number} is torn (a writer was cut "
                      f"off); kept as it is: {line.text[:80]}", "")

    def human() -> None:
        if not view.events:
            print("no events" + (" match" if batch or part or since else " yet"))
        for event in view.events:
            print(_event_line(event, view.now))

    emit(view.to_data(), human)


_SHOWN_APART = ("at", "t", "action", "actor", "batch", "part")


def _event_line(event: Any, now: float) -> str:
    """`TIME  (AGO)  ACTION  BATCH/PART  ACTOR  key=value ...`"""
    from hf_fanout import timefmt
    from hf_fanout.core.audit import describe_actor

    where = event.batch or ""
    if event.part:
        where += f"/{event.part}"
    details = " ".join(f"{k}={_value(v)}" for k, v in sorted(event.data.items())
                       if k not in _SHOWN_APART and v not in (None, "", [], {}))
    when = timefmt.iso(event.time)
    return (f"{when}  {timefmt.relative(event.time, now):>16}  {event.action:<22} {where:<20} "
            f"{describe_actor(event.data.get('actor')):<18} {details}").rstrip()


def _value(value: Any) -> str:
    from hf_fanout.paths import shown_text
    from hf_fanout.worktrees.refs import is_oid

    if isinstance(value, str):
        text = value[:12] if is_oid(value) else value
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        text = ",".join(value)
    else:
        text = jsonlib.dumps(value, sort_keys=True, default=str)
    text = shown_text(" ".join(text.split()))
    return text if len(text) <= 80 else text[:77] + "..."


# ------------------------------------------------------------- pause / resume


@command(epilog="Example: hf pause b1 --reason 'review first'   |   hf pause --all --freeze"
             "   |   hf pause b1 --stop")
def pause(
    batch: Annotated[str | None, typer.Argument(
        help="Only this batch (default: the whole repository).")] = None,
    everywhere: Annotated[bool, typer.Option(
        "--all", help="Every repository in the registry (user-wide).")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why; shown in every refusal.")] = "",
    stop: Annotated[bool, typer.Option(
        "--stop", help="Also end the running agents, rescuing their work (as hf stop).")
    ] = False,
    freeze: Annotated[bool, typer.Option(
        "--freeze", help="Also suspend the running agents (SIGSTOP); hf resume continues "
        "them.")] = False,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Stop anything new from starting (open, run, next, split --open, auto-join)."""
    from hf_fanout.orchestrator.pausing import pause as pause_all

    ws = open_ws(repo)
    result = pause_all(ws, batch, everywhere=everywhere, reason=reason, stop=stop,
                       freeze=freeze, dry_run=dry_run)

    def human() -> None:
        from hf_fanout.core.pauses import label

        verb = "would pause" if dry_run else ("still paused" if result["already"] else "paused")
        print(f"{verb}: {label(result['pause']['scope'])}" + (f" ({reason})" if reason else ""))
        for entry in result["parts"]:
            where = f" (in {entry['repo']})" if everywhere else ""
            print(f"  {entry['batch']}/{entry['part']}: {entry['action']}{where}")

    emit(result, human)


@command(epilog="Example: hf resume b1   |   hf resume   |   hf resume --all")
def resume(
    batch: Annotated[str | None, typer.Argument(
        help="The paused batch (default: the repository's pause).")] = None,
    everywhere: Annotated[bool, typer.Option(
        "--all", help="Lift the user-wide pause.")] = False,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Lift a pause; agents frozen by it continue (SIGCONT)."""
    from hf_fanout.orchestrator.pausing import resume as resume_all

    ws = open_ws(repo)
    result = resume_all(ws, batch, everywhere=everywhere, dry_run=dry_run)

    def human() -> None:
        from hf_fanout.core.pauses import label

        if not result["was_paused"]:
            print(f"not paused: {label(result['scope'])}")
            return
        print(("would resume" if dry_run else "resumed") + f": {label(result['scope'])}")
        for entry in result["continued"]:
            where = f" (in {entry['repo']})" if everywhere else ""
            print(f"  {entry['batch']}/{entry['part']}: continued{where}")

    emit(result, human)


# --------------------------------------------------------------------- init


@command(epilog="Example: hf init --dry-run   |   hf init   |   hf init --force")
def init(
    force: Annotated[bool, typer.Option(
        "--force", help="Replace an existing .hf.toml.")] = False,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Write a commented .hf.toml: environment files to copy, setup, launcher."""
    from hf_fanout.orchestrator.init import init_config

    ws = open_ws(repo)
    result = init_config(ws, force=force, dry_run=dry_run)

    def human() -> None:
        if dry_run:
            print(result["text"], end="")
            return
        chose = result["chose"]
        print(f"wrote {result['file']}: copy {chose['copy'] or 'nothing'}, setup "
              f"{chose['setup'] or 'nothing'}, launcher {chose['launcher']}")

    emit(result, human)
