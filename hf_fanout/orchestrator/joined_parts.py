"""What a join recorded of each part it took (its commit's trailers), and what a
joined part's branch got after that join.

A join's commit names each part's result (`Hf-Part: NAME COMMIT`): the part's tip,
or the commit hf made of its uncommitted work on top of it. A part whose branch
later holds commits that result does not (its agent went on working after the
join) has work that no join of the batch takes: a joined part is not joined
again. `commits_after_join` finds them, so that `hf status` and the batch's
later joins say so, and `hf done` of such a part makes it done again for the
next join (core/states.py `reopen_joined`).
"""

from __future__ import annotations

from dataclasses import dataclass

from hf_fanout.core.ownership import Ownership
from hf_fanout.core.records import JOINED, Batch, Part
from hf_fanout.core.remote_refs import remote_of
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import GitFailed
from hf_fanout.paths import from_git
from hf_fanout.worktrees.zparse import nul_split


def trailers(message: str) -> list[str]:
    """The lines of a commit message's last paragraph."""
    return message.strip().split("\n\n")[-1].splitlines()


def join_results(ws: Workspace, join: str) -> dict[str, str]:
    """Each part's result as the join's `Hf-Part: NAME COMMIT [remote=NAME]` trailers
    name it."""
    found = {}
    for line in trailers(ws.repo.commit_message(join)):
        key, _, value = line.partition(": ")
        words = value.split()
        if key == "Hf-Part" and len(words) >= 2:
            found[words[0]] = words[1]
    return found


@dataclass(frozen=True)
class AfterJoin:
    """Commits on a joined part's branch that its join did not take."""

    part: str
    count: int
    result: str  # what the join took from the part
    branch: str
    remote: str | None = None  # the remote a part worked on another machine is on

    def line(self) -> str:
        return (f"part {self.part} has {self.count} commit(s) on {self.branch} after its join, "
                "not in main (no join takes a joined part)")

    def hint(self, batch: str) -> str:
        kept = (f"its branch on {self.remote}" if self.remote is not None
                else "the part's worktree")
        return (f"`hf done {batch}/{self.part}` offers them to the batch's next join "
                f"(`hf join {batch}` then takes what changed since); `hf gc` keeps "
                f"{kept} while they are not in main")


def _join_took(ws: Workspace, part: Part) -> str | None:
    """The result the joined `part`'s join took: as recorded, or (a part joined before
    hf recorded `join_took`) as the join's trailers name it."""
    took = part.extra.get("join_took")
    if isinstance(took, str):
        return took
    return join_results(ws, part.joined_commit).get(part.name) if part.joined_commit else None


def commits_after_join(ws: Workspace, part: Part) -> AfterJoin | None:
    """The commits `part`'s branch holds that its join's result does not, when they
    change a path the part owns from what the join took (None: none, the part is
    not joined, or what the join took cannot be read)."""
    if part.state != JOINED or not part.joined_commit:
        return None
    tip = ws.repo.ref_target(f"refs/heads/{part.branch}")
    if tip is None or tip == part.extra.get("join_took"):
        return None
    try:
        result = _join_took(ws, part)
        if result is None or tip == result or ws.repo.is_ancestor(tip, result):
            return None
        # (the agent committing the very work the join took brings nothing new)
        owns = Ownership.parse(part.owns)
        changed = nul_split(ws.repo.git(["diff", "--name-only", "-z", "--no-renames",
                                         result, tip]))
        if not any(owns.owns(from_git(path)) for path in changed):
            return None
        count = int(ws.repo.git(["rev-list", "--count", f"{result}..{tip}"]).strip())
    except (GitFailed, ValueError):
        return None
    return AfterJoin(part.name, count, result, part.branch, remote_of(part)) if count else None


def work_after_join(ws: Workspace, part: Part) -> str | None:
    """What `part`'s join took (its result), when its worktree's owned files now differ
    from it: work made after the join and not committed (None: none, the part is not
    joined, its worktree is gone, or what the join took cannot be read)."""
    from pathlib import Path

    from hf_fanout.core.records import copied_paths

    if part.state != JOINED or not part.joined_commit:
        return None
    worktree = Path(part.worktree)
    try:
        result = _join_took(ws, part)
        checkout = ws.repo.worktree(worktree)
        head = checkout.head() if worktree.is_dir() else None
        if result is None or head is None or not ws.repo.has_object(result):
            return None
        changed = checkout.changes_since(result, head, exclude=copied_paths(part))
    except GitFailed:
        return None
    owns = Ownership.parse(part.owns)
    return result if any(owns.owns(path) for path in changed) else None


def join_left_history(ws: Workspace, batch: Batch) -> bool:
    """Whether the joined `batch`'s join commit is gone from its target branch's
    history (the branch was reset past it, or rewritten): no join brings its parts
    back, `hf undo` does."""
    commit, tip = batch.joined_commit, ws.repo.ref_target(batch.target_ref)
    if not commit or tip is None or commit == tip:
        return False
    try:
        return ws.repo.has_object(commit) and not ws.repo.is_ancestor(commit, tip)
    except GitFailed:
        return False
