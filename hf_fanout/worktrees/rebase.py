"""Bringing a worktree's branch onto another commit: git's own rebase or merge, run in
that worktree, their conflict state, and the uncommitted work set aside around them.

Uncommitted work is saved as two commits on the worktree's HEAD (its index's tree,
and its files as `git add -A` would record them, untracked ones too), kept by refs
the caller names; it comes back as changes on top of the new HEAD (a three-way
apply, with what was staged staged again), or exactly as it was (index and files)
when the operation is taken back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hf_fanout.errors import GitFailed, IndexLocked
from hf_fanout.paths import RepoPath, from_git
from hf_fanout.worktrees.commits import is_binary
from hf_fanout.worktrees.process import run
from hf_fanout.worktrees.repository import Worktree
from hf_fanout.worktrees.zparse import Entry, nul_split

REBASE = "rebase"
MERGE = "merge"
# rebase --continue and merge --continue ask for a message: git's own is taken
_NO_EDITOR = {"GIT_EDITOR": "true", "GIT_SEQUENCE_EDITOR": "true"}


@dataclass(frozen=True)
class Saved:
    """Uncommitted work set aside: commits of the index and of the files, both
    with the HEAD they were taken on as their parent."""

    index: str
    work: str


def conflicted(worktree: Worktree) -> list[str]:
    """The paths left unmerged in the worktree's index."""
    data = worktree.git(["diff", "--name-only", "-z", "--diff-filter=U"])
    return sorted(from_git(p) for p in nul_split(data))


def in_progress(worktree: Worktree) -> str | None:
    """REBASE or MERGE when one stopped in this worktree, else None."""
    git_dir = worktree.git_dir
    if (git_dir / "rebase-merge").is_dir() or (git_dir / "rebase-apply").is_dir():
        return REBASE
    if (git_dir / "MERGE_HEAD").exists():
        return MERGE
    return None


def save(worktree: Worktree, head: str, *, exclude: Sequence[str] = ()) -> Saved | None:
    """The worktree's uncommitted work as commits on `head` (None: nothing to save)."""
    repo = worktree.repository
    head_tree = repo.tree_of(head)
    index_tree = worktree.git(["write-tree"]).decode().strip()
    work_tree = worktree.tree(head_tree, exclude=exclude)
    if index_tree == head_tree and work_tree == head_tree:
        return None
    index = repo.commit_tree(index_tree, [head], "hf: index before sync\n")
    work = repo.commit_tree(work_tree, [head], "hf: uncommitted work before sync\n")
    return Saved(index, work)


def clear(worktree: Worktree, *, keep: Sequence[str] = ()) -> None:
    """Files and index back to HEAD: tracked changes undone, untracked files that git
    does not ignore removed (those in `keep` stay). Only after `save`."""
    data = worktree.git(["ls-files", "--others", "--exclude-standard", "-z"])
    kept = set(keep)
    for raw in nul_split(data):
        rel = from_git(raw)
        if rel in kept:
            continue
        path = worktree.path / rel
        path.unlink()
        _remove_empty_parents(path.parent, worktree.path)
    worktree.git(["reset", "-q", "--hard", "HEAD", "--"])


def _remove_empty_parents(directory: Path, top: Path) -> None:
    while directory != top and top in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def start(worktree: Worktree, mode: str, onto: str, base: str, message: str) -> list[str]:
    """Rebase the worktree's branch onto `onto`, or merge `onto` into it; the paths
    in conflict when git stopped ([] when it went through). The rebase replays the
    part's own commits only, those after `base` (its recorded base): a commit that
    main no longer has (its tip amended, a secret taken out) is left behind, not
    brought back on top of it."""
    if mode == REBASE:
        args = ["rebase", "--no-autostash", "--onto", onto, base]
    else:
        args = ["merge", "--no-ff", "--no-edit", "-m", message, onto]
    return _step(worktree, args)


def resume(worktree: Worktree, mode: str) -> list[str]:
    """`--continue` of the stopped rebase or merge, once its conflicts are resolved and
    added; the paths in conflict when it stops again."""
    still = conflicted(worktree)
    if still:
        return still
    if mode == REBASE:
        return _step(worktree, ["rebase", "--continue"])
    return _step(worktree, ["commit", "--no-edit", "--no-verify"])


def abandon(worktree: Worktree, branch: str) -> None:
    """Take the rebase or merge under way back, whatever state it is in: stopped on a
    conflict, or cut off part way (its process killed): git's `--abort`, which
    puts the branch and files back as before it. Where that fails (a state git
    had not finished writing), git's state is dropped (`--quit`) and the
    worktree put back on `branch`, at the branch's commit, tracked files as
    there (a rebase moves the branch only once it is done)."""
    underway = in_progress(worktree)
    if underway is None:
        return
    lock = worktree.git_dir / "index.lock"
    if lock.exists():  # (a git killed with its rebase leaves it; one running holds it)
        raise IndexLocked(
            f"git's index lock {lock} is there: the {underway} cannot be taken back "
            "while it is; nothing was changed",
            f"if no git command runs in {worktree.path} (the one the kill stopped left "
            f"it), remove {lock}, then run the same hf sync again",
            details={"lock": str(lock)})
    command = "rebase" if underway == REBASE else "merge"
    done = run([command, "--abort"], worktree.path, check=False, env=_NO_EDITOR)
    if done.returncode == 0 and in_progress(worktree) is None:
        return
    run([command, "--quit"], worktree.path, check=False, env=_NO_EDITOR)
    for name in ("rebase-merge", "rebase-apply"):  # (what --quit could not read either)
        shutil.rmtree(worktree.git_dir / name, ignore_errors=True)
    for name in ("MERGE_HEAD", "MERGE_MSG", "MERGE_MODE", "AUTO_MERGE", "CHERRY_PICK_HEAD"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(worktree.git_dir / name)
    worktree.git(["symbolic-ref", "HEAD", f"refs/heads/{branch}"])
    worktree.git(["reset", "-q", "--hard"])


def _step(worktree: Worktree, args: list[str]) -> list[str]:
    proc = run(args, worktree.path, check=False, env=_NO_EDITOR)
    if proc.returncode == 0:
        return []
    found = conflicted(worktree)
    if found:
        return found
    if in_progress(worktree) is not None:
        # stopped without an unmerged path (an empty commit, a hook): git's reason
        raise GitFailed(args, proc.returncode, (proc.stderr or proc.stdout).decode(
            "utf-8", "replace"), "resolve it in the worktree, then `hf sync --continue`, "
            "or `hf sync --abort`")
    raise GitFailed(args, proc.returncode, (proc.stderr or proc.stdout).decode(
        "utf-8", "replace"))


def reapply(worktree: Worktree, saved: Saved, *, exclude: Sequence[str] = (),
            applied: bool = False) -> tuple[list[str], list[str]]:
    """The saved work applied three-way on the worktree's new HEAD, and what was
    staged staged again (`_restage`). Returns the paths in conflict (left with
    conflict markers and unmerged in the index, nothing restaged), and the paths
    whose staged version could not be carried over (left unstaged). When the work
    was applied before (`applied`: it conflicted, and the caller knows it was
    resolved since; or the files already differ from HEAD, `exclude` aside: a
    reapply killed half way, taken again), the files are kept as they are: paths
    still unmerged are returned as in conflict, else the index is set back to HEAD
    and the staged set set again from the files."""
    repo = worktree.repository
    head = worktree.head()
    head_tree = repo.tree_of(head) if head is not None else None
    files = worktree.tree(head_tree, exclude=exclude) if head_tree is not None else None
    if files is not None and (applied or files != head_tree):
        still = conflicted(worktree)
        if still:
            return still, []
        old_head = worktree.rev_parse(f"{saved.index}^")
        staged = [c.path for c in repo.diff_trees(old_head, saved.index)] if old_head else []
        worktree.git(["reset", "-q"])  # (what a resolution `git add`ed is not staged work)
        return [], _restage(worktree, saved, repo.entries_at(files, staged))
    proc = run(["cherry-pick", "--no-commit", saved.work], worktree.path, check=False,
               env=_NO_EDITOR)
    if proc.returncode != 0:
        found = conflicted(worktree)
        if not found:
            raise GitFailed(["cherry-pick", "--no-commit", saved.work], proc.returncode,
                            proc.stderr.decode("utf-8", "replace"))
        _forget_pick(worktree)
        return found, []
    _forget_pick(worktree)
    picked = worktree.index_entries()  # the work as merged onto the new HEAD
    worktree.git(["reset", "-q"])
    return [], _restage(worktree, saved, picked)


def _restage(worktree: Worktree, saved: Saved, picked: dict[RepoPath, Entry]) -> list[str]:
    """The index set to what was staged, on the new HEAD, path by path: what main
    did not change is staged as it was; a path whose whole work was staged is
    staged as merged; a partly staged path main changed gets the three-way merge
    of its staged version, or, when that conflicts, is left unstaged (returned)."""
    repo = worktree.repository
    old_head = worktree.rev_parse(f"{saved.index}^")
    new_head = worktree.head()
    if old_head is None or new_head is None:
        return []
    staged = [c.path for c in repo.diff_trees(old_head, saved.index)]
    if not staged:
        return []
    was, now = repo.entries_at(old_head, staged), repo.entries_at(new_head, staged)
    index, work = repo.entries_at(saved.index, staged), repo.entries_at(saved.work, staged)
    entries: dict[RepoPath, Entry | None] = {}
    lost = []
    for path in staged:
        if now.get(path) == was.get(path):  # main left it alone
            entries[path] = index.get(path)
        elif index.get(path) == work.get(path):  # all of its work was staged
            entries[path] = picked.get(path)
        else:
            merged = _merge_staged(worktree, was.get(path), now.get(path), index.get(path))
            if merged is None:
                lost.append(path)
            else:
                entries[path] = merged
    worktree.update_index(entries)
    return sorted(lost)


def _merge_staged(worktree: Worktree, was: Entry | None, now: Entry | None,
                  staged: Entry | None) -> Entry | None:
    """The staged version of a file main changed, merged three-way onto main's (None:
    it conflicts, or is not a plain file on every side)."""
    if was is None or now is None or staged is None or len({was.mode, now.mode,
                                                             staged.mode}) != 1:
        return None
    repo = worktree.repository
    base, ours, theirs = (repo.read_blob(entry.oid) for entry in (was, now, staged))
    if any(is_binary(data) for data in (base, ours, theirs)):
        return None  # (git does not merge it either)
    with tempfile.TemporaryDirectory(dir=worktree.git_dir) as scratch:
        merged, conflicts = repo.merge_file(base, ours, theirs, Path(scratch),
                                            ("main", "base", "staged"))
    if conflicts:
        return None
    return Entry(staged.mode, repo.write_blob(merged))


def _forget_pick(worktree: Worktree) -> None:
    # the pick leaves its state behind on a conflict: the files hold the markers,
    # nothing is left to continue
    for name in ("CHERRY_PICK_HEAD", "MERGE_MSG"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(worktree.git_dir / name)
    run(["cherry-pick", "--quit"], worktree.path, check=False)


def take_back(worktree: Worktree, start: str) -> None:
    """The worktree's branch, index and files back on `start` (tracked files as
    `start` has them; untracked ones left): after the operation went through."""
    worktree.git(["reset", "-q", "--hard", start])


def restore(worktree: Worktree, saved: Saved) -> None:
    """The saved work back exactly on the HEAD it was taken on: files and index."""
    worktree.git(["read-tree", "--reset", "-u", saved.work])
    worktree.git(["read-tree", "--reset", saved.index])
    worktree.git(["update-index", "-q", "--refresh"], check=False)
