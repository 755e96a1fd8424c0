"""The commands agents and people run most often (`status`, `done`, `heartbeat`,
`--version`), without typer: the typer commands call the functions here, and
`main` calls them straight when the arguments are plain.

Plain means: only the options the command's entry in `QUICK` names, each value
given as the next argument and not starting with `-`, at most the positional
arguments it takes. Anything else (`--help`, `--opt=value`, an option it does
not know, a bad value) goes to typer, which also words every usage error, so
a command behaves the same either way; tests/test_cli_light.py checks that
each entry names exactly the typer command's options.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_fanout.cli import output


@dataclass(frozen=True)
class Quick:
    """How a command's arguments look when they are plain."""

    run: Callable[..., None]
    positional: tuple[str, ...]  # parameter names, in order (each optional)
    flags: dict[str, str]  # option -> parameter, a boolean
    values: dict[str, str]  # option -> parameter, takes one value


def open_ws(repo: Path | None) -> Any:
    """The workspace (what a killed command left settled first), its notices shown."""
    from hf_fanout.orchestrator.workspace_open import open_workspace

    ws = open_workspace(repo)
    for message, hint in ws.notices:
        output.notice(message, hint)
    return ws


# --------------------------------------------------------------------- status


def status(batch: str | None = None, repo: Path | None = None, everything: bool = False,
           watch: bool = False) -> None:
    from dataclasses import asdict

    from hf_fanout import timefmt
    from hf_fanout.core import pauses
    from hf_fanout.orchestrator.limits import usage
    from hf_fanout.orchestrator.status import all_status, queue_status
    from hf_fanout.paths import shell_word, shown_path, shown_text

    ws = open_ws(repo)
    if watch and output.on_terminal():
        from hf_fanout.cli.board import watch as live_board

        live_board(lambda: all_status(ws, batch, everything=everything, owned=True)[0],
                   board_actions(ws))
        return
    batches, hidden = all_status(ws, batch, everything=everything)
    isolated = [] if batch else queue_status(ws)  # a named batch is all that is asked
    limits = usage(ws)
    limits_line = "limits: " + ", ".join(f"{u.limit} {u.count}/{u.max}" for u in limits)
    paused = pauses.in_force(ws)  # the user's and the repository's, batch or no batch

    def human() -> None:
        later = (f"{hidden} finished batch(es) not shown (`hf status --all`)"
                 if hidden else "")
        if not batches:
            print(f"no running batch; {later}" if hidden else
                  "no batches in this repository (start one with `hf split`)")
            for pause in paused:  # (a batch shown names its pause under its title)
                print(f"PAUSED: {pause.describe()}")
            queue_table()
            print(limits_line)
            return
        for b in batches:
            if b.error:
                print(f"batch {b.id}: damaged: {b.error} (see `hf doctor`)")
                continue
            rows = [[p.name, " ".join(filter(None, (p.state, timefmt.ago(p.since))))
                     + (f", main +{p.behind}" if p.behind else ""),
                     str(p.changed), str(p.outside),
                     f"{timefmt.ago(p.last_activity)} ago", p.branch, p.worktree]
                    for p in b.parts]
            output.table(["part", "state", "changed", "outside", "last activity", "branch",
                          "worktree"], rows,
                         title=f"batch {b.id} ({b.state}{', collected' if b.collected else ''}"
                               f", base {b.base[:12]})" + (" PAUSED" if b.paused else ""))
            if b.paused:
                print(f"  PAUSED: {b.paused}")
            print(b.summary())
            for p in b.parts:
                if p.off_branch:
                    print(f"  {p.name}: its worktree is on the branch {p.off_branch}, not on "
                          f"its own {p.branch}: `git -C {shell_word(p.worktree)} switch "
                          f"{p.branch}` puts it back; the join refuses it until then")
                if p.outside:
                    print(f"  {p.name}: outside its ownership: "
                          f"{', '.join(shown_path(x) for x in p.outside_paths)}")
                if p.reason:
                    print(f"  {p.name}: blocked: {shown_text(p.reason)}")
                if p.after_join:
                    print(f"  {p.name}: {p.after_join} commit(s) on its branch after its join, "
                          f"not in main: {p.after_join_hint}")
                if p.work_after_join:
                    print(f"  {p.name}: its owned files changed in its worktree after its "
                          f"join, not committed, not in main: `hf done {b.id}/{p.name}` "
                          "offers them to the batch's next join; `hf gc` keeps the worktree")
                if p.sync_running:
                    print(f"  {p.name}: its hf sync is running")
                if p.sync_stopped:
                    print(f"  {p.name}: its hf sync is stopped: `hf sync {b.id}/{p.name} "
                          "--continue` once its files are resolved, or --abort")
                if p.remote:
                    print(f"  {p.name}: remote part on {p.remote['remote']}: {p.remote['seen']}")
                if p.sparse:
                    print(f"  {p.name}: sparse checkout: its own files"
                          + (f" and {', '.join(p.context)}" if p.context else "")
                          + f" (`hf widen {b.id}/{p.name} GLOB` adds more)")
        if later:
            print(later)
        queue_table()
        print(limits_line)

    def queue_table() -> None:
        if not isolated:
            return
        rows = [[q.entry, q.task, q.entry_state, str(q.changed),
                 f"{timefmt.ago(q.last_activity)} ago" if q.last_activity else "",
                 q.branch, "(missing)" if q.missing else q.worktree] for q in isolated]
        output.table(["entry", "task", "entry state", "changed", "last activity", "branch",
                      "worktree"], rows, title="queue worktrees (`hf next --isolated`)")
        print(f"{len(isolated)} queue worktree(s); `hf gc` removes those whose work is in "
              "main and that no process works in")

    output.emit({"batches": [b.to_data() for b in batches], "hidden": hidden,
                 "queue": [asdict(q) for q in isolated],
                 "limits": [limit.to_data() for limit in limits],
                 "paused": [{**p.to_data(), "line": p.describe()} for p in paused]}, human)


def board_actions(ws: Any) -> Any:
    """The board's keys: Enter goes to the part's tmux window, d pages its diff, j
    joins the batch once every part is done."""
    from hf_fanout.cli.board import Actions
    from hf_fanout.cli.render import diff_text, page
    from hf_fanout.errors import HfError
    from hf_fanout.orchestrator.diff import batch_diff, diff_colors, pager
    from hf_fanout.orchestrator.join import join_batch
    from hf_fanout.orchestrator.status import focus_part

    def diff(batch_id: str, part_name: str) -> None:
        page(diff_text(batch_diff(ws, batch_id, part_name, color=diff_colors(ws))), pager(ws))

    def join_all(batch_id: str) -> str:
        try:
            outcome = join_batch(ws, batch_id)
        except HfError as exc:
            return f"join {batch_id}: {exc.message}"
        return f"joined {batch_id}: commit {(outcome.commit or '')[:12] or 'none needed'}"

    return Actions(lambda b, p: focus_part(ws, b, p), diff, join_all)


# --------------------------------------------------------------------- done / blocked


def done(part: str | None = None, note: str | None = None, dry_run: bool = False,
         repo: Path | None = None) -> None:
    from hf_fanout.orchestrator.lifecycle import report_done

    mark_part(part, repo, dry_run, "done", lambda ws, target: report_done(ws, target, note))


def mark_part(spec: str | None, repo: Path | None, dry_run: bool, state: str,
              change: Any) -> None:
    """done / blocked: find the part (BATCH/PART or the current worktree), change, say so."""
    ws = open_ws(repo)
    seen = len(ws.notices)
    target = ws.resolve_part(spec)
    if dry_run:
        output.emit({"part": target.to_dict(), "dry_run": True},
                    f"would mark {target.batch}/{target.name} {state}")
        return
    result, changed = change(ws, target)
    for message, hint in ws.notices[seen:]:  # (a request a sandbox left waiting)
        output.notice(message, hint)
    from hf_fanout.paths import shown_text

    detail = f": {shown_text(result.reason or '')}" if state == "blocked" else ""
    output.emit({"part": result.to_dict(), "changed": changed},
                f"{result.batch}/{result.name} is {state}{detail}"
                + ("" if changed else " (already)"))


# --------------------------------------------------------------------- heartbeat


def heartbeat(part: str | None = None, dry_run: bool = False,
              repo: Path | None = None) -> None:
    from hf_fanout.orchestrator.beat import beat_for as beat

    ws = open_ws(repo)
    target = ws.resolve_part(part, named_by="--part BATCH/PART")
    if dry_run:
        output.emit({"dry_run": True}, f"would beat for {target.batch}/{target.name}")
        return
    data = beat(ws, target)
    remote = data.get("remote")
    from hf_fanout.paths import shown_text

    failed = (f" (here only: its push to the remote failed: {shown_text(str(remote.get('error')))})"
              if isinstance(remote, dict) and remote.get("ok") is False else "")
    output.emit({"batch": target.batch, "part": target.name, "heartbeat": data},
                f"heartbeat for {target.batch}/{target.name}{failed}")


# --------------------------------------------------------------------- the plain way in


_REPO = {"--repo": "repo", "-C": "repo"}
QUICK: dict[str, Quick] = {
    "status": Quick(status, ("batch",), {"--json": "json", "--all": "everything",
                                         "--watch": "watch"}, _REPO),
    "done": Quick(done, ("part",), {"--json": "json", "--dry-run": "dry_run"},
                  {"--note": "note", **_REPO}),
    "heartbeat": Quick(heartbeat, (), {"--json": "json", "--dry-run": "dry_run"},
                       {"--part": "part", **_REPO}),
}


def parse(args: Sequence[str]) -> Callable[[], None] | None:
    """The call `args` (hf's argv) make when they are plain (see the module's
    docstring), else None: typer's to parse."""
    if not args or args[0] not in QUICK:
        return None
    quick = QUICK[args[0]]
    given: dict[str, Any] = {}
    positional: list[str] = []
    rest = list(args[1:])
    while rest:
        arg = rest.pop(0)
        if arg in quick.flags:
            given[quick.flags[arg]] = True
        elif arg in quick.values:
            if not rest or rest[0].startswith("-") or quick.values[arg] in given:
                return None
            given[quick.values[arg]] = rest.pop(0)
        elif arg.startswith("-") or len(positional) == len(quick.positional):
            return None
        else:
            positional.append(arg)
    given.update(zip(quick.positional, positional, strict=False))
    given.pop("json", None)  # (output.start has it)
    if "repo" in given:
        given["repo"] = Path(given["repo"])
    return lambda: quick.run(**given)


def version() -> None:
    from hf_fanout import __version__

    print(f"hf {__version__}")
