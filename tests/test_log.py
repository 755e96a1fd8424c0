"""`hf log` and the audit trail: every state change one JSON line with its time,
actor and batch/part; torn lines kept and reported; filters; `--follow` live."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import hf_proc, write
from liveness_support import Procs, agent_script, part_record, wait_for

from hf_fanout import timefmt


@pytest.fixture
def procs():
    p = Procs()
    yield p
    p.end_all()


def audit_events(repo: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (repo / ".git/hf/audit.log").read_text().splitlines()]


def test_every_state_change_is_one_line_with_time_actor_and_part(split3, hf):
    repo = split3["repo"]
    assert hf("blocked", "b1/ui", "--reason", "needs the schema", cwd=repo).code == 0
    # from inside a part's tab (the marker in its environment): the worker acts
    env = {**os.environ, "HF_BATCH": "b1", "HF_PART": "api"}
    assert hf_proc("done", "--note", "tests pass", cwd=split3["api"], env=env).returncode == 0
    assert hf("done", "b1/ui", cwd=repo).code == 0
    assert hf("done", "b1/docs", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    # the sweep's automatic join of a second batch is the sweep's
    assert hf("split", "b2", "--part", "tools=tools/**", "--auto-join", cwd=repo).code == 0
    assert hf("done", "b2/tools", cwd=repo).code == 0
    assert hf("sweep", "--repo", str(repo), cwd=repo).code == 0
    events = audit_events(repo)
    actions = [e["action"] for e in events]
    assert actions[:1] == ["split"] and "join" in actions
    for event in events:
        assert event["at"].endswith("Z") and isinstance(event["t"], float)
        assert event["actor"]["kind"] in ("user", "worker", "sweep") and event["actor"]["pid"]
    by_action = {(e["action"], e.get("part")): e for e in events}
    assert by_action[("done", "api")]["actor"] == {
        "kind": "worker", "name": "b1/api", "pid": by_action[("done", "api")]["actor"]["pid"]}
    assert by_action[("blocked", "ui")]["actor"]["kind"] == "user"
    assert by_action[("blocked", "ui")]["reason"] == "needs the schema"
    join = next(e for e in events if e["action"] == "join" and e["batch"] == "b1")
    assert sorted(join["parts"]) == ["api", "docs", "ui"] and join["seconds"] >= 0
    assert join["actor"]["kind"] == "user"
    swept = [e for e in events if e.get("batch") == "b2" and e["action"] in (
        "join", "sweep-auto-join")]
    assert [e["action"] for e in swept] == ["join", "sweep-auto-join"]
    assert {e["actor"]["kind"] for e in swept} == {"sweep"}


def test_log_is_a_readable_timeline_filtered_by_batch_part_and_time(split3, hf, monkeypatch):
    repo = split3["repo"]
    assert hf("split", "b2", "--part", "tools=tools/**", cwd=repo).code == 0
    assert hf("done", "b1/api", "--note", "api works", cwd=repo).code == 0
    assert hf("done", "b2/tools", cwd=repo).code == 0
    r = hf("log", cwd=repo)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert len(lines) == 4  # two splits, two dones
    assert lines[0].split()[0].endswith("Z")
    assert "ago" in lines[0] or "just now" in lines[0]
    assert "split" in lines[0] and "b1" in lines[0] and "user" in lines[0]
    assert "done" in lines[2] and "b1/api" in lines[2] and "note=api works" in lines[2]
    assert [e["action"] for e in hf("log", "b2", "--json", cwd=repo).json["data"]["events"]] \
        == ["split", "done"]
    only = hf("log", "--part", "b1/api", "--json", cwd=repo).json["data"]["events"]
    # the split names every part: a part's history starts there
    assert [(e["action"], e.get("part")) for e in only] == [("split", None), ("done", "api")]
    assert hf("log", "b1", "--part", "api", "--json", cwd=repo).json["data"]["events"] == only
    # --since against a clock set three hours ahead
    monkeypatch.setenv("HF_CLOCK", timefmt.iso(time.time() + 3 * 3600 + 1))  # (whole seconds)
    assert hf("log", "--since", "2h", "--json", cwd=repo).json["data"]["events"] == []
    assert len(hf("log", "--since", "4h", "--json", cwd=repo).json["data"]["events"]) == 4
    assert "3 h 00 min ago" in hf("log", cwd=repo).out
    monkeypatch.delenv("HF_CLOCK")
    r = hf("log", "--since", "yesterday", cwd=repo)
    assert r.code == 2 and "--since 2h" in r.err
    assert "no events match" in hf("log", "b9", cwd=repo).out


def test_a_torn_line_is_kept_reported_and_the_rest_still_read(split3, hf):
    repo = split3["repo"]
    log = repo / ".git/hf/audit.log"
    with open(log, "a") as handle:
        handle.write('{"action": "done", "batch": "b1", "pa')  # a writer killed mid-line
    assert hf("done", "b1/api", cwd=repo).code == 0
    before = log.read_bytes()
    r = hf("log", "--json", cwd=repo)
    assert r.code == 0
    data = r.json["data"]
    assert [t["line"] for t in data["torn"]] == [2]
    assert data["torn"][0]["text"].startswith('{"action": "done", "batch": "b1", "pa')
    assert [e["action"] for e in data["events"]] == ["split", "done"]
    assert data["events"][1]["line"] == 3
    assert "line 2 is torn" in r.err
    assert log.read_bytes() == before  # reported, never rewritten


def test_follow_shows_a_new_event_within_a_second(split3, hf):
    repo = split3["repo"]
    proc = subprocess.Popen([sys.executable, "-m", "hf_fanout", "log", "--follow", "--json"],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    seen: list[tuple[float, dict[str, Any]]] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append((time.monotonic(), json.loads(line)))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        wait_for(lambda: seen, what="the split already in the log")
        assert seen[0][1]["data"]["event"]["action"] == "split"
        assert list(seen[0][1]) == ["hf", "command", "ok", "data", "error"]
        time.sleep(0.3)  # it is polling now
        assert hf("done", "b1/docs", cwd=repo).code == 0
        written = time.monotonic()
        wait_for(lambda: len(seen) >= 2, timeout=5, what="the done event")
        shown_at, envelope = seen[1]
        assert envelope["data"]["event"]["action"] == "done"
        assert envelope["data"]["event"]["part"] == "docs"
        assert shown_at - written < 1.0
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0  # Ctrl-C ends following, not an error


def test_run_audits_idle_spans_gaps_and_how_long_it_ran(split3, tmp_path, procs):
    repo, api = split3["repo"], split3["api"]
    write(repo, {".hf.toml": "idle_minutes = 0.01\n"})  # idle after 0.6 s without CPU
    go = tmp_path / "go"
    script = agent_script(tmp_path, "naps", f"""
        while not os.path.exists({str(go)!r}):
            time.sleep(0.05)
        end = time.time() + 0.8
        while time.time() < end:
            pass
        time.sleep(60)
    """)
    sup = procs.hf_run(api, script)

    def events(action: str) -> list[dict[str, Any]]:
        return [e for e in audit_events(repo) if e["action"] == action]

    idle = wait_for(lambda: events("worker-idle"), what="the worker judged idle")[0]
    assert idle["batch"] == "b1" and idle["part"] == "api" and idle["since_t"] <= idle["t"]
    go.write_text("")
    wait_for(lambda: events("worker-active"), what="the worker working again")
    # the supervisor suspended for longer than three beats: a gap in the heartbeats
    os.kill(sup.pid, signal.SIGSTOP)
    time.sleep(2.5)
    os.kill(sup.pid, signal.SIGCONT)
    gap = wait_for(lambda: events("heartbeat-gap"), what="the heartbeat gap")[0]
    assert gap["seconds"] >= 2
    worker = part_record(repo, "b1", "api")["worker"]
    os.killpg(worker["pgid"], signal.SIGTERM)
    assert sup.wait(timeout=20) != 0
    (exited,) = events("exit")
    assert exited["seconds"] > 3 and 0.5 < exited["idle_seconds"] < exited["seconds"]
    assert part_record(repo, "b1", "api")["exit"]["idle_seconds"] == exited["idle_seconds"]


def test_recent_events_are_read_from_the_log_s_tail_and_match_a_full_read(tmp_path):
    """A log of a few hundred kB, most of it old: `audit.recent` (what the spawn
    limit counts with) gives exactly the events a full read filters to, across
    windows that must grow, a torn line in the old part and one in the new."""
    from hf_fanout.core import audit

    log = tmp_path / "audit.log"
    now = time.time()
    lines = [json.dumps({"action": "old", "t": now - 7200 + i, "pad": "x" * 100})
             for i in range(2000)]
    lines.append('{"action": "torn-old", "t"')
    lines += [json.dumps({"action": "spawn" if i % 3 == 0 else "new", "t": now - 1800 + i,
                          "pad": "y" * 100}) for i in range(1500)]
    lines.append('{"torn at the end')
    log.write_text("\n".join(lines) + "\n")
    since = now - 3600
    full = [e.data for e in audit.read(log).events if e.time >= since]
    tail = [e.data for e in audit.recent(log, since)]
    assert tail == full and len(tail) == 1500
    assert sum(1 for e in tail if e["action"] == "spawn") == 500
    assert audit.recent(tmp_path / "none.log", since) == []


def test_a_line_with_numbers_json_cannot_hold_still_gives_strict_json(split3, hf):
    """An audit line holding `1e400` and `NaN` (Python's reader takes them): `hf log
    --json` prints JSON a strict parser reads, those numbers as null."""
    repo = split3["repo"]
    with open(repo / ".git/hf/audit.log", "a") as handle:
        handle.write('{"action": "agent-state", "batch": "b1", "part": "api", '
                     '"state": "working", "since_t": 1e400, "t": NaN}\n')
    r = hf("log", "--json", cwd=repo)
    assert r.code == 0, r.err
    strict = json.loads(r.out, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    odd = strict["data"]["events"][-1]
    assert odd["action"] == "agent-state" and odd["since_t"] is None and odd["t"] is None, odd
