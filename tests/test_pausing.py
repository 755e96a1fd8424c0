"""`hf pause` / `hf resume`: nothing new starts while paused (refused with the
pause named), `--freeze` suspends a real agent and `hf resume` continues it, the
pause survives a new process, the sweep does not auto-join a paused batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import hf_proc
from liveness_support import Procs, agent_script, part_record, wait_for


@pytest.fixture
def procs():
    p = Procs()
    yield p
    p.end_all()


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def audit_actions(repo: Path) -> list[str]:
    return [json.loads(line)["action"]
            for line in (repo / ".git/hf/audit.log").read_text().splitlines()]


def test_pause_refuses_run_and_open_naming_the_pause_and_survives_a_new_process(
        split3, tmp_path, hf):
    repo = split3["repo"]
    r = hf("pause", "b1", "--reason", "review first", cwd=repo)
    assert r.code == 0 and "paused: b1" in r.out
    script = agent_script(tmp_path, "quick", "pass")
    # a new process (a fresh hf run) still sees the pause: it lives in a file
    run = hf_proc("run", "--", sys.executable, str(script), cwd=split3["api"])
    assert run.returncode == 1
    assert "batch b1 is paused" in run.stderr and "review first" in run.stderr
    assert "hf resume b1" in run.stderr
    assert part_record(repo, "b1", "api").get("worker") is None  # nothing started
    opened = hf("open", "b1", cwd=repo)
    assert opened.code == 1 and "paused" in opened.err
    assert "refused-paused" in audit_actions(repo)
    status = json.loads(hf("pause", "b1", "--json", cwd=repo).out)
    assert status["data"]["already"] is True  # idempotent
    assert hf("resume", "b1", cwd=repo).code == 0
    assert "not paused" in hf("resume", "b1", cwd=repo).out  # idempotent
    assert hf_proc("run", "--", sys.executable, str(script), cwd=split3["api"]).returncode == 0


def test_repository_pause_covers_every_batch_and_dry_run_changes_nothing(split3, hf, tmp_path):
    repo = split3["repo"]
    assert hf("pause", "--dry-run", cwd=repo).code == 0
    assert not (repo / ".git/hf/pauses/_repo.json").exists()
    assert hf("pause", cwd=repo).code == 0
    script = agent_script(tmp_path, "quick", "pass")
    run = hf_proc("run", "--", sys.executable, str(script), cwd=split3["ui"])
    assert run.returncode == 1 and "the repository is paused" in run.stderr
    assert hf("resume", cwd=repo).code == 0
    assert "resume" in audit_actions(repo) and "pause" in audit_actions(repo)


def test_freeze_suspends_a_real_agent_and_resume_continues_it(split3, tmp_path, hf, procs):
    repo = split3["repo"]
    script = agent_script(tmp_path, "spins", """
        while True:
            time.sleep(0.01)
    """)
    procs.hf_run(split3["api"], script)
    worker = wait_for(lambda: part_record(repo, "b1", "api").get("worker"), what="a worker")
    pid = worker["pid"]
    assert hf("pause", "b1", "--freeze", cwd=repo).code == 0
    wait_for(lambda: proc_state(pid) == "T", what="the agent stopped (state T)")
    handoff = (split3["api"] / ".hf" / "TASK.md").read_text()
    assert "PAUSED" in handoff
    assert hf("resume", "b1", cwd=repo).code == 0
    wait_for(lambda: proc_state(pid) in ("S", "R"), what="the agent running again")


def test_sweep_does_not_auto_join_a_paused_batch(repo, hf):
    r = hf("split", "b2", "--part", "api=src/api/**", "--task", "t", "--auto-join", cwd=repo)
    assert r.code == 0, r.err
    assert hf("done", "b2/api", cwd=repo).code == 0
    assert hf("pause", "b2", cwd=repo).code == 0
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout
    assert hf("sweep", cwd=repo).code == 0
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout == head
    assert "sweep-auto-join" not in audit_actions(repo)
    assert hf("resume", "b2", cwd=repo).code == 0
    assert hf("sweep", cwd=repo).code == 0
    assert "sweep-auto-join" in audit_actions(repo)


def test_status_shows_the_pause(split3, hf):
    repo = split3["repo"]
    assert hf("pause", "--reason", "lunch", cwd=repo).code == 0
    shown = hf("status", cwd=repo)
    assert "PAUSED: the repository is paused" in shown.out and "lunch" in shown.out
    data = json.loads(hf("status", "--json", cwd=repo).out)["data"]
    assert "lunch" in data["batches"][0]["paused"]
    assert hf("resume", cwd=repo).code == 0
    assert "PAUSED" not in hf("status", cwd=repo).out


def test_a_watcher_takes_nothing_while_paused_and_next_refuses(repo, hf):
    entry = hf("handoff", "--task", "t", "--next", "n", "--json", cwd=repo).json["data"]
    assert hf("pause", "--reason", "night", cwd=repo).code == 0
    r = hf("next", "--launcher", "print", cwd=repo)
    assert r.code == 1 and "night" in r.err
    r = hf("next", "--watch", "--timeout", "0", "--launcher", "print", "--json", cwd=repo)
    assert r.code == 0 and r.json["data"]["taken"] == []
    states = [e["state"] for e in hf("queue", "--json", cwd=repo).json["data"]["entries"]]
    assert states == ["pending"]
    assert hf("resume", cwd=repo).code == 0
    r = hf("next", "--launcher", "print", "--json", cwd=repo)
    assert r.json["data"]["taken"][0]["id"] == entry["id"]


def test_split_open_is_refused_while_the_repository_is_paused(repo, hf):
    assert hf("pause", cwd=repo).code == 0
    r = hf("split", "b3", "--part", "api=src/api/**", "--task", "t", "--open",
           "--launcher", "print", cwd=repo)
    assert r.code == 1 and "the repository is paused" in r.err
    assert not (repo / ".git/hf/batches/b3").exists()
