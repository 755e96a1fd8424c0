"""`hf note --decision`: a part records a decision (the audit log, `hf report --state`);
refused in one line outside a part."""

from __future__ import annotations

import json
import sys

from conftest import hf_proc


def decisions(repo):
    log = repo / ".git" / "hf" / "audit.log"
    return [e for e in map(json.loads, log.read_text().splitlines())
            if e["action"] == "decision"]


def test_outside_a_part_it_refuses_in_one_line(split3, hf):
    repo = split3["repo"]
    r = hf("note", "--decision", "use sqlite", cwd=repo)
    assert r.code == 1 and r.out == ""
    lines = r.err.splitlines()
    assert lines[0] == ("hf: error: hf note --decision is for a part, and this is not a "
                        "part's worktree")
    assert lines[1].startswith("hint: run it where the part's agent works") and len(lines) == 2
    assert 'cd "$(hf cd BATCH/PART)"' in lines[1]  # a command that exists, whatever the layout
    assert hf("cd", "b1/api", cwd=repo).out.strip() == str(split3["api"])
    r = hf("note", "--decision", "use sqlite", "--json", cwd=repo)
    assert r.code == 1 and r.json["error"]["code"] == "not_in_part"
    assert decisions(repo) == []


def test_in_a_part_it_is_recorded_for_the_log_and_the_state(split3, hf):
    repo, api = split3["repo"], split3["api"]
    assert hf("note", "--decision", "x", "--dry-run", cwd=api).out.startswith(
        "would record for b1/api: x")
    assert decisions(repo) == []
    r = hf("note", "--decision", "keep   the old\nAPI", cwd=api)
    assert r.code == 0 and r.out.strip() == "b1/api: decision recorded"
    [line] = decisions(repo)
    assert (line["batch"], line["part"], line["text"]) == ("b1", "api", "keep the old API")
    assert "keep the old API" in hf("log", "b1", "--part", "api", cwd=repo).out
    state = hf("report", "b1", "--state", cwd=repo).out
    assert "## Decisions (1)" in state and "**api** (decision" in state
    r = hf("note", "--decision", "  ", cwd=api)
    assert r.code == 2 and "the decision is empty" in r.err


def test_an_agent_under_hf_run_records_its_decision(split3):
    repo, ui = split3["repo"], split3["ui"]
    r = hf_proc("run", "--", sys.executable, "-m", "hf_fanout", "note", "--decision",
                "render on the server", cwd=ui)
    assert r.returncode == 0, r.stderr
    [line] = decisions(repo)
    assert (line["part"], line["text"]) == ("ui", "render on the server")
    assert line["actor"]["kind"] == "worker" and line["actor"]["name"] == "b1/ui"
