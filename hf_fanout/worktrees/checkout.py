"""Worktrees made, checked out and removed: the part of `Repository` that manages
its worktrees, and the checkout of a new one (git's own `reset --hard`, so
filters, hooks and sparse settings hold)."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hf_fanout.errors import GitFailed
from hf_fanout.gitlink import gitdir_of
from hf_fanout.worktrees import removal
from hf_fanout.worktrees.process import OWN_GIT, out, run, text
from hf_fanout.worktrees.refs import read_head, resolve, zero_oid
from hf_fanout.worktrees.status import prime_status_caches

# larger blobs stay compressed in the repository's packs (`unpacked_objects`):
# a stored copy of them would cost more disk than the inflating it saves
UNPACKED_BLOB_LIMIT = "1m"
# how far behind the clock a file's mtime may be (the kernel's coarse clock: one
# tick, 1-10 ms); `settle_index` waits this long into the new second
CLOCK_LAG_NS = 20_000_000
# hooks `git reset --hard` runs (with `unpacked_objects`' variable set)
_CHECKOUT_HOOKS = ("reference-transaction", "post-index-change")


class WorktreeAdmin:
    common_dir: Path
    workdir: Path

    def git(self, args: Sequence[str], **kwargs: Any) -> bytes:
        raise NotImplementedError

    def add_worktree(self, path: Path, branch: str, base: str) -> None:
        """Register a worktree on a new branch, without checking files out.

        Registration is serial: `git worktree add` reads every other worktree's
        metadata and fails on one that another process is half way through
        creating. The slow part, the checkout (`populate`), runs in
        parallel, each as soon as its worktree is registered.
        """
        self.git(["worktree", "add", "--quiet", "--no-checkout", "-b", branch, str(path), base])

    def unpacked_objects(self, commit: str, where: Path) -> Path | None:
        """Make `where` an object directory whose one pack holds `commit`'s trees and
        blobs stored without compression (blobs up to `UNPACKED_BLOB_LIMIT`), with
        the repository's own objects as its alternate, and return it.

        A checkout reading from it (`populate(objects=...)`) copies bytes
        where it would inflate every blob: zlib is a third of a checkout's CPU, and
        for several worktrees of one commit it is paid once here instead of once per
        worktree. Nothing is written to the repository. None where that cannot be
        done (a partial clone, whose missing blobs would be fetched into the scratch
        directory; a path git cannot name as an alternate; any failure): the
        checkout then reads the repository's objects as usual.
        """
        objects = self.common_dir / "objects"
        if b"\n" in os.fsencode(objects):
            return None
        partial = run(["config", "--get", "extensions.partialClone"], self.workdir, check=False)
        if partial.stdout.strip():
            return None
        try:
            # hooks the checkout itself runs would see the variable too, and what one
            # of them wrote into the object store would go with the scratch directory
            if any(self.has_hook(name) for name in _CHECKOUT_HOOKS):
                return None
            (where / "pack").mkdir(parents=True)
            (where / "info").mkdir()
            (where / "info" / "alternates").write_bytes(os.fsencode(objects) + b"\n")
            listing = out(["rev-list", "--objects", "--no-walk",
                           f"--filter=blob:limit={UNPACKED_BLOB_LIMIT}", commit], self.workdir)
            # its temporary files in the scratch directory too, not the repository's
            out(["-c", "pack.compression=0", "pack-objects", "--quiet", "--no-reuse-object",
                 "--window=0", "--depth=0", str(where / "pack" / "pack")], self.workdir,
                stdin=listing, env={"GIT_OBJECT_DIRECTORY": str(where)})
        except (OSError, GitFailed):
            return None
        return where

    def has_hook(self, name: str) -> bool:
        """Whether the repository has hook `name` (an executable file where git looks
        for its hooks: core.hooksPath, else <common dir>/hooks), as a new worktree
        sees it; the hooks directory is asked for once."""
        hooks = self.__dict__.get("_hooks_dir")
        if hooks is None:
            hooks = Path(text(["rev-parse", "--path-format=absolute", "--git-path", "hooks"],
                              self.workdir))
            self.__dict__["_hooks_dir"] = hooks
        return os.access(hooks / name, os.X_OK)

    def checkout_runs_programs(self) -> bool:
        """Whether a checkout here runs a program that could write into the worktree
        beside git: a hook it runs (post-checkout, reference-transaction,
        post-index-change) or a smudge or process filter. Asked once."""
        found = self.__dict__.get("_checkout_runs_programs")
        if found is None:
            filters = run(["config", "--get-regexp", r"^filter\..*\.(smudge|process)$"],
                          self.workdir, check=False)
            found = bool(filters.stdout.strip()) or any(
                self.has_hook(name) for name in ("post-checkout", *_CHECKOUT_HOOKS))
            self.__dict__["_checkout_runs_programs"] = found
        return bool(found)

    def remove_worktree(self, path: Path) -> int:
        """Delete a worktree's folder, whatever it holds (moved aside first, then its
        files: `worktrees/removal.py`), and git's record of it
        (`forget_missing_worktrees`). Returns the bytes the folder held."""
        freed = removal.delete(path)
        self.forget_missing_worktrees([path])
        return freed

    def delete_branch(self, branch: str) -> str | None:
        """The branch itself, never what it names if it is a symbolic ref. None once
        it is gone (or was not there); else git's words for why it is still there
        (a `.lock` file another process left beside it)."""
        done = run(["update-ref", "--no-deref", "-d", f"refs/heads/{branch}"], self.workdir,
                   check=False)
        if done.returncode == 0 or resolve(self.common_dir, f"refs/heads/{branch}") is None:
            return None
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return said[0].removeprefix("fatal: ").removeprefix("error: ") if said else "git failed"

    def branch_lock(self, branch: str) -> Path | None:
        """The lock file beside a branch (a git command updating it now, or one that
        was killed there), which stops its deletion; None when there is none."""
        lock = self.common_dir / "refs" / "heads" / f"{branch}.lock"
        return lock if os.path.lexists(lock) else None

    def branch_locks(self, prefix: str) -> list[tuple[str, Path]]:
        """(branch, lock file) for each lock file beside a branch under `prefix`
        (`hf/`), whether or not the branch itself is there."""
        heads = self.common_dir / "refs" / "heads"
        try:
            found = sorted((heads / prefix).rglob("*.lock"))
        except OSError:
            return []
        return [(lock.relative_to(heads).as_posix().removesuffix(".lock"), lock)
                for lock in found]

    def branches(self, prefix: str) -> dict[str, str]:
        """The branches under `prefix` (e.g. `hf/queue/`): name -> commit."""
        return {ref.removeprefix("refs/heads/"): oid
                for ref, oid in self.refs_under(f"refs/heads/{prefix}").items()}

    def refs_under(self, folder: str) -> dict[str, str]:
        """The refs under `folder` (`refs/replace/`): full name -> object id."""
        listing = out(["for-each-ref", "--format=%(refname)%00%(objectname)", folder],
                      self.workdir)
        found = {}
        for line in listing.decode("utf-8", "surrogateescape").splitlines():
            ref, _, oid = line.partition("\0")
            found[ref] = oid
        return found

    def worktree_branches(self) -> dict[str, Path]:
        """The branch each registered worktree is on (name -> path), from `git
        worktree list` (a detached or bare one is left out)."""
        found: dict[str, Path] = {}
        for record in out(["worktree", "list", "--porcelain", "-z"],
                          self.workdir).split(b"\0\0"):
            fields = dict(item.partition(b" ")[::2] for item in record.split(b"\0") if item)
            if b"worktree" in fields and b"branch" in fields:
                name = os.fsdecode(fields[b"branch"]).removeprefix("refs/heads/")
                found[name] = Path(os.fsdecode(fields[b"worktree"]))
        return found

    def forget_missing_worktrees(self, paths: Sequence[Path] = ()) -> None:
        """git's record of each of hf's worktrees (on a branch under `hf/`, or at
        one of `paths`) whose folder is gone: what `git worktree prune` does, for
        these alone. A worktree of the user's own whose folder is missing for now
        (on a drive not mounted, say) stays registered, and so does a locked one,
        except one at `paths` that git's `worktree add` locked while it made it
        (`initializing`: the caller knows the command that made it is gone, and
        git would refuse that path to every later `worktree add`)."""
        admin = self.common_dir / "worktrees"
        try:
            entries = [Path(e.path) for e in os.scandir(admin) if e.is_dir()]
        except OSError:
            return
        named_here = {os.path.realpath(p) for p in paths}
        for entry in entries:
            try:
                named = (entry / "gitdir").read_text(encoding="utf-8",
                                                     errors="surrogateescape").strip()
            except OSError:
                continue  # a record git itself cannot place: `git worktree prune` decides
            dotgit = entry / named  # (an absolute `named` stays as it is)
            named_path = os.path.realpath(dotgit.parent) in named_here
            head = read_head(entry)
            ours = named_path or head.startswith("ref: refs/heads/hf/")
            if named and ours and self._folder_gone(entry, dotgit, head) and \
                    not _locked(entry, made_here_then_cut_off=named_path):
                shutil.rmtree(entry, ignore_errors=True)
        with contextlib.suppress(OSError):
            admin.rmdir()  # (only when empty, as git leaves it)

    def _folder_gone(self, entry: Path, dotgit: Path, head: str) -> bool:
        """Whether the worktree git's record `entry` stands for is gone: the `.git` it
        names is not there; or that `.git` does not link back to the record (a
        process rewrote the record's `gitdir`, to the main tree's `.git` say) and the
        branch the record is on is gone too, so no folder works through it."""
        if not dotgit.exists():
            return True
        if links_back(dotgit.parent, entry):
            return False
        branch = head.removeprefix("ref:").strip()
        return branch.startswith("refs/heads/") and \
            resolve(self.common_dir, branch) is None

    def repair_worktree_link(self, path: Path) -> None:
        """Point git's record of the worktree at `path` back at its folder (`git
        worktree repair`), after its `gitdir` was rewritten."""
        self.git(["worktree", "repair", str(path)])

    def enable_worktree_config(self) -> None:
        """Turn on per-worktree config (`config.worktree`), once per Repo, the way
        git's own `git sparse-checkout` does: a `core.worktree` in the shared config
        (a submodule's git directory names its folder so) is moved into the main
        worktree's `config.worktree` first, as git-config(1) says it must be. Left
        in the shared config, every linked worktree took it for its own: git in a
        part worked on the submodule's git directory, every file deleted. Checked on
        every call (a `git submodule` command may write it back), in an order that
        a process cut off anywhere leaves git working and the next call finishes."""
        if self.__dict__.get("_worktree_config_on"):
            return
        shared = str(self.common_dir / "config")
        found = run(["config", "--file", shared, "--get-regexp",
                     r"^(core\.worktree|extensions\.worktreeconfig)$"],
                    self.workdir, check=False).stdout.decode("utf-8", "surrogateescape")
        values = dict(line.partition(" ")[::2] for line in found.splitlines())
        moved = values.get("core.worktree")
        if moved is not None:  # (the main worktree's own copy first, then the shared one gone)
            self.git(["config", "--file", str(self.common_dir / "config.worktree"),
                      "core.worktree", moved])
        if values.get("extensions.worktreeconfig", "").lower() not in ("true", "yes", "on", "1"):
            self.git(["config", "--file", shared, "extensions.worktreeConfig", "true"])
        if moved is not None:
            self.git(["config", "--file", shared, "--unset-all", "core.worktree"])
        self.__dict__["_worktree_config_on"] = True


def links_back(worktree: Path, entry: Path) -> bool:
    """Whether `worktree`'s `.git` file names git's record `entry`, and the record's
    `gitdir` names that `.git` file: the two ends of a linked worktree agree."""
    dotgit = worktree / ".git"
    try:
        if not dotgit.is_file() or \
                os.path.realpath(gitdir_of(worktree)) != os.path.realpath(entry):
            return False
        named = Path((entry / "gitdir").read_text(encoding="utf-8",
                                                  errors="surrogateescape").strip())
    except OSError:
        return False
    return os.path.realpath(entry / named) == os.path.realpath(dotgit)


def _locked(entry: Path, *, made_here_then_cut_off: bool) -> bool:
    """Whether git's worktree record `entry` is locked; not when the lock is the one
    `git worktree add` holds while it makes the worktree (hf runs git with
    LC_ALL=C: its text is `initializing`) and the add is known to be gone."""
    try:
        reason = (entry / "locked").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return not (made_here_then_cut_off and reason.strip() == b"initializing")


def sparse_patterns(globs: Sequence[str]) -> bytes:
    """hf's globs (anchored at the root, gitignore syntax otherwise) as lines of git's
    non-cone sparse-checkout patterns: each anchored with a leading `/` (which
    also keeps a leading `!` or `#` literal), a trailing space kept by escaping
    it. A glob matching a directory takes everything beneath, in both."""
    lines = []
    for glob in globs:
        stripped = glob.rstrip(" ")
        lines.append("/" + stripped + "\\ " * (len(glob) - len(stripped)))
    return os.fsencode("\n".join(lines) + "\n")


def set_sparse(path: Path, globs: Sequence[str], *, add: bool = False) -> None:
    """Make the worktree at `path` a sparse checkout of `globs` (git's own
    sparse-checkout, in the worktree's own config; `extensions.worktreeConfig`
    must be on), or with `add` widen the one it is by them: `add` checks out
    the files they bring at once. Before a worktree's first checkout it only
    sets the patterns that checkout follows. Every `.gitattributes` is in the
    set: hashing a file as `git add` does (the join's, a rescue's) reads the
    attributes from the files on disk, not from the index, and without them
    a part's new files would skip their filters and end-of-line rules."""
    patterns = sparse_patterns(globs) + (b"" if add else b".gitattributes\n")
    out(["sparse-checkout", "add" if add else "set", *([] if add else ["--no-cone"]),
         "--stdin"], path, stdin=patterns)


def _not_sparse(path: Path) -> None:
    """A full checkout for the worktree at `path`, whatever the worktree it was added
    from is: `git worktree add` copies that one's sparse-checkout settings and
    patterns into the new one (a main tree that is a sparse checkout would make
    every part one, without the files it owns)."""
    git_dir = gitdir_of(path)
    patterns = git_dir / "info" / "sparse-checkout"
    try:  # (config.worktree is copied whole: most often it holds only a hooks path)
        copied = b"sparsecheckout" in (git_dir / "config.worktree").read_bytes().lower()
    except OSError:
        copied = False
    if copied:
        for key in ("core.sparseCheckout", "core.sparseCheckoutCone"):
            run(["config", "--worktree", "--unset-all", key], path, check=False)
    # without the patterns a checkout is full, also where the repository's own config
    # sets core.sparseCheckout for every worktree
    patterns.unlink(missing_ok=True)


def settle_index(index: Path) -> bool:
    """Date a new checkout's index in the current second once the clock is past the
    second it was written in, and say whether it did. git (built without
    nanosecond timestamps, as Debian's is) takes a file whose mtime is not older
    than the index as racily clean and reads it again in full on every status
    until an index is written in a later second: at 5,000 files the first status
    of a fresh worktree spent 45 ms re-reading them, against 0.05 ms after.
    Only for a checkout that nothing else has written in since it was made (no
    hook or filter of the checkout's, `checkout_runs_programs`; no agent yet): git
    then trusts the stat data of every file older than the index, as it would
    after a status in a later second. The filesystem dates the index by its own
    clock, the one that dates the files (a network disk's may differ from this
    machine's); it counts only when that puts it in a later second."""
    try:
        written = index.stat().st_mtime_ns
    except OSError:
        return False
    # (tried once this machine's clock is a little into the next second: the
    # kernel's file clock lags it by up to a tick)
    if (time.time_ns() - CLOCK_LAG_NS) // 1_000_000_000 <= written // 1_000_000_000:
        return False
    try:
        os.utime(index)
        dated = index.stat().st_mtime_ns
    except OSError:
        return False
    return dated // 1_000_000_000 > written // 1_000_000_000


def populate(path: Path, common_dir: Path, *, workers: int = 1,
             objects: Path | None = None, prime: bool = True,
             sparse: Sequence[str] | None = None, post_checkout: bool = True) -> str | None:
    """Check out HEAD in a worktree registered by `add_worktree`, as `worktree add`
    would: `reset --hard` (filters apply), then the post-checkout hook; then
    `prime_status_caches` (unless `prime` is false: the caller does it). `objects`
    (from `unpacked_objects`) is where the checkout reads objects first; only
    the checkout, which writes none. With `sparse`, only the paths those globs
    match are checked out (`set_sparse`). `post_checkout` false: the caller knows
    there is no such hook (`has_hook`), and no `git hook run` is started.

    Returns None, or how the post-checkout hook failed: as for `git worktree
    add`, a failing post-checkout hook (git-lfs missing, say) does not undo the
    checkout, and the caller says so."""
    if sparse is not None:
        set_sparse(path, sparse)
    else:
        _not_sparse(path)
    env = {"GIT_OBJECT_DIRECTORY": str(objects)} if objects is not None else None
    out(["-c", f"checkout.workers={workers}", "reset", "--hard", "--quiet",
         "--no-recurse-submodules"], path, env=env)
    failed = None
    if post_checkout:
        head = resolve(common_dir, "HEAD", gitdir_of(path)) or text(["rev-parse", "HEAD"], path)
        hook = post_checkout_command(head)
        done = run(hook, path, env={OWN_GIT: ""}, check=False)  # (its hooks are committed)
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip()).decode("utf-8", "replace")
            first = said.splitlines()[0][:300] if said else ""
            failed = f"exit {done.returncode}" + (f": {first}" if first else "")
    if prime:
        prime_status_caches(path)
    return failed


def post_checkout_command(head: str) -> list[str]:
    """The git arguments that run a new worktree's post-checkout hook, as `git
    worktree add` runs it (from the null commit to `head`, a branch checkout)."""
    return ["hook", "run", "--ignore-missing", "post-checkout", "--", zero_oid(head), head, "1"]
