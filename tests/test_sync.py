"""`hf sync`: parts brought onto main's tip in their own worktrees; uncommitted work
kept byte for byte; a conflict stops that part, `--abort` puts it back exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import git, hf_proc, hf_stopped_at, split_with_submodule, write


def head(path: Path) -> str:
    return git(path, "rev-parse", "HEAD").strip()


def move_main(repo: Path, files: dict[str, str | bytes], message: str) -> str:
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return head(repo)


def test_rebase_keeps_both_sides_and_uncommitted_work_byte_for_byte(split3, hf):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return [1]\n"})
    git(api, "commit", "-qam", "api: orders")
    part_commit = head(api)
    # main moves: on a file the part owns (another one) and on one it does not
    tip = move_main(repo, {"src/api/users.py": "def users():\n    return ['u']\n",
                           "tools/run.sh": "#!/bin/sh\necho moved\n"}, "main: users, run")
    # uncommitted work: a modified tracked file, a staged new file, an untracked one
    binary = bytes(range(256)) + b"\r\n\0"
    write(api, {"src/api/orders.py": "def orders():\n    return [1, 2]\n",
                "src/api/staged.py": "staged = 1\n", "src/api/loose.bin": binary})
    git(api, "add", "src/api/staged.py")

    r = hf("sync", "b1/api", cwd=repo)
    assert r.code == 0, r.err
    assert "b1/api: rebased onto" in r.out
    assert "main changed 1 file(s) this part owns: src/api/users.py" in r.out
    # the part's commit sits on main's tip, main's changes are in the worktree
    assert git(api, "rev-parse", "HEAD~1").strip() == tip
    assert git(api, "log", "-1", "--format=%s").strip() == "api: orders"
    assert head(api) != part_commit
    assert (api / "tools/run.sh").read_text() == "#!/bin/sh\necho moved\n"
    assert (api / "src/api/users.py").read_text() == "def users():\n    return ['u']\n"
    # the uncommitted work is back, byte for byte
    assert (api / "src/api/orders.py").read_text() == "def orders():\n    return [1, 2]\n"
    assert (api / "src/api/staged.py").read_text() == "staged = 1\n"
    assert (api / "src/api/loose.bin").read_bytes() == binary
    assert (api / ".hf" / "TASK.md").is_file()  # hf's own ignored files untouched
    # no saved-work ref is left once it is back
    assert git(repo, "for-each-ref", "refs/hf/sync/").strip() == ""
    # the recorded base moved: status counts only the part's own files, the join takes
    # exactly them
    status = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]
    api_status = next(p for p in status["parts"] if p["name"] == "api")
    assert api_status["outside"] == 0, api_status
    assert api_status["behind"] == 0
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    j = hf("join", "b1", cwd=repo)
    assert j.code == 0, j.err
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return [1, 2]\n"
    assert (repo / "src/api/loose.bin").read_bytes() == binary
    assert (repo / "tools/run.sh").read_text() == "#!/bin/sh\necho moved\n"
    assert git(repo, "status", "--porcelain").strip() == ""


def test_status_marks_parts_behind_main(split3, hf):
    repo = split3["repo"]
    for n in range(3):
        move_main(repo, {"tools/run.sh": f"#!/bin/sh\necho {n}\n"}, f"main {n}")
    r = hf("status", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert "main +3" in r.out
    data = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]
    assert {p["name"]: p["behind"] for p in data["parts"]} == {"api": 3, "ui": 3, "docs": 3}
    assert hf("sync", "b1", cwd=repo).code == 0
    data = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]
    assert {p["behind"] for p in data["parts"]} == {0}
    assert "main +" not in hf("status", "b1", cwd=repo).out


def state_of(worktree: Path) -> dict[str, Any]:
    files = {str(p.relative_to(worktree)): p.read_bytes() for p in worktree.rglob("*")
             if p.is_file() and ".git" not in p.relative_to(worktree).parts}
    return {"head": head(worktree), "index": git(worktree, "ls-files", "-s"),
            "status": git(worktree, "status", "--porcelain=v2", "--untracked-files=all"),
            "files": files}


def test_overlapping_change_stops_lists_the_file_and_abort_restores_exactly(split3, hf):
    repo, api, ui = split3["repo"], split3["api"], split3["ui"]
    write(api, {"src/api/orders.py": "def orders():\n    return ['part']\n"})
    git(api, "commit", "-qam", "api: orders")
    write(api, {"src/api/users.py": "dirty\n", "src/api/new.py": "new\n",
                "src/api/staged.py": "s\n"})
    git(api, "add", "src/api/staged.py")
    (api / "src/api/users.py").write_text("dirty, unstaged on top\n")
    before = state_of(api)
    move_main(repo, {"src/api/orders.py": "def orders():\n    return ['main']\n"},
              "main: orders")

    r = hf("sync", "b1", cwd=repo)
    assert r.code == 1
    assert "b1/api: stopped, 1 file(s) in conflict: src/api/orders.py" in r.out
    assert "hf sync b1/api --continue" in r.err
    assert "b1/ui: rebased" in r.out  # the other parts went on
    assert head(ui) == head(repo)
    # git's conflict state, in the part's worktree, for its agent
    assert "<<<<<<<" in (api / "src/api/orders.py").read_text()
    assert git(api, "diff", "--name-only", "--diff-filter=U").split() == ["src/api/orders.py"]
    # a second sync says it is stopped, and does not start another
    again = hf("sync", "b1/api", cwd=repo)
    assert again.code == 1 and "stopped" in again.out

    r = hf("sync", "b1/api", "--abort", cwd=repo)
    assert r.code == 0, r.err
    assert state_of(api) == before
    assert git(repo, "for-each-ref", "refs/hf/sync/").strip() == ""
    assert hf("sync", "b1/api", "--abort", cwd=repo).code != 0  # nothing stopped now


def test_continue_after_resolving_finishes_the_sync(split3, hf):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return ['part']\n"})
    git(api, "commit", "-qam", "api: orders")
    write(api, {"src/api/extra.py": "kept\n"})
    tip = move_main(repo, {"src/api/orders.py": "def orders():\n    return ['main']\n"},
                    "main: orders")
    assert hf("sync", "b1/api", cwd=repo).code == 1
    assert hf("sync", "b1/api", "--continue", cwd=repo).code == 1  # not resolved yet
    write(api, {"src/api/orders.py": "def orders():\n    return ['main', 'part']\n"})
    git(api, "add", "src/api/orders.py")
    r = hf("sync", "--continue", cwd=api)  # from the part's own worktree
    assert r.code == 0, r.err
    assert "b1/api: rebased onto" in r.out
    assert git(api, "rev-parse", "HEAD~1").strip() == tip
    assert (api / "src/api/extra.py").read_text() == "kept\n"
    assert git(api, "status", "--porcelain").strip() == "?? src/api/extra.py"


def test_merge_mode_merges_main_in(split3, hf):
    repo, ui = split3["repo"], split3["ui"]
    write(ui, {"src/ui/app.js": "console.log(2)\n"})
    git(ui, "commit", "-qam", "ui: log 2")
    mine = head(ui)
    tip = move_main(repo, {"README.md": "# moved\n"}, "main: readme")
    dry = hf("sync", "b1/ui", "--merge", "--dry-run", cwd=repo)
    assert dry.code == 0 and "would merge" in dry.out and head(ui) == mine
    r = hf("sync", "b1/ui", "--merge", cwd=repo)
    assert r.code == 0, r.err
    parents = git(ui, "log", "-1", "--format=%P").split()
    assert parents == [mine, tip]
    assert (ui / "README.md").read_text() == "# moved\n"
    up = hf("sync", "b1/ui", "--json", cwd=repo).json["data"]["parts"][0]
    assert up["outcome"] == "up-to-date"


def test_the_agent_cannot_rebase_but_hf_sync_can(split3, hf):
    from hf_fanout.guard.wrapper import INSTEAD

    assert "hf sync" in INSTEAD["rebase"] and "hf sync" in INSTEAD["merge"]
    assert "hf sync" in (split3["api"] / ".hf" / "TASK.md").read_text()


def test_git_refusing_without_a_conflict_puts_everything_back(split3, hf):
    repo, api = split3["repo"], split3["api"]
    hook = repo / ".git" / "hooks" / "pre-rebase"
    hook.write_text("#!/bin/sh\necho 'no rebase today' >&2\nexit 1\n")
    hook.chmod(0o755)
    # a changed hook is a finding of the tamper check: sync refuses before git runs
    move_main(repo, {"tools/run.sh": "#!/bin/sh\necho moved\n"}, "main: run")
    refused = hf("sync", "b1/api", cwd=repo)
    assert refused.code == 1 and "changed since the split" in refused.err
    assert hf("doctor", "--accept", cwd=repo).code == 0
    write(api, {"src/api/new.py": "new\n", "src/api/orders.py": "changed\n"})
    git(api, "add", "src/api/new.py")
    before = state_of(api)
    r = hf("sync", "b1/api", cwd=repo)
    assert r.code == 1
    assert "no rebase today" in r.err or "pre-rebase" in r.err
    assert state_of(api) == before
    assert git(repo, "for-each-ref", "refs/hf/sync/").strip() == ""
    again = hf("sync", "b1/api", "--dry-run", cwd=repo)
    assert again.code == 0 and "would rebase" in again.out  # nothing left stopped


def lines(*items: str) -> str:
    return "".join(f"{i}\n" for i in items)


def index_and_files(worktree: Path) -> dict[str, Any]:
    files = {str(p.relative_to(worktree)): p.read_bytes() for p in sorted(worktree.rglob("*"))
             if p.is_file() and ".git" not in p.relative_to(worktree).parts}
    return {"staged": git(worktree, "diff", "--cached", "--name-only").split(),
            "unstaged": git(worktree, "diff", "--name-only").split(),
            "untracked": git(worktree, "ls-files", "--others", "--exclude-standard").split(),
            "files": files}


def test_the_staged_set_comes_back_after_a_sync(repo, hf):
    ten = [str(n) for n in range(1, 11)]
    move_main(repo, {"src/api/long.py": lines(*ten), "src/api/whole.py": lines(*"abcde"),
                     "src/api/clash.py": lines(*ten), "src/api/gone.py": "gone\n",
                     "src/api/plain.py": "plain\n"}, "main: more api files")
    assert hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
              cwd=repo).code == 0
    api = repo.parent / "repo.hf" / "b1" / "api"
    # staged whole, main leaves it alone
    write(api, {"src/api/orders.py": "def orders():\n    return [1]\n",
                "src/api/new.py": "new = 1\n"})
    git(api, "add", "src/api/orders.py", "src/api/new.py")
    git(api, "rm", "-q", "src/api/gone.py")
    # staged in part, main leaves it alone
    write(api, {"src/api/users.py": "def users():\n    return ['staged']\n"})
    git(api, "add", "src/api/users.py")
    write(api, {"src/api/users.py": "def users():\n    return ['staged', 'work']\n"})
    # main changes what is staged: another line of it
    write(api, {"src/api/long.py": lines(*ten[:8], "9 staged", "10")})
    git(api, "add", "src/api/long.py")
    write(api, {"src/api/long.py": lines(*ten[:8], "9 staged", "10 work")})
    write(api, {"src/api/whole.py": lines(*"abcd", "e staged")})
    git(api, "add", "src/api/whole.py")
    # staged, then taken back in the file only: the staged version clashes with main's
    write(api, {"src/api/clash.py": lines(*ten[:4], "5 staged", *ten[5:])})
    git(api, "add", "src/api/clash.py")
    write(api, {"src/api/clash.py": lines(*ten)})
    # not staged at all, and untracked
    write(api, {"src/api/plain.py": "plain, changed\n", "src/api/loose.txt": "loose\n"})
    before = index_and_files(api)
    move_main(repo, {"src/api/long.py": lines("1 main", *ten[1:]),
                     "src/api/whole.py": lines("a main", *"bcde"),
                     "src/api/clash.py": lines(*ten[:4], "5 main", *ten[5:]),
                     "tools/run.sh": "#!/bin/sh\necho main\n"}, "main moves")

    r = hf("sync", "b1/api", cwd=repo)
    assert r.code == 0, r.err
    assert "b1/api: rebased onto" in r.out
    assert "staged before, unstaged now (main changed them where they were staged): " \
        "src/api/clash.py" in r.out
    assert "the staged version is kept at refs/hf/sync/b1/api/index" in r.out
    after = index_and_files(api)
    # every path staged before is staged again but the one whose staged version clashed
    # (its file holds main's line now, as a file with no work of its own does)
    assert after["staged"] == [p for p in before["staged"] if p != "src/api/clash.py"]
    assert after["unstaged"] == [p for p in before["unstaged"] if p != "src/api/clash.py"]
    assert after["untracked"] == before["untracked"]
    # bytes: as before where main changed nothing, main's lines merged in where it did
    merged = {"src/api/long.py": lines("1 main", *ten[1:8], "9 staged", "10 work"),
              "src/api/whole.py": lines("a main", *"bcd", "e staged"),
              "src/api/clash.py": lines(*ten[:4], "5 main", *ten[5:]),
              "tools/run.sh": "#!/bin/sh\necho main\n"}
    assert after["files"] == {**before["files"], **{k: v.encode() for k, v in merged.items()}}
    # what is staged is what was staged, carried onto main's change
    assert git(api, "show", ":src/api/users.py") == "def users():\n    return ['staged']\n"
    assert git(api, "show", ":src/api/long.py") == lines("1 main", *ten[1:8], "9 staged", "10")
    assert git(api, "show", ":src/api/whole.py") == lines("a main", *"bcd", "e staged")
    assert git(api, "show", ":src/api/new.py") == "new = 1\n"
    assert "src/api/gone.py" not in git(api, "ls-files").split()
    # the staged version that could not come back is kept
    kept = git(repo, "show", "refs/hf/sync/b1/api/index:src/api/clash.py")
    assert kept == lines(*ten[:4], "5 staged", *ten[5:])


def test_merge_mode_brings_the_staged_set_back_too(split3, hf):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return ['staged']\n",
                "src/api/new.py": "new = 1\n"})
    git(api, "add", "-A")
    write(api, {"src/api/orders.py": "def orders():\n    return ['work']\n"})
    before = index_and_files(api)
    move_main(repo, {"tools/run.sh": "#!/bin/sh\necho main\n"}, "main moves")
    r = hf("sync", "b1/api", "--merge", cwd=repo)
    assert r.code == 0, r.err
    assert "unstaged now" not in r.out
    after = index_and_files(api)
    assert (after["staged"], after["unstaged"]) == (before["staged"], before["unstaged"])
    assert git(api, "show", ":src/api/orders.py") == "def orders():\n    return ['staged']\n"
    assert after["files"] == {**before["files"], "tools/run.sh": b"#!/bin/sh\necho main\n"}


def part_with_work(split3: dict[str, Path]) -> str:
    """b1/api with a commit and staged, unstaged and untracked work; main moved on
    another file. Returns main's tip."""
    api = split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return [1]\n"})
    git(api, "commit", "-qam", "api: orders")
    write(api, {"src/api/users.py": "staged\n", "src/api/new.py": "new\n"})
    git(api, "add", "src/api/users.py")
    (api / "src/api/users.py").write_text("staged, then more\n")
    return move_main(split3["repo"], {"tools/run.sh": "#!/bin/sh\necho moved\n"}, "main: run")


def test_a_sync_killed_before_gits_step_is_finished_by_continue(split3, hf):
    repo, api = split3["repo"], split3["api"]
    tip = part_with_work(split3)
    work = index_and_files(api)
    killed = hf_proc("sync", "b1/api", cwd=repo, env={**os.environ,
                                                      "HF_TEST_CRASH_AT": "sync-cleared"})
    assert killed.returncode == -signal.SIGKILL
    # the work was set aside and the worktree cleared; git's rebase never ran
    assert (api / "src/api/new.py").exists() is False
    again = hf("sync", "b1/api", cwd=repo)
    assert again.code == 1 and "was cut off" in again.err and "--continue" in again.err
    assert "b1/api (cut off)" in again.err.splitlines()[0]
    r = hf("sync", "b1/api", "--continue", cwd=repo)
    assert r.code == 0, r.err
    # the branch really is on main's tip now, with the part's commit and its work
    assert git(api, "rev-parse", "HEAD~1").strip() == tip
    assert git(api, "log", "-1", "--format=%s").strip() == "api: orders"
    assert (api / "tools/run.sh").read_text() == "#!/bin/sh\necho moved\n"
    after = index_and_files(api)
    assert {k: after[k] for k in ("staged", "unstaged", "untracked")} == \
        {k: work[k] for k in ("staged", "unstaged", "untracked")}
    mine = [f for f in work["files"] if f.startswith("src/api/")]
    assert {f: after["files"][f] for f in mine} == {f: work["files"][f] for f in mine}
    assert git(repo, "for-each-ref", "refs/hf/sync/").strip() == ""
    status = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]
    shown = next(p for p in status["parts"] if p["name"] == "api")
    assert (shown["behind"], shown["outside"]) == (0, 0)


def test_a_sync_of_a_part_another_sync_holds_is_refused_and_changes_nothing(split3, hf):
    from hf_fanout import locks

    repo, api = split3["repo"], split3["api"]
    part_with_work(split3)
    before = state_of(api)
    with locks.hold(repo / ".git/hf/locks/sync-b1.api.lock", wait=0, what="sync"):
        r = hf("sync", "b1/api", cwd=repo)
        assert r.code == 75
        assert "the sync lock is held by pid" in r.err
        assert "then run `hf sync` again" in r.err
        whole = hf("sync", "b1", "--json", cwd=repo)  # the batch: that part skipped
        outcomes = {p["part"]: p["outcome"] for p in whole.json["data"]["parts"]}
        assert outcomes == {"api": "skipped", "ui": "synced", "docs": "synced"}
    assert state_of(api) == before


def test_two_syncs_of_one_part_at_once_sync_it_once(split3):
    repo, api = split3["repo"], split3["api"]
    tip = part_with_work(split3)
    work = index_and_files(api)
    procs = [subprocess.Popen([sys.executable, "-m", "hf_fanout", "sync", "b1/api"],
                              cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes in ([0, 0], [0, 75]), results
    assert sum("rebased onto" in out for _, out, _ in results) == 1, results
    assert git(api, "rev-parse", "HEAD~1").strip() == tip
    assert git(api, "log", "-1", "--format=%s").strip() == "api: orders"
    after = index_and_files(api)
    assert {k: after[k] for k in ("staged", "unstaged", "untracked")} == \
        {k: work[k] for k in ("staged", "unstaged", "untracked")}
    assert git(repo, "for-each-ref", "refs/hf/sync/").strip() == ""


def test_a_sync_killed_once_the_work_was_back_is_finished_by_continue(split3, hf):
    repo, api = split3["repo"], split3["api"]
    tip = part_with_work(split3)
    work = index_and_files(api)
    killed = hf_proc("sync", "b1/api", cwd=repo, env={**os.environ,
                                                      "HF_TEST_CRASH_AT": "sync-reapplied"})
    assert killed.returncode == -signal.SIGKILL
    r = hf("sync", "b1/api", "--continue", cwd=repo)
    assert r.code == 0, r.err
    assert git(api, "rev-parse", "HEAD~1").strip() == tip
    after = index_and_files(api)
    assert {k: after[k] for k in ("staged", "unstaged", "untracked")} == \
        {k: work[k] for k in ("staged", "unstaged", "untracked")}
    mine = [f for f in work["files"] if f.startswith("src/api/")]
    assert {f: after["files"][f] for f in mine} == {f: work["files"][f] for f in mine}
    assert git(api, "diff", "--cached", "src/api/users.py") != ""  # staged as it was
    assert git(repo, "for-each-ref", "refs/hf/sync/").strip() == ""


def test_a_worktree_that_became_a_repository_of_its_own_is_left_alone(split3, hf):
    """Its `.git` link replaced by `git init` on a branch of the part's name: the
    sync says so and moves nothing there (its commits are not this repository's)."""
    repo, api = split3["repo"], split3["api"]
    move_main(repo, {"tools/run.sh": "#!/bin/sh\necho moved\n"}, "main: run")
    (api / ".git").unlink()
    git(api, "init", "-q", "-b", "hf/b1/api")
    write(api, {"src/api/elsewhere.py": "committed in another repository\n"})
    git(api, "add", "-A")
    git(api, "-c", "user.name=a", "-c", "user.email=a@a.invalid", "commit", "-qm", "work")
    foreign = head(api)
    r = hf("sync", "b1/api", cwd=repo)
    assert "not a worktree of this repository any more" in r.out, r.err
    assert head(api) == foreign and git(api, "log", "--format=%s").strip() == "work"
    assert (api / "src/api/elsewhere.py").read_text() == "committed in another repository\n"
    assert (api / "tools/run.sh").read_text() != "#!/bin/sh\necho moved\n"


def sync_stopped(repo: Path, hf: Any) -> dict[str, bool]:
    data = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]
    return {p["name"]: p["sync_stopped"] for p in data["parts"]}


def test_abort_puts_the_part_back_exactly_from_every_point_a_sync_is_cut_off(split3, hf):
    """Killed before git's step (`sync-cleared`) or once the work was put back on
    top (`sync-reapplied`, the branch already rebased or merged): `--abort` takes
    the branch back to where it was and the index and files back as saved."""
    repo, api = split3["repo"], split3["api"]
    part_with_work(split3)
    before = state_of(api)
    for mode in ("rebase", "merge"):
        for point in ("sync-cleared", "sync-reapplied"):
            args = ["sync", "b1/api", *(["--merge"] if mode == "merge" else [])]
            killed = hf_proc(*args, cwd=repo, env={**os.environ, "HF_TEST_CRASH_AT": point})
            assert killed.returncode == -signal.SIGKILL, (mode, point, killed.stderr)
            assert sync_stopped(repo, hf)["api"] is True  # status offers --abort
            if point == "sync-reapplied":
                assert head(api) != before["head"]  # git's step went through
            r = hf("sync", "b1/api", "--abort", cwd=repo)
            assert r.code == 0, (mode, point, r.err)
            assert "b1/api: sync taken back" in r.out
            assert state_of(api) == before, (mode, point)
            assert git(repo, "for-each-ref", "refs/hf/sync/").strip() == "", (mode, point)
            assert sync_stopped(repo, hf)["api"] is False
            assert hf("sync", "b1/api", "--continue", cwd=repo).code != 0  # none stopped
    # and a sync starts again from there
    r = hf("sync", "b1/api", cwd=repo)
    assert r.code == 0 and "b1/api: rebased onto" in r.out, r.err


def test_abort_after_a_cut_off_sync_keeps_commits_made_since(split3, hf):
    repo, api = split3["repo"], split3["api"]
    tip = part_with_work(split3)
    killed = hf_proc("sync", "b1/api", cwd=repo,
                     env={**os.environ, "HF_TEST_CRASH_AT": "sync-reapplied"})
    assert killed.returncode == -signal.SIGKILL
    write(api, {"src/api/later.py": "made after the sync\n"})
    git(api, "add", "src/api/later.py")
    git(api, "commit", "-qm", "api: later")
    after = state_of(api)
    r = hf("sync", "b1/api", "--abort", cwd=repo)
    assert r.code == 1
    assert "moved since the sync" in r.err and "--abort changed nothing" in r.err
    assert "hf sync b1/api --continue" in r.err
    assert state_of(api) == after  # nothing moved, nothing lost
    assert sync_stopped(repo, hf)["api"] is True
    r = hf("sync", "b1/api", "--continue", cwd=repo)
    assert r.code == 0, r.err
    assert git(api, "rev-parse", "HEAD~2").strip() == tip
    assert git(api, "log", "-1", "--format=%s").strip() == "api: later"
    assert git(repo, "for-each-ref", "refs/hf/sync/").strip() == ""


def part_with_conflicting_work(split3: dict[str, Path]) -> str:
    """b1/api with a commit main does not touch, and uncommitted work (staged,
    unstaged, untracked) of which one unstaged file main changes on the same line.
    Returns main's tip."""
    api = split3["api"]
    write(api, {"src/api/users.py": "def users():\n    return ['part']\n"})
    git(api, "commit", "-qam", "api: users")
    write(api, {"src/api/staged.py": "staged = 1\n", "src/api/loose.txt": "loose\n"})
    git(api, "add", "src/api/staged.py")
    write(api, {"src/api/orders.py": "def orders():\n    return ['work']\n"})
    return move_main(split3["repo"], {"src/api/orders.py": "def orders():\n    return ['main']\n"},
                     "main: orders")


def test_a_conflict_in_the_work_put_back_stops_the_sync_and_abort_takes_it_back(split3, hf):
    repo, api = split3["repo"], split3["api"]
    part_with_conflicting_work(split3)
    before = state_of(api)
    r = hf("sync", "b1/api", cwd=repo)
    assert r.code == 1
    assert "sync stopped on a conflict in 1 part(s): b1/api (src/api/orders.py)" in r.err
    assert "uncommitted work in conflict: src/api/orders.py" in r.out
    assert "hf sync b1/api --continue" in r.err and "--abort" in r.err
    assert "<<<<<<<" in (api / "src/api/orders.py").read_text()
    # the sync is stopped, as on a conflict in git's step: status, a new sync, the join
    assert sync_stopped(repo, hf)["api"] is True
    again = hf("sync", "b1/api", cwd=repo)
    assert again.code == 1 and "stopped" in again.out
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/hf/sync/").split() == \
        ["refs/hf/sync/b1/api/index", "refs/hf/sync/b1/api/work"]
    r = hf("sync", "b1/api", "--abort", cwd=repo)
    assert r.code == 0, r.err
    assert state_of(api) == before
    assert git(repo, "for-each-ref", "refs/hf/sync/").strip() == ""
    assert sync_stopped(repo, hf)["api"] is False


def test_a_conflict_in_the_work_put_back_is_finished_by_continue_once_resolved(split3, hf):
    repo, api = split3["repo"], split3["api"]
    tip = part_with_conflicting_work(split3)
    assert hf("sync", "b1/api", cwd=repo).code == 1
    still = hf("sync", "b1/api", "--continue", cwd=repo)  # markers still there
    assert still.code == 1 and "still in conflict" in still.err
    assert "<<<<<<<" in (api / "src/api/orders.py").read_text()
    write(api, {"src/api/orders.py": "def orders():\n    return ['main', 'work']\n"})
    git(api, "add", "src/api/orders.py")
    r = hf("sync", "--continue", cwd=api)
    assert r.code == 0, r.err
    assert "b1/api: rebased onto" in r.out
    assert git(api, "rev-parse", "HEAD~1").strip() == tip
    assert git(api, "log", "-1", "--format=%s").strip() == "api: users"
    # the staged set as it was: the resolved file is work again, not staged
    after = index_and_files(api)
    assert after["staged"] == ["src/api/staged.py"]
    assert after["unstaged"] == ["src/api/orders.py"]
    assert after["untracked"] == ["src/api/loose.txt"]
    assert (api / "src/api/orders.py").read_text() == "def orders():\n    return ['main', 'work']\n"
    assert git(repo, "for-each-ref", "refs/hf/sync/").strip() == ""
    assert sync_stopped(repo, hf)["api"] is False
    status = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]
    shown = next(p for p in status["parts"] if p["name"] == "api")
    assert shown["behind"] == 0  # the base moved with the sync


def test_a_sync_killed_inside_gits_rebase_loses_no_commit_on_continue_or_abort(repo, hf):
    """hf and its git killed while the rebase picks the part's commits (kills spread
    over the sync's run): `--continue` used to take the pick git was killed in as
    done and drop that commit. Now every commit of the part is on main's tip after
    `--continue`, with its work put back, and `--abort` takes it all back exactly."""
    import random
    import time

    rng = random.Random(11)
    hits = {"continue": 0, "abort": 0}
    for n in range(30):
        if min(hits["continue"], hits["abort"]) >= 2:
            break
        batch = f"s{n}"
        assert hf("split", batch, "--part", "api=src/api/**", cwd=repo).code == 0
        api = repo.parent / "repo.hf" / batch / "api"
        for i in range(60):
            write(api, {f"src/api/c{i}.py": f"commit {i}\n"})
            git(api, "add", "-A")
            git(api, "commit", "-qm", f"part c{i}")
        write(api, {"src/api/loose.py": "uncommitted\n"})
        move_main(repo, {f"tools/m{n}.sh": "moved\n"}, f"main {n}")
        before = state_of(api)
        proc = subprocess.Popen([sys.executable, "-m", "hf_fanout", "sync", f"{batch}/api"],
                                cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(rng.uniform(0.3, 1.6))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        git_dir = Path(git(api, "rev-parse", "--absolute-git-dir").strip())
        if not (git_dir / "rebase-merge").exists():
            continue  # (before or after git's rebase: other tests cover those)
        if not hits.get("locked"):  # what a git killed while it held its lock leaves
            (git_dir / "index.lock").touch()
        if (git_dir / "index.lock").exists():  # (the killed git's): refused, nothing changed
            held = hf("sync", f"{batch}/api", "--continue", cwd=repo)
            assert held.code != 0 and "index.lock is there" in held.err, held.err
            assert (git_dir / "rebase-merge").exists()
            hits["locked"] = hits.get("locked", 0) + 1
        for lock in [*git_dir.glob("*.lock"), *git_dir.parent.parent.glob("*.lock")]:
            lock.unlink()  # (git's own, killed with it: a person removes them, as git says)
        again = hf("sync", f"{batch}/api", cwd=repo)  # says how it was left
        assert again.code == 1 and "cut off while git's rebase ran" in again.err, again.err
        doctor = hf("doctor", cwd=repo)  # a problem, not "stopped on a conflict"
        assert doctor.code == 1, doctor.out
        assert f"{batch}/api: its hf sync was cut off while git's rebase ran" in doctor.out
        way = "continue" if hits["continue"] <= hits["abort"] else "abort"  # (in turns)
        hits[way] += 1
        r = hf("sync", f"{batch}/api", f"--{way}", cwd=repo)
        assert r.code == 0, (n, way, r.out, r.err)
        if way == "abort":
            assert state_of(api) == before, n
            continue
        assert "was taken back and run again" in r.out
        subjects = git(api, "log", "--format=%s", f"{head(repo)}..HEAD").splitlines()
        assert subjects == [f"part c{i}" for i in reversed(range(60))], n
        assert git(api, "rev-parse", "HEAD~60").strip() == head(repo)
        assert all((api / f"src/api/c{i}.py").read_text() == f"commit {i}\n"
                   for i in range(60))
        assert (api / "src/api/loose.py").read_text() == "uncommitted\n"
        assert git(api, "status", "--porcelain") == "?? src/api/loose.py\n"
    print(f"kills inside git's rebase, by the way out: {hits}")
    assert min(hits["continue"], hits["abort"]) >= 1, f"no kill landed in git's rebase: {hits}"


def test_a_sync_under_way_is_running_for_status_and_join_not_stopped(split3, hf):
    """While `hf sync` runs, its record is there as when it stopped: status and the
    join called it stopped and pointed at --continue / --abort."""

    repo = split3["repo"]
    part_with_work(split3)
    with hf_stopped_at("sync-cleared", "sync", "b1/api", cwd=repo) as paused:
        shown = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]["parts"]
        api = next(p for p in shown if p["name"] == "api")
        assert (api["sync_running"], api["sync_stopped"]) == (True, False)
        assert "api: its hf sync is running" in hf("status", "b1", cwd=repo).out
        for name in ("api", "ui", "docs"):
            assert hf("done", f"b1/{name}", cwd=repo).code == 0
        r = hf("join", "b1", cwd=repo)
        assert r.code == 75 and "its `hf sync` is running (held by pid" in r.err, r.err
    assert paused.wait(timeout=60) == 0, paused.stderr.read() if paused.stderr else ""
    assert sync_stopped(repo, hf)["api"] is False
    assert hf("join", "b1", cwd=repo).code == 0


@pytest.mark.parametrize("mode", [[], ["--merge"]])
def test_a_stopped_sync_does_not_count_mains_changes_as_the_parts(split3, hf, mode):
    """Main also changed files the part does not own; while the sync is stopped the
    worktree holds them (staged by the merge, or below the rebased HEAD), but they
    are main's: status must not call them the part's, nor tell to revert them."""
    repo = split3["repo"]
    part_with_conflicting_work(split3)
    write(repo, {"src/ui/app.js": "main's ui\n"})
    git(repo, "commit", "-qam", "main: ui")
    r = hf("sync", "b1/api", *mode, cwd=repo)
    assert r.code == 1 and "sync stopped on a conflict" in r.err
    r = hf("status", "b1", "--json", cwd=repo)
    api = {p["name"]: p for p in r.json["data"]["batches"][0]["parts"]}["api"]
    assert (api["outside"], api["outside_paths"], api["sync_stopped"]) == (0, [], True)
    for name in ("api", "ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    shown = hf("status", "b1", cwd=repo).out
    assert "revert them" not in shown
    assert "next: part api's `hf sync` is stopped: `hf sync b1/api --continue`" in shown


def test_a_sync_that_takes_an_edit_along_a_rename_out_of_the_parts_files_says_so(split3, hf):
    """The part edited src/api/orders.py; main moved that file to docs/ (another
    part's files). git's rebase carries the edit to docs/orders.py: the sync says
    the part's commits now change a file it does not own, which the join refuses
    (before: "rebased" and nothing more, and only the join said it, with a way
    that puts the file back and the edit with it). A rename inside its own files
    is not reported."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return ['mine']\n"})
    git(api, "commit", "-qam", "api edits orders")
    git(repo, "mv", "src/api/orders.py", "docs/orders.py")
    git(repo, "mv", "src/api/users.py", "src/api/people.py")
    git(repo, "commit", "-qm", "main moves files")
    r = hf("sync", "b1/api", "--json", cwd=repo)
    assert r.code == 0, r.err
    [part] = [p for p in r.json["data"]["parts"] if p["part"] == "api"]
    assert part["outcome"] == "synced" and part["moved_outside"] == ["docs/orders.py"]
    assert "return ['mine']" in git(api, "show", "HEAD:docs/orders.py")
    write(split3["ui"], {"src/ui/app.js": "console.log(2)\n"})
    git(split3["ui"], "commit", "-qam", "ui")
    git(repo, "mv", "src/ui/page.html", "src/ui/index.html")
    git(repo, "commit", "-qm", "main renames inside ui")
    plain = hf("sync", "b1", cwd=repo)
    assert plain.code == 0, plain.err
    assert "does not own" not in plain.out.split("b1/ui")[1]


def test_work_on_a_file_main_deleted_stops_with_a_way_that_works(split3, hf):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return ['work']\n"})
    (repo / "src/api/orders.py").unlink()
    git(repo, "commit", "-qam", "main: orders gone")
    r = hf("sync", "b1/api", cwd=repo)
    assert r.code == 1
    assert "uncommitted work in conflict: src/api/orders.py" in r.out
    assert "<<<<<<<" not in (api / "src/api/orders.py").read_text()  # no markers here
    assert "`git rm` it where one side deleted it" in r.out + r.err
    git(api, "rm", "-q", "src/api/orders.py")  # the way the hint gives
    done = hf("sync", "b1/api", "--continue", cwd=repo)
    assert done.code == 0, done.err
    assert not (api / "src/api/orders.py").exists()
    assert sync_stopped(repo, hf)["api"] is False


def test_a_lock_a_killed_rebase_left_is_named_with_its_rm_and_the_sync_then_goes(split3, hf):
    """git killed inside a sync's rebase can leave CHERRY_PICK_HEAD.lock in the part's
    git dir: the next sync says git's reason (not its progress line) and the `rm`
    that frees it, and goes once it is done."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "the part's\n"})
    git(api, "commit", "-qam", "part work")
    write(repo, {"README.md": "main moved\n"})
    git(repo, "commit", "-qam", "main moved")
    lock = repo / ".git/worktrees/api/CHERRY_PICK_HEAD.lock"
    lock.touch()
    r = hf("sync", "b1/api", cwd=repo)
    assert r.code == 1
    assert "Rebasing (" not in r.err.splitlines()[0]
    assert f"Unable to create '{lock}': File exists." in r.err.splitlines()[0]
    assert f"(`rm {lock}`), then run the same hf command again" in r.err
    subprocess.run(r.err.split("(`", 1)[1].split("`", 1)[0], shell=True, check=True)
    r = hf("sync", "b1/api", cwd=repo)
    assert r.code == 0, r.err
    assert git(api, "log", "-2", "--format=%s").split("\n")[:2] == ["part work", "main moved"]
    assert git(api, "status", "--porcelain") == ""


def test_a_rebase_git_stops_without_a_conflict_is_taken_back_and_says_to_sync_again(
        split3, hf):
    """git's rebase stops on a commit it cannot make (here: commit.gpgSign with a
    signing program that fails), with no conflict to resolve: the sync is taken
    back, and the hint says to sync again (there is nothing to --continue)."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "the part's\n"})
    git(api, "commit", "-qam", "part work")
    move_main(repo, {"tools/run.sh": "#!/bin/sh\necho moved\n"}, "main: run")
    git(repo, "config", "commit.gpgSign", "true")
    git(repo, "config", "gpg.program", "false")
    assert hf("doctor", "--accept", cwd=repo).code == 0
    before = state_of(api)
    r = hf("sync", "b1/api", cwd=repo)
    assert r.code == 1
    assert r.err.splitlines()[0].endswith("failed: error: gpg failed to sign the data")
    assert r.err.splitlines()[1] == ("hint: the sync was taken back (the part is as it was "
                                     "before it): fix what git says, then `hf sync b1/api` "
                                     "again")
    assert state_of(api) == before
    assert "no sync of part b1/api is stopped" in hf("sync", "b1/api", "--continue",
                                                     cwd=repo).err
    git(repo, "config", "--unset", "gpg.program")
    git(repo, "config", "commit.gpgSign", "false")
    assert hf("doctor", "--accept", cwd=repo).code == 0
    r = hf("sync", "b1/api", cwd=repo)
    assert r.code == 0, r.err
    assert git(api, "log", "-2", "--format=%s").split("\n")[:2] == ["part work", "main: run"]


def test_a_sync_after_mains_tip_was_amended_leaves_the_old_commit_behind(repo, hf):
    """Main's tip had a key in it; after the split the person took it out with an
    amend. The sync replays the part's own commits only, not main's old tip: the
    key is in no commit of the part's branch, the join goes without a tamper
    refusal, and the key is not brought back into main."""
    write(repo, {"src/api/config.env": "API_KEY=hunter2\n", "docs/feature.md": "f\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "feature (with the key, by mistake)")
    assert hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
              cwd=repo).code == 0
    api = repo.parent / "repo.hf" / "b1" / "api"
    write(api, {"src/api/search.py": "def search(): ...\n"})
    git(api, "add", "-A")
    git(api, "commit", "-qm", "search")
    git(repo, "rm", "-q", "src/api/config.env")
    git(repo, "commit", "-q", "--amend", "-m", "feature")
    r = hf("sync", "b1/api", cwd=repo)
    assert r.code == 0, r.err
    assert git(api, "rev-list", "--count", "HEAD", "--not",
               git(repo, "rev-parse", "HEAD").strip()).strip() == "1"
    assert "hunter2" not in git(api, "log", "-p", "HEAD")
    for part in ("api", "ui"):
        assert hf("done", f"b1/{part}", cwd=repo).code == 0
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "grep", "-c", "hunter2", "HEAD", "--", ".", check=False) == ""
    assert (repo / "src/api/search.py").read_text() == "def search(): ...\n"
    assert not (repo / "src/api/config.env").exists()


def test_submodule_recurse_in_the_persons_config_leaves_a_part_and_its_work_whole(
        tmp_path, hf):
    """`submodule.recurse=true` (a common setting) with the submodule initialised in
    the main tree: hf's own reset in a part whose submodule is not checked out would
    recurse into it and break every git command there. The sync keeps the agent's
    uncommitted work in its file, the part's git works, and the join takes it."""
    git(tmp_path, "config", "--global", "submodule.recurse", "true")
    repo, _vendor = split_with_submodule(tmp_path, hf)
    sp = tmp_path / "repo.hf" / "b1" / "sp"
    write(sp, {"src/a.py": "a\nthe agent's line\n"})
    move_main(repo, {"README.md": "main moved\n"}, "main moves")
    r = hf("sync", "b1/sp", cwd=repo)
    assert r.code == 0, r.err
    assert (sp / "src/a.py").read_text() == "a\nthe agent's line\n"
    assert not (sp / "vendor/lib/.git").exists()
    assert git(sp, "status", "--porcelain").strip() == "M src/a.py"
    for part in ("sp", "ve"):
        assert hf("done", f"b1/{part}", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0, hf("join", "b1", cwd=repo).err
    assert git(repo, "show", "HEAD:src/a.py") == "a\nthe agent's line\n"
