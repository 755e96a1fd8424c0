"""Joins from real processes: killed half way, racing each other, waiting for the lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import git, hf_proc, snapshot, write


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def prepare(split3: dict[str, Path], hf: Any) -> None:
    """Work in all three parts, some committed, a delete, then every part done."""
    write(split3["api"], {"src/api/orders.py": "def orders():\n    return [1]\n"})
    git(split3["api"], "commit", "-qam", "api")
    write(split3["api"], {"src/api/search.py": "def search():\n    pass\n"})
    (split3["ui"] / "src/ui/page.html").unlink()
    write(split3["docs"], {"docs/guide.md": "# guide v2\n", "docs/new/a.md": "a\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0


def batch_record(repo: Path, batch: str = "b1") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((repo / f".git/hf/batches/{batch}/batch.json").read_text())
    return data


def part_states(repo: Path, batch: str = "b1") -> dict[str, str]:
    parts = repo / f".git/hf/batches/{batch}/parts"
    return {p.stem: json.loads(p.read_text())["state"] for p in parts.glob("*.json")}


def assert_clean_at(repo: Path, commit: str) -> None:
    assert head(repo) == commit
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(repo, "diff", "HEAD") == ""
    assert git(repo, "diff", "--cached", "HEAD") == ""


def killed_join_at(split3: dict[str, Path], hf: Any,
                   point: str) -> tuple[Path, str, dict[str, Any]]:
    """`prepare`, then a join killed at fault point `point`: the repository, its HEAD
    and its snapshot from before the join."""
    repo = split3["repo"]
    prepare(split3, hf)
    old, before = head(repo), snapshot(repo)
    proc = hf_proc("join", "b1", cwd=repo, env={**os.environ, "HF_TEST_CRASH_AT": point})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return repo, old, before


@pytest.mark.parametrize("crash_at, next_command", [
    ("journal", ("status",)), ("journal", ("doctor",)),
    ("applied", ("status",)), ("applied", ("done", "b1/api")),
    ("swapped", ("status",)), ("swapped", ("doctor",)),
])
def test_killed_before_the_ref_moved_rolls_back(split3, hf, crash_at, next_command):
    repo, old, before = killed_join_at(split3, hf, crash_at)
    assert (repo / ".git/hf/journal/join.json").exists()
    if crash_at in ("applied", "swapped"):  # the main tree holds half a join: old HEAD
        assert (repo / "src/api/search.py").exists()
        assert git(repo, "status", "--porcelain") != ""
    r = hf(*next_command, cwd=repo)
    assert r.code == 0, r.err
    said = "an interrupted `hf join` of batch b1 was rolled back"
    if next_command[0] == "doctor":
        assert "interrupted join rolled-back" in r.out
    else:  # settled on the way, and said so
        assert f"hf: note: {said}" in r.err
    assert not (repo / ".git/hf/journal/join.json").exists()
    assert_clean_at(repo, old)
    assert snapshot(repo) == before
    assert batch_record(repo)["state"] == "running"
    assert part_states(repo) == {"api": "done", "ui": "done", "docs": "done"}
    # and the join can simply be run again
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "rev-parse", "HEAD^").strip() == old
    assert_clean_at(repo, head(repo))


@pytest.mark.parametrize("next_command", [("status",), ("doctor",)])
def test_killed_after_the_ref_moved_finishes(split3, hf, next_command):
    repo = split3["repo"]
    prepare(split3, hf)
    old = head(repo)
    proc = hf_proc("join", "b1", cwd=repo, env={**os.environ, "HF_TEST_CRASH_AT": "ref"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    new = head(repo)
    assert new != old and git(repo, "rev-parse", "HEAD^").strip() == old
    # the records still say "running": only the journal knows the join landed
    assert batch_record(repo)["state"] == "running"
    r = hf(*next_command, cwd=repo)
    assert r.code == 0, r.err
    assert ("an interrupted `hf join` of batch b1 was finished" in r.err) == (
        next_command[0] == "status")
    assert not (repo / ".git/hf/journal/join.json").exists()
    assert_clean_at(repo, new)
    assert (repo / "src/api/search.py").exists() and not (repo / "src/ui/page.html").exists()
    record = batch_record(repo)
    assert record["state"] == "joined" and record["joined_commit"] == new
    assert part_states(repo) == {"api": "joined", "ui": "joined", "docs": "joined"}
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0 and "already joined" in r.out
    assert head(repo) == new


def test_killed_join_with_a_staged_bystander(split3, hf):
    """Recovery puts back only the join's paths: what the user staged stays staged."""
    repo = split3["repo"]
    prepare(split3, hf)
    write(repo, {"notes.txt": "mine\n"})
    git(repo, "add", "notes.txt")
    old = head(repo)
    proc = hf_proc("join", "b1", cwd=repo, env={**os.environ, "HF_TEST_CRASH_AT": "ref"})
    assert proc.returncode == -signal.SIGKILL
    assert hf("status", cwd=repo).code == 0
    assert git(repo, "rev-parse", "HEAD^").strip() == old
    assert git(repo, "status", "--porcelain") == "A  notes.txt\n"
    assert "notes.txt" not in git(repo, "show", "--name-only", "--format=", "HEAD")


def _split_two_batches(repo: Path, hf: Any) -> None:
    for batch, part, owns in (("b1", "api", "src/api/**"), ("b2", "ui", "src/ui/**")):
        r = hf("split", batch, "--part", f"{part}={owns}", cwd=repo)
        assert r.code == 0, r.err
    root = repo.parent / "repo.hf"
    write(root / "b1/api", {"src/api/orders.py": "# b1\n", "src/api/b1.py": "b1\n"})
    write(root / "b2/ui", {"src/ui/app.js": "// b2\n", "src/ui/b2.js": "b2\n"})
    assert hf("done", "b1/api", cwd=repo).code == 0
    assert hf("done", "b2/ui", cwd=repo).code == 0


def test_two_joins_of_different_batches_at_once_both_land(repo, hf):
    _split_two_batches(repo, hf)
    old = head(repo)
    base_tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    procs = [
        subprocess.Popen([sys.executable, "-m", "hf_fanout", "join", batch, "--json",
                          "--wait", "60"], cwd=repo, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for batch in ("b1", "b2")
    ]
    try:
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out + err
    commits = git(repo, "rev-list", "--reverse", f"{old}..HEAD").split()
    assert len(commits) == 2
    batches = [git(repo, "log", "-1", "--format=%(trailers:key=Hf-Batch,valueonly)", c).strip()
               for c in commits]
    assert sorted(batches) == ["b1", "b2"]
    first_files = git(repo, "show", "--name-only", "--format=", commits[0]).split()
    second_files = git(repo, "show", "--name-only", "--format=", commits[1]).split()
    expected_files = {"b1": ["src/api/b1.py", "src/api/orders.py"],
                      "b2": ["src/ui/app.js", "src/ui/b2.js"]}
    assert first_files == expected_files[batches[0]]
    assert second_files == expected_files[batches[1]]
    # the final tree is the base plus both batches, computed independently
    scratch_index = repo.parent / "scratch-index"
    env_git = ["git", "-C", str(repo)]
    env = {**os.environ, "GIT_INDEX_FILE": str(scratch_index)}
    subprocess.run([*env_git, "read-tree", base_tree], env=env, check=True)
    for rel, text in (("src/api/orders.py", "# b1\n"), ("src/api/b1.py", "b1\n"),
                      ("src/ui/app.js", "// b2\n"), ("src/ui/b2.js", "b2\n")):
        oid = subprocess.run([*env_git, "hash-object", "-w", "--stdin"], input=text,
                             capture_output=True, text=True, check=True).stdout.strip()
        subprocess.run([*env_git, "update-index", "--add", "--cacheinfo",
                        f"100644,{oid},{rel}"], env=env, check=True)
    expected = subprocess.run([*env_git, "write-tree"], env=env, capture_output=True,
                              text=True, check=True).stdout.strip()
    assert git(repo, "rev-parse", "HEAD^{tree}").strip() == expected
    assert_clean_at(repo, commits[1])
    assert batch_record(repo, "b1")["state"] == batch_record(repo, "b2")["state"] == "joined"


HOLD = """
import sys
from pathlib import Path
from hf_fanout.locks import hold
with hold(Path(sys.argv[1]), wait=10, what="commit"):
    print("held", flush=True)
    sys.stdin.read()
"""


@contextmanager
def lock_held_by_another_process(repo: Path) -> Iterator[subprocess.Popen[str]]:
    """A real process holds the repository's commit lock until the block ends."""
    lock = repo / ".git/hf/locks/commit.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder
    finally:
        if holder.stdin:
            holder.stdin.close()
        holder.wait(timeout=30)


def wait_until_it_waits_for(proc: subprocess.Popen[str], what: str) -> str:
    """Read `proc`'s stderr until it says it waits for the `what` lock (it is past
    planning then); returns that line."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if f"for the {what} lock" in line:
            return line
    raise AssertionError(f"{proc.args} ended without waiting for the {what} lock")


def test_join_gives_up_on_a_held_lock_with_exit_75_naming_the_holder(split3, hf):
    repo = split3["repo"]
    prepare(split3, hf)
    with lock_held_by_another_process(repo) as holder:
        before = snapshot(repo)
        started = time.monotonic()
        r = hf("join", "b1", "--wait", "0.5", "--json", cwd=repo)
        assert time.monotonic() - started < 15
        assert r.code == 75, r.out
        assert r.json["error"]["code"] == "lock_busy"
        assert f"pid {holder.pid}" in r.json["error"]["message"]
        proc = hf_proc("join", "b1", "--wait", "0.2", cwd=repo)
        assert proc.returncode == 75
        assert f"pid {holder.pid}" in proc.stderr
        assert snapshot(repo) == before
        assert batch_record(repo)["state"] == "running"
    r = hf("join", "b1", "--wait", "5", cwd=repo)
    assert r.code == 0, r.err
    assert_clean_at(repo, head(repo))


def test_ctrl_c_while_waiting_for_the_lock_prints_the_envelope_and_exits_130(split3, hf):
    repo = split3["repo"]
    prepare(split3, hf)
    with lock_held_by_another_process(repo) as holder:
        before = snapshot(repo)
        joiner = subprocess.Popen([sys.executable, "-m", "hf_fanout", "join", "b1", "--wait",
                                   "60", "--json"], cwd=repo, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        # It plans, then waits for the lock: the signal lands while it waits.
        line = wait_until_it_waits_for(joiner, "commit")
        assert f"pid {holder.pid}" in line
        joiner.send_signal(signal.SIGINT)
        out, _err = joiner.communicate(timeout=30)
        assert joiner.returncode == 130
        envelope = json.loads(out)
        assert envelope["ok"] is False and envelope["error"]["code"] == "interrupted"
        assert snapshot(repo) == before


def test_json_after_a_double_dash_belongs_to_the_child(split3, hf):
    r = hf_proc("run", "--", sys.executable, "-c", "print('child says --json')", "--json",
                cwd=split3["api"])
    assert r.returncode == 0, r.stderr
    assert "child says --json" in r.stdout
    assert '"hf": 1' not in r.stdout  # hf did not switch to JSON for the child's flag


RACER = """\
i=0
while [ ! -e "$1" ]; do
    i=$((i+1))
    echo "$i" >> user.txt
    if git commit -qam "user $i" 2>/dev/null; then echo ok; else echo refused; fi
done
"""


def test_a_git_commit_loop_in_the_main_tree_never_commits_half_a_join(repo, hf, tmp_path):
    """The person (or an editor) keeps running `git commit -a` in the main tree while
    joins land: every user commit holds only the user's own file, every join commit
    exactly the parts' files, and nothing is left half-written, over many rounds."""
    write(repo, {"user.txt": "0\n"})
    git(repo, "add", "user.txt")
    git(repo, "commit", "-qm", "the user's file")
    rounds, refused = 8, 0
    for n in range(rounds):
        batch = f"r{n}"
        r = hf("split", batch, "--part", "api=src/api/**", "--part", "docs=docs/**", cwd=repo)
        assert r.code == 0, r.err
        api, docs = (repo.parent / "repo.hf" / batch / p for p in ("api", "docs"))
        write(api, {"src/api/orders.py": f"def orders():\n    return [{n}]\n",
                    **{f"src/api/new{n}/f{i}.py": f"{n}-{i}\n" for i in range(40)}})
        if (api / "src/api/users.py").exists():
            (api / "src/api/users.py").unlink()
        write(docs, {"docs/guide.md": f"# guide {n}\n"})
        assert hf("done", f"{batch}/api", cwd=repo).code == 0
        assert hf("done", f"{batch}/docs", cwd=repo).code == 0
        expected = {f"src/api/new{n}/f{i}.py" for i in range(40)} | {
            "src/api/orders.py", "docs/guide.md"} | (
            {"src/api/users.py"} if n == 0 else set())
        before = head(repo)
        stop = tmp_path / f"stop-{n}"
        racer = subprocess.Popen(["sh", "-c", RACER, "racer", str(stop)], cwd=repo,
                                 stdout=subprocess.PIPE, text=True)
        try:
            join = hf_proc("join", batch, "--wait", "60", cwd=repo, timeout=120)
        finally:
            stop.touch()
            log, _ = racer.communicate(timeout=60)
        assert join.returncode == 0, join.stderr
        refused += log.split().count("refused")
        left = git(repo, "status", "--porcelain", "--untracked-files=all")
        if left:
            debug = (left[:300], git(repo, "log", "--format=%h %s", "-5"),
                     git(repo, "ls-files", "src/api/new4")[:200],
                     git(repo, "show", "--stat", "--format=%s", "HEAD~1")[:400],
                     (repo / ".git/hf/audit.log").read_text()[-1500:], join.stderr, log[-300:])
            assert left == " M user.txt\n", "\n".join(map(str, debug))
            git(repo, "commit", "-qam", "user: last")
        commits = git(repo, "rev-list", "--reverse", f"{before}..HEAD").split()
        joins = [c for c in commits
                 if git(repo, "log", "-1", "--format=%(trailers:key=Hf-Batch,valueonly)",
                        c).strip() == batch]
        assert len(joins) == 1, commits
        for c in commits:
            files = set(git(repo, "show", "--name-only", "--format=", c).split())
            assert files == (expected if c in joins else {"user.txt"}), (c, files)
        assert (repo / "src/api/orders.py").read_text() == f"def orders():\n    return [{n}]\n"
        assert (repo / "docs/guide.md").read_text() == f"# guide {n}\n"
        assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
        assert not (repo / ".git/index.lock").exists()
        assert not (repo / ".git/hf/journal/join.json").exists()
        assert git(repo, "fsck", "--no-progress") == ""
    # the racer really raced: some of its commits met the join's lock
    print(f"user commits refused by the join's index lock: {refused}")


LATE_HOOK = """#!/bin/sh
# a part commits while the join writes (the join's staging of its new index runs this)
if [ -n "$GIT_INDEX_FILE" ] && [ -f "$LATE_TRIGGER" ]; then
    rm -f "$LATE_TRIGGER"
    cd "$LATE_PART" && cp "$LATE_SOURCE" src/api/orders.py && \\
        env -u GIT_INDEX_FILE -u GIT_DIR -u GIT_WORK_TREE git commit -qam "late" >/dev/null 2>&1
fi
exit 0
"""


def test_a_part_commit_that_lands_while_the_join_writes_is_never_dropped(repo, hf, tmp_path):
    hook = repo / ".git/hooks/post-index-change"
    hook.write_text(LATE_HOOK)
    hook.chmod(0o755)
    assert hf("split", "b1", "--part", "api=src/api/**", "--part", "docs=docs/**",
              cwd=repo).code == 0
    api, docs = repo.parent / "repo.hf/b1/api", repo.parent / "repo.hf/b1/docs"
    write(api, {"src/api/orders.py": "def orders():\n    return ['first']\n"})
    write(docs, {"docs/guide.md": "# guide 2\n"})
    assert hf("done", "b1/api", cwd=repo).code == 0
    assert hf("done", "b1/docs", cwd=repo).code == 0
    # what the part commits during the join: a later version of its file, which the
    # join's reading of the part never saw
    late = tmp_path / "late.py"
    late.write_text("def orders():\n    return ['late']\n")
    trigger = tmp_path / "trigger"
    trigger.touch()
    env = {**os.environ, "LATE_TRIGGER": str(trigger), "LATE_PART": str(api),
           "LATE_SOURCE": str(late)}
    proc = hf_proc("join", "b1", cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    assert not trigger.exists()  # the part did commit during the join
    assert "part api committed while the join wrote" in proc.stdout
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return ['first']\n"
    assert part_states(repo) == {"api": "done", "docs": "joined"}
    assert batch_record(repo)["state"] == "running"
    r = hf("join", "b1", cwd=repo)  # the late commit is joined now, not lost
    assert r.code == 0, r.err
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return ['late']\n"
    assert part_states(repo) == {"api": "joined", "docs": "joined"}
    assert_clean_at(repo, head(repo))


def test_the_join_plans_again_under_the_lock_when_head_moved_meanwhile(split3, hf):
    """A commit lands in the main tree after the join planned and before it got the
    lock: the join plans again against the new HEAD (three-way), so both changes
    are in the result and nothing is lost."""
    repo = split3["repo"]
    prepare(split3, hf)
    with lock_held_by_another_process(repo):
        joiner = subprocess.Popen([sys.executable, "-m", "hf_fanout", "join", "b1", "--wait",
                                   "60", "--json"], cwd=repo, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        wait_until_it_waits_for(joiner, "commit")
        # meanwhile, in the main tree: a path a part changed and one no part owns
        write(repo, {"src/api/orders.py": "# the lead's note\ndef orders():\n    return []\n",
                     "tools/run.sh": "#!/bin/sh\necho lead\n"})
        git(repo, "commit", "-qam", "the lead's commit")
        lead = head(repo)
    out, err = joiner.communicate(timeout=120)
    assert joiner.returncode == 0, out + err
    assert git(repo, "rev-parse", "HEAD^").strip() == lead
    assert (repo / "src/api/orders.py").read_text() == \
        "# the lead's note\ndef orders():\n    return [1]\n"
    assert (repo / "tools/run.sh").read_text() == "#!/bin/sh\necho lead\n"
    assert json.loads(out)["data"]["merged"] == ["src/api/orders.py"]
    assert_clean_at(repo, head(repo))


EXTRA_HOOK = """#!/bin/sh
# stages one more path into whatever index git just wrote, when it is hf's new index
[ -n "$EXTRA_STAGED" ] && exit 0  # (its own write runs this hook again)
case "$GIT_INDEX_FILE" in
*/hf/scratch/*)
    oid=$(echo extra | git hash-object -w --stdin)
    EXTRA_STAGED=1 git update-index --add --cacheinfo "100644,$oid,extra.txt"
    ;;
esac
exit 0
"""


def test_a_path_slipped_into_the_join_s_index_is_refused_as_extra(repo, hf):
    """A post-index-change hook stages a path nobody asked for into the join's new
    index: the staged set is then a superset of the join's, and the join refuses,
    commits nothing and leaves the main tree as it was."""
    hook = repo / ".git/hooks/post-index-change"
    hook.write_text(EXTRA_HOOK)
    hook.chmod(0o755)
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    api = repo.parent / "repo.hf/b1/api"
    write(api, {"src/api/orders.py": "def orders():\n    return [5]\n"})
    assert hf("done", cwd=api).code == 0
    before = snapshot(repo)
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 1, r.out
    assert "extra extra.txt" in r.json["error"]["message"]
    assert "missing none" in r.json["error"]["message"]
    assert snapshot(repo) == before
    assert not (repo / ".git/index.lock").exists()
    assert git(repo, "ls-files", "extra.txt") == ""


@pytest.mark.parametrize("crash_at", ["index-claimed", "index-locked"])
@pytest.mark.parametrize("next_command", [("status",), ("doctor",)])
def test_killed_while_it_takes_the_index_lock_leaves_no_lock_git_trips_on(
        split3, hf, crash_at, next_command):
    """Before the journal is written the join has changed nothing; a kill there left
    git's index.lock, and every `git add` failed until a person removed it."""
    repo, old, before = killed_join_at(split3, hf, crash_at)
    lock = repo / ".git" / "index.lock"
    assert lock.exists() == (crash_at == "index-locked")
    assert not (repo / ".git/hf/journal/join.json").exists()
    r = hf(*next_command, cwd=repo)
    assert r.code == 0, r.out + r.err
    assert not lock.exists()
    assert [p.name for p in (repo / ".git").iterdir() if p.name.startswith("index.lock")] == []
    assert list((repo / ".git/hf/journal").glob("index-lock-*")) == []
    said = f"git's index lock {lock}, which a killed hf command left"
    if crash_at == "index-locked":
        assert said in (r.out if next_command[0] == "doctor" else r.err)
    else:  # (no lock was in place: nothing to say)
        assert said not in r.out + r.err
    assert_clean_at(repo, old)
    assert snapshot(repo) == before
    write(repo, {"bystander.txt": "mine\n"})
    git(repo, "add", "bystander.txt")  # git takes the index again
    git(repo, "reset", "-q", "bystander.txt")
    (repo / "bystander.txt").unlink()
    assert hf("join", "b1", cwd=repo).code == 0
    assert (repo / "src/api/search.py").exists()


def test_a_git_lock_no_hf_command_claimed_stays(split3, hf):
    """An index.lock of git's own (a git command running, or killed) is not hf's to
    remove, even with a record of hf's left from another lock."""
    repo = split3["repo"]
    prepare(split3, hf)
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    claims = repo / ".git/hf/journal"
    claims.mkdir(parents=True, exist_ok=True)
    ino = lock.stat().st_ino + 1
    (claims / "index-lock-0000000000000000.json").write_text(json.dumps(
        {"lock": str(lock), "identity": [lock.stat().st_dev, ino], "pid": 1}))
    assert hf("status", cwd=repo).code == 0
    assert lock.exists()
    r = hf("join", "b1", "--wait", "1", cwd=repo)
    assert r.code != 0 and f"git's index lock {lock} is held by another process" in r.err
    assert lock.exists()


def test_a_join_killed_at_any_moment_leaves_the_main_tree_before_or_after(repo, hf):
    """SIGKILL at delays spread over a whole join: whatever moment it lands, the next
    command leaves the main tree exactly as before the join or exactly joined, git
    can take its index lock, and the join can be run again."""
    import random

    rng = random.Random(7)
    plain = None  # seconds of a join that is not killed
    landed = rolled = 0
    for n in range(14):
        batch = f"k{n}"
        assert hf("split", batch, "--part", "api=src/api/**", "--part", "docs=docs/**",
                  cwd=repo).code == 0
        api, docs = (repo.parent / "repo.hf" / batch / p for p in ("api", "docs"))
        write(api, {f"src/api/k{n}/f{i}.py": f"{n}-{i}\n" for i in range(60)})
        write(docs, {"docs/guide.md": f"# guide {n}\n"})
        git(api, "add", "-A")
        git(api, "commit", "-qm", "api work")
        for part in ("api", "docs"):
            assert hf("done", f"{batch}/{part}", cwd=repo).code == 0
        before, old = snapshot(repo), head(repo)
        if plain is None:
            start = time.monotonic()
            assert hf_proc("join", batch, cwd=repo).returncode == 0
            plain = time.monotonic() - start
            continue
        proc = subprocess.Popen([sys.executable, "-m", "hf_fanout", "join", batch], cwd=repo,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 1.1) * plain)
        proc.kill()
        proc.wait(timeout=30)
        r = hf("status", cwd=repo)
        assert r.code == 0, r.err
        assert not (repo / ".git/index.lock").exists(), (n, r.err)
        assert not (repo / ".git/hf/journal/join.json").exists(), (n, r.err)
        if head(repo) == old:
            assert snapshot(repo) == before, n
            rolled += 1
            assert hf("join", batch, cwd=repo).code == 0
        else:
            landed += 1
        assert git(repo, "log", "-1", "--format=%(trailers:key=Hf-Batch,valueonly)").strip() \
            == batch
        assert (repo / f"src/api/k{n}/f59.py").read_text() == f"{n}-59\n"
        assert (repo / "docs/guide.md").read_text() == f"# guide {n}\n"
        assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
        git(repo, "update-index", "--refresh")  # git takes its index lock again
    assert git(repo, "fsck", "--no-progress") == ""
    print(f"killed joins: {rolled} rolled back or before their write, {landed} landed")


def test_a_git_lock_made_on_the_inode_hf_s_lock_had_is_not_taken_for_hf_s(split3, hf):
    """The person removes the index.lock a killed join left (as git's hint says) and
    runs a git command, whose own index.lock the file system may make on the freed
    inode: hf's record must not match it (device and inode alone would)."""
    repo, _old, _before = killed_join_at(split3, hf, "index-locked")
    lock = repo / ".git" / "index.lock"
    record_file = next((repo / ".git/hf/journal").glob("index-lock-*.json"))
    record = json.loads(record_file.read_text())
    lock.unlink()
    time.sleep(0.01)
    lock.write_text("a git command's new index")  # git's own lock, open for writing
    st = lock.stat()
    # what inode reuse gives: the record's device and inode are the new file's
    record["identity"][:2] = [st.st_dev, st.st_ino]
    record_file.write_text(json.dumps(record))
    r = hf("status", cwd=repo)
    assert r.code == 0, r.err
    assert lock.read_text() == "a git command's new index"  # still git's
    assert "which a killed hf command left" not in r.err


def test_a_journal_temp_file_a_killed_join_left_goes_with_the_next_join(split3, hf):
    """Killed while it wrote its journal (before the rename put it in place), a join
    leaves the temp file: the next join, which writes and removes a journal under
    the same lock, removes it too. Before, it stayed for good."""
    repo = split3["repo"]
    prepare(split3, hf)
    journal = repo / ".git/hf/journal"
    journal.mkdir(parents=True, exist_ok=True)
    left = journal / ".join.json.k1ll3d.tmp"
    left.write_text('{"schema": 1, "act')
    other = journal / ".split-b9.json.x.tmp"  # (not the join's: left alone)
    other.write_text("")
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert not left.exists() and other.exists()
    assert not (journal / "join.json").exists()


def test_a_commit_made_after_a_killed_join_is_named_when_the_join_is_abandoned(split3, hf):
    """The join was killed with the main tree half written; the person took git's
    advice (remove the index lock hf held) and committed. hf cannot finish or take
    back a join whose branch moved: it says so, with the paths to look at and how
    to join again, and the join can be run again."""
    repo, old, _before = killed_join_at(split3, hf, "applied")
    (repo / ".git/index.lock").unlink()
    write(repo, {"README.md": "a commit of the person's\n"})
    git(repo, "add", "README.md")
    git(repo, "commit", "-qm", "meanwhile")
    r = hf("status", cwd=repo)
    assert r.code == 0, r.err
    assert "hf: note: an interrupted `hf join` of batch b1 was abandoned" in r.err
    assert ("refs/heads/main moved while it was cut off: a commit made since may hold part "
            "of what it was writing (") in r.err
    assert "and `hf join b1` joins it again" in r.err
    assert not (repo / ".git/hf/journal/join.json").exists()
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "log", "-1", "--format=%s", "HEAD^").strip() == "meanwhile"
    assert "src/api/search.py" in git(repo, "ls-tree", "-r", "--name-only", "HEAD")
    assert git(repo, "status", "--porcelain") == ""
