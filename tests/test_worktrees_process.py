"""hf's git runner (worktrees/process.py) with real git processes: an interrupted
hf stops the git it runs the way git stops cleanly, leaving no lock file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import git, make_repo

PROJECT = Path(__file__).resolve().parent.parent


def test_an_interrupted_hf_leaves_no_lock_file_of_the_git_it_ran(tmp_path):
    """hf is interrupted (SIGINT, as SIGTERM becomes) while git holds a ref's lock
    (its reference-transaction hook is running): git gets SIGTERM, removes the lock
    and ends; before, git was SIGKILLed and the `.lock` stayed, failing every move
    of that ref until removed by hand."""
    repo = make_repo(tmp_path / "repo")
    started = tmp_path / "hook-started"
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.write_text(f'#!/bin/sh\n[ "$1" = prepared ] || exit 0\ntouch {started}\nsleep 30\n')
    hook.chmod(0o755)
    lock = repo / ".git" / "refs" / "heads" / "kept.lock"
    script = ("import sys\nfrom pathlib import Path\n"
              "from hf_fanout.worktrees.process import run\n"
              "try:\n    run(['update-ref', 'refs/heads/kept', 'HEAD'], Path(sys.argv[1]))\n"
              "except KeyboardInterrupt:\n    print('interrupted', flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(repo)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(PROJECT)},
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        assert lock.exists()  # (git holds it now)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.strip() == "interrupted", err
    assert not lock.exists()
    git(repo, "-c", "core.hooksPath=/dev/null", "update-ref", "refs/heads/kept", "HEAD")
