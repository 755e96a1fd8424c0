"""The sweep: live parts left byte-identical, last-one-out auto-join, missing worktrees,
--dry-run, the sweep lock, `hf stop` of a double-forking agent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, hf_proc, snapshot, write
from liveness_support import (
    Procs,
    agent_script,
    alive,
    marked_pids,
    part_record,
    wait_for,
)


@pytest.fixture
def procs():
    p = Procs()
    yield p
    p.end_all()


def _worktree_state(repo: Path, wt: Path) -> dict[str, object]:
    state = snapshot(wt)
    state["raw_index"] = (repo / ".git" / "worktrees" / wt.name / "index").read_bytes()
    state["status"] = git(wt, "status", "--porcelain", "--untracked-files=all")
    state["mtimes"] = {str(p): p.stat().st_mtime_ns for p in wt.rglob("*") if p.is_file()}
    return state


def test_a_live_part_is_byte_identical_across_ten_sweeps(split3, hf, tmp_path, procs):
    repo, api = split3["repo"], split3["api"]
    ready = tmp_path / "ready"
    script = agent_script(tmp_path, "busy", f"""
        open("src/api/orders.py", "a").write("# edited\\n")
        open("src/api/scratch.txt", "w").write("untracked\\n")
        open({str(ready)!r}, "w").write("1")
        while True:
            time.sleep(1)
    """)
    procs.hf_run(api, script)
    wait_for(ready.exists, what="agent ready")
    wait_for(lambda: part_record(repo, "b1", "api").get("worker"), what="worker recorded")
    before = _worktree_state(repo, api)
    for i in range(10):
        r = hf("sweep", "--json", cwd=repo) if i % 2 else hf("sweep", "--json", "--repo",
                                                                 str(repo), cwd=tmp_path)
        assert r.code == 0, r.err
        states = {p["part"]: p["state"] for p in r.json["data"]["repos"][0]["parts"]}
        assert states["api"] == "running"
        assert r.json["data"]["repos"][0]["actions"] == []
    assert _worktree_state(repo, api) == before
    assert not git(repo, "for-each-ref", "refs/hf/rescue")


def test_last_one_out_the_sweep_joins_the_batch(repo, hf, tmp_path, procs):
    r = hf("split", "b2", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
           "--part", "docs=docs/**", "--auto-join", cwd=repo)
    assert r.code == 0, r.err
    root = repo.parent / "repo.hf" / "b2"
    write(root / "api", {"src/api/orders.py": "def orders():\n    return [1]\n"})
    write(root / "ui", {"src/ui/page.html": "<h1>search</h1>\n"})
    assert hf("done", cwd=root / "api").code == 0
    assert hf("done", cwd=root / "ui").code == 0
    # the last worker: edits, says `hf done`, then dies before anyone joins
    script = agent_script(tmp_path, "lastone", """
        import subprocess
        open("docs/guide.md", "w").write("# guide\\nsearch\\n")
        subprocess.run([sys.executable, "-m", "hf_fanout", "done"], check=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    sup = procs.hf_run(root / "docs", script, batch="b2")
    sup.wait(timeout=30)
    rec = part_record(repo, "b2", "docs")
    assert rec["state"] == "done" and rec["exit"]["signal"] == signal.SIGKILL
    head_before = git(repo, "rev-parse", "HEAD")
    r = hf("sweep", "--json", cwd=repo)
    assert r.code == 0, r.err
    actions = r.json["data"]["repos"][0]["actions"]
    assert [a["action"] for a in actions] == ["auto-join"], actions
    log = git(repo, "log", "-1", "--format=%P%n%B")
    assert log.splitlines()[0] == head_before.strip()
    assert "Hf-Batch: b2" in log
    assert (repo / "docs/guide.md").read_text() == "# guide\nsearch\n"
    assert (repo / "src/ui/page.html").read_text() == "<h1>search</h1>\n"
    assert git(repo, "status", "--porcelain") == ""
    batch = json.loads((repo / ".git/hf/batches/b2/batch.json").read_text())
    assert batch["state"] == "joined"
    assert hf("sweep", "--json", cwd=repo).json["data"]["repos"][0]["actions"] == []


def test_the_sweep_auto_joins_only_once_every_part_is_done(repo, hf):
    assert hf("split", "b4", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
              "--auto-join", cwd=repo).code == 0
    # a batch that did not ask for it is never joined by the sweep, done or not
    assert hf("split", "b5", "--part", "tools=tools/**", cwd=repo).code == 0
    root = repo.parent / "repo.hf"
    write(root / "b5" / "tools", {"tools/run.sh": "#!/bin/sh\necho b5\n"})
    assert hf("done", cwd=root / "b5" / "tools").code == 0
    write(root / "b4" / "api", {"src/api/orders.py": "def orders():\n    return [4]\n"})
    assert hf("done", cwd=root / "b4" / "api").code == 0
    head = git(repo, "rev-parse", "HEAD").strip()
    main_tree = snapshot(repo)

    def batch_state(batch: str) -> str:
        return json.loads((repo / f".git/hf/batches/{batch}/batch.json").read_text())["state"]

    for _ in range(2):  # one part of two done: nothing joins, however often it sweeps
        r = hf("sweep", "--json", cwd=repo)
        assert r.code == 0, r.err
        assert r.json["data"]["repos"][0]["actions"] == []
        assert snapshot(repo) == main_tree
        assert batch_state("b4") == "running"
        assert part_record(repo, "b4", "ui")["state"] == "running"

    write(root / "b4" / "ui", {"src/ui/page.html": "<h1>b4</h1>\n"})
    assert hf("done", cwd=root / "b4" / "ui").code == 0
    r = hf("sweep", "--json", cwd=repo)
    assert r.code == 0, r.err
    actions = r.json["data"]["repos"][0]["actions"]
    assert [(a["action"], a["batch"]) for a in actions] == [("auto-join", "b4")], actions
    assert git(repo, "rev-list", f"{head}..HEAD") == actions[0]["commit"] + "\n"  # one commit
    assert git(repo, "log", "-1", "--format=%P").strip() == head
    assert sorted(git(repo, "diff", "--name-only", head, "HEAD").split()) == [
        "src/api/orders.py", "src/ui/page.html"]
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return [4]\n"
    assert (repo / "src/ui/page.html").read_text() == "<h1>b4</h1>\n"
    assert batch_state("b4") == "joined"
    assert batch_state("b5") == "running"
    assert (repo / "tools/run.sh").read_text() == "#!/bin/sh\necho run\n"


def test_a_failed_auto_join_leaves_the_batch_and_says_why(repo, hf):
    assert hf("split", "b3", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
              "--auto-join", cwd=repo).code == 0
    root = repo.parent / "repo.hf" / "b3"
    write(root / "api", {"src/api/orders.py": "x = 1\n", "tools/run.sh": "outside\n"})
    assert hf("done", cwd=root / "api").code == 0
    assert hf("done", cwd=root / "ui").code == 0
    head = git(repo, "rev-parse", "HEAD")
    r = hf("sweep", "--json", cwd=repo).json["data"]
    action = r["repos"][0]["actions"][0]
    assert action["action"] == "auto-join-failed" and "tools/run.sh" in action["error"]
    assert git(repo, "rev-parse", "HEAD") == head
    batch = json.loads((repo / ".git/hf/batches/b3/batch.json").read_text())
    assert batch["state"] == "running"
    assert "tools/run.sh" in batch["extra"]["auto_join_error"]["error"]
    assert {part_record(repo, "b3", p)["state"] for p in ("api", "ui")} == {"done"}


def test_a_removed_worktree_is_missing_pruned_and_its_branch_kept(split3, hf):
    import shutil

    repo, ui = split3["repo"], split3["ui"]
    # the user's own worktrees, their folders missing for now (a drive not mounted)
    mine, locked = repo.parent / "mine", repo.parent / "locked"
    git(repo, "worktree", "add", "-q", "-b", "mine", str(mine))
    git(repo, "worktree", "add", "-q", "-b", "hf/mine", str(locked))
    git(repo, "worktree", "lock", str(locked))
    shutil.rmtree(ui)
    shutil.rmtree(mine)
    shutil.rmtree(locked)
    r = hf("sweep", "--json", cwd=repo)
    assert r.code == 0, r.err
    data = r.json["data"]["repos"][0]
    assert {p["part"]: p["state"] for p in data["parts"]}["ui"] == "missing"
    assert [a["action"] for a in data["actions"]] == ["mark-missing"]
    listed = git(repo, "worktree", "list")
    assert str(ui) not in listed
    assert f"{mine} " in listed and f"{locked} " in listed  # git still knows them
    git(repo, "worktree", "unlock", str(locked))
    git(repo, "worktree", "prune")  # what git itself would forget
    assert str(mine) not in git(repo, "worktree", "list")
    assert git(repo, "rev-parse", "--verify", "refs/heads/hf/b1/ui").strip()
    rec = part_record(repo, "b1", "ui")
    assert rec["state"] == "blocked" and "missing" in rec["reason"]
    assert hf("sweep", "--json", cwd=repo).json["data"]["repos"][0]["actions"] == []


def test_dry_run_says_what_it_would_do_and_does_nothing(split3, hf, tmp_path):
    repo, api = split3["repo"], split3["api"]
    r = hf_proc("run", "--", sys.executable, "-c",
                "open('src/api/x.py','w').write('x')", cwd=api)
    assert r.returncode == 0
    before = (repo / ".git/hf/batches/b1/parts/api.json").read_bytes()
    r = hf("sweep", "--dry-run", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert r.json["data"]["repos"][0]["actions"][0]["action"] == "rescue+block"
    assert (repo / ".git/hf/batches/b1/parts/api.json").read_bytes() == before
    assert not git(repo, "for-each-ref", "refs/hf/rescue")
    human = hf("sweep", "--dry-run", cwd=repo)
    assert "would rescue+block b1/api" in human.out


def test_two_sweeps_at_once_do_not_double_act(split3, hf):
    from hf_fanout import locks

    repo, api = split3["repo"], split3["api"]
    r = hf_proc("run", "--", sys.executable, "-c", "pass", cwd=api)
    assert r.returncode == 0
    with locks.hold(repo / ".git/hf/locks/sweep.lock", wait=0, what="sweep"):
        p = hf_proc("sweep", "--json", cwd=repo)
    data = json.loads(p.stdout)["data"]["repos"][0]
    assert "another sweep is running" in data["skipped"]
    assert data["actions"] == []
    assert part_record(repo, "b1", "api")["state"] == "running"
    assert not git(repo, "for-each-ref", "refs/hf/rescue")


def test_sweep_reports_processes_hf_does_not_know(split3, hf, procs):
    repo, ui = split3["repo"], split3["ui"]
    stranger = procs.start([sys.executable, "-c", "import time; time.sleep(300)"], ui / "src")
    wait_for(lambda: os.path.realpath(f"/proc/{stranger.pid}/cwd") == str(ui / "src"),
             what="stranger started")
    data = hf("sweep", "--json", cwd=repo).json["data"]["repos"][0]
    found = [u for u in data["unknown_processes"] if u["pid"] == stranger.pid]
    assert found and found[0]["part"] == "ui"
    assert alive(stranger.pid)


def test_stop_ends_an_agent_that_double_forked_into_its_own_session(repo, hf, tmp_path, procs):
    batch = f"st{os.getpid()}"
    assert hf("split", batch, "--part", "api=src/api/**", "--part", "ui=src/ui/**",
              cwd=repo).code == 0
    api = repo.parent / "repo.hf" / batch / "api"
    gpid = tmp_path / "grandchild.pid"
    script = agent_script(tmp_path, "forker", f"""
        open("src/api/orders.py", "a").write("# half done\\n")
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)   # a stubborn one
                open({str(gpid)!r}, "w").write(str(os.getpid()))
                while True:
                    time.sleep(1)
            os._exit(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(1)
    """)
    sup = procs.hf_run(api, script, batch=batch)
    grandchild = int(wait_for(lambda: gpid.exists() and gpid.read_text(), what="grandchild"))
    assert os.getsid(grandchild) != os.getsid(sup.pid)
    assert marked_pids(batch, "api", repo)
    r = hf("stop", f"{batch}/api", "--grace", "0.5", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert marked_pids(batch, "api", repo) == []
    assert not alive(grandchild)
    sup.wait(timeout=20)
    rec = part_record(repo, batch, "api")
    assert rec["state"] == "blocked" and rec["reason"] == "stopped"
    assert "# half done" in git(repo, "show", f"refs/hf/rescue/{batch}/api:src/api/orders.py")
    assert part_record(repo, batch, "ui")["state"] == "running"


def test_actions_are_notified_on_the_desktop_where_notify_send_exists(
        split3, hf, tmp_path, monkeypatch):
    repo, api = split3["repo"], split3["api"]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    said = tmp_path / "notified"
    tool = bindir / "notify-send"
    tool.write_text(f"#!/bin/sh\nprintf '%s|' \"$@\" >> {said}\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    assert hf_proc("run", "--", sys.executable, "-c", "pass", cwd=api).returncode == 0
    assert hf("sweep", "--json", cwd=repo).code == 0
    assert said.read_text() == "hf sweep|rescue+block b1/api|"
    assert hf("sweep", "--json", cwd=repo).code == 0
    assert said.read_text() == "hf sweep|rescue+block b1/api|"  # nothing new, no notice


SWEEPER = """
import subprocess, sys, os
repo, stop = sys.argv[1], sys.argv[2]
n = 0
while not os.path.exists(stop):
    subprocess.run([sys.executable, "-m", "hf_fanout", "sweep", "--repo", repo, "--json"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    n += 1
print(n)
"""


def test_the_sweep_never_overwrites_done_with_blocked(repo, hf, tmp_path):
    """`hf run --done-on-success` racing a sweep loop over many rounds: every part
    ends done, and the sweep never judged one an orphan."""
    rounds = 20
    write(repo, {f"area{i}/x.txt": f"{i}\n" for i in range(rounds)})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "areas")
    args = [a for i in range(rounds) for a in ("--part", f"p{i}=area{i}/**")]
    assert hf("split", "b1", *args, cwd=repo).code == 0
    stop = tmp_path / "stop"
    sweeper = subprocess.Popen([sys.executable, "-c", SWEEPER, str(repo), str(stop)],
                               stdout=subprocess.PIPE, text=True)
    try:
        for i in range(rounds):
            wt = repo.parent / "repo.hf" / "b1" / f"p{i}"
            # an agent whose exit lands at a different moment of the sweep each round
            agent = f"import time; time.sleep({0.05 + (i % 7) * 0.09})"
            r = hf_proc("run", "--done-on-success", "--heartbeat", "0.2", "--",
                        sys.executable, "-c", agent, cwd=wt)
            assert r.returncode == 0, r.stderr
    finally:
        stop.touch()
        sweeps = int(sweeper.communicate(timeout=120)[0] or 0)
    assert sweeps >= 3, "the sweep loop did not run alongside the agents"
    states = {i: part_record(repo, "b1", f"p{i}")["state"] for i in range(rounds)}
    assert states == dict.fromkeys(range(rounds), "done")
    audit = (repo / ".git/hf/audit.log").read_text()
    assert '"sweep-orphan"' not in audit
    assert '"action": "blocked"' not in audit


def test_an_unreadable_batch_record_fails_the_sweep_after_the_rest_is_swept(split3, hf):
    repo = split3["repo"]
    assert hf("split", "b2", "--part", "tools=tools/**", cwd=repo).code == 0
    record = repo / ".git/hf/batches/b1/batch.json"
    record.write_text('{"schema": 1, "kind": "batch", "id": "b1"')
    r = hf("sweep", "--repo", str(repo), cwd=repo)
    assert r.code == 1
    assert "b2/tools: running" in r.out  # the other batch was swept
    assert f"hf: error: hf sweep could not read 1 record(s): {record}" in r.err
    assert "hf doctor" in r.err
    r = hf("sweep", "--repo", str(repo), "--json", cwd=repo)
    assert r.code == 1 and r.json["ok"] is False
    assert r.json["error"]["code"] == "state_corrupt"
    assert [p["part"] for p in r.json["data"]["repos"][0]["parts"]] == ["tools"]
    assert record.read_text() == '{"schema": 1, "kind": "batch", "id": "b1"'
