"""The handoff queue: `hf handoff` writes, `hf queue` lists, `hf next` takes exactly once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import git

from hf_fanout import processes
from hf_fanout.core.workspace import Workspace
from hf_fanout.tabs import queue as q


def queue_dir(repo: Path) -> Path:
    return repo / ".git" / "hf" / "queue"


def acks_dir(repo: Path) -> Path:
    return queue_dir(repo) / "acks"


def read_ack(repo: Path, name: str) -> dict:
    return json.loads((acks_dir(repo) / name).read_text())


def audit_lines(repo: Path, action: str) -> list[dict]:
    log = repo / ".git" / "hf" / "audit.log"
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [r for r in records if r["action"] == action]


def crashed_taker(repo: Path) -> int:
    """A real `hf next` SIGKILLed right after it claimed the oldest entry; its pid (gone)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hf_fanout", "next", "--launcher", "print"], cwd=repo,
        env={**os.environ, "HF_TEST_CRASH_AT": "claimed"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=60)  # reaps it: its pid is gone, not a zombie
    assert proc.returncode == -signal.SIGKILL, err
    return proc.pid


# Claims every pending entry through hf's own code, prints their ids, then holds
# them until its stdin closes (argv[2] == "hold") or exits at once.
CLAIMER = """
import sys
from pathlib import Path
from hf_fanout.core.workspace import Workspace
from hf_fanout.tabs import queue as q
ws = Workspace.open(Path(sys.argv[1]))
print(" ".join(e.id for e in q.entries(ws) if e.state == "pending" and q.claim(ws, e)),
      flush=True)
if sys.argv[2] == "hold":
    sys.stdin.read()
"""


def claimer(repo: Path, *, hold: bool) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CLAIMER, str(repo),
                             "hold" if hold else "exit"], cwd=repo, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_stopped(procs: list[subprocess.Popen[str]], timeout: float = 120) -> None:
    """Until every process is stopped (state T in /proc/PID/stat)."""
    deadline = time.monotonic() + timeout
    waiting = list(procs)
    while waiting:
        for p in list(waiting):
            assert p.poll() is None, f"pid {p.pid} ended before stopping: {p.stderr.read()}"
            stat = Path(f"/proc/{p.pid}/stat").read_text()
            if stat.rpartition(")")[2].split()[0] == "T":
                waiting.remove(p)
        assert time.monotonic() < deadline, f"never stopped: {[p.pid for p in waiting]}"
        time.sleep(0.02)


def write_claim(repo: Path, entry_id: str, content: str) -> Path:
    acks_dir(repo).mkdir(parents=True, exist_ok=True)
    path = acks_dir(repo) / f"{entry_id}.spawned"
    path.write_text(content)
    return path


def entry_data(hf, repo: Path, entry_id: str) -> dict:
    r = hf("queue", "--json", cwd=repo)
    assert r.code == 0, r.err
    return {e["id"]: e for e in r.json["data"]["entries"]}[entry_id]


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


def test_a_fifo_a_device_or_a_link_in_the_queue_is_malformed_not_read(repo, hf, tmp_path):
    """Something put in the queue that `hf handoff` never writes: a FIFO (a plain
    read would block forever), a link to /dev/zero (read without end) or to a
    file out of the queue (its content shown as a task). Each is listed as
    unreadable, never read; a watcher marks each failed and opens the good entry."""
    good = hf("handoff", "--task", "good", "--next", "do it", "--json", cwd=repo)
    good_id = good.json["data"]["id"]
    secret = tmp_path / "secret.txt"
    secret.write_text("---\ntask: leaked\n---\n\nthe secret\n")
    os.mkfifo(queue_dir(repo) / "20000101T000000000000000Z-fifo.md")
    (queue_dir(repo) / "20000101T000000000000001Z-zero.md").symlink_to("/dev/zero")
    (queue_dir(repo) / "20000101T000000000000002Z-link.md").symlink_to(secret)
    r = subprocess.run([sys.executable, "-m", "hf_fanout", "queue", "--json"], cwd=repo,
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 0, r.stderr
    entries = {e["id"]: e for e in json.loads(r.stdout)["data"]["entries"]}
    assert "is a FIFO, not a regular file" in entries[
        "20000101T000000000000000Z-fifo"]["problem"]
    for name in ("zero", "link"):
        entry = entries[f"20000101T00000000000000{1 if name == 'zero' else 2}Z-{name}"]
        assert "is a symbolic link" in entry["problem"], entry
        assert entry["next"] == "" and "leaked" not in entry["task"]
    r = subprocess.run([sys.executable, "-m", "hf_fanout", "next", "--watch", "--timeout",
                        "0", "--launcher", "print"], cwd=repo, capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert f"HF_QUEUE_ENTRY={good_id}" in r.stdout and "the secret" not in r.stdout
    entries = {e["id"]: e for e in hf("queue", "--json", cwd=repo).json["data"]["entries"]}
    assert sorted(e["state"] for e in entries.values()) == ["failed"] * 3 + ["submitted"]


def test_a_handoff_larger_than_an_entry_holds_is_refused(repo, hf):
    r = hf("handoff", "--task", "big", "--next", "x" * (q.ENTRY_MAX_BYTES + 1), cwd=repo)
    assert r.code == 2 and "a queue entry holds at most 1024 KiB" in r.err, r.err
    assert not queue_dir(repo).exists() or not list(queue_dir(repo).glob("*.md"))
    assert hf("handoff", "--task", "fits", "--next", "x" * 500_000, cwd=repo).code == 0


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


@pytest.mark.parametrize("taker", [["next"], ["next", "--watch", "--timeout", "0"]])
def test_a_taker_killed_after_claiming_leaves_the_entry_pending_and_it_is_taken_once(
        repo, hf, taker):
    entry_id = hf("handoff", "--task", "t", "--next", "n", "--json", cwd=repo).json["data"]["id"]
    dead = crashed_taker(repo)
    claim = read_ack(repo, f"{entry_id}.spawned")
    assert (claim["pid"], claim["host"]) == (dead, socket.gethostname())
    assert claim["started"] > 0 and claim["at"]
    assert not (acks_dir(repo) / f"{entry_id}.submitted").exists()

    listed = entry_data(hf, repo, entry_id)
    assert listed["state"] == "pending"
    assert listed["lapsed_claim"]["pid"] == dead
    assert listed["lapsed_claim"]["claim"] == f"{entry_id}.spawned"
    assert f"pid {dead} on {socket.gethostname()}" in listed["lapsed_claim"]["reason"]
    r = hf("queue", cwd=repo)
    assert f"{entry_id}: pending again: its claimant, pid {dead}" in r.out

    r = hf(*taker, "--launcher", "print", "--json", cwd=repo)
    assert r.code == 0, r.err
    [taken] = r.json["data"]["taken"]
    assert (taken["id"], taken["state"], taken["took_over"]["pid"]) == (entry_id, "submitted", dead)
    assert read_ack(repo, f"{entry_id}.submitted")["pid"] == os.getpid()  # the new taker
    new_claim = read_ack(repo, f"{entry_id}.spawned.1")
    assert new_claim["pid"] == os.getpid() and new_claim["takes_over"]["pid"] == dead
    assert read_ack(repo, f"{entry_id}.spawned") == claim  # the lapsed claim stays as it was
    [audited] = audit_lines(repo, "queue-takeover")
    assert (audited["entry"], audited["claim"], audited["lapsed"]["pid"]) == (
        entry_id, f"{entry_id}.spawned.1", dead)

    assert entry_data(hf, repo, entry_id)["state"] == "submitted"
    assert hf("next", "--launcher", "print", "--json", cwd=repo).json["data"]["taken"] == []


def test_racing_takers_take_an_entry_whose_claimant_died_exactly_once(repo, hf):
    ws = Workspace.open(repo)
    rounds = 10
    written = []
    for i in range(rounds):  # one lapsed entry per round: the losers find nothing else
        entry_id = q.write_entry(ws, task=f"t{i}", text=f"step {i}").id
        written.append(entry_id)
        dead = claimer(repo, hold=False)
        out, err = dead.communicate(timeout=60)
        assert dead.returncode == 0 and out.split() == [entry_id], err
        # each racer stops itself once it judged the claim lapsed, right before it
        # links the next claim; all six are then let go at once
        racers = [subprocess.Popen(
            [sys.executable, "-m", "hf_fanout", "next", "--launcher", "print", "--json"],
            cwd=repo, env={**os.environ, "HF_TEST_STOP_AT": "takeover"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(6)]
        try:
            wait_until_stopped(racers)
            for p in racers:
                os.kill(p.pid, signal.SIGCONT)
            results = [(p.pid, *p.communicate(timeout=120), p.returncode) for p in racers]
        finally:
            for p in racers:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        winners = []
        for pid, stdout, stderr, code in results:
            assert code == 0, stderr
            taken = json.loads(stdout)["data"]["taken"]
            assert [t["id"] for t in taken] in ([], [entry_id])
            winners += [pid] * len(taken)
        assert len(winners) == 1, f"{entry_id} taken by {winners}"
        assert read_ack(repo, f"{entry_id}.submitted")["pid"] == winners[0]
        claims = sorted(p.name for p in acks_dir(repo).glob(f"{entry_id}.spawned*"))
        assert claims == [f"{entry_id}.spawned", f"{entry_id}.spawned.1"]
        assert read_ack(repo, f"{entry_id}.spawned.1")["pid"] == winners[0]

    states = [e["state"] for e in hf("queue", "--json", cwd=repo).json["data"]["entries"]]
    assert states == ["submitted"] * rounds
    assert sorted(a["entry"] for a in audit_lines(repo, "queue-takeover")) == written


def test_a_live_claimants_entry_is_never_taken(repo, hf):
    entry_id = hf("handoff", "--task", "t", "--next", "n", "--json", cwd=repo).json["data"]["id"]
    holder = claimer(repo, hold=True)
    try:
        deadline = time.monotonic() + 60
        while not (acks_dir(repo) / f"{entry_id}.spawned").exists():
            assert time.monotonic() < deadline and holder.poll() is None, holder.stderr.read()
            time.sleep(0.02)
        assert read_ack(repo, f"{entry_id}.spawned")["pid"] == holder.pid
        listed = entry_data(hf, repo, entry_id)
        assert (listed["state"], listed["lapsed_claim"]) == ("spawned", None)
        r = hf("next", "--launcher", "print", "--json", cwd=repo)
        assert r.code == 0 and r.json["data"]["taken"] == []
        r = hf("next", "--watch", "--timeout", "0", "--launcher", "print", "--json", cwd=repo)
        assert r.json["data"]["taken"] == []
    finally:
        holder.communicate(input="", timeout=60)  # it lets go by exiting
    # once it is gone (and reaped), the same entry is pending again
    listed = entry_data(hf, repo, entry_id)
    assert (listed["state"], listed["lapsed_claim"]["pid"]) == ("pending", holder.pid)


def test_a_claim_whose_pid_now_belongs_to_another_process_counts_as_dead(repo, hf):
    me = processes.identity_of(os.getpid())
    assert me is not None
    held, reused = (hf("handoff", "--task", t, "--next", "n", "--json", cwd=repo)
                    .json["data"]["id"] for t in ("held", "reused"))
    write_claim(repo, held, json.dumps({**me.to_dict(), "at": "x"}))
    # the same live pid, but the claimant started earlier: the kernel handed its pid on
    write_claim(repo, reused, json.dumps({**me.to_dict(), "started": me.started - 1000,
                                          "ticks": (me.ticks or 0) - 100_000}))

    assert entry_data(hf, repo, held)["state"] == "spawned"
    listed = entry_data(hf, repo, reused)
    assert (listed["state"], listed["lapsed_claim"]["pid"]) == ("pending", os.getpid())
    r = hf("next", "--launcher", "print", "--json", cwd=repo)
    assert [t["id"] for t in r.json["data"]["taken"]] == [reused]  # skips the older, held one


def test_a_claim_from_another_host_is_never_taken_back(repo, hf):
    entry_id = hf("handoff", "--task", "t", "--next", "n", "--json", cwd=repo).json["data"]["id"]
    write_claim(repo, entry_id, json.dumps({"pid": 999999, "started": 1.0,
                                            "host": "elsewhere.invalid", "at": "x"}))
    old = time.time() - 30 * 86400
    os.utime(acks_dir(repo) / f"{entry_id}.spawned", (old, old))  # however old
    assert entry_data(hf, repo, entry_id)["state"] == "spawned"
    assert hf("next", "--launcher", "print", "--json", cwd=repo).json["data"]["taken"] == []


def test_an_unreadable_claim_is_held_until_it_is_a_day_old(repo, hf):
    entry_id = hf("handoff", "--task", "t", "--next", "n", "--json", cwd=repo).json["data"]["id"]
    garbage = write_claim(repo, entry_id, '{"pid": 12')  # torn: not JSON

    r = hf("queue", cwd=repo)
    assert r.code == 0 and entry_id in r.out and "spawned" in r.out
    listed = entry_data(hf, repo, entry_id)
    assert (listed["state"], listed["acks"]["spawned"]) == ("spawned", {"unreadable": True})
    r = hf("next", "--launcher", "print", cwd=repo)
    assert r.code == 0 and "no pending entry" in r.out
    assert garbage.read_text() == '{"pid": 12'

    old = time.time() - q.UNREADABLE_CLAIM_AGE - 3600
    os.utime(garbage, (old, old))
    listed = entry_data(hf, repo, entry_id)
    assert listed["state"] == "pending"
    assert "cannot be read" in listed["lapsed_claim"]["reason"]
    r = hf("next", "--launcher", "print", "--json", cwd=repo)
    assert [t["id"] for t in r.json["data"]["taken"]] == [entry_id]
    assert garbage.read_text() == '{"pid": 12'  # kept as it was, beside the new claim
    assert read_ack(repo, f"{entry_id}.spawned.1")["pid"] == os.getpid()


def test_old_temp_files_of_killed_writers_are_removed_when_the_queue_is_scanned(repo, hf):
    entry_id = hf("handoff", "--task", "t", "--next", "n", "--json", cwd=repo).json["data"]["id"]
    acks_dir(repo).mkdir(parents=True, exist_ok=True)
    old_temps = [acks_dir(repo) / f".{entry_id}.spawned.k1ll3d.tmp",
                 queue_dir(repo) / f".{entry_id}.md.k1ll3d.tmp"]
    fresh_temps = [acks_dir(repo) / f".{entry_id}.submitted.wr1t1ng.tmp",
                   queue_dir(repo) / ".next.md.wr1t1ng.tmp"]
    for path in old_temps + fresh_temps:
        path.write_text("{}")
    old = time.time() - q.STALE_TEMP_AGE - 60
    for path in old_temps:
        os.utime(path, (old, old))

    r = hf("queue", "--json", cwd=repo)
    assert r.code == 0
    assert [path.exists() for path in old_temps] == [False, False]
    assert [path.exists() for path in fresh_temps] == [True, True]
    assert [e["state"] for e in r.json["data"]["entries"]] == ["pending"]


def test_a_watcher_killed_is_not_listed_as_watching(repo, hf):
    """`hf next --watch` killed with SIGKILL cannot remove its note: `hf queue` lists
    it while it lives, and not once it is gone (its note removed)."""
    assert hf("handoff", "--task", "a", "--next", "b", cwd=repo).code == 0
    watcher = subprocess.Popen([sys.executable, "-m", "hf_fanout", "next", "--watch",
                                "--launcher", "print"], cwd=repo, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not [w for w in hf("queue", "--json", cwd=repo).json["data"]["watchers"]
                   if w["pid"] == watcher.pid]:
            assert time.monotonic() < deadline, "the watcher never said it watches"
            time.sleep(0.2)
    finally:
        watcher.kill()
        watcher.wait()
    r = hf("queue", "--json", cwd=repo)
    assert r.json["data"]["watchers"] == [], r.json["data"]["watchers"]
    assert not list((queue_dir(repo) / "watchers").glob("*.json"))


def test_a_long_task_is_cut_in_the_listing_and_whole_in_json(repo, hf):
    """One entry's long task would widen the task column of every row: the listing
    cuts it (saying so with `...`), `--json` has it whole."""
    long_task = "t" * 200
    assert hf("handoff", "--task", long_task, "--next", "n", cwd=repo).code == 0
    assert hf("handoff", "--task", "short", "--next", "n", cwd=repo).code == 0
    lines = hf("queue", cwd=repo).out.splitlines()
    assert all(len(line) < 200 for line in lines), lines
    assert any("t" * 57 + "..." in line for line in lines), lines
    tasks = [e["task"] for e in hf("queue", "--json", cwd=repo).json["data"]["entries"]]
    assert long_task in tasks
