"""Stand-in agents and process bookkeeping for the liveness tests (real processes)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def agent_script(tmp: Path, name: str, body: str) -> Path:
    """A small python program standing in for a coding agent."""
    path = tmp / f"{name}.py"
    path.write_text("import os, sys, time, signal, json\n" + textwrap.dedent(body))
    return path


def part_record(repo: Path, batch: str, part: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (repo / ".git" / "hf" / "batches" / batch / "parts" / f"{part}.json").read_text())
    return data


def alive(pid: int) -> bool:
    """Alive and not a zombie (what a user means by 'still running')."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def marked_pids(batch: str, part: str, repo: Path | None = None) -> list[int]:
    """Every process whose environment carries the part's marker (read from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if repo is not None and f"HF_REPO={repo / '.git'}".encode() not in env:
            continue
        if f"HF_BATCH={batch}".encode() in env and f"HF_PART={part}".encode() in env:
            found.append(int(entry))
    return found


class Procs:
    """Every process a test starts; all ended at teardown."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []
        self.markers: list[tuple[str, str, Path]] = []

    def start(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None,
              log: Path | None = None) -> subprocess.Popen[bytes]:
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.started.append(proc)
        return proc

    def hf_run(self, worktree: Path, script: Path, *extra: str, log: Path | None = None,
               batch: str = "b1", part: str | None = None) -> subprocess.Popen[bytes]:
        repo = Path(subprocess.run(["git", "rev-parse", "--path-format=absolute",
                                    "--git-common-dir"], cwd=worktree, capture_output=True,
                                   text=True, check=True).stdout.strip()).parent
        self.markers.append((batch, part or worktree.name, repo))
        return self.start([sys.executable, "-m", "hf_fanout", "run", "--heartbeat", "0.2",
                           *extra, "--", sys.executable, str(script)], worktree, log=log)

    def end_all(self) -> None:
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(timeout=10)
        for batch, part, repo in self.markers:
            for pid in marked_pids(batch, part, repo):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
