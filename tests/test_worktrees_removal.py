"""Deleting a worktree's folder (worktrees/removal.py): everything under it goes, in
any shape an agent may leave it, nothing outside it does, and the space it held is
counted as `du` would count it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import git, make_repo

from hf_fanout.errors import HfError
from hf_fanout.worktrees import removal


def du_bytes(path: Path) -> int:
    """What `du` counts under `path` (allocated blocks, in bytes), `path` itself left out."""
    blocks = int(subprocess.run(["du", "-s", "-B512", str(path)], capture_output=True,
                                text=True, check=True).stdout.split()[0])
    return blocks * 512 - os.lstat(path).st_blocks * 512


def make_deep(top: Path, depth: int) -> None:
    """Folders `depth` levels below `top`, a file at the bottom (made by descriptor:
    their path is longer than the system lets a path be)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for i in range(depth):
        os.mkdir(f"d{i:04}", dir_fd=fd)
        below = os.open(f"d{i:04}", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = below
    bottom = os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(bottom, b"x")
    os.close(bottom)
    os.close(fd)


def test_a_hostile_tree_goes_and_what_it_links_to_stays(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious\n")
    tree = tmp_path / "wt"
    tree.mkdir()
    make_deep(tree, 1200)  # deeper than Python's recursion limit, longer than PATH_MAX
    (tree / "link-to-outside").symlink_to(outside)
    (tree / "file-link").symlink_to(outside / "keep.txt")
    locked = tree / "cache" / "ro"
    locked.mkdir(parents=True)
    (locked / "f.txt").write_text("read-only folder\n")
    locked.chmod(0o555)
    (tree / "cache").chmod(0o555)
    counted = du_bytes(tree)

    freed = removal.delete(tree)

    assert not os.path.lexists(tree) and not os.path.lexists(removal.aside_of(tree))
    assert (outside / "keep.txt").read_text() == "precious\n"
    assert freed == counted


def test_usage_counts_what_delete_frees(tmp_path: Path) -> None:
    tree = tmp_path / "wt"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "big").write_bytes(b"z" * 100_000)
    (tree / "small").write_text("s")
    counted = removal.usage(tree)
    assert counted == du_bytes(tree) and counted >= 100_000
    assert removal.delete(tree) == counted


def test_a_removal_cut_short_is_finished_by_the_next(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    left = removal.aside_of(folder / "p0")
    (left / "sub").mkdir(parents=True)
    (left / "sub" / "half.txt").write_text("left by a killed gc\n")
    (folder / "p1").mkdir()
    (folder / "p1" / "work.txt").write_text("a worktree that stays\n")

    assert removal.finish(folder) > 0

    assert not left.exists()
    assert (folder / "p1" / "work.txt").exists()  # only the aside folders go


def test_a_registered_worktree_is_forgotten_by_git(tmp_path: Path) -> None:
    from hf_fanout.worktrees.repository import Worktree

    repo = make_repo(tmp_path / "repo")
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "w", str(wt))
    (wt / "untracked.txt").write_text("an agent's scratch\n")
    away = tmp_path / "away"  # another worktree, its folder missing for now
    git(repo, "worktree", "add", "-q", "-b", "away", str(away))
    shutil.rmtree(away)

    freed = Worktree.discover(repo).repository.remove_worktree(wt)  # (git forgets it)

    assert freed > 0 and not wt.exists()
    listing = git(repo, "worktree", "list", "--porcelain")
    assert str(wt) not in listing
    assert f"worktree {away}\n" in listing  # that one is not hf's to forget
    assert git(repo, "rev-parse", "--verify", "-q", "refs/heads/w").strip()  # branch kept


def _tree_of_files(top: Path) -> None:
    for i in range(30):
        (top / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (top / f"d{i % 3}" / f"f{i}.txt").write_text("x" * (i * 300))


def _tool(tools: Path, name: str, script: str) -> None:
    tools.mkdir(exist_ok=True)
    (tools / name).write_text(f"#!/bin/sh\n{script}\n")
    (tools / name).chmod(0o755)


# a find that is not GNU's: it refuses -printf before it does anything, as BSD's does
NOT_GNU_FIND = 'echo "find: -printf: unknown primary or operator" >&2; exit 1'


def test_what_rm_leaves_is_deleted_by_the_walk_and_counted_once(tmp_path: Path,
                                                              monkeypatch) -> None:
    tools = tmp_path / "bin"
    _tool(tools, "find", NOT_GNU_FIND)
    fake_rm = tools / "rm"  # an rm that deletes nothing (as one refused everything)
    fake_rm.write_text("#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/rm.log\"\nexit 1\n")
    fake_rm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    tree = tmp_path / "wt"
    _tree_of_files(tree)
    counted = du_bytes(tree)

    freed = removal.delete(tree)

    assert str(removal.aside_of(tree)) in (tools / "rm.log").read_text()  # rm was asked
    assert not os.path.lexists(tree) and not os.path.lexists(removal.aside_of(tree))
    assert freed == counted


def test_find_deletes_and_counts_in_one_pass_without_du_rm_or_the_walk(
        tmp_path: Path, monkeypatch) -> None:
    tools = tmp_path / "bin"
    _tool(tools, "find",
          f'echo "$@" >> "$(dirname "$0")/find.log"\nexec {shutil.which("find")} "$@"')
    tree = tmp_path / "wt"
    _tree_of_files(tree)
    (tree / "d0" / "empty").mkdir()
    (tree / "link").symlink_to(tmp_path / "bin")
    counted = du_bytes(tree)
    for name in ("du", "rm"):
        _tool(tools, name, f'echo {name} was run >&2; exit 3')
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")

    def no_walk(path: Path) -> int:
        raise AssertionError(f"the walk was asked to delete {path}")

    monkeypatch.setattr(removal, "delete_tree", no_walk)

    freed = removal.delete(tree)

    assert f"{removal.aside_of(tree)} -mindepth 1" in (tools / "find.log").read_text()
    assert not os.path.lexists(tree) and not os.path.lexists(removal.aside_of(tree))
    assert (tools / "find").exists()  # the link's target stays
    assert freed == counted > 0


def test_what_find_leaves_is_deleted_by_the_walk_and_counted_once(
        tmp_path: Path, monkeypatch) -> None:
    tools = tmp_path / "bin"  # a find that deletes only what is in the first folder
    _tool(tools, "find", f'top="$1"; shift\n{shutil.which("find")} "$top/d0" "$@"\nexit 1')
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    tree = tmp_path / "wt"
    _tree_of_files(tree)
    counted = du_bytes(tree)

    freed = removal.delete(tree)

    assert not os.path.lexists(tree) and not os.path.lexists(removal.aside_of(tree))
    assert freed == counted


@pytest.mark.parametrize("tools", ["find", "the walk"])
def test_a_file_with_two_names_is_counted_once(tmp_path: Path, monkeypatch, tools: str) -> None:
    tree = tmp_path / "wt"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "big").write_bytes(b"q" * 50_000)
    os.link(tree / "a" / "big", tree / "second-name")
    os.link(tree / "a" / "big", tree / "a" / "third-name")
    counted = du_bytes(tree)  # (du counts a file once, whatever its names)
    if tools == "the walk":
        (tmp_path / "no-tools").mkdir()
        monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))

    assert removal.delete(tree) == counted > 50_000
    assert not os.path.lexists(tree)


@pytest.mark.parametrize("tools", ["find", "the walk"])
def test_usage_is_what_the_deletion_frees_with_names_outside_the_tree(
        tmp_path: Path, monkeypatch, tools: str) -> None:
    """A file that keeps a name outside (a package store's hard links) frees
    nothing: what the dry run counts is what the deletion then frees."""
    store = tmp_path / "store"
    store.mkdir()
    tree = tmp_path / "wt"
    (tree / "node_modules").mkdir(parents=True)
    for i in range(5):
        (store / f"pkg{i}").write_bytes(b"s" * 40_000)
        os.link(store / f"pkg{i}", tree / "node_modules" / f"pkg{i}")
    (tree / "own.txt").write_bytes(b"o" * 30_000)
    os.link(tree / "own.txt", tree / "node_modules" / "own-again.txt")
    own = os.lstat(tree / "own.txt").st_blocks * 512
    folders = sum(os.lstat(d).st_blocks * 512 for d in [tree / "node_modules"])
    if tools == "the walk":
        (tmp_path / "no-tools").mkdir()
        monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))

    counted = removal.usage(tree)

    assert counted == own + folders
    assert removal.delete(tree) == counted
    assert all((store / f"pkg{i}").read_bytes() == b"s" * 40_000 for i in range(5))


def test_without_gnu_find_du_counts_and_rm_deletes(tmp_path: Path, monkeypatch) -> None:
    tools = tmp_path / "bin"
    _tool(tools, "find", NOT_GNU_FIND)
    logged_rm = tools / "rm"  # the real rm, its arguments written down first
    logged_rm.write_text(f"#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/rm.log\"\n"
                         f"exec {shutil.which('rm')} \"$@\"\n")
    logged_rm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")

    def no_walk(path: Path) -> int:
        raise AssertionError(f"the walk was asked to delete {path}")

    monkeypatch.setattr(removal, "delete_tree", no_walk)
    tree = tmp_path / "wt"
    _tree_of_files(tree)
    counted = du_bytes(tree)

    freed = removal.delete(tree)

    assert f"-rf -- {removal.aside_of(tree)}" in (tools / "rm.log").read_text()
    assert not os.path.lexists(tree) and not os.path.lexists(removal.aside_of(tree))
    assert freed == counted > 0


def test_without_du_or_rm_the_walk_deletes_and_counts(tmp_path: Path, monkeypatch) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    tree = tmp_path / "wt"
    _tree_of_files(tree)
    counted = du_bytes(tree)
    monkeypatch.setenv("PATH", str(empty))

    freed = removal.delete(tree)

    assert not os.path.lexists(tree) and not os.path.lexists(removal.aside_of(tree))
    assert freed == counted


def test_deletions_move_each_folder_aside_at_once_and_count_it_when_gone(tmp_path: Path) -> None:
    trees = [tmp_path / "p0", tmp_path / "p1"]
    for tree in trees:
        _tree_of_files(tree)
    counted = {tree: du_bytes(tree) for tree in trees}
    deletions = removal.Deletions()
    try:
        for tree in trees:
            deletions.start(tree)
            assert not os.path.lexists(tree)  # gone under its name before its files go
        deletions.start(tmp_path / "never-there")
        freed = deletions.wait()
    finally:
        deletions.close()
    assert freed == counted
    assert sorted(os.listdir(tmp_path)) == []  # the aside folders went too


def test_usage_without_du_is_counted_by_the_walk(tmp_path: Path, monkeypatch) -> None:
    tree = tmp_path / "wt"
    _tree_of_files(tree)
    counted = du_bytes(tree)
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert removal.usage(tree) == counted
    assert removal.usage(tmp_path / "never-there") == 0


def test_a_find_stopped_by_a_signal_stops_the_deletion_and_the_next_finishes_it(
        tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C reaches `find` too: the walk does not go on deleting in its place,
    the folder stays aside, and the next removal there finishes it."""
    tools = tmp_path / "bin"
    tools.mkdir()
    _tool(tools, "find", "kill -INT $$")
    real_path = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{tools}:{real_path}")
    folder = tmp_path / "batch"
    _tree_of_files(folder / "p1")
    _tree_of_files(folder / "p2")
    deletions = removal.Deletions()
    deletions.start(folder / "p1")
    with pytest.raises(HfError, match="signal 2"):
        deletions.wait()
    deletions.close()
    aside = removal.aside_of(folder / "p1")
    assert not (folder / "p1").exists() and len(list(aside.rglob("*.txt"))) == 30

    with pytest.raises(HfError):
        removal.delete(folder / "p2")
    monkeypatch.setenv("PATH", real_path)
    assert removal.finish(folder) > 0
    assert list(folder.iterdir()) == []
