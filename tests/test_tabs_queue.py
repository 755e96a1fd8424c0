"""The handoff queue: `hf handoff` writes, `hf queue` lists, `hf next` takes exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from hf_fanout.orchestrator.workspace import Workspace
from hf_fanout.tabs import queue as q
from tests.conftest import git


def queue_dir(repo: Path) -> Path:
    return repo / ".git" / "hf" / "queue"


def test_handoff_writes_an_entry_with_a_header_and_queue_lists_it(repo, hf):
    r = hf("handoff", "--task", "Login form", "--status", "done", "--next",
           "Add logout.\nKeep the session cookie.", "--tests", "pytest: 40 passed",
           "--files", "src/api/users.py", "--files", "src/ui/page.html", "--json", cwd=repo)
    assert r.code == 0, r.err
    entry = r.json["data"]
    path = Path(entry["path"])
    assert path.parent == queue_dir(repo)
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0] == "---"
    header = dict(line.split(": ", 1) for line in lines[1:lines.index("---", 1)])
    assert header["hf-handoff"] == "1"
    assert header["id"] == entry["id"] == path.stem
    assert header["task"] == "Login form"
    assert header["status"] == "done"
    assert header["tests"] == "pytest: 40 passed"
    assert header["files"] == "src/api/users.py, src/ui/page.html"
    assert header["from"] == str(repo)
    assert text.endswith("# Next task\n\nAdd logout.\nKeep the session cookie.\n")
    assert not list(queue_dir(repo).glob(".*tmp"))  # no temp file left behind

    r = hf("queue", "--json", cwd=repo)
    [listed] = r.json["data"]["entries"]
    assert (listed["id"], listed["state"], listed["next"]) == (
        entry["id"], "pending", "Add logout.\nKeep the session cookie.")
    r = hf("queue", cwd=repo)
    assert entry["id"] in r.out and "pending" in r.out


def test_handoff_rejects_bad_input(repo, hf):
    assert hf("handoff", "--task", "x", cwd=repo).code == 2
    assert hf("handoff", "--next", "y", cwd=repo).code == 2
    r = hf("handoff", "--task", "x", "--next", "y", "--status", "later", cwd=repo)
    assert r.code == 2 and "bad --status" in r.err
    assert not queue_dir(repo).exists() or not list(queue_dir(repo).glob("*.md"))


def test_next_takes_the_oldest_once_and_acknowledges(repo, hf):
    ids = [hf("handoff", "--task", f"t{i}", "--next", f"do {i}", "--json", cwd=repo)
           .json["data"]["id"] for i in range(3)]
    r = hf("next", "--launcher", "print", "--json", cwd=repo)
    assert r.code == 0, r.err
    [taken] = r.json["data"]["taken"]
    assert taken["id"] == ids[0]
    assert taken["state"] == "submitted"
    command = taken["tab"]["command"]
    assert command.startswith(f"cd {repo} && HF_QUEUE_ENTRY={ids[0]} ")
    assert str(queue_dir(repo) / f"{ids[0]}.md") in command

    states = [e["state"] for e in hf("queue", "--json", cwd=repo).json["data"]["entries"]]
    assert states == ["submitted", "pending", "pending"]
    assert (queue_dir(repo) / "acks" / f"{ids[0]}.spawned").exists()

    assert hf("next", "--launcher", "print", "--json", cwd=repo).json["data"]["taken"][0][
        "id"] == ids[1]
    r = hf("next", "--watch", "--timeout", "0", "--launcher", "print", "--json", cwd=repo)
    assert [t["id"] for t in r.json["data"]["taken"]] == [ids[2]]
    r = hf("next", "--launcher", "print", cwd=repo)
    assert r.code == 0 and "no pending entry" in r.out


def test_next_isolated_opens_the_entry_in_a_worktree_of_its_own(repo, hf):
    entry = hf("handoff", "--task", "t", "--next", "n", "--json", cwd=repo).json["data"]
    r = hf("next", "--isolated", "--launcher", "print", "--json", cwd=repo)
    assert r.code == 0, r.err
    worktree = repo.parent / "repo.hf" / "queue" / entry["id"]
    assert r.json["data"]["taken"][0]["tab"]["command"].startswith(f"cd {worktree} && ")
    assert (worktree / "README.md").exists()
    assert git(worktree, "rev-parse", "--abbrev-ref", "HEAD").strip() == \
        f"hf/queue/{entry['id']}"


def test_a_tab_that_cannot_open_is_acknowledged_failed(repo, hf):
    blocker = repo.parent / "not-a-dir"
    blocker.write_text("")
    (repo / ".hf.toml").write_text(f'worktree_root = "{blocker}"\n')
    hf("handoff", "--task", "t", "--next", "n", cwd=repo)
    r = hf("next", "--isolated", "--launcher", "print", "--json", cwd=repo)
    assert r.code == 1
    assert r.json["error"]["code"] == "launch_failed"
    [entry] = hf("queue", "--json", cwd=repo).json["data"]["entries"]
    assert entry["state"] == "failed"
    assert "cannot make" in entry["acks"]["failed"]["error"]
    # a failed entry is not taken again
    r = hf("next", "--launcher", "print", "--json", cwd=repo)
    assert r.json["data"]["taken"] == []


def test_a_malformed_entry_is_marked_failed_with_the_reason_not_opened(repo, hf):
    hf("handoff", "--task", "first", "--next", "n", cwd=repo)  # makes the queue directory
    assert hf("next", "--launcher", "print", cwd=repo).code == 0
    (queue_dir(repo) / "20000101T000000000000000Z-bad.md").write_text("just some text\n")
    (queue_dir(repo) / "20000101T000000000000001Z-no-task.md").write_text(
        "---\nid: 20000101T000000000000001Z-no-task\n---\n\n# Next task\n\nx\n")
    good = hf("handoff", "--task", "good", "--next", "do it", "--json", cwd=repo)
    good_id = good.json["data"]["id"]

    r = hf("next", "--launcher", "print", "--dry-run", cwd=repo)
    assert "would take 20000101T000000000000000Z-bad and mark it failed" in r.out
    r = hf("next", "--launcher", "print", "--json", cwd=repo)
    assert r.code == 2
    assert r.json["error"]["code"] == "bad_input"
    assert r.json["error"]["message"] == (
        "queue entry 20000101T000000000000000Z-bad is malformed: no header (it must start "
        "with a `---` line, as `hf handoff` writes it); not opened")
    # a watcher reports it and goes on to the good entry
    r = hf("next", "--watch", "--timeout", "0", "--launcher", "print", cwd=repo)
    assert r.code == 0, r.err
    assert ("20000101T000000000000001Z-no-task: failed: queue entry "
            "20000101T000000000000001Z-no-task is malformed: its header names no task; "
            "not opened") in r.out
    assert f"HF_QUEUE_ENTRY={good_id}" in r.out
    entries = {e["id"]: e for e in hf("queue", "--json", cwd=repo).json["data"]["entries"]}
    assert entries["20000101T000000000000000Z-bad"]["state"] == "failed"
    assert "no header" in entries["20000101T000000000000000Z-bad"]["acks"]["failed"]["error"]
    assert entries["20000101T000000000000001Z-no-task"]["state"] == "failed"
    assert entries[good_id]["state"] == "submitted"


def test_claims_race_in_threads_exactly_one_winner_per_entry(repo):
    ws = Workspace.open(repo)
    entries = [q.write_entry(ws, task=f"t{i}", text="x") for i in range(20)]
    wins: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def racer() -> None:
        start.wait()
        for entry in entries:
            if q.claim(ws, entry):
                with lock:
                    wins.append(entry.id)

    threads = [threading.Thread(target=racer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(wins) == sorted(e.id for e in entries)


def test_two_watchers_racing_over_five_entries_take_each_exactly_once(repo, hf):
    ws = Workspace.open(repo)

    def watcher() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "hf_fanout", "next", "--watch", "--timeout", "2",
             "--launcher", "print", "--json"], cwd=repo, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)

    procs = [watcher(), watcher()]
    try:
        # both watchers announce themselves before polling: then the entries arrive
        deadline = time.monotonic() + 30
        while len(q.watchers(ws)) < 2:
            assert time.monotonic() < deadline, "the watchers never started"
            assert all(p.poll() is None for p in procs), procs[0].stderr.read()
            time.sleep(0.02)
        written = [q.write_entry(ws, task=f"task {i}", text=f"step {i}").id for i in range(5)]
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


    taken: list[str] = []
    for (out, err), p in zip(outputs, procs, strict=True):
        assert p.returncode == 0, err
        taken += [t["id"] for t in json.loads(out)["data"]["taken"]]
    assert sorted(taken) == sorted(written)  # every entry once, none twice
    states = [e["state"] for e in hf("queue", "--json", cwd=repo).json["data"]["entries"]]
    assert states == ["submitted"] * 5
    spawned = sorted(p.name for p in (queue_dir(repo) / "acks").glob("*.spawned"))
    assert spawned == sorted(f"{i}.spawned" for i in written)
    assert q.watchers(ws) == []  # both said goodbye
