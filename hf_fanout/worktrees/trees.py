"""Trees built in the object database, never in a working tree: a tree with some
entries changed, and the overlay of several parts' trees (the part of
`Repository` that writes trees)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hf_fanout.errors import HfError
from hf_fanout.paths import RepoPath, shown_path
from hf_fanout.worktrees.objects import pygit2_module
from hf_fanout.worktrees.zparse import MODE_TREE, Entry


class _Ambiguous(Exception):
    """overlay_trees: a path one part changed has another part's change below it."""


def _refuse_non_utf8(path: RepoPath) -> None:
    """libgit2 (trees built in-process) takes UTF-8 names only."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise HfError(f"{shown_path(path)} is a file name that is not UTF-8: hf cannot "
                      "record it",
                      "rename the file to a UTF-8 name (git itself could store it, hf builds "
                      "trees with libgit2, which cannot)") from None


class TreeWriter:
    odb: Any

    def build_tree(self, base_tree: str, changes: Mapping[RepoPath, Entry | None]) -> str:
        """`base_tree` with `changes` applied (None deletes), built in the object database.

        Only the directories on the way to a changed path are rewritten, so the
        cost grows with the change, not with the repository.
        """
        pygit2 = pygit2_module()
        odb = self.odb
        nested: dict[str, Any] = {}
        for path, entry in changes.items():
            _refuse_non_utf8(path)
            node = nested
            *dirs, leaf = path.split("/")
            for name in dirs:
                node = node.setdefault(name + "/", {})
            node[leaf] = entry

        def rebuild(tree_oid: str | None, node: dict[str, Any]) -> str | None:
            tree: Any = odb[tree_oid] if tree_oid else None
            builder = odb.TreeBuilder(tree) if tree is not None else odb.TreeBuilder()
            # deletions, then directories, then files: a file replaced by a directory
            # of the same name and a directory replaced by a file both work
            for key, value in sorted(node.items(), key=lambda kv: 0 if kv[1] is None
                                     else 1 if kv[0].endswith("/") else 2):
                if key.endswith("/"):
                    name = key[:-1]
                    existing = tree[name] if tree is not None and name in tree else None
                    sub_oid = str(existing.id) if existing is not None and \
                        existing.filemode == MODE_TREE else None
                    new_sub = rebuild(sub_oid, value)
                    if new_sub is None:
                        if sub_oid is not None:  # the directory is left empty
                            builder.remove(name)
                    else:
                        builder.insert(name, pygit2.Oid(hex=new_sub), MODE_TREE)
                elif value is None:
                    # a file's path: a directory of that name is not it
                    if tree is not None and key in tree and tree[key].filemode != MODE_TREE:
                        builder.remove(key)
                else:
                    builder.insert(key, pygit2.Oid(hex=value.oid), value.mode)
            if len(builder) == 0:
                return None
            return str(builder.write())

        result = rebuild(base_tree, nested)
        if result is None:
            return str(odb.TreeBuilder().write())
        return result

    def overlay_trees(self, base_tree: str,
                      parts: Sequence[tuple[str, Iterable[RepoPath]]]) -> str | None:
        """`base_tree` with each part's changes, taken from the part's own tree.

        Each part is (its tree, the paths it changed), its tree being
        `base_tree` plus exactly those changes, and no path changed by two
        parts. A directory only one part changed is that part's subtree as
        it is (no rewrite); only directories where parts meet are built.
        None when a part changed a path that another part changed something
        below (a file replaced by a directory): use `build_tree` then.
        """
        pygit2 = pygit2_module()
        odb = self.odb
        # name -> {part index: that part's changes below the name ({}: the name itself)}
        root: dict[str, Any] = {}
        for index, (_tree, paths) in enumerate(parts):
            for path in paths:
                node = root
                for name in path.split("/"):
                    node = node.setdefault(name, {}).setdefault(index, {})
        trees = [odb[tree] for tree, _ in parts]

        def entry_of(tree: Any, name: str) -> Any:
            return tree[name] if tree is not None and name in tree else None

        def subtree(entry: Any) -> Any:
            return odb[entry.id] if entry is not None and entry.filemode == MODE_TREE else None

        def build(base: Any, level: list[Any], node: dict[str, Any]) -> str | None:
            builder = odb.TreeBuilder(base) if base is not None else odb.TreeBuilder()
            for name, by_part in node.items():
                if len(by_part) == 1:
                    (index,) = by_part
                    entry = entry_of(level[index], name)
                    if entry is None:
                        if base is not None and name in base:
                            builder.remove(name)
                    else:
                        builder.insert(name, entry.id, entry.filemode)
                    continue
                if any(not below for below in by_part.values()):
                    raise _Ambiguous
                deeper = [subtree(entry_of(t, name)) if t is not None else None for t in level]
                merged: dict[str, Any] = {}
                for index, below in by_part.items():
                    for child, sub in below.items():
                        merged.setdefault(child, {})[index] = sub[index]
                result = build(subtree(entry_of(base, name)), deeper, merged)
                if result is None:
                    if base is not None and name in base:
                        builder.remove(name)
                else:
                    builder.insert(name, pygit2.Oid(hex=result), MODE_TREE)
            return str(builder.write()) if len(builder) else None

        try:
            result = build(odb[base_tree], trees, root)
        except _Ambiguous:
            return None
        return result if result is not None else str(odb.TreeBuilder().write())
