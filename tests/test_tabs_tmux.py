"""`hf split --open --launcher tmux` against a real tmux server (a private one per test).

A stand-in agent in each window writes what it sees (cwd, HF_* variables,
PATH's first entry, its argv) to a file the test polls with a deadline.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")



def guard_bin() -> str:
    """The guard's stable directory (the test's own state dir): first on a tab's PATH."""
    from hf_fanout.config import guard_bin_dir

    return str(guard_bin_dir())

AGENT = """\
import json, os, sys, time
out, part, stop = sys.argv[1], sys.argv[2], sys.argv[3]
seen = {"cwd": os.getcwd(), "path0": os.environ["PATH"].split(os.pathsep)[0],
        "env": {k: v for k, v in os.environ.items() if k.startswith("HF_")},
        "argv": sys.argv[1:]}
tmp = os.path.join(out, part + ".tmp")
with open(tmp, "w") as f:
    json.dump(seen, f)
os.replace(tmp, os.path.join(out, part + ".json"))
deadline = time.monotonic() + 60
while not os.path.exists(stop) and time.monotonic() < deadline:
    time.sleep(0.1)
"""


@pytest.fixture
def tmux(monkeypatch):
    """A private tmux server: its socket lives in a short temp dir; killed at the end."""
    sockets = tempfile.mkdtemp(prefix="hft-")  # short: unix socket paths are limited
    monkeypatch.setenv("TMUX_TMPDIR", sockets)
    monkeypatch.delenv("TMUX", raising=False)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False)

    yield run
    run("kill-server")
    shutil.rmtree(sockets, ignore_errors=True)


def wait_for(paths: list[Path], deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if all(p.exists() for p in paths):
            return
        time.sleep(0.05)
    missing = [str(p) for p in paths if not p.exists()]
    raise AssertionError(f"the stand-in agent never wrote {missing}")


def configure_agent(seal: Path, tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "agent out"  # a space: every layer must quote
    out.mkdir()
    stop = tmp_path / "stop"
    script = tmp_path / "stand in agent.py"
    script.write_text(AGENT)
    template = " ".join([shlex.quote(sys.executable), shlex.quote(str(script)),
                         shlex.quote(str(out)), "{part}", shlex.quote(str(stop)), "{prompt}"])
    config = seal / ".config" / "hf" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"agent = {json.dumps(template)}\n")
    return out, stop


def test_split_open_tmux_one_session_a_window_per_part_agent_sees_its_part(
        repo, hf, seal, tmp_path, tmux):
    out, stop = configure_agent(seal, tmp_path)
    root = tmp_path / "work trees"
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
           "--part", "docs=docs/**,README.md", "--task", "add search",
           "--worktree-root", str(root), "--open", "--launcher", "tmux", "--json", cwd=repo)
    assert r.code == 0, r.out + r.err
    tabs = r.json["data"]["tabs"]
    assert [(t["tab"], t["action"], t["target"]) for t in tabs] == [
        ("api", "opened", "hf-b1:api"), ("ui", "opened", "hf-b1:ui"),
        ("docs", "opened", "hf-b1:docs")]

    names = ["api", "ui", "docs"]
    wait_for([out / f"{n}.json" for n in names])
    sessions = tmux("list-sessions", "-F", "#{session_name}").stdout.split()
    assert sessions == ["hf-b1"]
    windows = tmux("list-windows", "-t", "=hf-b1", "-F", "#{window_name}").stdout.split()
    assert sorted(windows) == sorted(names)

    ports = set()
    for index, name in enumerate(names):
        seen = json.loads((out / f"{name}.json").read_text())
        worktree = str(root / "b1" / name)
        assert seen["cwd"] == worktree
        assert seen["path0"] == guard_bin()
        env = seen["env"]
        assert env["HF_BATCH"] == "b1"
        assert env["HF_PART"] == name
        assert env["HF_WORKTREE"] == worktree
        assert env["HF_PORT"] == str(4100 + index)
        ports.add(env["HF_PORT"])
        # the prompt arrives as one argument and names the handoff file
        assert seen["argv"][1] == name
        assert f"{worktree}/.hf/TASK.md" in seen["argv"][3]
    assert len(ports) == 3

    # a second `hf open` finds every tab alive and opens nothing new
    r = hf("open", "b1", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert [t["action"] for t in r.json["data"]["tabs"]] == ["alive"] * 3
    windows = tmux("list-windows", "-t", "=hf-b1", "-F", "#{window_name}").stdout.split()
    assert len(windows) == 3

    # a tab that went away is opened again, in the same session
    tmux("kill-window", "-t", "=hf-b1:=ui")
    (out / "ui.json").unlink()
    r = hf("open", "b1/ui", "--json", cwd=repo)
    assert [t["action"] for t in r.json["data"]["tabs"]] == ["opened"]
    wait_for([out / "ui.json"])
    windows = tmux("list-windows", "-t", "=hf-b1", "-F", "#{window_name}").stdout.split()
    assert sorted(windows) == sorted(names)
    stop.write_text("")


def test_no_agent_configured_opens_a_shell_in_the_worktree(repo, hf, tmp_path, tmux,
                                                           monkeypatch):
    monkeypatch.setenv("SHELL", "/bin/sh")
    r = hf("split", "b1", "--part", "api=src/api/**", "--open", "--launcher", "tmux",
           "--json", cwd=repo)
    assert r.code == 0, r.err
    worktree = repo.parent / "repo.hf" / "b1" / "api"
    deadline = time.monotonic() + 20
    pane = ""
    while time.monotonic() < deadline:
        pane = tmux("display-message", "-p", "-t", "=hf-b1:=api",
                    "#{pane_current_command} #{pane_current_path}").stdout.strip()
        if pane == f"sh {worktree}":  # the shell (under `hf run`) owns the terminal
            break
        time.sleep(0.05)
    assert pane == f"sh {worktree}"


QUEUE_AGENT = """\
import json, os, sys
out = sys.argv[1]
seen = {"cwd": os.getcwd(), "path0": os.environ["PATH"].split(os.pathsep)[0],
        "entry": os.environ["HF_QUEUE_ENTRY"], "handoff": sys.argv[2]}
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(seen, f)
os.replace(tmp, out)
"""


@pytest.mark.parametrize("task", ["logout", "fix #123"])
def test_next_opens_a_queue_entry_in_a_tmux_window_of_session_hf_queue(
        repo, hf, seal, tmp_path, tmux, task):
    script = tmp_path / "queue agent.py"
    script.write_text(QUEUE_AGENT)
    out = tmp_path / "seen.json"
    template = " ".join([shlex.quote(sys.executable), shlex.quote(str(script)),
                         shlex.quote(str(out)), "{handoff}"])
    config = seal / ".config" / "hf" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"agent = {json.dumps(template)}\n")
    entry = hf("handoff", "--task", task, "--next", "add logout", "--json",
               cwd=repo).json["data"]
    r = hf("next", "--launcher", "tmux", "--json", cwd=repo)
    assert r.code == 0, r.err
    [taken] = r.json["data"]["taken"]
    assert taken["tab"]["target"] == f"hf-queue:{task}"
    # (a `#` in the name, as tmux keeps it: the window is found and kept open)
    shown = tmux("list-windows", "-t", "=hf-queue", "-F",
                 "#{window_name}\t#{remain-on-exit}").stdout.splitlines()
    assert f"{task}\ton" in shown, shown
    wait_for([out])
    seen = json.loads(out.read_text())
    assert seen == {"cwd": str(repo), "path0": guard_bin(), "entry": entry["id"],
                    "handoff": entry["path"]}


def test_a_path_with_tmux_formats_in_it_is_never_expanded(hf, seal, tmp_path, tmux,
                                                           monkeypatch):
    """tmux runs `#(command)` where it expands formats (a window's name, `-c DIR`): a
    repository whose directory holds one opens its tabs in the right place and
    runs nothing."""
    from conftest import make_repo

    proof = tmp_path / "expanded"
    monkeypatch.setenv("HF_PROOF", str(proof))  # (a path of its own holds no slash)
    repo = make_repo(tmp_path / "r#(touch $HF_PROOF)#{pane_id}")
    out, stop = configure_agent(seal, tmp_path)
    r = hf("split", "b1", "--part", "api=src/api/**", "--open", "--launcher", "tmux",
           "--json", cwd=repo)
    assert r.code == 0, r.out + r.err
    wait_for([out / "api.json"])
    seen = json.loads((out / "api.json").read_text())
    assert seen["cwd"] == str(repo.parent / f"{repo.name}.hf" / "b1" / "api")
    assert not proof.exists()
    stop.write_text("")


CRASHER = """\
import sys
with open(sys.argv[1], "a") as f:
    f.write("ran\\n")
print("boom: something went wrong", flush=True)
sys.exit(3)
"""


def test_a_window_whose_agent_exits_stays_open_with_the_code_and_open_respawns_it(
        split3, hf, seal, tmp_path, tmux):
    script = tmp_path / "crasher.py"
    script.write_text(CRASHER)
    runs = tmp_path / "runs"
    config = seal / ".config" / "hf" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    agent = " ".join(shlex.quote(w) for w in (sys.executable, str(script), str(runs)))
    config.write_text(f"agent = {json.dumps(agent)}\n")
    repo = split3["repo"]
    assert hf("open", "b1/api", "--launcher", "tmux", cwd=repo).code == 0

    def pane() -> tuple[str, str]:
        shown = tmux("list-windows", "-t", "=hf-b1", "-F",
                     "#{window_name} #{pane_dead} #{pane_dead_status}").stdout.split("\n")
        return next((line for line in shown if line.startswith("api ")), ""), tmux(
            "capture-pane", "-p", "-S", "-", "-t", "=hf-b1:api").stdout

    deadline = time.monotonic() + 30
    # tmux marks the pane dead (its output ended) and then learns the exit status;
    # tmux 3.3 can miss the status when the pane's output ends before the exit is
    # reaped, so the code a user reads is the one hf's line prints
    while time.monotonic() < deadline and not (
            pane()[0].startswith("api 1") and "exited with code" in pane()[1]):
        time.sleep(0.1)
    window, screen = pane()
    assert window in ("api 1 3", "api 1 "), window  # dead and kept (exit status 3)
    assert "boom: something went wrong" in screen
    assert "[hf] the agent exited with code 3; `hf status`, or `hf open b1/api`" in screen

    r = hf("open", "b1/api", "--launcher", "tmux", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert r.json["data"]["tabs"][0]["action"] == "opened"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and runs.read_text().count("ran") < 2:
        time.sleep(0.1)
    assert runs.read_text() == "ran\nran\n"  # started again...
    names = tmux("list-windows", "-t", "=hf-b1", "-F", "#{window_name}").stdout.split()
    assert names.count("api") == 1  # ...in the same window
