"""The audit log as its readers take it: a line edited or damaged by hand does not
bring down the commands that read the log."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize("t", ["1e308", "-1e308", "NaN", "Infinity"])
def test_a_line_with_a_time_no_clock_gives_does_not_crash_log_or_report(repo, hf, tmp_path, t):
    """`hf log` once crashed on `"t": 1e308` (timestamp out of range) and `hf report
    --svg` on `"t": -1e308`; such a time is not believed: the line's `at` counts."""
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    log = repo / ".git/hf/audit.log"
    with log.open("a") as handle:
        handle.write('{"action": "note", "batch": "b1", "at": "2026-01-02T03:04:05Z", '
                     f'"t": {t}}}\n')
    r = hf("log", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert "2026-01-02T03:04:05Z" in r.out
    picture = tmp_path / "b1.svg"
    r = hf("report", "b1", "--svg", str(picture), "--json", cwd=repo)
    assert r.code == 0, r.err
    assert picture.read_text().startswith("<")
    assert json.loads(r.out)["data"]["report"]["batch"] == "b1"


@pytest.mark.parametrize("command", [["status"], ["doctor"], ["join", "b1"]])
def test_an_audit_log_that_is_a_folder_is_one_line_naming_it(split3, hf, command):
    """An agent (or a slip) leaves a folder where hf keeps its audit log: every
    command that writes a line says so in one line, and none crashes."""
    repo = split3["repo"]
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    log = repo / ".git/hf/audit.log"
    log.unlink()
    log.mkdir()
    head = (repo / ".git/refs/heads/main").read_text()
    r = hf(*command, "--json", cwd=repo)
    error = r.json["error"]
    assert r.code == 1 and error["code"] == "file_not_usable", r.out
    assert str(log) in error["message"] and "move it aside" in error["hint"]
    human = hf(*command, cwd=repo)
    assert human.code == 1 and "internal error" not in human.err
    assert human.err.startswith("hf: error: ") and str(log) in human.err
    assert (repo / ".git/refs/heads/main").read_text() == head  # nothing done unrecorded
    log.rmdir()
    assert hf(*command, cwd=repo).code == 0
