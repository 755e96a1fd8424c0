"""The main worktree's hook: while a batch runs, a ref move in the main tree from
below a part's agent is refused, however it got there; the person's own commits
pass, through their own hooks; when no batch runs the main tree has no hf hook."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import git, hf_proc, write
from liveness_support import agent_script, part_record

REAL_GIT = shutil.which("git") or "git"


def _hooks_path(repo):
    return subprocess.run([REAL_GIT, "config", "--worktree", "--get", "core.hooksPath"],
                          cwd=repo, capture_output=True, text=True, check=False).stdout.strip()


def test_a_ref_move_in_main_from_below_an_agent_is_refused(split3, tmp_path):
    repo, api = split3["repo"], split3["api"]
    head = git(repo, "rev-parse", "HEAD").strip()
    out = tmp_path / "attempts.txt"
    script = agent_script(tmp_path, "reacher", f"""
        import subprocess
        env = {{k: v for k, v in os.environ.items() if not k.startswith("HF_")}}
        results = []
        for argv in ([{REAL_GIT!r}, "-C", {str(repo)!r}, "commit", "-q", "--allow-empty",
                      "-m", "from a part"],
                     [{REAL_GIT!r}, "--git-dir", {str(repo / ".git")!r}, "update-ref",
                      "-m", "hf join b1", "refs/heads/evil", "HEAD"]):
            proc = subprocess.run(argv, env=env, capture_output=True, text=True)
            results.append(f"{{proc.returncode}} {{proc.stderr.strip()!r}}")
        open({str(out)!r}, "w").write("\\n".join(results))
    """)
    r = hf_proc("run", "--no-sandbox", "--", sys.executable, str(script), cwd=api)
    assert r.returncode == 0, r.stderr
    attempts = out.read_text().splitlines()
    for attempt in attempts:
        assert not attempt.startswith("0 "), attempts
        assert "ref update in the main tree refused: it comes from below a part's agent" \
            in attempt
    assert "evil" not in git(repo, "branch", "--list")
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert git(repo, "log", "-1", "--format=%s").strip() != "from a part"


def test_the_persons_commits_pass_through_their_own_hooks(split3, tmp_path):
    repo = split3["repo"]
    assert _hooks_path(repo) == str(repo / ".git" / "hf" / "main-hooks")
    seen = tmp_path / "their-hook-ran"
    hook = repo / ".git" / "hooks" / "post-commit"
    hook.write_text(f"#!/bin/sh\necho ran >> {seen}\n")
    hook.chmod(0o755)
    write(repo, {"notes.txt": "mine\n"})
    git(repo, "add", "notes.txt")
    start = time.perf_counter()
    git(repo, "commit", "-qm", "the person's own commit")
    assert time.perf_counter() - start < 2
    assert git(repo, "log", "-1", "--format=%s").strip() == "the person's own commit"
    assert seen.read_text() == "ran\n"


def test_no_batch_running_no_hook(split3, hf):
    repo = split3["repo"]
    for part in ("api", "ui", "docs"):
        assert hf("done", f"b1/{part}", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    assert _hooks_path(repo) == ""
    assert part_record(repo, "b1", "api")["state"] == "joined"


def test_the_main_worktrees_own_hooks_path_is_chained_to_and_put_back(repo, hf, tmp_path):
    """The person set core.hooksPath for the main worktree alone (`git config
    --worktree`, as some hook managers do). While a batch runs hf's hooks stand in
    its place and hand over to it, in the main tree and in the parts; after the
    last batch the person's setting is back."""
    log = tmp_path / "hook-log"
    write(repo, {".hooks/pre-commit": f"#!/bin/sh\necho \"$(pwd)\" >> {log}\n"})
    (repo / ".hooks/pre-commit").chmod(0o755)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "hooks")
    git(repo, "config", "extensions.worktreeConfig", "true")
    git(repo, "config", "--worktree", "core.hooksPath", ".hooks")
    r = hf("split", "b1", "--part", "api=src/api/**", "--task", "t", cwd=repo)
    assert r.code == 0, r.err
    api = repo.parent / "repo.hf" / "b1" / "api"
    assert _hooks_path(repo) == str(repo / ".git" / "hf" / "main-hooks")
    write(api, {"src/api/orders.py": "in the part\n"})
    git(api, "commit", "-qam", "in the part")
    write(repo, {"notes.txt": "during\n"})
    git(repo, "add", "notes.txt")
    git(repo, "commit", "-qm", "main during the batch")
    assert hf("done", cwd=api).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    assert _hooks_path(repo) == ".hooks"
    write(repo, {"notes.txt": "after\n"})
    git(repo, "commit", "-qam", "main after the batch")
    assert log.read_text().splitlines() == [str(api), str(repo), str(repo)]


def test_a_hooks_path_the_person_changes_during_a_batch_is_the_one_kept(repo, hf, tmp_path):
    """The person points the main worktree at other hooks (`~/...`) while a batch
    runs: when it ends theirs stands, and the next batch hands over to that one."""
    import os

    log = tmp_path / "hook-log"
    for name in ("old", "new"):
        hook = tmp_path / "home" / name / "pre-commit"
        hook.parent.mkdir(parents=True)
        hook.write_text(f"#!/bin/sh\necho {name} >> {log}\n")
        hook.chmod(0o755)
    env_home = {**os.environ, "HOME": str(tmp_path / "home")}
    git(repo, "config", "extensions.worktreeConfig", "true")
    git(repo, "config", "--worktree", "core.hooksPath", "~/old")
    r = hf_proc("split", "b1", "--part", "api=src/api/**", "--task", "t", cwd=repo,
                env=env_home)
    assert r.returncode == 0, r.stderr
    git(repo, "config", "--worktree", "core.hooksPath", "~/new")  # (hf's goes, theirs now)
    r = hf_proc("drop", "b1", cwd=repo, env=env_home)
    assert r.returncode == 0, r.stderr
    assert _hooks_path(repo) == "~/new"
    r = hf_proc("split", "b2", "--part", "api=src/api/**", "--task", "t", cwd=repo,
                env=env_home)
    assert r.returncode == 0, r.stderr
    write(repo, {"notes.txt": "during b2\n"})
    git(repo, "add", "notes.txt")
    subprocess.run([REAL_GIT, "commit", "-qm", "during b2"], cwd=repo, env=env_home,
                   check=True)
    assert log.read_text() == "new\n"


KILL_AFTER_REF_MOVE = """#!/bin/sh
# hf's git: once hf moved refs/heads/main, hf is killed at its next git command
if [ -e "$MOVED" ] && [ ! -e "$KILLED" ]; then
    touch "$KILLED"; kill -9 "$PPID"; exit 137
fi
case " $* " in *" update-ref "*" refs/heads/main "*) touch "$MOVED" ;; esac
exec "$REAL_GIT" "$@"
"""


def _kill_after_ref_move(repo, tmp_path, *args):
    """`hf ARGS` killed at its first git command after it moved main's branch."""
    wrapper = tmp_path / "git-killer"
    wrapper.write_text(KILL_AFTER_REF_MOVE)
    wrapper.chmod(0o755)
    for marker in ("moved", "killed"):
        (tmp_path / marker).unlink(missing_ok=True)
    env = {**os.environ, "HF_REAL_GIT": str(wrapper), "REAL_GIT": REAL_GIT,
           "MOVED": str(tmp_path / "moved"), "KILLED": str(tmp_path / "killed")}
    proc = hf_proc(*args, cwd=repo, env=env)
    assert (tmp_path / "killed").exists(), proc.stderr  # (it was killed, after the move)
    return proc


def test_a_join_or_undo_killed_right_after_it_landed_leaves_the_hook_as_a_whole_one_does(
        split3, hf, tmp_path):
    """The main tree's hook goes when the last running batch is joined and comes
    back when it is undone. Killed at the first step after the branch moved, the
    next command finishes that too. Before, a killed join left hf's hook on with
    no batch running, and a killed undo left it off, which the next join then
    refused as tampering with the main tree's config."""
    repo = split3["repo"]
    hooks = str(repo / ".git" / "hf" / "main-hooks")
    write(split3["api"], {"src/api/orders.py": "def orders():\n    return [5]\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert _hooks_path(repo) == hooks
    _kill_after_ref_move(repo, tmp_path, "join", "b1")
    assert hf("status", cwd=repo).code == 0  # (settles what the killed join left)
    assert "return [5]" in git(repo, "show", "HEAD:src/api/orders.py")
    assert _hooks_path(repo) == ""
    _kill_after_ref_move(repo, tmp_path, "undo", "b1")
    assert hf("status", cwd=repo).code == 0
    assert "return [5]" not in git(repo, "show", "HEAD:src/api/orders.py")
    assert _hooks_path(repo) == hooks
    again = hf("join", "b1", cwd=repo)
    assert again.code == 0, again.err  # no tampering seen: the config is as hf left it
    assert _hooks_path(repo) == ""


@pytest.mark.parametrize("damage", ["binary", "fifo"])
def test_a_damaged_record_of_the_main_worktrees_hooks_path_does_not_stop_hf(
        repo, hf, damage):
    """The file where hf keeps the main worktree's own core.hooksPath holds bytes no
    path has, or is a FIFO: it counts as none. gc, the join (real processes) and
    doctor go through, and the main tree's hooks setting is hf's no more after."""
    assert hf("split", "b1", "--part", "api=src/api/**", "--task", "t", cwd=repo).code == 0
    api = repo.parent / "repo.hf" / "b1" / "api"
    write(api, {"src/api/orders.py": "in the part\n"})
    assert hf("done", cwd=api).code == 0
    saved = repo / ".git/hf/main-hooks-path"
    saved.unlink(missing_ok=True)
    if damage == "binary":
        saved.write_bytes(b"ho\x00ks\xff\xfe\n")
    else:
        os.mkfifo(saved)
    for args in (["gc"], ["join", "b1"], ["doctor"]):
        r = subprocess.run([sys.executable, "-m", "hf_fanout", *args], cwd=repo,
                           capture_output=True, text=True, timeout=60, check=False)
        assert r.returncode in (0, 1) and "internal error" not in r.stderr, (args, r.stderr)
        if args[0] == "join":
            assert r.returncode == 0 and "joined batch b1" in r.stdout, r.stderr
    assert git(repo, "show", "HEAD:src/api/orders.py") == "in the part\n"
    assert _hooks_path(repo) == ""


def test_a_split_under_way_keeps_the_main_trees_hook_when_the_last_batch_ends(repo, hf):
    """A gc deciding that no batch runs while another split is being made (its record
    comes last; its journal says it is under way) leaves the main tree's hook for
    that split's batch; with no split under way, the hook goes."""
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    assert hf("done", "b1/api", cwd=repo).code == 0
    hooks = str(repo / ".git" / "hf" / "main-hooks")
    assert _hooks_path(repo) == hooks
    journal = repo / ".git/hf/journal/split-b2.json"
    journal.parent.mkdir(parents=True, exist_ok=True)
    # (a split of b2 under way in another process: its lock is held there)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from filelock import FileLock; "
        f"lock = FileLock({str(repo / '.git/hf/locks/split-b2.lock')!r}); lock.acquire(); "
        "print('held', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        journal.write_text('{"batch": "b2", "base": "x", "branches": [], "worktrees": []}')
        assert hf("join", "b1", cwd=repo).code == 0
        assert _hooks_path(repo) == hooks  # (b2's split is still being made)
    finally:
        holder.kill()
        holder.wait()
    journal.unlink()
    assert hf("gc", cwd=repo).code == 0
    assert _hooks_path(repo) == ""
