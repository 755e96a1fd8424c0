"""`hf doctor` and the ways out: every state hf can be left in has a hint that leads
somewhere. The tests put a repository in such a state, then follow the hints hf
prints, as a person would in a shell, until the command works again."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import git, hf_proc, hf_stopped_at, write

# A command in backticks that can be run as it is (no placeholder to fill in).
_COMMAND = re.compile(r"`((?:hf|git) [^`]+)`")
_PLACEHOLDER = re.compile(r"\.\.\.|\b[A-Z]{2,}\b|<|>")


def shell_with_hf(tmp: Path) -> dict[str, str]:
    """An environment where `hf` in a shell line is this checkout's hf."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "hf"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -m hf_fanout "$@"\n')
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def hinted(stderr: str) -> list[str]:
    """The runnable commands of the `hint:` lines, in order."""
    found = []
    for line in stderr.splitlines():
        if line.startswith("hint:") or line.startswith("  hint:"):
            found += [c for c in _COMMAND.findall(line) if not _PLACEHOLDER.search(c)]
    return found


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def follow_hints(argv: list[str], cwd: Path, env: dict[str, str],
                 max_steps: int = 6) -> list[str]:
    """Run `hf ARGV`; while it fails, run the commands its hint names, in order,
    until one makes progress (the failure changes, or it works). Returns the
    commands that made progress. Fails on a dead end: a failure whose hint names
    no command that changes anything."""
    taken: list[str] = []
    for _ in range(max_steps):
        r = run(["hf", *argv], cwd, env)
        if r.returncode == 0:
            return taken
        commands = hinted(r.stderr)
        assert commands, f"dead end: `hf {' '.join(argv)}` says\n{r.stderr}"
        for command in commands:
            ran = run(["sh", "-c", command], cwd, env)
            assert ran.returncode != 2, f"the hint names a bad command: {command}\n{ran.stderr}"
            again = run(["hf", *argv], cwd, env)
            if again.returncode == 0 or again.stderr != r.stderr:
                taken.append(command)
                break
        else:
            raise AssertionError(f"no hinted command made progress: {commands}\n{r.stderr}")
    raise AssertionError(f"still failing after {max_steps} steps: {taken}")


def _parts_done(split3: dict[str, Path], hf: Any) -> None:
    write(split3["api"], {"src/api/orders.py": "def orders():\n    return [7]\n"})
    write(split3["docs"], {"docs/guide.md": "# guide 7\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0


def test_a_damaged_join_journal_has_a_way_out(split3, hf, tmp_path):
    repo = split3["repo"]
    _parts_done(split3, hf)
    proc = hf_proc("join", "b1", cwd=repo, env={**os.environ, "HF_TEST_CRASH_AT": "journal"})
    assert proc.returncode == -signal.SIGKILL
    journal = repo / ".git/hf/journal/join.json"
    journal.write_text('{"schema": 1, "batch": "b1", "torn')
    r = hf("status", cwd=repo)  # a damaged journal does not stop what only reads
    assert r.code == 0 and "hf doctor --discard-journal" in r.err
    r = hf("doctor", cwd=repo)
    assert r.code == 1 and "damaged" in r.err and "--discard-journal" in r.err
    taken = follow_hints(["join", "b1"], repo, shell_with_hf(tmp_path))
    assert "hf doctor --discard-journal" in taken
    assert not journal.exists() and not (repo / ".git/index.lock").exists()
    kept = list((repo / ".git/hf/journal/set-aside").iterdir())
    assert len(kept) == 1 and "torn" in kept[0].read_text()  # saved, not lost
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return [7]\n"
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize(("change", "said"), [
    (lambda j: j.pop("ref"), "it has no 'ref'"),
    (lambda j: j.__setitem__("old_entries", "x"), "its 'old_entries' is not what a join writes"),
    (lambda j: j.__setitem__("index_lock", [[1, "x"]]),
     "its 'index_lock' is not what a join writes"),
])
def test_a_journal_with_a_bad_field_names_the_field(split3, hf, change, said):
    repo = split3["repo"]
    _parts_done(split3, hf)
    proc = hf_proc("join", "b1", cwd=repo, env={**os.environ, "HF_TEST_CRASH_AT": "journal"})
    assert proc.returncode == -signal.SIGKILL
    journal = repo / ".git/hf/journal/join.json"
    data = json.loads(journal.read_text())
    change(data)
    journal.write_text(json.dumps(data))
    r = hf("join", "b1", cwd=repo)
    assert r.code != 0
    assert f"the join journal {journal} is damaged ({said})\n" in r.err
    assert "hf doctor --discard-journal" in r.err
    assert json.loads(journal.read_text()) == data  # left as it was, for the person


def test_a_deleted_part_branch_has_a_way_out(split3, hf, tmp_path):
    repo = split3["repo"]
    write(split3["api"], {"src/api/orders.py": "def orders():\n    return [8]\n"})
    git(split3["api"], "commit", "-qam", "api work")
    _parts_done(split3, hf)
    git(repo, "update-ref", "-d", "refs/heads/hf/b1/api")
    taken = follow_hints(["join", "b1"], repo, shell_with_hf(tmp_path))
    assert "hf doctor --accept" in taken
    assert any(t.startswith("git update-ref refs/heads/hf/b1/api ") for t in taken), taken
    # the part's own commit was found again and joined
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return [7]\n"
    assert "api work" in git(repo, "log", "--all", "--format=%s")


def test_a_part_can_be_left_out_when_its_branch_is_gone(split3, hf):
    repo = split3["repo"]
    _parts_done(split3, hf)
    git(repo, "update-ref", "-d", "refs/heads/hf/b1/ui")
    assert hf("doctor", "--accept", cwd=repo).code == 0
    r = hf("join", "b1", cwd=repo)
    assert r.code == 1 and "`hf drop b1/ui`" in r.err
    assert hf("drop", "b1/ui", cwd=repo).code == 0
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    r = hf("status", "b1", "--json", cwd=repo)
    states = {p["name"]: p["state"] for p in r.json["data"]["batches"][0]["parts"]}
    assert states == {"api": "joined", "ui": "dropped", "docs": "joined"}
    assert r.json["data"]["batches"][0]["state"] == "joined"


def test_a_missing_worktree_and_a_blocked_part_have_a_way_out(split3, hf, tmp_path):
    repo = split3["repo"]
    _parts_done(split3, hf)
    assert hf("blocked", "b1/ui", "--reason", "waiting", cwd=repo).code == 0
    import shutil

    shutil.rmtree(split3["docs"])
    taken = follow_hints(["join", "b1"], repo, shell_with_hf(tmp_path))
    assert "hf done b1/ui" in taken
    assert any("git worktree add" in t for t in taken), taken
    assert (repo / "docs/guide.md").read_text() == "# guide\n"  # its work was uncommitted


@pytest.mark.parametrize("change", ["hook", "config"])
def test_a_tamper_finding_has_a_way_out(split3, hf, tmp_path, change):
    repo = split3["repo"]
    _parts_done(split3, hf)
    if change == "hook":
        hook = repo / ".git/hooks/post-merge"
        hook.write_text("#!/bin/sh\nexit 0\n")
        hook.chmod(0o755)
    else:
        git(repo, "config", "user.signingkey", "abc")
    taken = follow_hints(["join", "b1"], repo, shell_with_hf(tmp_path))
    assert taken == ["hf doctor --accept"]


def test_doctor_shows_every_pause_in_force_and_each_limit_with_its_count(split3, hf, tmp_path):
    """Paused user-wide, repository-wide and one batch; a live agent: doctor lists the
    three pauses (who, why) and every limit with what it is at; pausing is no problem."""
    from liveness_support import Procs, agent_script, part_record, wait_for

    from hf_fanout.config import user_config_dir

    repo = split3["repo"]
    user_config_dir().mkdir(parents=True, exist_ok=True)
    (user_config_dir() / "config.toml").write_text("max_live_agents = 3\n"
                                                   "max_parts_per_batch = 3\n")
    procs = Procs()
    try:
        procs.hf_run(split3["api"], agent_script(tmp_path, "sleeps", "time.sleep(60)"))
        wait_for(lambda: part_record(repo, "b1", "api").get("worker"), what="b1/api live")
        assert hf("pause", "b1", "--reason", "review first", cwd=repo).code == 0
        assert hf("pause", "--reason", "lunch", cwd=repo).code == 0
        assert hf("pause", "--all", "--reason", "battery low", cwd=repo).code == 0
        r = hf("doctor", "--json", cwd=repo)
        assert r.code == 0, r.out
        findings = r.json["data"]["findings"]
        paused = [f["detail"] for f in findings if f["what"] == "pause"]
        assert len(paused) == 3
        assert paused[0].startswith("every repository (hf pause --all) is paused by user ")
        assert paused[0].endswith(": battery low")
        assert paused[1].startswith("the repository is paused") and paused[1].endswith("lunch")
        assert paused[2].startswith("batch b1 is paused") and "review first" in paused[2]
        limits = {f["detail"].split()[0]: f["detail"] for f in findings if f["what"] == "limit"}
        assert limits["max_live_agents"] == "max_live_agents 1/3 (live agents in this repository)"
        assert limits["max_parts_per_batch"] == (
            "max_parts_per_batch 3/3 (parts of the largest running batch) (reached: what "
            "would go over it is refused)")
        assert limits["max_spawns_per_hour"].startswith("max_spawns_per_hour 0/20")
        assert hf("resume", "--all", cwd=repo).code == 0
        human = hf("doctor", cwd=repo).out
        assert "every repository" not in human and "pause: the repository is paused" in human
        assert "limit: max_live_agents_per_user 1/" in human
    finally:
        procs.end_all()


@pytest.mark.parametrize("damage", [b"", b'{"state": "work', b"\x00\x01"])
def test_a_damaged_agent_state_is_reported_by_doctor(split3, hf, damage):
    repo = split3["repo"]
    state = repo / ".git/hf/batches/b1/agent/api/state.json"
    assert hf("agent-event", "working", "--part", "b1/api", cwd=repo).code == 0
    state.write_bytes(damage)  # (a power cut: it is written without fsync)
    status = hf("status", cwd=repo)
    assert "damaged" in status.out and "see `hf doctor`" in status.out
    r = hf("doctor", "--json", cwd=repo)
    assert r.code == 1
    assert r.json["error"]["code"] == "problems_found"
    found = [f for f in r.json["data"]["findings"] if f["what"] == "record"]
    assert len(found) == 1 and str(state) in found[0]["detail"], found
    assert state.read_bytes() == damage  # reported, left as it is
    state.unlink()  # what the hint says: fix or remove it
    assert hf("doctor", cwd=repo).code == 0
    assert hf("status", "b1", cwd=repo).code == 0


def test_a_sync_cut_off_has_a_way_out(split3, hf, tmp_path):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return [7]\n"})
    write(repo, {"tools/run.sh": "#!/bin/sh\necho moved\n"})
    git(repo, "commit", "-qam", "main: run")
    killed = hf_proc("sync", "b1/api", cwd=repo,
                     env={**os.environ, "HF_TEST_CRASH_AT": "sync-cleared"})
    assert killed.returncode == -signal.SIGKILL
    r = hf("doctor", cwd=repo)
    assert r.code == 1 and "sync: b1/api: its hf sync was cut off before it finished" in r.out
    taken = follow_hints(["doctor"], repo, shell_with_hf(tmp_path))
    assert taken == ["hf sync b1/api --continue"]
    assert (api / "src/api/orders.py").read_text() == "def orders():\n    return [7]\n"
    assert git(api, "rev-parse", "HEAD").strip() == git(repo, "rev-parse", "HEAD").strip()


def test_a_sync_stopped_on_a_conflict_is_said_not_a_problem(split3, hf):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return ['part']\n"})
    git(api, "commit", "-qam", "api: orders")
    write(repo, {"src/api/orders.py": "def orders():\n    return ['main']\n"})
    git(repo, "commit", "-qam", "main: orders")
    assert hf("sync", "b1/api", cwd=repo).code == 1
    r = hf("doctor", cwd=repo)
    assert r.code == 0, r.out + r.err
    assert "sync: b1/api: its hf sync stopped on a conflict" in r.out
    assert "`hf sync b1/api --abort`" in r.out


def test_discarding_an_unreadable_journal_says_the_files_were_not_put_back(split3, hf):
    """A journal torn after the join wrote the main tree's files: which paths it
    wrote is lost with it, and the discard says so instead of claiming to have
    put the files back; what `git status` then lists is the join's writing."""
    repo = split3["repo"]
    write(split3["api"], {"src/api/new.py": "n = 1\n"})
    _parts_done(split3, hf)
    proc = hf_proc("join", "b1", cwd=repo, env={**os.environ, "HF_TEST_CRASH_AT": "applied"})
    assert proc.returncode == -signal.SIGKILL
    journal = repo / ".git/hf/journal/join.json"
    journal.write_bytes(journal.read_bytes()[:100])
    r = hf("doctor", "--discard-journal", cwd=repo)
    assert "saved aside and removed the join journal" in r.out
    assert "were not put back" in r.out + r.err and "git restore PATH" in r.out + r.err
    assert r.code == 1
    listed = git(repo, "status", "--porcelain")
    assert "src/api/orders.py" in listed and "src/api/new.py" in listed
    git(repo, "restore", "src/api/orders.py", "docs/guide.md")
    (repo / "src/api/new.py").unlink()
    assert git(repo, "status", "--porcelain") == ""
    j = hf("join", "b1", cwd=repo)
    assert j.code == 0, j.err
    assert (repo / "src/api/new.py").read_text() == "n = 1\n"


def test_a_missing_part_record_is_damaged_and_has_a_way_out(split3, hf):
    """A part record gone while its batch lists the part reads as a torn one does:
    the overview shows the batch damaged, doctor reports it, and what needs the
    parts refuses in one line that says how to go on. Taking the part out of the
    batch record, as the hint says, lets the batch be shown and dropped."""
    import json

    repo = split3["repo"]
    path = repo / ".git/hf/batches/b1/parts/ui.json"
    batch_file = repo / ".git/hf/batches/b1/batch.json"
    path.unlink()
    r = hf("status", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert {b["id"]: b["state"] for b in r.json["data"]["batches"]} == {"b1": "damaged"}
    r = hf("doctor", "--json", cwd=repo)
    assert r.code == 1 and r.json["error"]["code"] == "problems_found"
    found = [f for f in r.json["data"]["findings"] if f["what"] == "record"]
    assert len(found) == 1 and found[0]["level"] == "problem", found
    assert str(path) in found[0]["detail"]
    way_out = f'take "ui" out of "parts" in {batch_file}'
    assert way_out in found[0]["hint"]
    for args in (("status", "b1"), ("drop", "b1"), ("drop", "b1/ui")):
        r = hf(*args, cwd=repo)
        assert r.code == 1, (args, r.out)
        lines = r.err.splitlines()
        assert len(lines) == 2 and lines[0].startswith("hf: error: part b1/ui has no record"), \
            (args, r.err)
        assert way_out in lines[1], (args, r.err)
    r = hf("drop", "b1/nosuch", cwd=repo)  # a part the batch never had: not found
    assert r.code == 1 and "no part 'nosuch' in batch 'b1'" in r.err
    assert not path.exists()  # hf invents no record
    data = json.loads(batch_file.read_text())
    data["parts"].remove("ui")
    batch_file.write_text(json.dumps(data))
    r = hf("status", "b1", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert [p["name"] for p in r.json["data"]["batches"][0]["parts"]] == ["api", "docs"]
    assert hf("drop", "b1", cwd=repo).code == 0


def test_an_old_index_lock_left_without_a_journal_is_a_problem_with_the_way_out(repo, hf):
    """A git or hf command killed while it held the main index lock: git refuses to
    write the index until it goes; doctor says so once the lock is old."""
    lock = repo / ".git/index.lock"
    lock.write_bytes(b"")
    assert "index-lock" not in hf("doctor", "--json", cwd=repo).out  # fresh: a git at work
    old = time.time() - 60
    os.utime(lock, (old, old))
    r = hf("doctor", "--json", cwd=repo)
    assert r.code == 1
    found = [f for f in r.json["data"]["findings"] if f["what"] == "index-lock"]
    assert len(found) == 1 and found[0]["level"] == "problem"
    assert f"rm {lock}" in found[0]["hint"]
    assert lock.exists()  # hf leaves it: it cannot know no git is running


def test_git_locks_a_killed_git_left_in_main_and_in_a_part_are_problems_with_the_way_out(
        split3, hf):
    """git killed while it moved main's branch, or while it held a part's index (hf's
    own git children die with hf when a whole process group is killed): every
    commit, join or sync there fails on git's lock. Doctor names each lock once it
    is old, and a command that meets one says how to go on. Before: "no problem
    found", and git's raw line with "run the same git command yourself"."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return [3]\n"})
    write(repo, {"README.md": "# moved\n"})
    git(repo, "commit", "-qam", "main moves")
    old = time.time() - 60
    branch_lock = repo / ".git/refs/heads/main.lock"
    part_lock = repo / ".git/worktrees/api/index.lock"
    for lock in (branch_lock, part_lock):
        lock.write_bytes(b"")
        os.utime(lock, (old, old))
    r = hf("doctor", "--json", cwd=repo)
    assert r.code == 1
    found = {f["what"]: f for f in r.json["data"]["findings"] if f["level"] == "problem"}
    assert f"rm {branch_lock}" in found["ref-lock"]["hint"]
    assert f"rm {part_lock}" in found["b1/api"]["hint"]
    assert "index lock" in found["b1/api"]["detail"]
    synced = hf("sync", "b1/api", cwd=repo)
    assert synced.code != 0
    assert f"`rm {part_lock}`" in synced.err and "then run the same hf command again" in \
        synced.err
    assert branch_lock.exists() and part_lock.exists()  # hf removes neither


def test_locks_a_killed_split_left_outside_any_batch_are_problems_with_the_way_out(repo, hf):
    """A split killed with its git children while git made a part's branch or wrote
    the config leaves git's lock there, and no batch runs: the next split fails on
    it. Doctor names each lock once it is old; removing them as it says lets the
    split go. Before: "no problem found"."""
    old = time.time() - 60
    branch_lock = repo / ".git/refs/heads/hf/b1/api.lock"
    config_lock = repo / ".git/config.lock"
    branch_lock.parent.mkdir(parents=True)
    for lock in (branch_lock, config_lock):
        lock.write_bytes(b"")
        os.utime(lock, (old, old))
    split = ["split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**"]
    assert hf(*split, cwd=repo).code != 0
    r = hf("doctor", "--json", cwd=repo)
    assert r.code == 1
    found = {f["what"]: f for f in r.json["data"]["findings"] if f["level"] == "problem"}
    assert "branch hf/b1/api" in found["ref-lock"]["detail"]
    assert "config" in found["config-lock"]["detail"]
    assert branch_lock.exists() and config_lock.exists()  # hf removes neither
    for finding in (found["ref-lock"], found["config-lock"]):
        command = finding["hint"].split(": ", 1)[1]
        subprocess.run(["sh", "-c", command], cwd=repo, check=True)
    r = hf(*split, cwd=repo)
    assert r.code == 0, r.err
    assert hf("doctor", cwd=repo).code == 0


def test_dropping_a_part_of_a_batch_with_a_missing_record_changes_nothing(split3, hf):
    """The batch's other part records are read before the drop changes anything: the
    refusal is the whole outcome, not a drop that then fails."""
    repo = split3["repo"]
    (repo / ".git/hf/batches/b1/parts/ui.json").unlink()
    r = hf("drop", "b1/api", cwd=repo)
    assert r.code == 1 and "part b1/ui has no record" in r.err
    record = json.loads((repo / ".git/hf/batches/b1/parts/api.json").read_text())
    assert record["state"] == "running"
    assert "drop-part" not in (repo / ".git/hf/audit.log").read_text()


def test_a_dry_run_lists_a_cut_off_split_but_not_one_that_is_still_running(repo, hf):
    """`hf doctor --dry-run` says which cut-off splits it would settle; a split that is
    only slow (it holds its lock) is not cut off, and is not listed."""
    parts = ["--part", "api=src/api/**", "--part", "ui=src/ui/**"]
    with hf_stopped_at("split-records", "split", "b2", *parts, cwd=repo) as paused:
        # (every command settles cut-off splits first: this one is killed after b2 stops)
        killed = hf_proc("split", "b1", *parts, cwd=repo,
                         env={**os.environ, "HF_TEST_CRASH_AT": "split-records"})
        assert killed.returncode == -signal.SIGKILL
        r = hf("doctor", "--dry-run", cwd=repo)
        assert "split-b1.json: a split that was cut off would be finished or removed" in r.out
        assert "split-b2.json" not in r.out, r.out
        assert (repo / ".git/hf/journal/split-b1.json").exists()  # a dry run settles nothing
    assert paused.wait(timeout=60) == 0, paused.stderr.read() if paused.stderr else ""


def test_a_part_record_pointed_away_from_its_folder_has_a_way_out(split3, hf, tmp_path):
    """A process in the part rewrote git's record of its worktree to name the main
    tree's `.git`: git then lists the part at the main tree, and the record would
    outlive the folder. Doctor says so, and its hint links the two again."""
    repo, api = split3["repo"], split3["api"]
    record = Path(git(api, "rev-parse", "--absolute-git-dir").strip())
    (record / "gitdir").write_text(f"{repo / '.git'}\n")
    assert f"{repo}  " in git(repo, "worktree", "list").splitlines()[1]
    r = hf("doctor", cwd=repo)
    assert r.code == 1 and "b1/api: git's record" in r.err and "--fix" in r.err
    taken = follow_hints(["doctor"], repo, shell_with_hf(tmp_path))
    assert taken == ["hf doctor --fix"]
    listed = git(repo, "worktree", "list", "--porcelain").split("\n\n")
    assert any(f"worktree {api}\n" in entry and "hf/b1/api" in entry for entry in listed)
    assert (record / "gitdir").read_text().strip() == str(api / ".git")


def test_a_part_branch_lock_and_a_stray_branch_in_the_batch_folder_are_problems(split3, hf):
    """A process in a part can write in its batch's branch folder: a `.lock` beside
    another part's branch fails every commit there, and branches it makes there
    are no part's. Doctor names both, with the way out; it removes neither."""
    repo, ui = split3["repo"], split3["ui"]
    lock = repo / ".git/refs/heads/hf/b1/ui.lock"
    lock.write_bytes(b"")
    git(repo, "branch", "hf/b1/zzz")
    fresh = hf("doctor", "--json", cwd=repo).json["data"]["findings"]
    assert not [f for f in fresh if f["what"] == "b1/ui"]  # fresh: a git at work
    old = time.time() - 60
    os.utime(lock, (old, old))
    r = hf("doctor", "--json", cwd=repo)
    assert r.code == 1
    found = {f["what"]: f for f in r.json["data"]["findings"] if f["level"] == "problem"}
    assert "locked by" in found["b1/ui"]["detail"] and f"rm {lock}" in found["b1/ui"]["hint"]
    assert "ref-lock" not in found  # (said once, as the part's)
    assert "hf/b1/zzz" in found["b1"]["detail"]
    assert "git branch -D hf/b1/zzz" in found["b1"]["hint"]
    assert lock.exists() and git(repo, "branch", "--list", "hf/b1/zzz")
    write(ui, {"src/ui/x.py": "x\n"})
    git(ui, "add", "src/ui/x.py")
    commit = subprocess.run(["git", "commit", "-qm", "x"], cwd=ui, capture_output=True, check=False,
                            text=True)
    assert commit.returncode != 0 and "ui.lock" in commit.stderr  # what the finding says


def test_a_batch_record_emptied_or_removed_is_a_problem_doctor_names(split3, hf):
    """batch.json edited to `null` is a damaged record everywhere (not "no batch");
    removed, with its parts' records still there, doctor names the folder and says
    where the work is, and a split of that id says to ask doctor."""
    repo = split3["repo"]
    record = repo / ".git/hf/batches/b1/batch.json"
    record.write_text("null")
    for args in (["status", "b1"], ["gc", "b1"], ["join", "b1"]):
        r = hf(*args, cwd=repo)
        assert r.code == 1, (args, r.err)
        assert r.err.startswith(f"hf: error: {record}: not a JSON object"), (args, r.err)
    doctor = hf("doctor", cwd=repo)
    assert doctor.code == 1 and f"{record}: not a JSON object" in doctor.err
    record.unlink()
    doctor = hf("doctor", "--json", cwd=repo)
    assert doctor.code == 1
    found = [f for f in doctor.json["data"]["findings"] if f["level"] == "problem"]
    assert found[0]["detail"] == (f"batch folder {record.parent} has no batch.json (its record "
                                  "was removed); its parts' records are still there"), found
    assert "git branch --list 'hf/b1/*'" in found[0]["hint"]
    r = hf("split", "b1", "--part", "api=src/api/**", cwd=repo)
    assert r.code == 1 and "`hf doctor` says what to do" in r.err, r.err
    assert (repo / ".git/hf/batches/b1/parts/api.json").exists()
