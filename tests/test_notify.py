"""Notifications: one per transition (done, blocked, joined; waiting is in
test_agent_event.py), through a stand-in `notify-send` that records its argv;
none in CI or with `notify = false`."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

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


def run_on_a_terminal(args: list[str], cwd, env: dict[str, str]) -> tuple[int, bytes]:
    """`hf ARGS` as a real process whose controlling terminal is a new pty; its exit
    code and every byte that reached the terminal."""
    import pty
    import select
    import sys
    import time

    pid, master = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal
        os.chdir(cwd)
        os.execve(sys.executable, [sys.executable, "-m", "hf_fanout", *args], env)
    seen = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    _, status = os.waitpid(pid, 0)
    os.close(master)
    return os.waitstatus_to_exitcode(status), seen


def test_the_terminal_bell_when_nothing_else_can_show_it(split3, seal):
    repo = split3["repo"]
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS",
                        "TMUX", "HF_NOTIFY")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    code, seen = run_on_a_terminal(["done", "b1/api"], repo, env)
    assert code == 0, seen
    assert seen.count(b"\a") == 1, seen
    # per event: `notify_events` without done rings nothing
    (repo / ".hf.toml").write_text('notify_events = ["waiting"]\n')
    code, seen = run_on_a_terminal(["done", "b1/ui"], repo, env)
    assert code == 0, seen
    assert b"\a" not in seen, seen
    # in CI nothing either
    (repo / ".hf.toml").unlink()
    code, seen = run_on_a_terminal(["done", "b1/docs"], repo, {**env, "CI": "1"})
    assert code == 0 and b"\a" not in seen, seen


def test_a_fifo_in_place_of_the_notification_record_does_not_hang_the_join(split3, notify_log):
    """Something made `notified.json` (when each notice was last shown) a FIFO: the
    join (a real process) lands, says so and ends, and notifies."""
    repo = split3["repo"]
    (split3["api"] / "src/api/orders.py").write_text("the agent's\n")
    record = repo / ".git/hf/notified.json"
    record.unlink(missing_ok=True)
    os.mkfifo(record)
    for name in ("api", "ui", "docs"):
        r = subprocess.run([sys.executable, "-m", "hf_fanout", "done", f"b1/{name}"],
                           cwd=repo, capture_output=True, text=True, timeout=60, check=False)
        assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "hf_fanout", "join", "b1"], cwd=repo,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert "joined batch b1" in r.stdout
    assert notify_log()[-1].startswith("--app-name=hf|hf: b1 joined|")
