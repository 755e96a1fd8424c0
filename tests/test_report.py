"""`hf report`: speedup and efficiency of a batch of real stand-in agents of known
durations, the timeline as a picture and as SVG, the state summary, the
calibration of estimates over past batches, and the handoff that carries it."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import git, hf_proc
from liveness_support import Procs, agent_script, alive, part_record, wait_for

from hf_fanout import timefmt

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def procs():
    p = Procs()
    yield p
    p.end_all()


def run_part(procs: Procs, worktree: Path, *command: str, batch: str = "b1",
             sandbox: bool = False) -> Any:
    """`hf run --done-on-success -- COMMAND` in the part's worktree, as a tab runs it
    (without the sandbox unless asked: its set-up is time the agent did not work)."""
    procs.markers.append((batch, worktree.name, worktree.parent.parent.parent / "repo"))
    return procs.start([sys.executable, "-m", "hf_fanout", "run", "--heartbeat", "0.2",
                        "--done-on-success", *([] if sandbox else ["--no-sandbox"]), "--",
                        *command], worktree)


def all_done(repo: Path, batch: str, parts: list[str]) -> bool:
    return all(part_record(repo, batch, p)["state"] == "done" for p in parts)


DURATIONS = {"api": 2.0, "ui": 3.0, "docs": 4.0}


def test_three_agents_of_known_durations_give_speedup_and_efficiency(repo, hf, procs,
                                                                     tmp_path):
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
           "--part", "docs=docs/**,README.md", "--estimate", "0.05", "--estimate", "docs=0.1",
           cwd=repo)
    assert r.code == 0, r.err
    split_done = time.time()
    root = repo.parent / "repo.hf" / "b1"
    for name, seconds in DURATIONS.items():
        run_part(procs, root / name, "sleep", str(seconds))
    wait_for(lambda: all_done(repo, "b1", list(DURATIONS)), timeout=60, what="parts done")
    assert hf("join", "b1", cwd=repo).code == 0
    wall = time.time() - split_done  # what the user waited, by this test's own clock
    serial = sum(DURATIONS.values())

    r = hf("report", "b1", "--json", cwd=repo)
    assert r.code == 0, r.err
    data = r.json["data"]["report"]
    parts = {p["name"]: p for p in data["parts"]}
    for name, seconds in DURATIONS.items():
        # (the time `hf run` takes to record the start and the exit is in it)
        assert parts[name]["active_seconds"] == pytest.approx(seconds, abs=0.4)
        assert parts[name]["state"] == "joined"
    assert parts["docs"]["estimate_minutes"] == 0.1 and parts["api"]["estimate_minutes"] == 0.05
    assert parts["api"]["ratio"] == pytest.approx(parts["api"]["active_seconds"] / 3,
                                                  abs=0.002)  # of 3 s
    assert data["ended"] and data["wall_seconds"] == pytest.approx(wall, rel=0.1)
    assert data["serial_seconds"] == pytest.approx(serial, rel=0.1)
    assert data["speedup"] == pytest.approx(serial / wall, rel=0.1)
    assert data["efficiency"] == pytest.approx(serial / wall / 3, rel=0.1)
    speedup = data["speedup"]
    assert data["serial_fraction"] == pytest.approx((1 / speedup - 1 / 3) / (1 - 1 / 3),
                                                    rel=0.01)
    assert data["join_seconds"] is not None and 0 < data["join_seconds"] < wall

    # the terminal picture (a pipe: plain characters), one bar per part
    out = hf("report", "b1", cwd=repo).out
    shown = re.search(r"speedup (\d+\.\d\d)x, efficiency (\d+)%", out)
    assert shown and float(shown[1]) == pytest.approx(speedup, abs=0.006)
    assert int(shown[2]) == pytest.approx(speedup / 3 * 100, abs=0.6)
    bars = {line.split()[0]: line for line in out.splitlines() if line.count("|") == 2
            and line.split()[0] in DURATIONS}
    assert set(bars) == set(DURATIONS)
    assert bars["api"].count("=") < bars["ui"].count("=") < bars["docs"].count("=")

    # the SVG: valid XML, one bar (a group) per part, its spans as rectangles
    picture = tmp_path / "b1.svg"
    r = hf("report", "b1", "--svg", str(picture), cwd=repo)
    assert r.code == 0 and f"timeline saved to {picture}" in r.out
    svg = ET.parse(picture).getroot()
    assert svg.tag == f"{SVG}svg"
    groups = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "bar"]
    assert sorted(g.get("data-part") for g in groups) == sorted(DURATIONS)
    width = {g.get("data-part"): sum(float(rect.get("width", 0)) for rect in g.iter(f"{SVG}rect")
                                     if rect.get("data-state") == "running")
             for g in groups}
    assert width["api"] < width["ui"] < width["docs"]


def test_state_summary_has_each_section_with_the_right_counts(repo, hf, procs):
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
           "--part", "docs=docs/**,README.md", cwd=repo)
    assert r.code == 0, r.err
    root = repo.parent / "repo.hf" / "b1"
    assert hf("note", "--decision", "kept the old API behind a flag", cwd=root / "api").code == 0
    assert hf("done", "--note", "api works", cwd=root / "api").code == 0
    assert hf("blocked", "--reason", "needs the schema from api", cwd=root / "ui").code == 0
    # docs: its agent died before `hf done` (an orphan)
    r = hf_proc("run", "--", "sh", "-c", "exit 3", cwd=root / "docs")
    assert r.returncode == 3, r.stderr

    r = hf("report", "b1", "--state", cwd=repo)
    assert r.code == 0, r.err
    text = r.out
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections == ["## Current position", "## Velocity", "## Decisions (2)",
                        "## Blockers (2)", "## Continuity (2 unfinished)"]
    assert "1 of 3 parts done" in text
    assert "`[#######-------------] 1/3`" in text
    assert "- Parts completed: 1 of 3" in text
    decisions = section(text, "Decisions")
    assert "kept the old API behind a flag" in decisions and "api works" in decisions
    blockers = section(text, "Blockers")
    assert "**ui** (blocked): needs the schema from api" in blockers
    assert "**docs** (orphan)" in blockers and "exited with code 3" in blockers
    continuity = section(text, "Continuity")
    assert "**api**" not in continuity
    assert f"`{root / 'ui'}`" in continuity and "branch `hf/b1/ui`" in continuity
    assert "resume: `hf open b1/ui`" in continuity
    assert f"resume: `cd {root / 'docs'} && hf run -- sh -c 'exit 3'`" in continuity
    # the same Markdown in the envelope (a moment later: the times go on)
    again = hf("report", "b1", "--state", "--json", cwd=repo).json["data"]["state"]
    assert [line for line in again.splitlines() if line.startswith("## ")] == sections
    assert section(again, "Continuity") == continuity


def section(text: str, title: str) -> str:
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def finished_batch(hf: Any, procs: Procs, repo: Path, batch: str, seconds: float,
                   estimate: str) -> None:
    r = hf("split", batch, "--part", "api=src/api/**", "--estimate", estimate, cwd=repo)
    assert r.code == 0, r.err
    run_part(procs, repo.parent / "repo.hf" / batch / "api", "sleep", str(seconds),
             batch=batch)
    wait_for(lambda: all_done(repo, batch, ["api"]), timeout=60, what=f"{batch} done")
    assert hf("join", batch, cwd=repo).code == 0


def test_calibration_over_two_past_batches(repo, hf, procs):
    assert hf("report", "--history", cwd=repo).out.startswith("no past batch had estimates")
    # estimates of 1.2 s; the first part takes twice that, the second as estimated
    finished_batch(hf, procs, repo, "c1", 2.4, "0.02")
    assert "your estimates run" in hf("split", "c2", "--part", "api=src/api/**",
                                      "--estimate", "0.02", "--dry-run", cwd=repo).out
    finished_batch(hf, procs, repo, "c2", 1.2, "0.02")
    actual = [hf("report", b, "--json", cwd=repo).json["data"]["report"]["parts"][0]
              ["active_seconds"] for b in ("c1", "c2")]
    assert actual == pytest.approx([2.4, 1.2], abs=0.4)

    data = hf("report", "--history", "--json", cwd=repo).json["data"]
    assert [h["batch"] for h in data["history"]] == ["c1", "c2"]
    assert [h["ratio"] for h in data["history"]] == pytest.approx(
        [actual[0] / 1.2, actual[1] / 1.2], abs=0.002)
    ratio = data["calibration"]["ratio"]
    assert ratio == pytest.approx(sum(actual) / 2.4, abs=0.002)
    assert ratio == pytest.approx(1.5, abs=0.3)
    assert data["calibration"]["trend"] == "closer"
    out = hf("report", "--history", cwd=repo).out
    assert "c1" in out and "c2" in out and "trend: closer" in out

    r = hf("split", "c3", "--part", "api=src/api/**", cwd=repo)
    assert r.code == 0, r.err
    assert f"note: your estimates run {ratio:.1f}x long (2 past batches)" in r.out
    assert hf("split", "c4", "--dry-run", "--json", "--part", "ui=src/ui/**",
              cwd=repo).json["data"]["calibration"].startswith("your estimates run")


def test_split_says_nothing_of_estimates_without_history(repo, hf):
    r = hf("split", "b1", "--part", "api=src/api/**", "--estimate", "30", cwd=repo)
    assert r.code == 0, r.err
    assert "estimates" not in r.out
    assert part_record(repo, "b1", "api")["estimate_minutes"] == 30


@pytest.mark.parametrize(("spec", "says"), [
    ("api=soon", "bad --estimate 'api=soon': not a number of minutes"),
    ("web=5", "the plan has no part 'web'"),
    ("-3", "bad --estimate '-3'"),
])
def test_a_bad_estimate_is_refused_and_nothing_is_made(repo, hf, spec, says):
    r = hf("split", "b1", "--part", "api=src/api/**", "--estimate", spec, cwd=repo)
    assert r.code == 2 and says in r.err and "hint:" in r.err
    assert not (repo.parent / "repo.hf").exists()
    assert "hf/b1/api" not in git(repo, "branch", "--list")


def test_report_refusals_are_one_line(repo, hf, tmp_path):
    r = hf("report", cwd=repo)
    assert r.code == 2 and "name the batch" in r.err
    r = hf("report", "b9", cwd=repo)
    assert r.code != 0 and "b9" in r.err
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    r = hf("report", "b1", "--svg", str(tmp_path / "nowhere" / "b1.svg"), cwd=repo)
    assert r.code == 2 and "does not exist" in r.err
    assert not (tmp_path / "nowhere").exists()


def test_waiting_for_the_person_is_counted_apart(repo, hf, procs, tmp_path):
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    api = repo.parent / "repo.hf" / "b1" / "api"
    script = agent_script(tmp_path, "asks", f"""
        import subprocess
        hf = [{sys.executable!r}, "-m", "hf_fanout", "agent-event"]
        subprocess.run([*hf, "waiting"], check=True)
        time.sleep(1.5)
        subprocess.run([*hf, "working"], check=True)
        time.sleep(0.5)
    """)
    run_part(procs, api, sys.executable, str(script), sandbox=True)  # (via its inbox)
    wait_for(lambda: all_done(repo, "b1", ["api"]), timeout=60, what="api done")
    part = hf("report", "b1", "--json", cwd=repo).json["data"]["report"]["parts"][0]
    assert part["waiting_seconds"] == pytest.approx(1.5, abs=0.5)
    assert [s["state"] for s in part["spans"]][:3] == ["running", "waiting", "running"]


def test_handoff_attaches_the_state_summary_to_the_queue_entry(repo, hf):
    assert hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
              cwd=repo).code == 0
    assert hf("done", "b1/api", "--note", "api works", cwd=repo).code == 0
    r = hf("handoff", "--task", "b1", "--next", "carry b1 on", "--report", "b1", "--json",
           cwd=repo)
    assert r.code == 0, r.err
    entry = Path(r.json["data"]["path"]).read_text()
    assert "carry b1 on" in entry and "# State of batch `b1`" in entry
    assert "1 of 2 parts done" in entry and "resume: `hf open b1/ui`" in entry
    queued = hf("queue", "--json", cwd=repo).json["data"]
    assert "## Continuity (1 unfinished)" in str(queued)
    r = hf("handoff", "--task", "b1", "--next", "x", "--report", "b9", cwd=repo)
    assert r.code != 0 and "b9" in r.err
    assert len(hf("queue", "--json", cwd=repo).json["data"]["entries"]) == 1


def test_a_batch_gc_forgot_is_still_reported_from_the_log(repo, hf, monkeypatch):
    monkeypatch.setenv("HF_CLOCK", "2026-03-01T10:00:00Z")
    assert hf("split", "b1", "--part", "api=src/api/**", "--estimate", "5", cwd=repo).code == 0
    assert hf("done", "b1/api", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    before = hf("report", "b1", "--json", cwd=repo).json["data"]["report"]
    assert hf("gc", cwd=repo).code == 0
    monkeypatch.setenv("HF_CLOCK", "2026-03-16T10:00:01Z")  # 15 days later: forgotten
    assert hf("gc", "--json", cwd=repo).json["data"]["forgotten"] == ["b1"]
    after = hf("report", "b1", "--json", cwd=repo).json["data"]
    assert after["report"]["wall_seconds"] == before["wall_seconds"]
    assert [p["name"] for p in after["report"]["parts"]] == ["api"]
    assert [h["batch"] for h in after["history"]] == ["b1"]  # its estimate is in the log
    r = hf("report", "b1", "--state", cwd=repo)  # the state needs the records
    assert r.code == 1 and "no batch 'b1'" in r.err


def test_a_part_whose_run_was_killed_stops_counting_at_its_last_heartbeat(repo, hf, procs):
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    api = repo.parent / "repo.hf" / "b1" / "api"
    supervisor = run_part(procs, api, "sleep", "60")
    worker = wait_for(lambda: part_record(repo, "b1", "api").get("worker"), what="worker")
    beats = repo / ".git/hf/batches/b1/heartbeats/api"
    wait_for(lambda: beats.exists() and json.loads(beats.read_text())["at"]
             - timefmt.parse_iso(worker["since"]) >= 1.0, what="a second of beats")
    os.killpg(supervisor.pid, signal.SIGKILL)  # the tab is gone: `hf run` and its agent
    os.killpg(worker["pgid"], signal.SIGKILL)
    supervisor.wait(timeout=10)
    wait_for(lambda: not alive(worker["pid"]), what="the worker gone")
    killed = time.time()
    last = json.loads(beats.read_text())["at"]
    wait_for(lambda: time.time() - killed > 1.0, what="a second after")
    part = hf("report", "b1", "--json", cwd=repo).json["data"]["report"]["parts"][0]
    assert part["spans"][-1]["end"] == pytest.approx(last, abs=0.01)
    assert part["active_seconds"] == pytest.approx(last - part["spans"][0]["start"], abs=0.01)


def test_an_svg_path_that_cannot_be_written_is_one_line_and_a_pipe_is_left_alone(
        repo, hf, tmp_path):
    """A directory that refuses new files (/proc, even to root) once crashed as an
    internal error; a pipe or a device (`--svg /dev/null`) was replaced by a file."""
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    proc = hf_proc("report", "b1", "--svg", "/proc/b1.svg", "--json", cwd=repo)
    assert proc.returncode == 2, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "bad_input"
    assert error["message"].startswith("cannot write --svg /proc/b1.svg: ")
    assert not list(Path("/proc").glob(".b1.svg.*"))
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    r = hf("report", "b1", "--svg", str(pipe), cwd=repo)
    assert r.code == 2
    assert r.err.splitlines() == [f"hf: error: --svg {pipe} is not a regular file",
                                  "hint: name a file to write, e.g. --svg b1.svg"]
    assert pipe.is_fifo()
    assert not list(tmp_path.glob(".pipe.*"))  # no temporary file left beside it
