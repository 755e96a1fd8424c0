"""Queue entries' own worktrees (`hf next --isolated`): shown by `hf status`, collected
by `hf gc` through the same gate as parts (nothing that is not in main is removed)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import git, write


def take_isolated(hf: Any, repo: Path, task: str) -> tuple[str, Path]:
    """A queue entry taken with `hf next --isolated`: its id and its worktree."""
    entry = hf("handoff", "--task", task, "--next", "do it", "--json", cwd=repo).json["data"]
    r = hf("next", "--isolated", "--launcher", "print", "--json", cwd=repo)
    assert r.code == 0, r.err
    worktree = repo.parent / "repo.hf" / "queue" / entry["id"]
    assert worktree.is_dir()
    return entry["id"], worktree


def branches(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()


def test_status_shows_queue_worktrees_plain_and_json(repo, hf):
    quiet, _ = take_isolated(hf, repo, "quiet")
    busy, busy_tree = take_isolated(hf, repo, "busy")
    write(busy_tree, {"notes.md": "new\n", "README.md": "# changed\n"})
    git(busy_tree, "add", "notes.md")
    git(busy_tree, "commit", "-qm", "notes")

    data = hf("status", "--json", cwd=repo).json["data"]
    shown = {q["entry"]: q for q in data["queue"]}
    assert set(shown) == {quiet, busy}
    assert shown[busy]["changed"] == 2  # one committed, one not
    assert shown[busy]["task"] == "busy" and shown[busy]["entry_state"] == "submitted"
    assert shown[busy]["branch"] == f"hf/queue/{busy}"
    assert shown[busy]["worktree"] == str(busy_tree) and not shown[busy]["missing"]
    assert shown[quiet]["changed"] == 0

    out = hf("status", cwd=repo).out
    assert "queue worktrees (`hf next --isolated`)" in out
    row = next(line for line in out.splitlines() if line.startswith(busy))
    assert " busy " in row and " submitted " in row and str(busy_tree) in row

    hf("split", "b1", "--part", "api=src/api/**", cwd=repo)
    # a named batch is all that is asked for
    assert hf("status", "b1", "--json", cwd=repo).json["data"]["queue"] == []


def test_gc_removes_what_is_in_main_and_keeps_the_rest(repo, hf):
    clean, clean_tree = take_isolated(hf, repo, "clean")
    merged, merged_tree = take_isolated(hf, repo, "merged")
    dirty, dirty_tree = take_isolated(hf, repo, "dirty")
    write(merged_tree, {"src/api/orders.py": "def orders():\n    return [1]\n"})
    git(merged_tree, "commit", "-qam", "orders return one")
    git(repo, "merge", "-q", "--no-edit", f"hf/queue/{merged}")  # the user brings it in
    write(dirty_tree, {"wip.txt": "half done\n"})

    preview = hf("gc", "--dry-run", "--json", cwd=repo).json["data"]["queue"]
    assert {q["part"]: q["action"] for q in preview} == {
        clean: "would-remove", merged: "would-remove", dirty: "kept"}
    assert clean_tree.is_dir() and merged_tree.is_dir()  # a dry run removes nothing

    r = hf("gc", cwd=repo)
    assert r.code == 0, r.err
    assert f"queue/{dirty}: kept (changes not in refs/heads/main: wip.txt" in r.out
    assert f"queue/{clean}: removed (integrated)" in r.out
    assert not clean_tree.exists() and not merged_tree.exists()
    assert branches(repo) == [f"hf/queue/{dirty}", "main"]
    assert "orders return one" in git(repo, "log", "--format=%s", "main")
    assert (dirty_tree / "wip.txt").read_text() == "half done\n"
    assert str(dirty_tree) in git(repo, "worktree", "list")
    assert hf("status", "--json", cwd=repo).json["data"]["queue"][0]["entry"] == dirty

    forced = hf("gc", "--force", "--json", cwd=repo).json["data"]["queue"]
    assert forced[0]["action"] == "removed"
    ref = f"refs/hf/rescue/queue/{dirty}"
    assert forced[0]["rescue"] == ref
    assert git(repo, "show", f"{ref}:wip.txt") == "half done\n"
    assert branches(repo) == ["main"]
    assert [p.name for p in repo.parent.iterdir()] == ["repo"]  # no empty folder left
    # no folder is left beside the repository, and git knows no such worktree
    assert [p.name for p in repo.parent.iterdir()] == ["repo"]
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert hf("status", "--json", cwd=repo).json["data"]["queue"] == []


def test_a_worktree_a_process_works_in_is_kept(repo, hf):
    entry, worktree = take_isolated(hf, repo, "agent")
    agent = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             cwd=worktree / "src", stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10  # until the process is there with its cwd
        while not Path(f"/proc/{agent.pid}/cwd").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        [kept] = hf("gc", "--json", cwd=repo).json["data"]["queue"]
        assert kept["action"] == "kept" and f"pid {agent.pid}" in kept["why"]
        assert worktree.is_dir()
    finally:
        assert agent.stdin is not None
        agent.stdin.close()
        agent.wait(timeout=10)
    [gone] = hf("gc", "--json", cwd=repo).json["data"]["queue"]
    assert gone["action"] == "removed" and not worktree.exists()


def test_a_branch_whose_worktree_was_deleted_is_judged_by_its_commits(repo, hf):
    entry, worktree = take_isolated(hf, repo, "lost")
    write(worktree, {"docs/new.md": "kept work\n"})
    git(worktree, "add", "-A")
    git(worktree, "commit", "-qm", "new doc")
    subprocess.run(["rm", "-rf", str(worktree)], check=True)
    [shown] = hf("status", "--json", cwd=repo).json["data"]["queue"]
    assert shown["missing"] and shown["changed"] == 1
    [kept] = hf("gc", "--json", cwd=repo).json["data"]["queue"]
    assert kept["action"] == "kept" and "docs/new.md" in kept["why"]
    assert f"hf/queue/{entry}" in branches(repo)
    [forced] = hf("gc", "--force", "--json", cwd=repo).json["data"]["queue"]
    assert forced["action"] == "removed"
    assert git(repo, "show", f"refs/hf/rescue/queue/{entry}:docs/new.md") == "kept work\n"
    assert branches(repo) == ["main"]
    assert [p.name for p in repo.parent.iterdir()] == ["repo"]  # no empty folder left


def test_a_worktree_switched_to_a_branch_of_its_own_is_left_alone(repo, hf):
    entry, worktree = take_isolated(hf, repo, "mine")
    git(worktree, "switch", "-q", "-c", "mine")
    write(worktree, {"mine.txt": "my own work\n"})
    [gone] = hf("gc", "--json", cwd=repo).json["data"]["queue"]
    # the entry's branch held nothing; the directory is someone's worktree now
    assert gone["action"] == "removed"
    assert branches(repo) == ["main", "mine"]
    assert (worktree / "mine.txt").read_text() == "my own work\n"
    assert git(worktree, "rev-parse", "--abbrev-ref", "HEAD").strip() == "mine"


def test_a_queue_entry_whose_branch_is_locked_is_kept_whole(repo, hf):
    """A `.lock` file beside a queue entry's branch (a git command updating it, or
    one killed there) keeps the entry whole, worktree and branch, with the reason;
    once it is gone the next gc removes both."""
    entry, worktree = take_isolated(hf, repo, "locked")
    lock = repo / ".git" / "refs" / "heads" / "hf" / "queue" / f"{entry}.lock"
    lock.write_text("")
    [kept] = hf("gc", "--json", cwd=repo).json["data"]["queue"]
    assert kept["action"] == "kept" and "is locked by" in kept["why"]
    assert f"{entry}.lock" in kept["why"]
    assert worktree.is_dir() and f"hf/queue/{entry}" in branches(repo)
    lock.unlink()
    [gone] = hf("gc", "--json", cwd=repo).json["data"]["queue"]
    assert gone["action"] == "removed" and not worktree.exists()
    assert branches(repo) == ["main"]
