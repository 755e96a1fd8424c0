"""`hf status` for agents without hooks: a tmux tab's last output against
`waiting_pattern` makes the part waiting, and new output makes it working again."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import git, write

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

# An agent with no hooks: it asks, waits for an answer, then works on.
ASKER = """\
import sys, time
print("Apply these edits to src/api/orders.py? (y/n)", flush=True)
answer = sys.stdin.readline().strip()
print(f"got {answer}; applying the edits now", flush=True)
time.sleep(60)
"""


@pytest.fixture
def tmux(monkeypatch):
    sockets = tempfile.mkdtemp(prefix="hfs-")
    monkeypatch.setenv("TMUX_TMPDIR", sockets)
    monkeypatch.delenv("TMUX", raising=False)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False)

    yield run
    run("kill-server")
    shutil.rmtree(sockets, ignore_errors=True)


def api_state(hf, repo: Path) -> dict[str, object]:
    r = hf("status", "b1", "--json", cwd=repo)
    assert r.code == 0, r.err
    return next(p for p in r.json["data"]["batches"][0]["parts"] if p["name"] == "api")


def poll(check, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"never: {what}")


def test_waiting_pattern_over_the_tabs_output(split3, hf, seal, tmp_path, tmux):
    script = tmp_path / "asker.py"
    script.write_text(ASKER)
    config = seal / ".config" / "hf" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    agent = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    config.write_text(f"agent = {json.dumps(agent)}\nwaiting_pattern = '\\(y/n\\)\\s*$'\n")
    repo = split3["repo"]
    r = hf("open", "b1/api", "--launcher", "tmux", cwd=repo)
    assert r.code == 0, r.err
    waiting = poll(lambda: (s := api_state(hf, repo))["state"] == "waiting" and s,
                   "the part shows waiting at the prompt")
    assert waiting["since"].endswith("Z")
    tmux("send-keys", "-t", "=hf-b1:api", "y", "Enter")
    try:
        working = poll(lambda: (s := api_state(hf, repo))["state"] == "working" and s,
                       "the part works again after the answer")
    except AssertionError:
        raise AssertionError(tmux("capture-pane", "-p", "-t", "=hf-b1:api").stdout
                             + json.dumps(api_state(hf, repo))) from None
    assert working["agent"]["event"] == "output"
    # the other parts have no tab: their state is liveness's as before
    r = hf("status", "b1", "--json", cwd=repo)
    states = {p["name"]: p["state"] for p in r.json["data"]["batches"][0]["parts"]}
    assert states["ui"] == "running"


def test_a_bad_waiting_pattern_is_one_line(split3, hf, seal, tmux):
    repo = split3["repo"]
    (repo / ".hf.toml").write_text("waiting_pattern = '(unclosed'\n")
    # a pattern is only read for a part with a tmux tab
    hf("open", "b1/api", "--launcher", "tmux", cwd=repo)
    r = hf("status", "b1", cwd=repo)
    assert r.code == 2
    assert "waiting_pattern '(unclosed' is not a regular expression" in r.err


def test_a_stopped_sync_is_shown_with_its_way_out(split3, hf):
    from conftest import git, write

    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return ['part']\n"})
    git(api, "commit", "-qam", "api: orders")
    write(repo, {"src/api/orders.py": "def orders():\n    return ['main']\n"})
    git(repo, "commit", "-qam", "main: orders")
    assert hf("sync", "b1/api", cwd=repo).code == 1  # stopped on the conflict
    shown = hf("status", "b1", cwd=repo).out
    assert ("api: its hf sync is stopped: `hf sync b1/api --continue` once its files are "
            "resolved, or --abort") in shown
    parts = {p["name"]: p for p in hf("status", "b1", "--json", cwd=repo).json["data"][
        "batches"][0]["parts"]}
    assert parts["api"]["sync_stopped"] is True and parts["ui"]["sync_stopped"] is False
    assert hf("sync", "b1/api", "--abort", cwd=repo).code == 0
    assert "hf sync is stopped" not in hf("status", "b1", cwd=repo).out


def test_summary_of_done_parts_with_files_outside_names_them_before_the_join(split3, hf):
    """Every part done, one with a file it does not own: the join will refuse it, so
    the summary no longer says only `next: hf join b1`."""
    write(split3["api"], {"src/api/orders.py": "def orders():\n    return [9]\n",
                          "src/ui/app.js": "stray\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    r = hf("status", "b1", "--json", cwd=split3["repo"])
    summary = r.json["data"]["batches"][0]["summary"]
    assert summary == ("3/3 done · next: part api changed 1 file(s) it does not own; "
                       "revert them in its worktree, then `hf join b1`"), summary
    assert hf("join", "b1", cwd=split3["repo"]).code == 1
    write(split3["api"], {"src/ui/app.js": git(split3["repo"], "show", "HEAD:src/ui/app.js")})
    r = hf("status", "b1", "--json", cwd=split3["repo"])
    assert r.json["data"]["batches"][0]["summary"] == "3/3 done · next: `hf join b1`"


def test_no_git_runs_in_a_part_folder_that_became_a_repository_of_its_own(split3, hf,
                                                                         tmp_path):
    """Its own configuration names programs git would run (core.fsmonitor): hf status,
    hf diff and hf gc read nothing there through git, and say what the folder is."""
    repo, api = split3["repo"], split3["api"]
    proof = tmp_path / "ran"
    (api / ".git").unlink()
    git(api, "init", "-q")
    git(api, "config", "core.fsmonitor", f"touch {proof}; false")
    assert hf("status", "b1", cwd=repo).code == 0
    diff = hf("diff", "b1", "--json", cwd=repo)
    assert "not a worktree of this repository any more" in diff.out, diff.out + diff.err
    assert hf("drop", "b1", cwd=repo).code == 0
    gc = hf("gc", "--json", cwd=repo)
    kept = {p["part"]: p for p in gc.json["data"]["parts"]}["api"]
    assert kept["action"] == "kept" and "not linked to this repository" in kept["why"]
    assert api.is_dir()
    assert not proof.exists()


def test_a_repository_made_inside_a_part_runs_no_program_of_its_config(split3, hf, tmp_path):
    """An agent makes a repository inside its owned folder, names an fsmonitor in that
    repository's own config and stages it as a gitlink: the person's hf status, hf diff
    and hf join --dry-run look into it (git's status does) without running that program."""
    repo, api = split3["repo"], split3["api"]
    proof = tmp_path / "ran"
    nested = api / "src/api/vendored"
    nested.mkdir(parents=True)
    git(nested, "init", "-q")
    write(nested, {"lib.py": "x = 1\n"})
    git(nested, "add", "-A")
    git(nested, "commit", "-qm", "nested")
    git(nested, "config", "core.fsmonitor", f"touch {proof}; false")
    write(nested, {"lib.py": "x = 2\n"})  # a dirty checkout: git's status asks its fsmonitor
    head = git(nested, "rev-parse", "HEAD").strip()
    git(api, "update-index", "--add", "--cacheinfo", f"160000,{head},src/api/vendored")
    assert not proof.exists()  # (the program does run for a plain status there)
    git(api, "status", "--porcelain", "--ignore-submodules=none")
    assert proof.exists()
    proof.unlink()
    assert hf("status", "b1", cwd=repo).code == 0
    assert hf("diff", "b1", cwd=repo).code == 0
    hf("join", "b1", "--dry-run", cwd=repo)
    assert not proof.exists()


def test_a_dropped_batch_whose_parts_were_done_points_to_gc_not_to_join(split3, hf):
    repo = split3["repo"]
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert hf("drop", "b1", cwd=repo).code == 0
    out = hf("status", "--all", cwd=repo).out
    assert "next: `hf gc b1`" in out and "hf join" not in out
    assert hf("gc", "b1", cwd=repo).code == 0


def test_a_dropped_batch_gc_collected_shows_dropped_with_nothing_left_to_do(repo, hf):
    """Dropped, then collected by gc: its parts are dropped (not "missing": gc removed
    their worktrees on purpose) and the line offers no gc that has nothing to do.
    Before, it said `missing` and "next: `hf gc b3`" for ever."""
    assert hf("split", "b3", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
              cwd=repo).code == 0
    assert hf("drop", "b3", cwd=repo).code == 0
    before = hf("status", "b3", "--json", cwd=repo).json["data"]["batches"][0]
    assert "next: `hf gc b3`" in before["summary"]
    assert hf("gc", "b3", cwd=repo).code == 0
    after = hf("status", "b3", "--json", cwd=repo).json["data"]["batches"][0]
    assert after["collected"] is True
    assert {p["name"]: p["state"] for p in after["parts"]} == {"api": "dropped",
                                                                "ui": "dropped"}
    assert after["summary"].endswith("dropped · collected")
    assert "hf gc" not in hf("status", "b3", cwd=repo).out


def test_a_fifo_in_place_of_a_parts_git_file_does_not_hang_status_or_join(split3, hf):
    """An agent replaced its worktree's `.git` file by a FIFO: `hf status` (a real
    process) ends and lists the part; the join refuses it by name."""
    repo, api = split3["repo"], split3["api"]
    (api / ".git").unlink()
    os.mkfifo(api / ".git")
    r = subprocess.run([sys.executable, "-m", "hf_fanout", "status", "b1"], cwd=repo,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert any(line.startswith("api ") for line in r.stdout.splitlines()), r.stdout
    for name in ("api", "ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    r = subprocess.run([sys.executable, "-m", "hf_fanout", "join", "b1"], cwd=repo,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1
    assert r.stderr.startswith("hf: error: not a worktree of this repository any more: "
                               f"part 'api' ({api})"), r.stderr
