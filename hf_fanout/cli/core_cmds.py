"""The core commands: split, status, done, blocked, join, doctor, demo. Each parses,
calls one library function, renders its result."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from hf_fanout.cli import output
from hf_fanout.cli.options import DryRun, Json, PartArg, RepoOpt, Wait, command, open_ws
from hf_fanout.cli.output import emit, progress
from hf_fanout.cli.render import print_split_notes

# --------------------------------------------------------------------- split


@command(epilog="Example: hf split b1 --part api='src/api/**' --part docs='docs/**' "
             "--task 'add search'   |   hf split --plan plan.toml --dry-run")
def split(
    batch: Annotated[str | None, typer.Argument(help="Batch id (or give it in --plan).")] = None,
    plan_file: Annotated[Path | None, typer.Option("--plan", help="A TOML plan file.")] = None,
    part: Annotated[list[str] | None, typer.Option(
        "--part", help="NAME=GLOB[,GLOB...]; repeat per part.")] = None,
    task: Annotated[str, typer.Option("--task", help="The shared task text.")] = "",
    base: Annotated[str | None, typer.Option("--base", help="Base commit (default HEAD).")] = None,
    worktree_root: Annotated[Path | None, typer.Option(
        "--worktree-root",
        help="Where worktrees go (default: <repo>.hf/ beside the repo).")] = None,
    auto_join: Annotated[bool, typer.Option(
        "--auto-join", help="Join automatically when the last part is done.")] = False,
    open_tabs: Annotated[bool, typer.Option(
        "--open", help="Open a tab per part with its agent (see `hf open`).")] = False,
    launcher: Annotated[str | None, typer.Option(
        "--launcher", help="With --open: tmux, vscode, cursor, terminal, print, or a "
        "command template.")] = None,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Split a task into parts: a branch and a worktree per part, with owned files."""
    from hf_fanout.orchestrator.split import plan_from_input
    from hf_fanout.orchestrator.split import split as do_split

    the_plan = plan_from_input(batch, plan_file, part or [], task=task, base=base,
                               auto_join=auto_join)
    ws = open_ws(repo)
    result = do_split(ws, the_plan, dry_run=dry_run, root=worktree_root, launcher=launcher,
                      open_tabs=open_tabs, progress=progress)
    tabs = result.tabs

    def human() -> None:
        verb = "would create" if dry_run else "created"
        print(f"batch {result.batch.id}: {verb} {len(result.parts)} parts at base "
              f"{result.batch.base[:12]}")
        for p in result.parts:
            print(f"  {p.name}: branch {p.branch}, worktree {p.worktree}")
            print(f"    owns {', '.join(p.owns)}")
            for r in result.reports:
                if r.part == p.name:
                    print(f"      {r.glob}: {r.matches} file(s) in the base tree")
        for warning in result.warnings:
            print(f"warning: {warning}")
        print_split_notes(result.parts, tabs)
        if not dry_run:
            print("next: work each part in its worktree, `hf done` there, then `hf join "
                  f"{result.batch.id}`")

    emit(result.to_data(), human)


# --------------------------------------------------------------------- status


@command(epilog="Example: hf status   |   hf status b1 --json")
def status(
    batch: Annotated[str | None, typer.Argument(help="One batch (default: all).")] = None,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Show every part: state, branch, worktree, changed files, files outside ownership."""
    from hf_fanout.orchestrator.status import all_status

    ws = open_ws(repo)
    batches = all_status(ws, batch)

    def human() -> None:
        if not batches:
            print("no batches in this repository (start one with `hf split`)")
            return
        for b in batches:
            if b.error:
                print(f"batch {b.id}: damaged: {b.error} (see `hf doctor`)")
                continue
            rows = [[p.name, p.state, str(p.changed), str(p.outside), p.last_activity,
                     p.branch, p.worktree] for p in b.parts]
            output.table(["part", "state", "changed", "outside", "last activity", "branch",
                          "worktree"], rows,
                         title=f"batch {b.id} ({b.state}, base {b.base[:12]})"
                         + (" PAUSED" if b.paused else ""))
            if b.paused:
                print(f"  PAUSED: {b.paused}")
            for p in b.parts:
                if p.outside:
                    print(f"  {p.name}: outside its ownership: {', '.join(p.outside_paths)}")
                if p.reason:
                    print(f"  {p.name}: blocked: {p.reason}")

    emit({"batches": [b.to_data() for b in batches]}, human)


# --------------------------------------------------------------------- done / blocked

@command(epilog="Example: hf done --note 'tests pass'   |   hf done b1/api")
def done(
    part: PartArg = None,
    note: Annotated[str | None, typer.Option("--note", help="A note for the joiner.")] = None,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Mark a part done (idempotent)."""
    from hf_fanout.orchestrator.lifecycle import report_done

    _mark_part(part, repo, dry_run, "done", lambda ws, target: report_done(ws, target, note))


def _mark_part(spec: str | None, repo: Path | None, dry_run: bool, state: str,
               change: Any) -> None:
    """done / blocked: find the part (BATCH/PART or the current worktree), change, say so."""
    ws = open_ws(repo)
    seen = len(ws.notices)
    target = ws.resolve_part(spec)
    if dry_run:
        emit({"part": target.to_dict(), "dry_run": True},
             f"would mark {target.batch}/{target.name} {state}")
        return
    result, changed = change(ws, target)
    for message, hint in ws.notices[seen:]:
        output.notice(message, hint)
    detail = f": {result.reason}" if state == "blocked" else ""
    emit({"part": result.to_dict(), "changed": changed},
         f"{result.batch}/{result.name} is {state}{detail}" + ("" if changed else " (already)"))


@command(epilog="Example: hf blocked --reason 'needs the API key'")
def blocked(
    part: PartArg = None,
    reason: Annotated[str, typer.Option("--reason", help="Why the part cannot go on.")] = "",
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Mark a part blocked, with the reason (idempotent)."""
    from hf_fanout.errors import BadInput
    from hf_fanout.orchestrator.lifecycle import report_blocked

    if not reason.strip():
        raise BadInput("--reason is required", "say why, e.g. --reason 'waiting for the schema'")
    _mark_part(part, repo, dry_run, "blocked",
               lambda ws, target: report_blocked(ws, target, reason))


# --------------------------------------------------------------------- join


@command(epilog="Example: hf join b1 --dry-run   |   hf join b1 --partial --wait 60")
def join(
    batch: Annotated[str, typer.Argument(help="The batch to join.")],
    partial: Annotated[bool, typer.Option(
        "--partial", help="Join the done parts; leave the others running.")] = False,
    allow_outside_symlinks: Annotated[bool, typer.Option(
        "--allow-outside-symlinks", help="Take symbolic links that point out of the "
        "repository or into .git (refused otherwise).")] = False,
    wait: Wait = 30.0,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Bring every part's owned files into the main tree as one commit."""
    from hf_fanout.orchestrator.join import join_batch

    ws = open_ws(repo)
    outcome = join_batch(ws, batch, partial=partial, wait=wait, dry_run=dry_run,
                         allow_outside_links=allow_outside_symlinks, on_wait=output.waiting)
    plan, commit = outcome.plan, outcome.commit
    if plan.noop:  # joined before, or by another process while this one waited
        emit(outcome.to_data(), f"batch {batch} is already joined (commit "
                                f"{(commit or '')[:12]}); nothing to do")
    elif outcome.nothing_to_bring:
        emit(outcome.to_data(),
             f"batch {batch}: no part changed anything; nothing committed, batch marked joined")
    else:
        emit(outcome.to_data(), lambda: _print_join(ws, plan, commit))


def _print_join(ws: Any, plan: Any, commit: str | None) -> None:
    """Per part what it brings: a diffstat for a dry run; counts for a real join
    (`git show --stat` has the rest, and the join does not wait for it)."""
    if commit is None:
        from concurrent.futures import ThreadPoolExecutor

        def diffstat(r: Any) -> str:
            data: bytes = ws.main.git(["diff", "--stat=100", "--no-renames", plan.batch.base,
                                       r.tree])
            return data.decode("utf-8", "replace")

        with ThreadPoolExecutor(max_workers=2) as pool:
            stats = list(pool.map(diffstat, plan.results))
    else:
        stats = ["" for _ in plan.results]
    for r, stat in zip(plan.results, stats, strict=True):
        kinds = Counter(f["change"] for f in r.to_data()["files"])
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        print(f"part {r.part.name}: {len(r.changes)} file(s)"
              + (f" ({summary})" if summary else ""))
        for line in stat.splitlines():
            print(f"  {line.strip()}")
    if plan.merged:
        print(f"merged three-way with main: {', '.join(plan.merged)}")
    if commit:
        print(f"joined batch {plan.batch.id}: commit {commit[:12]} "
              f"({len(plan.entries)} path(s) written; `git show --stat {commit[:12]}` lists them)")
        for name in plan.late:
            print(f"part {name} committed while the join wrote: that commit is not in this "
                  f"join and the part stays done; `hf join {plan.batch.id}` brings it")
    else:
        print(f"dry run: would write {len(plan.entries)} path(s) as one commit; nothing changed")


# --------------------------------------------------------------------- doctor


@command(epilog="Example: hf doctor --json   |   hf doctor --accept   |   hf doctor --fix   |   "
             "hf doctor --discard-journal")
def doctor(
    accept: Annotated[bool, typer.Option(
        "--accept", help="After a look: take the shared state as it is now as the new "
        "tamper baseline.")] = False,
    fix: Annotated[bool, typer.Option(
        "--fix", help="Reinstall the guard of every live part whose guard is broken "
        "(a missing marker, hooks path or hook, a moved installation of hf).")] = False,
    discard_journal: Annotated[bool, typer.Option(
        "--discard-journal", help="Save an interrupted join's journal aside and remove it "
        "(when it is damaged or cannot be recovered); the main tree's files of its paths "
        "are made to match the index.")] = False,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Check hf's state: settle what a killed command left, report what is damaged."""
    from hf_fanout.orchestrator.doctor import ProblemsFound
    from hf_fanout.orchestrator.doctor import doctor as run_doctor
    from hf_fanout.orchestrator.workspace_open import open_workspace

    ws = open_workspace(repo, recover=False)
    report = run_doctor(ws, accept=accept, discard_journal=discard_journal, dry_run=dry_run,
                        fix=fix)

    def human() -> None:
        for f in report.findings:
            print(f"{f.what}: {f.detail}" + (f" ({f.level})" if f.level != "info" else ""))
            if f.hint and f.level == "problem":
                print(f"  hint: {f.hint}")
        if not report.problems:
            print("no problem found")

    if report.problems:
        if not json:
            human()
        first = report.problems[0]
        raise ProblemsFound(f"hf doctor found {len(report.problems)} problem(s); first: "
                            f"{first.detail}", first.hint, details=report.to_data())
    emit(report.to_data(), human)


# --------------------------------------------------------------------- demo


@command(epilog="Example: hf demo   |   hf demo --keep --dir /tmp/hf-demo")
def demo(
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Where to make the throwaway repository (default: a temp dir).")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the demo repository.")] = False,
    json: Json = False,
) -> None:
    """Make a throwaway repo, split a task in three, let stand-in agents work, join."""
    from hf_fanout.orchestrator.demo import run_demo

    steps = run_demo(directory, keep=keep, say=None if json else print)
    emit({"steps": steps})
