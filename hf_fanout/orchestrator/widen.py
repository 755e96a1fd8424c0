"""`hf widen`: give a sparse part more of the tree to read (its context), in its
worktree's sparse checkout and in its record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_fanout.core import states
from hf_fanout.core.plan import context_globs
from hf_fanout.core.records import DROPPED, JOINED, Part
from hf_fanout.core.remote_refs import refuse_remote_part
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError, NotFound


@dataclass
class Widened:
    part: Part
    added: list[str]  # the globs the checkout did not have yet
    dry_run: bool

    def to_data(self) -> dict[str, Any]:
        return {"part": self.part.to_dict(), "added": self.added, "dry_run": self.dry_run}


def widen(ws: Workspace, part: Part, globs: Sequence[str], *, dry_run: bool = False) -> Widened:
    """Add `globs` (checked as ownership globs are) to `part`'s context: git checks
    out the files they match in the part's worktree at once, then the record
    says so. Globs it has already are left out; none left is a no-op. The
    part's ownership does not change: a file it reads this way is still not
    its own to change (the join refuses it)."""
    where = f"part {part.batch}/{part.name}"
    if part.state in (JOINED, DROPPED):
        raise HfError(f"{where} is {part.state}: its worktree is no longer worked",
                      "split a new batch for more work")
    refuse_remote_part(part, "its checkout is widened")
    if not part.sparse:
        raise HfError(f"{where} is a full checkout: every file is in its worktree already",
                      "widen is for parts split with --sparse (or `sparse = true` in .hf.toml)")
    have = set(part.checkout_globs())
    added = [glob for glob in context_globs(globs) if glob not in have]
    if dry_run or not added:
        return Widened(part, added, dry_run)
    worktree = Path(part.worktree)
    if not worktree.is_dir():
        raise NotFound(f"{where}: its worktree {worktree} is missing",
                       "`hf sweep` reports it; `hf drop` leaves the part out")
    ws.worktree(worktree).widen_sparse(added)

    def with_context(fresh: Part) -> None:
        fresh.context = list(dict.fromkeys([*fresh.context, *added]))

    widened, _changed = states.change(ws, part.batch, part.name, None, action="widen",
                                      update=with_context, globs=added)
    return Widened(widened, added, dry_run)
