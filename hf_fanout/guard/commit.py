"""Layer 3: `hf commit -m MSG PATH...`, a commit of exactly the named paths.

Under the repository's commit lock: a temporary index is built from HEAD plus
the working-tree state of the named paths, its change against HEAD must be
exactly the named set, the commit is made from it, the branch moves by
compare-and-swap, and only the named paths' entries of the real index are
updated. What other tabs had staged stays staged and is not committed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout.core import inbox
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput, HfError, MainMoved, OwnershipViolation
from hf_fanout.paths import RepoPath, repo_path
from hf_fanout.worktrees.objects import EMPTY_TREE
from hf_fanout.worktrees.process import OWN_GIT, out, run
from hf_fanout.worktrees.refs import zero_oid
from hf_fanout.worktrees.repository import Worktree
from hf_fanout.worktrees.zparse import nul_split


class StagedSetMismatch(HfError):
    code = "staged_set_mismatch"


@dataclass
class CommitResult:
    commit: str
    parent: str | None
    ref: str
    paths: list[RepoPath]
    still_staged: list[RepoPath] = field(default_factory=list)
    dry_run: bool = False

    def to_data(self) -> dict[str, Any]:
        return {"commit": self.commit, "parent": self.parent, "ref": self.ref,
                "paths": self.paths, "still_staged": self.still_staged,
                "dry_run": self.dry_run}


def named_paths(repo: Worktree, cwd: Path, raw: list[str]) -> list[RepoPath]:
    """Command-line paths (relative to `cwd`) as repository paths; files, not directories."""
    if not raw:
        raise BadInput("name the paths to commit", "hf commit -m MSG PATH...")
    top = os.path.realpath(repo.path)
    paths: list[RepoPath] = []
    for arg in raw:
        absolute = os.path.normpath(os.path.join(os.path.realpath(cwd), arg))
        if absolute != top and not absolute.startswith(top + os.sep):
            raise BadInput(f"{arg} is outside the repository {top}", "name paths inside it")
        if os.path.isdir(absolute) and not os.path.islink(absolute):
            raise BadInput(f"{arg} is a directory",
                           "name each file to commit (hf commits exactly what is named)")
        path = repo_path(os.path.relpath(absolute, top).replace(os.sep, "/"))
        if path not in paths:
            paths.append(path)
    return paths


def _refuse_unknown(repo: Worktree, paths: list[RepoPath]) -> None:
    """A named path that is neither on disk nor in HEAD (so no deletion either): bad input,
    said in one line rather than git's pathspec error."""
    absent = [p for p in paths if not os.path.lexists(repo.path / p)]
    if not absent:
        return
    head = repo.head()
    known = repo.repository.entries_at(head, absent) if head else {}
    unknown = [p for p in absent if p not in known]
    if unknown:
        raise BadInput(f"no such file: {', '.join(unknown)} (not in the work tree, not in HEAD)",
                       "check the spelling; hf commit takes files that exist, or that HEAD "
                       "has and you deleted")


def _changed(repo: Worktree, against: str, env: dict[str, str]) -> set[RepoPath]:
    data = out(["diff-index", "--cached", "-z", "--name-only", "--no-renames", against, "--"],
               repo.path, env=env)
    return {RepoPath(os.fsdecode(p)) for p in nul_split(data)}


def _listing(paths: set[RepoPath]) -> str:
    return ", ".join(sorted(paths)) or "none"


def _run_hook(repo: Worktree, name: str, args: list[str], env: dict[str, str]) -> None:
    proc = run(["hook", "run", "--ignore-missing", name, "--", *args], repo.path,
               env={**env, OWN_GIT: ""}, check=False)
    if proc.returncode != 0:
        text = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip()
        last = text.splitlines()[-1] if text else ""
        raise HfError(f"the {name} hook refused the commit: {last}",
                      "fix what the hook says, or pass --no-verify to skip hooks",
                      details={"output": text})


def _commit_lock(ws: Workspace, repo: Worktree, wait: float) -> Any:
    """The repository's commit lock; inside a part's sandbox (where hf's locks are
    read-only) a lock of the part's own, in its git dir: the branch's
    compare-and-swap keeps a commit from outside it exact all the same."""
    if not inbox.sandboxed():
        return ws.store.commit_lock(wait)
    from hf_fanout import locks

    return locks.hold(repo.git_dir / "hf-commit.lock", wait=wait, what="commit",
                      retry=locks.WITH_LONGER_WAIT)


def commit_paths(ws: Workspace, message: str, raw_paths: list[str], *, cwd: Path,
                 wait: float, verify: bool = True, dry_run: bool = False) -> CommitResult:
    if not message.strip():
        raise BadInput("empty commit message", "hf commit -m 'what changed' PATH...")
    repo = ws.here
    paths = named_paths(repo, cwd, raw_paths)
    part = ws.current_part()
    if part is not None:
        from hf_fanout.core.ownership import Ownership

        outside = [p for p in paths if not Ownership.parse(part.owns).owns(p)]
        if outside:
            raise OwnershipViolation(
                f"part {part.batch}/{part.name} does not own {', '.join(outside)}",
                f"it owns {', '.join(part.owns)}; commit only those files here")
    _refuse_unknown(repo, paths)
    named = set(paths)
    from hf_fanout.core.maintree import locked_main_index, stage

    # git's own index lock too, from before the first write until the index holds
    # the commit: a concurrent `git add` or `git commit` waits or fails on it
    with _commit_lock(ws, repo, wait), locked_main_index(ws, wait=wait, repo=repo) as held, \
            tempfile.TemporaryDirectory(prefix="hf-commit-") as tmp:
        head = repo.head()
        ref = repo.head_ref()
        against = head or EMPTY_TREE
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if head:
            out(["read-tree", head], repo.path, env=env)
        else:
            out(["read-tree", "--empty"], repo.path, env=env)
        pathspecs = [os.fsencode(p) for p in paths]
        out(["--literal-pathspecs", "add", "-A", "--pathspec-from-file=-",
             "--pathspec-file-nul"], repo.path, env=env,
            stdin=b"\0".join(pathspecs) + b"\0")
        staged = _changed(repo, against, env)
        if staged != named:
            raise StagedSetMismatch(
                f"the staged change is not exactly the paths named: missing "
                f"{_listing(named - staged)}; extra {_listing(staged - named)}",
                "a missing path has no change to commit (or is ignored); nothing was "
                "committed", details={"missing": sorted(named - staged),
                                      "extra": sorted(staged - named)})
        staged_before = repo.staged_paths(against) if head else set()
        tree = out(["write-tree"], repo.path, env=env).decode().strip()
        if dry_run:
            return CommitResult("", head, ref, paths, sorted(staged_before - named), True)
        if verify:
            _run_hook(repo, "pre-commit", [], env)
            msg_file = Path(tmp) / "COMMIT_MSG"
            msg_file.write_text(message if message.endswith("\n") else message + "\n")
            _run_hook(repo, "commit-msg", [str(msg_file)], env)
            message = msg_file.read_text()
        # signed on the person's branches; a part's own commits are its agent's,
        # made where no signing agent or passphrase prompt may be reachable
        commit = repo.repository.commit_tree(tree, [head] if head else [], message,
                                              sign=not ref.startswith("refs/heads/hf/"))
        if repo.head() != head:
            raise MainMoved("HEAD moved while hf commit was running",
                            "run hf commit again; nothing was committed")
        first = message.strip().splitlines()[0] if message.strip() else ""
        entries = repo.repository.entries_at(commit, paths)
        # the index with the commit's entries goes in place before the branch moves,
        # under the lock (see worktrees/index_lock.py)
        stage(ws, held, {p: entries.get(p) for p in paths}, repo=repo)
        held.swap_in()
        try:
            repo.repository.update_ref(ref, commit, head or zero_oid(commit),
                                       f"hf commit: {first}")
        except BaseException:
            held.swap_back()
            raise
        still = repo.staged_paths(commit)
        if verify:
            run(["hook", "run", "--ignore-missing", "post-commit"], repo.path, check=False,
                env={OWN_GIT: ""})
    record = {"ref": ref, "commit": commit, "parent": head, "paths": sorted(paths)}
    if part is not None and inbox.sandboxed():
        inbox.post(ws.repo.common_dir, part.batch, part.name, "audit", what="commit", **record)
    else:
        ws.store.audit("commit", **record)
    return CommitResult(commit, head, ref, paths, sorted(still))
