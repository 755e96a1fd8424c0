"""Notifications: one per transition (done, blocked, joined; waiting is in
test_agent_event.py), through a stand-in `notify-send` that records its argv;
none in CI or with `notify = false`."""

from __future__ import annotations

import os
import stat

import pytest


@pytest.fixture
def notify_log(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "notify.log"
    standin = bindir / "notify-send"
    standin.write_text(f"#!/bin/sh\nfor a in \"$@\"; do printf '%s|' \"$a\"; done >> {log}\n"
                       f"echo >> {log}\n")
    standin.chmod(standin.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("CI", raising=False)

    def lines() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    return lines


def test_done_blocked_and_join_each_notify_once(split3, hf, notify_log):
    repo = split3["repo"]
    assert hf("done", "b1/api", "--note", "tests pass", cwd=repo).code == 0
    assert hf("done", "b1/api", cwd=repo).code == 0  # already done: no transition
    assert notify_log() == ["--app-name=hf|hf: b1/api done|tests pass|"]
    assert hf("blocked", "b1/ui", "--reason", "needs the key", cwd=repo).code == 0
    assert hf("blocked", "b1/ui", "--reason", "needs the key", cwd=repo).code == 0
    assert notify_log()[1:] == ["--app-name=hf|hf: b1/ui blocked|needs the key|"]
    assert hf("done", "b1/ui", cwd=repo).code == 0
    assert hf("done", "b1/docs", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    assert notify_log()[-1].startswith("--app-name=hf|hf: b1 joined|")
    assert len(notify_log()) == 5


def test_no_notification_in_ci_or_when_turned_off(split3, hf, notify_log, monkeypatch):
    repo = split3["repo"]
    monkeypatch.setenv("CI", "true")
    assert hf("done", "b1/api", cwd=repo).code == 0
    monkeypatch.delenv("CI")
    (repo / ".hf.toml").write_text("notify = false\n")
    assert hf("done", "b1/ui", cwd=repo).code == 0
    (repo / ".hf.toml").write_text('notify_events = ["waiting"]\n')
    assert hf("done", "b1/docs", cwd=repo).code == 0
    assert notify_log() == []
