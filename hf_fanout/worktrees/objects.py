"""The object database: held objects written as one pack, blobs, trees read, diffs.

pygit2 (loaded on first use) for reading and writing objects in-process; git
for what must be git's own (`index-pack`, `diff-tree`, `ls-tree`). The part of
`Repository` that deals with objects (`repository.py` puts the parts together).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hf_fanout.errors import HfError
from hf_fanout.paths import RepoPath
from hf_fanout.worktrees.zparse import (
    MODE_TREE,
    Change,
    Entry,
    parse_raw_diff,
    parse_raw_diffs,
    paths_by_commit,
)

if TYPE_CHECKING:
    import pygit2

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

# Outside a join (which holds all its objects for one pack, `holding_objects`),
# from this many files up a worktree's new blobs go into one pack (a file and its
# index) instead of a loose object file each: on a disk where creating a small
# file is slow (about 1 ms here) 125 loose objects took 0.13 s, hashing them
# without writing 0.01 s.
PACK_FROM = 16
HELD_MAX = 256 << 20  # held in memory (`holding_objects`) up to this many bytes
BLOB = 3  # the object types of packs (and of libgit2): commit 1, tree 2, blob 3


def pygit2_module() -> Any:
    import pygit2

    return pygit2


def _held_objects() -> Any:
    """A pygit2 object-database backend that keeps what is written to it in memory
    (`ObjectStore.holding_objects`). Its callbacks run Python: safe because pygit2 keeps the
    interpreter lock in every call hf makes (it lets go only in revision walks
    and filter streams)."""
    pygit2 = pygit2_module()

    class HeldObjects(pygit2.OdbBackend):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.objects: dict[str, tuple[int, bytes]] = {}
            self.unwritten: list[str] = []
            self.size = 0  # bytes held

        def read_cb(self, oid: Any) -> tuple[int, bytes]:
            return self.objects[str(oid)]  # KeyError: not here, libgit2 asks on

        def read_header_cb(self, oid: Any) -> tuple[int, int]:
            kind, data = self.objects[str(oid)]
            return kind, len(data)

        def read_prefix_cb(self, prefix: str) -> tuple[int, bytes, Any]:
            # libgit2 asks this way for full ids too (a blob it loads again)
            oid = self.exists_prefix_cb(prefix)
            kind, data = self.objects[str(oid)]
            return kind, data, oid

        def exists_cb(self, oid: Any) -> bool:
            return str(oid) in self.objects

        def exists_prefix_cb(self, prefix: str) -> Any:
            found = [oid for oid in self.objects if oid.startswith(prefix)] \
                if len(prefix) < 40 else [prefix] if prefix in self.objects else []
            if not found:
                raise KeyError(prefix)  # not here: libgit2 asks the other backends
            if len(found) > 1:
                raise ValueError(prefix)  # ambiguous
            return pygit2.Oid(hex=found[0])

        def write_cb(self, oid: Any, data: bytes, kind: int) -> None:
            self.add(str(oid), kind, bytes(data))

        def add(self, oid: str, kind: int, data: bytes) -> None:
            if oid not in self.objects:
                self.objects[oid] = (kind, data)
                self.unwritten.append(oid)
                self.size += len(data)

        def refresh_cb(self) -> None:
            pass

    return HeldObjects()


def _pack(objects: list[tuple[int, bytes]]) -> bytes:
    """A version 2 pack of whole (undeltified) objects, each (type, data), as `git
    index-pack` reads it. Blobs are deflated at zlib's fastest level; trees and
    commits are stored: mostly object ids, they do not compress (a join's 240
    trees: 0.79 MB, 0.57 MB at level 1 for 17 ms more)."""
    chunks = [b"PACK", struct.pack(">II", 2, len(objects))]
    for kind, data in objects:
        size = len(data)
        head = bytearray()
        byte = (kind << 4) | (size & 0x0F)  # the type, then the size, 7 bits a byte
        size >>= 4
        while size:
            head.append(byte | 0x80)
            byte = size & 0x7F
            size >>= 7
        head.append(byte)
        chunks += [bytes(head), zlib.compress(data, 1 if kind == BLOB else 0)]
    body = b"".join(chunks)
    return body + hashlib.sha1(body).digest()  # noqa: S324 (the pack format's checksum)


class ObjectStore:
    """Objects of the repository at `common_dir` (git runs in `workdir`)."""

    common_dir: Path
    workdir: Path
    _held: Any

    def git(self, args: Sequence[str], **kwargs: Any) -> bytes:
        raise NotImplementedError

    @cached_property
    def odb(self) -> pygit2.Repository:
        import pygit2

        return pygit2.Repository(str(self.common_dir))

    @contextlib.contextmanager
    def holding_objects(self) -> Iterator[None]:
        """Inside the block, the objects hf makes in this process (blobs from
        scans, trees, commits) are kept in memory and written as one pack: by
        `write_held_objects`, before something outside this process names them,
        and when the block ends.

        Otherwise libgit2 writes a tree or commit as a loose object, a file of its
        own (about 0.1 ms apiece here; a join at 20,000 files makes some 240), and
        each scan's blobs went into a pack of their own: `git gc --auto` packs
        everything once a repository has 50 packs, which 8-part joins reached
        in six. Objects made after the block go to disk one by one as before.
        """
        try:
            self._held = _held_objects()
            # before the loose objects (priority 1), which would take the writes
            self.odb.odb.add_backend(self._held, 3)
            yield
        finally:
            with contextlib.suppress(HfError, OSError):  # what a refusal's preview names
                self.write_held_objects()
            self._held = None
            self.__dict__.pop("odb", None)  # a fresh repository object, without the backend

    def write_held_objects(self) -> None:
        """Write the objects held since `holding_objects` began into the repository,
        as one pack (`git index-pack`), and let go of their bytes: libgit2 finds
        them in the pack from then on."""
        held = self._held
        if held is None or not held.unwritten:
            return
        count = len(held.unwritten)  # (only what is held now is written and let go)
        done = held.unwritten[:count]
        self._write_pack([held.objects[oid] for oid in done])
        for oid in done:
            held.size -= len(held.objects.pop(oid)[1])
        del held.unwritten[:count]

    def store_blobs(self, blobs: Mapping[str, bytes]) -> None:
        """Write blobs (id: bytes, the id known to be right): held in memory inside
        `holding_objects` (written as a pack once more than `HELD_MAX` bytes are
        held), else one pack, or loose objects when there are few."""
        if not blobs:
            return
        if self._held is not None:
            for oid, data in blobs.items():
                self._held.add(oid, BLOB, data)
            if self._held.size > HELD_MAX:
                self.write_held_objects()
        elif len(blobs) < PACK_FROM:
            for data in blobs.values():
                self.odb.odb.write(BLOB, data)
        else:
            self._write_pack([(BLOB, data) for data in blobs.values()])

    def _write_pack(self, objects: list[tuple[int, bytes]]) -> None:
        """`objects` (type, data) into the repository as one pack, which git verifies."""
        self.git(["index-pack", "--stdin"], stdin=_pack(objects))

    def read_blob(self, oid: str) -> bytes:
        """A blob's bytes. One that is not in the object store (a partial clone,
        `--filter=blob:none`, keeps blobs on its promisor remote) is read by git,
        which fetches it; libgit2 does not."""
        try:
            data: bytes = self.odb[oid].data  # type: ignore[attr-defined]
        except KeyError:
            return self.git(["cat-file", "blob", oid])
        return data

    def write_blob(self, data: bytes) -> str:
        return str(self.odb.create_blob(data))

    def has_object(self, oid: str) -> bool:
        return oid in self.odb

    def commit_parents(self, commit: str) -> list[str]:
        return [str(p) for p in self.odb[commit].peel(pygit2_module().Commit).parent_ids]

    def commit_message(self, commit: str) -> str:
        message: str = self.odb[commit].peel(pygit2_module().Commit).message
        return message

    def tree_of(self, commit: str) -> str:
        return str(self.odb[commit].peel(pygit2_module().Tree).id)

    def entries_at(self, treeish: str, paths: Iterable[RepoPath]) -> dict[RepoPath, Entry]:
        """Entries of `paths` that exist in `treeish` (absent paths are left out).

        Each directory's tree is looked up once, however many paths it holds.
        """
        pygit2 = pygit2_module()
        root = self.odb.revparse_single(treeish).peel(pygit2.Tree)
        trees: dict[str, Any] = {"": root}

        def tree_at(directory: str) -> Any:
            if directory not in trees:
                parent, _, name = directory.rpartition("/")
                above = tree_at(parent)
                found = None
                if above is not None:
                    try:
                        entry = above[name]
                    except KeyError:
                        entry = None
                    found = entry if entry is not None and entry.filemode == MODE_TREE else None
                trees[directory] = found
            return trees[directory]

        result: dict[RepoPath, Entry] = {}
        for path in paths:
            directory, _, name = path.rpartition("/")
            tree = tree_at(directory)
            if tree is None:
                continue
            try:
                entry = tree[name]
            except KeyError:
                continue
            if entry.filemode != MODE_TREE:
                result[path] = Entry(entry.filemode, str(entry.id))
        return result

    def files_below(self, treeish: str, folders: Iterable[RepoPath]) -> dict[RepoPath,
                                                                            list[RepoPath]]:
        """For each of `folders` that is a folder in `treeish`: the file paths below it
        (folders that are not there, or are files, are left out)."""
        pygit2 = pygit2_module()
        root = self.odb.revparse_single(treeish).peel(pygit2.Tree)
        found: dict[RepoPath, list[RepoPath]] = {}
        for folder in folders:
            tree = root
            for name in folder.split("/"):
                try:
                    entry = tree[name]
                except KeyError:
                    entry = None
                if entry is None or entry.filemode != MODE_TREE:
                    tree = None
                    break
                tree = self.odb[entry.id]
            if tree is None:
                continue
            files: list[RepoPath] = []
            stack = [(folder, tree)]
            while stack:
                prefix, at = stack.pop()
                for entry in at:
                    path = RepoPath(f"{prefix}/{entry.name}")
                    if entry.filemode == MODE_TREE:
                        stack.append((path, self.odb[entry.id]))
                    else:
                        files.append(RepoPath(path))
            found[folder] = sorted(files)
        return found

    def ls_tree(self, commit: str) -> list[RepoPath]:
        """Every file path of `commit`'s tree. Kept per commit id for the process's
        life (a split asks for the base's listing several times)."""
        cache: dict[str, list[RepoPath]] = self.__dict__.setdefault("_ls_tree", {})
        if commit not in cache:
            data = self.git(["ls-tree", "-r", "-z", "--full-tree", "--name-only", commit])
            # one decode of the whole listing (what from_git does per path)
            listing = [RepoPath(p) for p in os.fsdecode(data).split("\0") if p]
            if len(commit) == 40 and all(c in "0123456789abcdef" for c in commit):
                cache[commit] = listing  # an object id never changes; a ref may
            return listing
        return list(cache[commit])

    def diff_trees(self, old: str, new: str) -> list[Change]:
        data = self.git(["diff-tree", "-r", "-z", "--raw", "--no-renames", "--no-commit-id",
                         old, new])
        return parse_raw_diff(data)

    def diff_commits(self, base: str, tips: Iterable[str]) -> dict[str, list[Change]]:
        """`diff_trees(base, tip)` for each commit of `tips`, from one git process
        (`diff-tree --stdin` reads each tip with `base` given as its parent).

        `diff-tree --stdin` skips a line it cannot read (a missing object) and
        still exits 0; `--always` names every tip it did read, and a tip it
        did not gets `diff_trees` of its own, which fails as git does."""
        wanted = list(dict.fromkeys(tips))
        if not wanted:
            return {}
        data = self.git(["diff-tree", "--stdin", "--always", "-r", "-z", "--raw",
                         "--no-renames"],
                        stdin="".join(f"{tip} {base}\n" for tip in wanted).encode())
        found = parse_raw_diffs(data)
        return {tip: found[tip] if tip in found else self.diff_trees(base, tip)
                for tip in wanted}

    def commits_paths(self, tip: str, hidden: Iterable[str]) -> dict[str, list[RepoPath]]:
        """Each commit reachable from `tip` and from none of `hidden`, with the paths
        it changes against its parent; a merge's are the paths where it differs
        from every parent (git's combined diff: what the merge itself brought, not
        what either side did). One `rev-list` and one `diff-tree`."""
        listing = self.git(["rev-list", tip, "--not", *hidden, "--"]).decode().split()
        if not listing:
            return {}
        data = self.git(["diff-tree", "--stdin", "--root", "-c", "-r", "-z", "--raw",
                         "--no-renames"], stdin="".join(f"{c}\n" for c in listing).encode())
        found = paths_by_commit(data)
        return {commit: found.get(commit, []) for commit in listing}

    def tree_changes(self, old_tree: str, new_tree: str,
                     paths: Iterable[RepoPath]) -> list[Change]:
        """What `diff_trees(old_tree, new_tree)` lists, in-process, given every path
        where the two trees may differ (`paths`: file paths; the others are
        left out). Same entries, same order (git's: by the path's bytes)."""
        wanted = sorted(set(paths), key=os.fsencode)
        old = self.entries_at(old_tree, wanted)
        new = self.entries_at(new_tree, wanted)
        return [Change(p, old.get(p), new.get(p)) for p in wanted if old.get(p) != new.get(p)]
