"""`hf diff`: what the join would bring, per part, before joining.

A part's result is read as the join reads it (its branch tip plus everything
uncommitted in its worktree, untracked files too, as `git add -A` would record
it; the worktree and its index are not written). Its changes against the base
are split in two: the owned ones (the patch the join brings) and the ones
outside its ownership (the join refuses those), each with the part that owns
the path, if one does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout.core.ownership import Ownership
from hf_fanout.core.records import DROPPED, JOINED, Batch, Part, copied_paths, part_base
from hf_fanout.core.remote_refs import remote_of
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import NotFound

FORMATS = ("patch", "stat", "name-only")


@dataclass
class PartDiff:
    part: str
    state: str
    owned: list[str]
    outside: list[dict[str, str | None]]  # {"path", "owner"}
    text: str = ""  # the patch, the stat, or the names of the owned changes
    note: str = ""

    def to_data(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class BatchDiff:
    batch: str
    base: str
    format: str
    parts: list[PartDiff] = field(default_factory=list)

    def to_data(self) -> dict[str, Any]:
        return {"batch": self.batch, "base": self.base, "format": self.format,
                "parts": [p.to_data() for p in self.parts]}


def choose_batch(ws: Workspace, batch_id: str | None) -> str:
    """The batch named, else the current part's, else the only running one."""
    if batch_id:
        return batch_id
    here = ws.current_part()
    if here is not None:
        return here.batch
    running = [b for b in ws.store.batch_ids() if ws.store.load_batch(b).state == "running"]
    if len(running) == 1:
        return running[0]
    from hf_fanout.errors import BadInput

    raise BadInput("which batch? " + (f"running: {', '.join(running)}" if running
                                      else "there is no running batch"),
                   "name it: hf diff BATCH [PART]")


def batch_diff(ws: Workspace, batch_id: str | None, part_name: str | None, *,
               fmt: str = "patch", color: bool = False) -> BatchDiff:
    batch = ws.store.load_batch(choose_batch(ws, batch_id))
    parts = ws.store.load_parts(batch)
    if part_name is not None:
        parts = [p for p in parts if p.name == part_name]
        if not parts:
            raise NotFound(f"no part {part_name!r} in batch {batch.id!r}",
                           f"`hf status {batch.id}` lists its parts")
    owners = [(p.name, Ownership.parse(p.owns)) for p in ws.store.load_parts(batch)]
    result = BatchDiff(batch.id, batch.base, fmt)
    for part in parts:
        result.parts.append(part_diff(ws, batch, part, owners, fmt=fmt, color=color))
    return result


def part_diff(ws: Workspace, batch: Batch, part: Part, owners: list[tuple[str, Ownership]],
              *, fmt: str, color: bool) -> PartDiff:
    if part.state in (JOINED, DROPPED):
        return PartDiff(part.name, part.state, [], [], note=f"part is {part.state}")
    remote = remote_of(part)
    if not Path(part.worktree).is_dir() and remote is None:
        return PartDiff(part.name, part.state, [], [],
                        note=f"worktree {part.worktree} is missing")
    if remote is None and not ws.worktree(part.worktree).is_linked_here():
        return PartDiff(part.name, part.state, [], [],
                        note=f"{part.worktree} is not a worktree of this repository any more")
    # a remote part: its branch here, as the last join fetched it (the base before)
    tip = ws.repo.ref_target(f"refs/heads/{part.branch}") if remote else None
    if remote and tip is None:
        return PartDiff(part.name, part.state, [], [], note=f"its branch {part.branch} is gone")
    tree = ws.repo.tree_of(tip) if tip else result_tree(ws, part)
    base = part_base(batch, part)  # (`hf sync` moves a part's base to main's tip)
    raw: bytes = ws.main.git(["diff", "--name-only", "-z", "--no-renames", base, tree])
    changed = [p for p in raw.decode("utf-8", "surrogateescape").split("\0") if p]
    ownership = Ownership.parse(part.owns)
    owned = [p for p in changed if ownership.owns(p)]
    outside = [{"path": p, "owner": next((n for n, o in owners if n != part.name and o.owns(p)),
                                         None)}
               for p in changed if not ownership.owns(p)]
    text = ""
    if owned:
        how = {"patch": ["--patch"], "stat": ["--stat"], "name-only": ["--name-only"]}[fmt]
        colors = ["--color=always"] if color and fmt != "name-only" else ["--no-color"]
        # (git's own patch of the bytes the join brings: no `diff.external` tool,
        # no textconv filter)
        out: bytes = ws.main.git(["diff", *how, *colors, "--no-renames", "--no-ext-diff",
                                  "--no-textconv", base, tree,
                                  "--", *(f":(literal){p}" for p in owned)])
        text = out.decode("utf-8", "surrogateescape")
    return PartDiff(part.name, part.state, owned, outside, text)


def result_tree(ws: Workspace, part: Part) -> str:
    """The tree the join would take from the part: its HEAD plus what is uncommitted."""
    worktree = ws.worktree(part.worktree)
    head = worktree.rev_parse("HEAD") or ws.repo.ref_target(f"refs/heads/{part.branch}")
    if head is None:
        raise NotFound(f"part {part.batch}/{part.name} has no commit",
                       f"restore its branch {part.branch}, or `hf drop {part.batch}/{part.name}`")
    return worktree.tree(ws.repo.tree_of(head), exclude=copied_paths(part))


def diff_colors(ws: Workspace) -> bool:
    """Whether the user's git colours a diff on a terminal (`color.diff`, `color.ui`)."""
    out: bytes = ws.main.git(["config", "--get-colorbool", "color.diff", "true"])
    return out.strip() == b"true"


def pager(ws: Workspace) -> str:
    """The user's pager for git (`GIT_PAGER`, `core.pager`, `PAGER`, else less)."""
    out: bytes = ws.main.git(["var", "GIT_PAGER"])
    return out.decode("utf-8", "surrogateescape").strip()
