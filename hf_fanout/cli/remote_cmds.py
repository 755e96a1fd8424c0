"""Commands of parts worked on other machines: take (docs/remote.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hf_fanout.cli.options import DryRun, Json, LauncherOpt, command
from hf_fanout.cli.output import emit, notice, waiting
from hf_fanout.cli.render import print_opened


@command(epilog="Example: hf take origin b1/api   |   hf take git@host:team/repo.git b1/api "
                "--into ~/work/repo --open")
def take(
    remote: Annotated[str, typer.Argument(
        help="The remote the part was split to: a remote's name here, or its URL "
        "(outside a repository: cloned).")],
    part: Annotated[str, typer.Argument(help="BATCH/PART, e.g. b1/api.")],
    into: Annotated[Path | None, typer.Option(
        "--into", help="Clone the remote into this directory (default: outside a "
        "repository, a directory named after it here).")] = None,
    worktree_root: Annotated[Path | None, typer.Option(
        "--worktree-root",
        help="Where the part's worktree goes (default: <repo>.hf/ beside the repo).")] = None,
    open_tab: Annotated[bool, typer.Option(
        "--open", help="Open a tab with the part's agent (see `hf open`).")] = False,
    launcher: LauncherOpt = None,
    steal: Annotated[bool, typer.Option(
        "--steal", help="Take the part over from the machine that holds it (audited; "
        "that machine's `hf done` is refused then).")] = False,
    dry_run: DryRun = False,
    json: Json = False,
) -> None:
    """Work a remote part on this machine: claimed on the remote, a worktree on its
    branch, guarded, its task file written; `hf done` there pushes the branch."""
    from hf_fanout.orchestrator.take import take as do_take

    taken = do_take(remote, part, here=Path.cwd(), into=into, root=worktree_root,
                    launcher=launcher, open_tab=open_tab, dry_run=dry_run,
                    steal=steal, on_wait=waiting)

    def human() -> None:
        verb = "would take" if dry_run else "took"
        if taken.cloned:
            print(f"cloned {remote} into {taken.cloned}")
        if taken.stolen:
            print(f"{'would take' if dry_run else 'took'} it over from "
                  f"{taken.stolen['host'] or 'another machine'} (theirs since "
                  f"{taken.stolen['since'] or 'an unknown time'})")
        if taken.already:
            print(f"{taken.batch.id}/{taken.part.name} is taken here already, from "
                  f"{taken.remote}: worktree {taken.part.worktree}, branch {taken.part.branch}")
        else:
            print(f"{verb} {taken.batch.id}/{taken.part.name} from {taken.remote} at "
                  f"{taken.tip[:12]}: worktree {taken.part.worktree}, branch "
                  f"{taken.part.branch}")
        print(f"  owns {', '.join(taken.part.owns)}")
        if taken.tabs:
            print_opened(taken.tabs)
        if not dry_run:
            print(f"next: work in {taken.part.worktree} (its task: .hf/TASK.md), then "
                  "`hf done` there pushes the branch")

    for message in taken.notices:  # (what opening the repository settled first)
        notice(message, "")
    emit(taken.to_data(), human)
