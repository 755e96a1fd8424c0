"""The two types of the git adapter: `Repository` (the common dir: refs, objects,
config, its worktrees) and `Worktree` (one worktree: its index, HEAD, files).

Every git call in hf goes through this package; the CLI is used where git's own
semantics must hold (filters, hooks, worktrees, the index, reflogs) or where
it is faster, pygit2 (loaded on first use) for object-database work.

Opening a repository loads only this module, refs and the process runner: the
object database, tree and commit writers and the worktree administration
(`objects`, `trees`, `commits`, `checkout`) are loaded by the first call that
uses one of them, which makes the repository a `full_repository()`;
`hf done`, `hf heartbeat` and `hf status` mostly never get there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hf_fanout.errors import GitFailed, NotARepo
from hf_fanout.gitlink import gitdir_of
from hf_fanout.paths import RepoPath, from_git
from hf_fanout.worktrees import refs
from hf_fanout.worktrees.process import check_git_version, index_env, out, run, text
from hf_fanout.worktrees.zparse import MODE_GITLINK, MODE_SYMLINK, Entry, nul_split

if TYPE_CHECKING:
    from hf_fanout.worktrees.checkout import WorktreeAdmin
    from hf_fanout.worktrees.commits import CommitWriter
    from hf_fanout.worktrees.objects import ObjectStore
    from hf_fanout.worktrees.scan import WorktreeScan
    from hf_fanout.worktrees.trees import TreeWriter

    class _Adapter(ObjectStore, TreeWriter, CommitWriter, WorktreeAdmin):
        """What a repository can do, as the type checker sees it."""
else:
    _Adapter = object


class Repository(_Adapter):
    """A repository: its common dir, and the main worktree git runs in."""

    def __init__(self, common_dir: Path, workdir: Path) -> None:
        refs.refuse_reftable(common_dir)
        self.common_dir = common_dir
        self.workdir = workdir  # the main worktree
        self._held: Any = None  # see ObjectStore.holding_objects

    if not TYPE_CHECKING:  # (a type checker sees every method already, through _Adapter)
        def __getattr__(self, name: str) -> Any:
            """Reached only for a name this object lacks: the first use of the object
            database, the writers or the worktree administration loads them."""
            loaded = full_repository()
            if name.startswith("__") or isinstance(self, loaded):
                raise AttributeError(name)
            self.__class__ = loaded
            return getattr(self, name)

    def git(self, args: Sequence[str], **kwargs: Any) -> bytes:
        return out(args, self.workdir, **kwargs)

    @property
    def main(self) -> Worktree:
        return Worktree(self.workdir, self.common_dir, self)

    def worktree(self, path: Path) -> Worktree:
        """Another worktree of this repository (its own git dir found from `.git`)."""
        try:
            git_dir = gitdir_of(path)
        except OSError:
            git_dir = path / ".git"
        return Worktree(path, git_dir, self)

    # --- refs ----------------------------------------------------------------

    def ref_target(self, ref: str) -> str | None:
        """The commit a full ref name points to (symbolic refs followed), read in-process."""
        return refs.resolve(self.common_dir, ref)

    def ref_exists(self, ref: str) -> bool:
        return self.ref_target(ref) is not None

    def existing_refs(self, names: Sequence[str], *options: str) -> set[str]:
        """Those of `names` (full names) that exist and pass the `git for-each-ref`
        `options` (`--no-contains=C`...): one git process for all."""
        if not names:
            return set()
        listing = text(["for-each-ref", *options, "--format=%(refname)", *names], self.workdir)
        return set(listing.split("\n")) & set(names)

    def not_descending(self, base: str, names: Sequence[str]) -> set[str]:
        """Those of `names` whose commit does not have `base` in its history."""
        return self.existing_refs(names, f"--no-contains={base}")

    def is_ancestor(self, ancestor: str, commit: str) -> bool:
        """Whether `ancestor` is `commit` or in its history."""
        proc = run(["merge-base", "--is-ancestor", ancestor, commit], self.workdir, check=False)
        if proc.returncode not in (0, 1):
            raise GitFailed(["merge-base", "--is-ancestor", ancestor, commit], proc.returncode,
                            proc.stderr.decode("utf-8", "replace"))
        return proc.returncode == 0

    def merge_base(self, one: str, other: str) -> str | None:
        """The best common ancestor of two commits (None when they share no history)."""
        proc = run(["merge-base", one, other], self.workdir, check=False)
        if proc.returncode not in (0, 1):
            raise GitFailed(["merge-base", one, other], proc.returncode,
                            proc.stderr.decode("utf-8", "replace"))
        return proc.stdout.decode().strip() or None

    def update_ref(self, ref: str, new: str, old: str, message: str) -> None:
        """Compare-and-swap: move `ref` to `new` only if it still points at `old`."""
        self.git(["update-ref", "-m", message, ref, new, old])

    def delete_refs(self, names: Sequence[str]) -> None:
        """Delete the refs `names` (full names; one missing already is no error): one
        git transaction for all; a symbolic ref goes itself, not what it names."""
        if names:
            self.git(["update-ref", "--stdin"],
                     stdin="".join(f"option no-deref\ndelete {name}\n"
                                   for name in names).encode())

    def rev_parse(self, rev: str) -> str | None:
        return self.main.rev_parse(rev)

    # --- a worktree's state as a tree ---------------------------------------

    def tree_from_scan(self, head_tree: str, found: WorktreeScan) -> str:
        """`head_tree` with the scanned worktree state applied (its blobs written)."""
        self.store_blobs(found.blobs)
        found.blobs = {}  # stored: the scan need not keep their bytes
        entries = dict(found.entries)
        for path, target in found.links.items():
            entries[path] = Entry(MODE_SYMLINK, self.write_blob(target))
        return self.build_tree(head_tree, entries) if entries else head_tree


@cache
def full_repository() -> type[Repository]:
    """`Repository` with its mixins loaded, in this order (what a `Repository`
    becomes on the first call that needs one of them)."""
    from hf_fanout.worktrees.checkout import WorktreeAdmin
    from hf_fanout.worktrees.commits import CommitWriter
    from hf_fanout.worktrees.objects import ObjectStore
    from hf_fanout.worktrees.trees import TreeWriter

    class FullRepository(Repository, ObjectStore, TreeWriter, CommitWriter, WorktreeAdmin):
        """A repository with the object database, the writers and the worktree
        administration loaded."""

    return FullRepository


def _refuse_why(start: Path, said: str) -> None:
    """Raise NotARepo for a directory git would not open as a work tree, saying what
    git found: a repository owned by someone else, a bare repository, or none."""
    if "dubious ownership" in said:
        owner = said.split("repository at '", 1)[-1].split("'", 1)[0] if "'" in said else start
        raise NotARepo(f"git refuses the repository at {owner}: it belongs to another user "
                       "(dubious ownership)",
                       f"if you trust it: git config --global --add safe.directory {owner}")
    if os.environ.get("GIT_DIR") or os.environ.get("GIT_WORK_TREE"):
        raise NotARepo(f"{start} is not inside a git work tree of its own (GIT_DIR or "
                       "GIT_WORK_TREE is set: hf does not open a repository through them)",
                       "unset GIT_DIR and GIT_WORK_TREE, and run hf in a work tree that has "
                       "its .git (a clone of the repository)")
    bare = run(["rev-parse", "--is-bare-repository"], start, check=False)
    if bare.returncode == 0 and bare.stdout.decode().strip() == "true":
        raise NotARepo(f"{start} is a bare repository: it has no work tree for parts to "
                       "start from", "run hf in a clone of it (git clone PATH), or pass "
                       "--repo PATH to one")
    raise NotARepo(f"{start} is not inside a git work tree",
                   "cd into your repository, or pass --repo PATH")


@dataclass
class Worktree:
    """One worktree of `repository`: `path` (its files) and `git_dir` (its own git
    dir: HEAD, index; the common dir for the main worktree)."""

    path: Path
    git_dir: Path
    repository: Repository

    @classmethod
    def discover(cls, start: Path | None = None) -> Worktree:
        """The worktree `start` (default: the current directory) is in."""
        start = (start or Path.cwd()).resolve()
        if not start.is_dir():
            raise NotARepo(f"{start} is not a directory", "pass --repo PATH to a git repository")
        check_git_version()
        proc = run(["rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir",
                    "--show-object-format"], start, check=False)
        if proc.returncode != 0:
            _refuse_why(start, proc.stderr.decode("utf-8", "replace"))
        top, git_dir, common, object_format = \
            proc.stdout.decode("utf-8", "surrogateescape").splitlines()
        common_path = Path(common)
        if not common_path.is_absolute():
            common_path = (start / common_path).resolve()
        _refuse_sha256(object_format, common_path)
        here = Path(top)
        if Path(git_dir) == common_path and not (here / ".git").exists():
            # (core.worktree in the git dir's config: the "dotfiles" layout)
            raise NotARepo(f"{here} is the work tree of {common_path}, which lies apart from it "
                           "(core.worktree): hf works in a work tree that has its .git",
                           f"run hf in a clone of it (git clone {common_path} DIR)")
        main = here if Path(git_dir) == common_path else _main_workdir(here, Path(git_dir),
                                                                       common_path)
        return cls(here, Path(git_dir), Repository(common_path, main))

    @property
    def is_main(self) -> bool:
        return self.git_dir == self.repository.common_dir

    def git(self, args: Sequence[str], **kwargs: Any) -> bytes:
        return out(args, self.path, **kwargs)

    # --- HEAD ------------------------------------------------------------------

    def head(self) -> str | None:
        """The commit HEAD points to (None on an unborn branch, or where no git
        repository can be read). From git's files when the git dir is this
        repository's; otherwise git is asked, and it reads whatever repository the
        folder holds now (a branch of the same name here says nothing of it)."""
        found = (refs.resolve(self.repository.common_dir, "HEAD", self.git_dir)
                 if self.is_linked_here() else None)
        if found is None and self.path.is_dir():
            return self.rev_parse("HEAD")
        return found

    def head_branch(self) -> str | None:
        """The branch HEAD is on (`refs/heads/...`, from git's HEAD file of this
        repository's worktree), '' when HEAD is detached, None when it cannot be
        read here."""
        if not self.is_linked_here():
            return None
        found = refs.read_head(self.git_dir)
        if not found:
            return None
        return found.removeprefix("ref:").strip() if found.startswith("ref:") else ""

    def is_linked_here(self) -> bool:
        """Whether this worktree's git dir is one of this repository's: its common
        dir itself, or `<common dir>/worktrees/NAME` whose `commondir` names it (a
        folder that now holds a repository of its own is not)."""
        common = Path(os.path.realpath(self.repository.common_dir))
        git_dir = Path(os.path.realpath(self.git_dir))
        if git_dir == common:
            return True
        if git_dir.parent != common / "worktrees":
            return False
        try:
            named = (git_dir / "commondir").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return False
        return Path(os.path.realpath(git_dir / named)) == common

    def head_ref(self) -> str:
        """The ref HEAD points to (refs/heads/...), or 'HEAD' when detached."""
        return refs.symbolic_target(self.git_dir) or "HEAD"

    def operation_in_progress(self) -> tuple[str, str] | None:
        """(what, how to finish or abort it) when a git merge, rebase, `git am`,
        cherry-pick, revert or bisect is under way here (git's own state files in
        this worktree's git dir); None otherwise."""
        found = self.git_dir
        if (found / "rebase-apply" / "applying").exists():
            return "a `git am`", "`git am --continue` or `git am --abort`"
        if (found / "rebase-merge").is_dir() or (found / "rebase-apply").is_dir():
            return "a `git rebase`", "`git rebase --continue` or `git rebase --abort`"
        if (found / "MERGE_HEAD").exists():
            return "a `git merge`", "commit it (`git commit`) or `git merge --abort`"
        if (found / "CHERRY_PICK_HEAD").exists():
            return "a `git cherry-pick`", ("`git cherry-pick --continue` or "
                                           "`git cherry-pick --abort`")
        if (found / "REVERT_HEAD").exists():
            return "a `git revert`", "`git revert --continue` or `git revert --abort`"
        if (found / "BISECT_LOG").exists():
            return "a `git bisect`", "`git bisect reset`"
        return None

    def last_head(self) -> str | None:
        """The commit HEAD last pointed to, from its reflog (which survives the
        deletion of the branch HEAD names); None without one."""
        entries = refs.reflog(self.git_dir, "HEAD")
        found = entries[-1][1] if entries else ""
        return found if refs.is_oid(found) and not refs.is_zero(found) else None

    def rev_parse(self, rev: str) -> str | None:
        proc = run(["rev-parse", "--verify", "--quiet", "--end-of-options", rev], self.path,
                   check=False)
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def superproject(self) -> Path | None:
        """The work tree of the repository this one is a submodule of (None when it
        is none)."""
        proc = run(["rev-parse", "--show-superproject-working-tree"], self.path, check=False)
        found = proc.stdout.decode().strip() if proc.returncode == 0 else ""
        return Path(found) if found else None

    # --- what differs --------------------------------------------------------

    def status_paths(self, paths: Iterable[RepoPath] | None = None, *,
                     exclude: Sequence[str] = (),
                     in_head: Mapping[RepoPath, Entry] | None = None) -> list[RepoPath]:
        """Paths with any uncommitted difference (staged, unstaged, untracked), of
        all or of `paths` (`status.status_paths`). `in_head`: the entries of
        `paths` in HEAD, when the caller has them; given, this runs git
        processes only (safe in a thread)."""
        if paths is not None and in_head is None:
            paths = set(paths)
            head = self.head()
            in_head = self.repository.entries_at(head, paths) if head else {}
        from hf_fanout.worktrees.status import status_paths

        return status_paths(self.path, paths, in_head=in_head or {}, exclude=exclude)

    def ignored_in_the_way(self, paths: Iterable[RepoPath]) -> list[RepoPath]:
        """Paths of `paths` HEAD lacks that are on disk all the same, unlisted by git's
        status (`status.ignored_in_the_way`)."""
        from hf_fanout.worktrees.status import ignored_in_the_way

        wanted = set(paths)
        head = self.head()
        in_head = self.repository.entries_at(head, wanted) if head else {}
        return ignored_in_the_way(self.path, wanted, in_head)

    def hidden_edits(self, paths: Iterable[RepoPath]) -> list[RepoPath]:
        """Paths of `paths` marked assume-unchanged or skip-worktree whose file was
        edited (`status.hidden_edits`). Git processes only (safe in a thread)."""
        from hf_fanout.worktrees.status import hidden_edits

        return hidden_edits(self.path, set(paths))

    def changed_paths(self) -> list[RepoPath]:
        from hf_fanout.worktrees.status import changed_paths

        return changed_paths(self.path)

    def staged_paths(self, against: str, *, index: Path | None = None) -> set[RepoPath]:
        from hf_fanout.worktrees.status import staged_paths

        return staged_paths(self.path, against, index=index)

    def scan(self, *, exclude: Sequence[str] = (), keep_blobs: bool = True) -> WorktreeScan:
        from hf_fanout.worktrees.scan import scan

        return scan(self.path, exclude=exclude, keep_blobs=keep_blobs)

    def tree(self, head_tree: str, *, exclude: Sequence[str] = ()) -> str:
        """The tree of everything in the worktree as `git add -A` would record it,
        given the tree of its HEAD."""
        return self.repository.tree_from_scan(head_tree, self.scan(exclude=exclude))

    def changes_since(self, base: str, head: str, *,
                      exclude: Sequence[str] = ()) -> dict[RepoPath, Entry | None]:
        """What `git add -A` here would record, as changes from the commit `base`: each
        path the commits from `base` to `head` (this worktree's HEAD) or the files
        since then changed, with its new entry (None: gone); a path changed and then
        changed back is left out. The same answer as diffing `base` with `tree`, but
        nothing is written: no blob, no tree (a removal's check need not grow the
        object database). A submodule whose checkout holds work of its own is a
        change too, with an entry no commit has (a zero id): nothing records that
        work, so nothing may count it as in main."""
        from hf_fanout.worktrees.scan import blob_id

        found = self.scan(exclude=exclude, keep_blobs=False)
        repo = self.repository
        changes: dict[RepoPath, Entry | None] = {
            c.path: c.new for c in repo.diff_trees(base, head)}
        files = dict(found.entries)
        for path, target in found.links.items():
            files[path] = Entry(MODE_SYMLINK, blob_id(target, len(head)))
        at_base = repo.entries_at(base, files) if files else {}
        for path, entry in files.items():
            if at_base.get(path) == entry:
                changes.pop(path, None)
            else:
                changes[path] = entry
        for path in [*found.dirty_submodules, *found.filled_submodules]:
            # work inside a submodule's checkout: no entry records it, none is the same
            changes[path] = Entry(MODE_GITLINK, refs.zero_oid(head))
        return changes

    def not_ignored(self, paths: Sequence[str]) -> list[str]:
        """Those of `paths` (existing here) that git does not ignore."""
        if not paths:
            return []
        stdin = b"".join(os.fsencode(p) + b"\0" for p in paths)
        proc = run(["check-ignore", "-z", "--stdin"], self.path, stdin=stdin, check=False)
        if proc.returncode not in (0, 1):
            raise GitFailed(["check-ignore", "-z", "--stdin"], proc.returncode,
                            proc.stderr.decode("utf-8", "replace"))
        ignored = {os.fsdecode(p) for p in nul_split(proc.stdout)}
        return [p for p in paths if p not in ignored]

    # --- the index and the files ----------------------------------------------

    def update_index(self, entries: Mapping[RepoPath, Entry | None], *,
                     index: Path | None = None) -> None:
        """Set the index entries of `entries` (None: removed), in this worktree's
        index or in the index file `index` (a `LockedIndex`'s scratch)."""
        zero = refs.zero_oid(next((e.oid for e in entries.values() if e), 40))
        lines = []
        for path, entry in entries.items():
            if entry is None:
                lines.append(f"0 {zero}".encode() + b"\t" + os.fsencode(path))
            else:
                lines.append(f"{entry.mode:o} {entry.oid}".encode() + b"\t" + os.fsencode(path))
        if lines:
            self.git(["update-index", "-z", "--index-info"], stdin=b"\0".join(lines) + b"\0",
                     env=index_env(index))

    def checkout_paths(self, paths: Iterable[RepoPath], *, index: Path | None = None) -> None:
        """Write `paths` from the index (or the index file `index`) into the work
        tree (smudge filters, modes, links). The index itself is not written."""
        data = b"\0".join(os.fsencode(p) for p in paths)
        if data:
            # two writers: on a slow filesystem writing the files is most of a join's
            # time in the main tree (git uses them from 100 files up)
            self.git(["-c", "checkout.workers=2", "checkout-index", "-f", "-z", "--stdin"],
                     stdin=data + b"\0", env=index_env(index))

    def index_entries(self, *, index: Path | None = None) -> dict[RepoPath, Entry]:
        """Every stage-0 entry of the index (or of the index file `index`)."""
        data = self.git(["ls-files", "--stage", "-z"], env=index_env(index))
        found: dict[RepoPath, Entry] = {}
        for item in nul_split(data):
            meta, _, path = item.partition(b"\t")
            mode, oid, stage = meta.decode().split(" ")
            if stage == "0":
                found[from_git(path)] = Entry(int(mode, 8), oid)
        return found

    # --- a new worktree ------------------------------------------------------

    def populate(self, *, workers: int = 1, objects: Path | None = None,
                 prime: bool = True, sparse: Sequence[str] | None = None) -> str | None:
        """The checkout of a new worktree (`checkout.populate`); None, or how its
        post-checkout hook failed (the checkout stays)."""
        from hf_fanout.worktrees.checkout import populate

        return populate(self.path, self.repository.common_dir, workers=workers,
                        objects=objects, prime=prime, sparse=sparse,
                        post_checkout=self.repository.has_hook("post-checkout"))

    def reapply_sparse(self) -> str | None:
        """In a sparse checkout (`core.sparseCheckout`), git's own `sparse-checkout
        reapply`: files a write put outside its patterns go (their index entries
        marked skip-worktree), as git's own merge leaves them. None when this is
        no sparse checkout or it went; else why git would not."""
        on = run(["config", "--bool", "--get", "core.sparseCheckout"], self.path, check=False)
        if on.stdout.strip() != b"true":
            return None
        # (the files a write put there are up to date only once their stat data is
        # in the index: git leaves a file it cannot prove clean)
        run(["update-index", "-q", "--refresh"], self.path, check=False)
        done = run(["sparse-checkout", "reapply"], self.path, check=False)
        said = done.stderr.decode("utf-8", "replace").strip()
        if done.returncode == 0 and "warning" not in said:
            return None
        return " ".join(said.split()) if said else f"exit {done.returncode}"

    def widen_sparse(self, globs: Sequence[str]) -> None:
        from hf_fanout.worktrees.checkout import set_sparse

        set_sparse(self.path, globs, add=True)

    def settle_index(self) -> bool:
        from hf_fanout.worktrees.checkout import settle_index

        return settle_index(self.index_file)

    def prime_status_caches(self) -> None:
        from hf_fanout.worktrees.status import prime_status_caches

        prime_status_caches(self.path)

    @cached_property
    def index_file(self) -> Path:
        return self.git_dir / "index"


def _refuse_sha256(object_format: str, common_dir: Path) -> None:
    """hf builds trees and commits through libgit2, which reads SHA-1 repositories
    only: a SHA-256 one (`extensions.objectFormat`, as `git rev-parse` reports it)
    is refused in one line before anything is made, rather than split and then
    failing at the join."""
    if object_format != "sha1":
        where = common_dir.parent if common_dir.name == ".git" else common_dir
        raise NotARepo(f"{where} is a SHA-256 repository, which hf does not work in yet",
                       "use hf in a SHA-1 repository (the format `git init` makes "
                       "unless told `--object-format=sha256`)")


def _marked_main_workdir(git_dir: Path, common_dir: Path) -> Path | None:
    """The main worktree hf's part marker (`hf-part.json`, in the part's own git
    dir) names, if that folder's `.git` leads to `common_dir`; else None."""
    import json

    from hf_fanout.atomic import read_regular
    from hf_fanout.gitlink import PART_MARKER, gitdir_of

    try:
        named = json.loads(read_regular(git_dir / PART_MARKER))
        main = Path(named["main_workdir"])
        leads_to = gitdir_of(main)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if os.path.realpath(leads_to) != os.path.realpath(common_dir):
        return None
    return Path(os.path.realpath(main))


def _main_workdir(linked: Path, git_dir: Path, common_dir: Path) -> Path:
    """The main worktree of the repository a linked worktree belongs to: the first
    of `git worktree list`, or, where git names the git directory itself there (a
    submodule's, under the superproject's `.git/modules/`), the folder its
    `core.worktree` names, or (a git dir kept apart, `git init --separate-git-dir`,
    whose main worktree no file in the git dir names) the one hf's part marker
    names, when that folder's `.git` leads to this git dir. A bare repository has
    none (its worktrees are all linked ones): refused, as hf joins parts into a
    main tree."""
    listing = nul_split(out(["worktree", "list", "--porcelain", "-z"], linked))
    main = Path(os.fsdecode(listing[0].removeprefix(b"worktree ")))
    record = listing[1:listing.index(b"")] if b"" in listing else listing[1:]
    if os.path.realpath(main) != os.path.realpath(common_dir) and b"bare" not in record:
        return main
    for name in ("config.worktree", "config"):
        named = run(["config", "--file", str(common_dir / name), "--get", "core.worktree"],
                    linked, check=False).stdout.decode("utf-8", "surrogateescape").strip()
        if named:
            return Path(os.path.realpath(common_dir / named))
    if b"bare" not in record:
        marked = _marked_main_workdir(git_dir, common_dir)
        if marked is not None:
            return marked
        raise NotARepo(f"git names no main worktree for {linked}: its git dir {main} is "
                       "kept apart from the main worktree (`--separate-git-dir`), and "
                       "only the main worktree's `.git` file leads to it",
                       "run hf in the main worktree (the folder whose `.git` file names "
                       f"{main})")
    raise NotARepo(f"{main} is a bare repository: hf joins parts into a main worktree, "
                   "and this repository has none",
                   f"run hf in a clone with a worktree of its own (`git clone {main} "
                   "DIR`, then `cd DIR`)")
