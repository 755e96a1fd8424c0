"""The core commands: split, status, done, blocked, join, sync, publish, doctor, demo.
Each parses, calls one library function, renders its result."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from hf_fanout.cli import light, output
from hf_fanout.cli.options import (
    BranchOpt,
    DryRun,
    ForceWithLeaseOpt,
    Json,
    PartArg,
    PrOpt,
    RemoteOpt,
    RepoOpt,
    Wait,
    batch_names,
    command,
    open_ws,
    part_names,
)
from hf_fanout.cli.output import emit, progress
from hf_fanout.cli.render import print_split_notes
from hf_fanout.paths import shown_path

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
    sparse: Annotated[bool | None, typer.Option(
        "--sparse/--full", help="Check out only what each part owns plus --context "
        "(default: `sparse` in .hf.toml, else full).")] = None,
    context: Annotated[list[str] | None, typer.Option(
        "--context", help="GLOB[,GLOB...] every sparse part also gets (to read or build "
        "with); repeat.")] = None,
    estimate: Annotated[list[str] | None, typer.Option(
        "--estimate", help="MIN (every part) or NAME=MIN (one part): the minutes you "
        "expect a part to take, for `hf report`; repeat.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Split even over max_parts_per_batch (audited).")] = False,
    remote: Annotated[str | None, typer.Option(
        "--remote", help="Every part is worked on another machine through this git remote "
        "(per part: `remote` in the plan file); see docs/remote.md.")] = None,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Split a task into parts: a branch and a worktree per part, with owned files."""
    from hf_fanout.orchestrator.split import plan_from_input
    from hf_fanout.orchestrator.split import split as do_split

    the_plan = plan_from_input(batch, plan_file, part or [], task=task, base=base,
                               auto_join=auto_join, sparse=sparse,
                               context=context or [], estimates=estimate or [],
                               remote=remote)
    ws = open_ws(repo)
    result = do_split(ws, the_plan, dry_run=dry_run, root=worktree_root, launcher=launcher,
                      open_tabs=open_tabs, progress=progress, force=force)
    tabs = result.tabs

    def human() -> None:
        verb = "would create" if dry_run else "created"
        print(f"batch {result.batch.id}: {verb} {len(result.parts)} parts at base "
              f"{result.batch.base[:12]}")
        for p in result.parts:
            where = p.extra.get("remote")
            print(f"  {p.name}: branch {p.branch}, " + (
                f"remote part on {where['name']} (`hf take {where['name']} "
                f"{result.batch.id}/{p.name}` on the machine that works it)"
                if isinstance(where, dict) else f"worktree {p.worktree}"))
            print(f"    owns {', '.join(p.owns)}")
            if p.estimate_minutes is not None:
                print(f"    estimate {p.estimate_minutes:g} min")
            if p.sparse:
                print("    sparse checkout: its own files"
                      + (f" and {', '.join(p.context)}" if p.context else ""))
            for r in result.reports:
                if r.part == p.name:
                    print(f"      {r.glob}: {r.matches} file(s) in the base tree")
        for warning in result.warnings:
            print(f"warning: {warning}")
        print_split_notes(result.parts, tabs)
        if result.calibration:
            print(f"note: {result.calibration}; `hf report --history` shows them")
        if not dry_run:
            remote = any(p.extra.get("remote") for p in result.parts)
            print("next: work each part in its worktree, `hf done` there"
                  + (" (a remote part: `hf take` on its machine, or `hf task BATCH/PART "
                     "--prompt` for a hosted agent)" if remote else "")
                  + f", then `hf join {result.batch.id}`")

    emit(result.to_data(), human)


# --------------------------------------------------------------------- status


@command(epilog="Example: hf status   |   hf status b1 --json   |   hf status --all   |   "
             "hf status --watch")
def status(
    batch: Annotated[str | None, typer.Argument(
        help="One batch (default: every running one).", autocompletion=batch_names)] = None,
    everything: Annotated[bool, typer.Option(
        "--all", help="Also the joined, dropped and collected batches.")] = False,
    watch: Annotated[bool, typer.Option(
        "--watch", help="A live board, redrawn as parts change (q quits).")] = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Show every part: state, branch, worktree, changed files, files outside ownership."""
    light.status(batch, repo, everything=everything, watch=watch)


@command(epilog="Example: hf board   |   hf board b1")
def board(
    batch: Annotated[str | None, typer.Argument(help="One batch (default: all).")] = None,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """The live board: `hf status --watch`."""
    status(batch, watch=True, json=json, repo=repo)


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
    light.done(part, note, dry_run, repo)


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
    light.mark_part(part, repo, dry_run, "blocked",
                    lambda ws, target: report_blocked(ws, target, reason))


# --------------------------------------------------------------------- widen


@command(epilog="Example: hf widen b1/api 'src/**/*.h'   |   hf widen b1/docs pyproject.toml "
             "--dry-run")
def widen(
    part: Annotated[str, typer.Argument(help="BATCH/PART (a part split with --sparse).")],
    globs: Annotated[list[str], typer.Argument(
        help="Globs of what the part must also read or build with.")],
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Add files to a sparse part's checkout, to read (it still owns only its own)."""
    from hf_fanout.orchestrator.widen import widen as do_widen

    ws = open_ws(repo)
    result = do_widen(ws, ws.resolve_part(part), globs, dry_run=dry_run)
    name = f"{result.part.batch}/{result.part.name}"
    if not result.added:
        text = f"{name} has {', '.join(globs)} in its checkout already; nothing to do"
    else:
        verb = "would add" if dry_run else "added"
        text = f"{name}: {verb} {', '.join(result.added)} to its sparse checkout"
    emit(result.to_data(), text)


# --------------------------------------------------------------------- join


@command(epilog="Example: hf join b1 --dry-run   |   hf join b1 --partial --wait 60   |   "
             "hf join b1 --push --branch hf-pr/b1 --pr")
def join(
    batch: Annotated[str, typer.Argument(help="The batch to join.",
                                         autocompletion=batch_names)],
    partial: Annotated[bool, typer.Option(
        "--partial", help="Join the done parts; leave the others running.")] = False,
    allow_outside_symlinks: Annotated[bool, typer.Option(
        "--allow-outside-symlinks", help="Take symbolic links that point out of the "
        "repository or into .git (refused otherwise).")] = False,
    keep_history: Annotated[bool | None, typer.Option(
        "--keep-history/--squash", help="One merge commit of main and each part's "
        "commits (same tree), or one plain commit (default: keep_history in .hf.toml, "
        "else --squash).", show_default=False)] = None,
    push: Annotated[bool, typer.Option(
        "--push", help="Then publish the joined commit, as `hf publish` does (--remote, "
        "--branch, --force-with-lease, --pr go with it).")] = False,
    remote: RemoteOpt = None,
    branch: BranchOpt = None,
    force_with_lease: ForceWithLeaseOpt = False,
    pr: PrOpt = False,
    wait: Wait = 30.0,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Bring every part's owned files into the main tree as one commit."""
    from hf_fanout.errors import BadInput
    from hf_fanout.orchestrator.join import join_batch
    from hf_fanout.orchestrator.publish import PublishOptions

    options = PublishOptions(remote, branch, force_with_lease, pr)
    if options != PublishOptions() and not push:
        raise BadInput("--remote, --branch, --force-with-lease and --pr go with --push",
                       f"hf join {batch} --push --branch hf-pr/{batch} --pr")
    ws = open_ws(repo)
    outcome = join_batch(ws, batch, partial=partial, wait=wait, dry_run=dry_run,
                         allow_outside_links=allow_outside_symlinks, on_wait=output.waiting,
                         push=options if push else None, keep_history=keep_history)
    for after in outcome.after_join:
        output.notice(after.line(), after.hint(batch))
    if outcome.sparse_left:
        output.notice(f"the main tree is a sparse checkout, and git would not apply its "
                      f"patterns again after the join: {outcome.sparse_left}",
                      "`git sparse-checkout reapply` in the main tree, once that is settled")
    if outcome.published is not None:
        published = outcome.published

        def human() -> None:
            _print_join(ws, outcome.plan, outcome.commit)
            print_published(published)

        emit(outcome.to_data(), human)
        return
    plan, commit = outcome.plan, outcome.commit
    if plan.noop:  # joined before, or by another process while this one waited
        if outcome.join_left_history:
            output.notice(f"the join commit {(commit or '')[:12]} of batch {batch} is not "
                          "in the history of its branch any more (reset or rewritten)",
                          f"`hf undo {batch}` makes its parts done again (when the branch "
                          f"has none of its changes), then `hf join {batch}` joins them anew")
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

        from hf_fanout.core.records import part_base

        def diffstat(r: Any) -> str:  # from the part's base: `hf sync` moves it
            data: bytes = ws.main.git(["diff", "--stat=100", "--no-renames",
                                       part_base(plan.batch, r.part), r.tree])
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
        print(f"merged three-way with main: {', '.join(map(shown_path, plan.merged))}")
    if commit:
        print(f"joined batch {plan.batch.id}: commit {commit[:12]} "
              f"({len(plan.entries)} path(s) written; `git show --stat {commit[:12]}` lists them)")
        print(f"to take it back: hf undo {plan.batch.id}")
        for name in plan.late:
            print(f"part {name} committed while the join wrote: that commit is not in this "
                  f"join and the part stays done; `hf join {plan.batch.id}` brings it")
        for r in plan.results:
            moved = plan.branches.get(r.part.name)
            if moved == "moved":
                print(f"part {r.part.name}: its uncommitted work is commit "
                      f"{r.result_commit[:12]}, now the tip of {r.part.branch}")
            elif moved:
                print(f"part {r.part.name}: {r.part.branch} {moved}")
    else:
        print(f"dry run: would write {len(plan.entries)} path(s) as one commit; nothing changed")
        print(f"the patch per part: hf diff {plan.batch.id}")


# --------------------------------------------------------------------- undo


@command(epilog="Example: hf undo b1 --dry-run   |   hf undo b1 --json")
def undo(
    batch: Annotated[str, typer.Argument(help="The batch whose last join to take back.",
                                         autocompletion=batch_names)],
    wait: Wait = 30.0,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Take back a batch's last join; its parts are done again, ready to rejoin."""
    from hf_fanout.orchestrator.undo import undo_batch

    ws = open_ws(repo)
    plan = undo_batch(ws, batch, dry_run=dry_run, wait=wait, on_wait=output.waiting)
    if plan.sparse_left:
        output.notice(f"the main tree is a sparse checkout, and git would not apply its "
                      f"patterns again after the undo: {plan.sparse_left}",
                      "`git sparse-checkout reapply` in the main tree, once that is settled")
    emit(plan.to_data(), lambda: _print_undo(plan))


def _print_undo(plan: Any) -> None:
    join, parts = plan.join[:12], ", ".join(plan.parts)
    verb = "would take" if plan.dry_run else "took"
    branch = plan.ref.removeprefix("refs/heads/")
    if plan.how == "records":
        print(f"{verb} back the join of {plan.batch.id} ({parts}): it made no commit "
              "(nothing to bring), so only the records change")
    elif not plan.entries:
        print(f"{verb} back the join {join} of {plan.batch.id} ({parts}): {branch} has "
              "none of its changes any more, so only the records change")
    elif plan.how == "fast":
        print(f"{verb} back the join {join} of {plan.batch.id} ({parts}): "
              f"{branch} {'would move' if plan.dry_run else 'moved'}"
              f" back to {(plan.new or '')[:12]}, {len(plan.entries)} path(s) put back")
    else:
        made = ("a revert commit on top" if plan.dry_run
                else f"revert commit {(plan.new or '')[:12]}")
        print(f"{verb} back the join {join} of {plan.batch.id} ({parts}) with {made}: "
              f"{len(plan.entries)} path(s)"
              + (f", merged with main's later changes: {', '.join(plan.merged)}"
                 if plan.merged else ""))
    if plan.dry_run:
        print("dry run: nothing changed")
    else:
        print(f"parts {parts} are done again; join them again with `hf join {plan.batch.id}`")


# --------------------------------------------------------------------- diff


@command(epilog="Example: hf diff b1   |   hf diff b1 api --stat   |   hf diff --name-only --json")
def diff(
    batch: Annotated[str | None, typer.Argument(
        help="The batch (default: the current part's, or the only running one).")] = None,
    part: Annotated[str | None, typer.Argument(help="One part (default: every part).")] = None,
    stat: Annotated[bool, typer.Option("--stat", help="A diffstat instead of the patch.")] = False,
    name_only: Annotated[bool, typer.Option(
        "--name-only", help="Only the names of the changed files.")] = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Show what the join would bring per part, and what it would refuse (outside ownership)."""
    from hf_fanout.cli.render import diff_text, page
    from hf_fanout.orchestrator.diff import batch_diff, diff_colors, pager

    ws = open_ws(repo)
    fmt = "name-only" if name_only else "stat" if stat else "patch"
    terminal = output.on_terminal()
    result = batch_diff(ws, batch, part, fmt=fmt, color=terminal and diff_colors(ws))

    def human() -> None:
        text = diff_text(result)
        if terminal:
            page(text, pager(ws))
        else:
            print(text, end="")

    emit(result.to_data(), human)


# --------------------------------------------------------------------- sync


@command(epilog="Example: hf sync b1   |   hf sync b1/api --merge   |   hf sync --continue")
def sync(
    target: Annotated[str | None, typer.Argument(
        help="BATCH (its live parts) or BATCH/PART (default: the part of the current "
        "worktree).", autocompletion=part_names)] = None,
    merge: Annotated[bool, typer.Option(
        "--merge", help="Merge main into the part instead of rebasing its commits.")] = False,
    resume: Annotated[bool, typer.Option(
        "--continue", help="Go on with a stopped sync once its conflicts are resolved "
        "and added.")] = False,
    abort: Annotated[bool, typer.Option(
        "--abort", help="Take a stopped sync back: branch, index and files as before.")
    ] = False,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Bring parts up to date with main: rebase (or merge) in each part's worktree."""
    from hf_fanout.orchestrator.sync import SyncStopped
    from hf_fanout.orchestrator.sync import sync as do_sync

    ws = open_ws(repo)
    report = do_sync(ws, target, merge=merge, resume=resume, abort=abort, dry_run=dry_run)

    def human() -> None:
        for p in report.parts:
            where = f"{p.batch}/{p.part}"
            onto = f" onto {p.onto[:12]}" if p.onto else ""
            if p.outcome == "up-to-date":
                print(f"{where}: up to date with main")
            elif p.outcome == "would-sync":
                print(f"{where}: would {p.mode}{onto} (main +{p.behind})")
            elif p.outcome == "synced":
                print(f"{where}: {'rebased' if p.mode == 'rebase' else 'merged'}{onto}")
            elif p.outcome == "aborted":
                print(f"{where}: sync taken back; branch, index and files as before")
            elif p.outcome == "conflict":
                print(f"{where}: stopped, {len(p.conflicts)} file(s) in conflict: "
                      f"{', '.join(map(shown_path, p.conflicts))}" if p.conflicts else
                      f"{where}: stopped, no file in conflict" + (f": {p.reason}"
                                                                   if p.reason else ""))
            else:
                print(f"{where}: skipped: {p.reason}")
            if p.restarted:
                print(f"  (it was cut off while git's {p.mode} ran: that {p.mode} was taken "
                      "back and run again from the part's own commits)")
            if p.owned_on_main:
                print(f"  main changed {len(p.owned_on_main)} file(s) this part owns: "
                      f"{', '.join(map(shown_path, p.owned_on_main))}")
            if p.moved_outside:
                print(f"  its commits now change {len(p.moved_outside)} file(s) it does not "
                      f"own (git took its edits along main's renames): "
                      f"{', '.join(map(shown_path, p.moved_outside))}; the join refuses "
                      "them: hand those edits to the part that owns them, then put the "
                      "files back as main has them in this part")
            if p.work_conflicts:
                print("  uncommitted work in conflict: "
                      f"{', '.join(map(shown_path, p.work_conflicts))}")
            if p.unstaged:
                print(f"  staged before, unstaged now (main changed them where they were "
                      f"staged): {', '.join(map(shown_path, p.unstaged))}")
            if p.reason and p.outcome != "skipped":
                print(f"  next: {p.reason}")

    if report.stopped and not dry_run:
        if not json:
            human()
        raise SyncStopped.of(report)
    emit(report.to_data(), human)


# --------------------------------------------------------------------- publish


@command(epilog="Example: hf publish b1   |   hf publish b1 --branch hf-pr/b1 --pr   |   "
             "hf publish b1 --remote origin --force-with-lease")
def publish(
    batch: Annotated[str, typer.Argument(help="The joined batch to publish.",
                                         autocompletion=batch_names)],
    remote: RemoteOpt = None,
    branch: BranchOpt = None,
    force_with_lease: ForceWithLeaseOpt = False,
    pr: PrOpt = False,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Push a joined batch's commit to a remote branch; with --pr open a pull request."""
    from hf_fanout.orchestrator.publish import PublishOptions
    from hf_fanout.orchestrator.publish import publish as do_publish

    ws = open_ws(repo)
    result = do_publish(ws, batch, PublishOptions(remote, branch, force_with_lease, pr),
                        dry_run=dry_run)
    emit(result.to_data(), lambda: print_published(result))


def print_published(result: Any) -> None:
    if result.already:
        print(f"{result.commit[:12]} is on {result.remote}/{result.branch} already (published "
              f"before, and the branch has moved on since): nothing pushed")
    else:
        verb = "would push" if result.dry_run else "pushed"
        print(f"{verb} {result.commit[:12]} to {result.remote}/{result.branch} ({result.url})")
    if result.web:
        print(f"  {result.web}")
    if result.pr_tool:
        from hf_fanout.paths import shown_text

        shown = shown_text(result.pr_url) if result.pr_url else "(no URL shown)"
        print(f"pull request opened with {result.pr_tool}: {shown}")
    elif result.pr_title and result.dry_run:
        print(f"would open a pull request: {result.pr_title}")
    elif result.pr_title:
        print("neither gh nor glab is installed: open the pull request at "
              + (result.pr_url or f"your forge, for branch {result.branch}"))


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
