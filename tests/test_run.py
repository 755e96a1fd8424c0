"""`hf run`, `hf heartbeat` and how the sweep judges a worker: real processes, real
SIGKILL, real zombies, a reused pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import git, hf_proc
from liveness_support import Procs, agent_script, alive, part_record, wait_for


@pytest.fixture
def procs():
    p = Procs()
    yield p
    p.end_all()


def _worker_pid(repo: Path, part: str, batch: str = "b1") -> int:
    def pid() -> int | None:
        worker = part_record(repo, batch, part).get("worker")
        return worker["pid"] if worker else None

    return wait_for(pid, what=f"worker of {part} recorded")


def _index_bytes(repo: Path, part: str) -> bytes:
    return (repo / ".git" / "worktrees" / part / "index").read_bytes()


def test_run_gives_the_marker_records_the_worker_and_the_exit(split3, hf, tmp_path, procs):
    repo, api = split3["repo"], split3["api"]
    script = agent_script(tmp_path, "envdump", f"""
        keys = ("HF_BATCH", "HF_PART", "HF_WORKTREE", "HF_REPO")
        open({str(tmp_path / "env.json")!r}, "w").write(
            json.dumps({{k: os.environ.get(k) for k in keys}} | {{"pgid": os.getpgid(0),
                        "pid": os.getpid(), "ppid": os.getppid()}}))
        sys.exit(3)
    """)
    r = hf_proc("run", "--json", "--", sys.executable, str(script), cwd=api)
    assert r.returncode == 3, r.stderr
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["HF_BATCH"] == "b1" and env["HF_PART"] == "api"
    assert env["HF_WORKTREE"] == str(api)
    record = part_record(repo, "b1", "api")
    worker = record["worker"]
    assert env["pgid"] == worker["pgid"] == worker["pid"], "the worker has its own group"
    if worker["sandbox"] == "bubblewrap":  # the sandbox's process, the agent below it
        assert worker["pid"] == env["ppid"]
    else:
        assert worker["pid"] == env["pid"]
    assert record["worker"]["command"].endswith("envdump.py")
    assert record["worker"]["host"] and record["worker"]["started"] > 0
    assert record["exit"]["code"] == 3 and record["exit"]["signal"] is None
    envelope = json.loads(r.stdout.splitlines()[-1])
    assert envelope["ok"] and envelope["data"]["exit"]["code"] == 3
    # exited without `hf done`: the sweep calls it an orphan
    s = hf("status", "--json", cwd=repo).json
    states = {p["name"]: p["state"] for p in s["data"]["batches"][0]["parts"]}
    assert states == {"api": "orphan", "ui": "running", "docs": "running"}


def test_done_on_success_marks_the_part_done(split3, tmp_path):
    repo, ui = split3["repo"], split3["ui"]
    script = agent_script(tmp_path, "ok", """
        open("src/ui/app.js", "a").write("done()\\n")
    """)
    r = hf_proc("run", "--done-on-success", "--", sys.executable, str(script), cwd=ui)
    assert r.returncode == 0, r.stderr
    assert part_record(repo, "b1", "ui")["state"] == "done"
    r = hf_proc("run", "--done-on-success", "--", sys.executable, "-c", "raise SystemExit(1)",
                cwd=split3["docs"])
    assert r.returncode == 1
    assert part_record(repo, "b1", "docs")["state"] == "running"


def test_heartbeat_beats_while_the_worker_lives_and_signals_pass_through(
        split3, tmp_path, procs):
    repo, api = split3["repo"], split3["api"]
    got = tmp_path / "got-signal"
    script = agent_script(tmp_path, "patient", f"""
        def on_term(signum, frame):
            open({str(got)!r}, "w").write(str(signum))
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        while True:
            time.sleep(0.05)
    """)
    sup = procs.hf_run(api, script)
    _worker_pid(repo, "api")
    beats = repo / ".git" / "hf" / "batches" / "b1" / "heartbeats" / "api"
    first = wait_for(lambda: beats.exists() and json.loads(beats.read_text())["at"],
                     what="first heartbeat")
    wait_for(lambda: json.loads(beats.read_text())["at"] > first, what="a later heartbeat")
    # a second `hf run` on the same part is refused while the worker lives
    r = hf_proc("run", "--", sys.executable, "-c", "pass", cwd=api)
    assert r.returncode == 1 and "already has a live worker" in r.stderr
    os.kill(sup.pid, signal.SIGTERM)  # to the supervisor: it passes it on
    assert sup.wait(timeout=20) == 0
    assert got.read_text() == str(int(signal.SIGTERM))
    assert part_record(repo, "b1", "api")["exit"]["code"] == 0


def test_hf_heartbeat_is_recorded_as_activity(split3, hf):
    repo, docs = split3["repo"], split3["docs"]
    r = hf("heartbeat", "--json", cwd=docs)
    assert r.code == 0, r.err
    assert r.json["data"]["part"] == "docs"
    beats = repo / ".git" / "hf" / "batches" / "b1" / "heartbeats" / "docs"
    assert json.loads(beats.read_text())["by"] == "hf heartbeat"


def test_sigkilled_agent_is_an_orphan_and_its_work_is_rescued_byte_for_byte(
        split3, hf, tmp_path, procs):
    repo, api = split3["repo"], split3["api"]
    ready = tmp_path / "ready"
    edited = b"def orders():\n    return ['\xff binary \x00 ok']\n"
    script = agent_script(tmp_path, "worker", f"""
        open("src/api/orders.py", "wb").write({edited!r})
        os.makedirs("src/api/new/deep", exist_ok=True)
        open("src/api/new/deep/untracked.bin", "wb").write(bytes(range(256)))
        os.remove("src/api/users.py")
        open({str(ready)!r}, "w").write("1")
        while True:
            time.sleep(1)
    """)
    sup = procs.hf_run(api, script)
    pid = _worker_pid(repo, "api")
    wait_for(ready.exists, what="agent ready")
    status_before = git(api, "status", "--porcelain")
    index_before = _index_bytes(repo, "api")
    os.kill(pid, signal.SIGKILL)
    sup.wait(timeout=20)
    assert part_record(repo, "b1", "api")["exit"]["signal"] == signal.SIGKILL

    r = hf("sweep", "--json", cwd=repo)
    assert r.code == 0, r.err
    parts = {(p["batch"], p["part"]): p for rr in r.json["data"]["repos"] for p in rr["parts"]}
    assert parts[("b1", "api")]["state"] == "orphan"
    assert "signal 9" in parts[("b1", "api")]["why"]
    assert parts[("b1", "ui")]["state"] == "running"
    ref = "refs/hf/rescue/b1/api"
    assert subprocess.run(["git", "show", f"{ref}:src/api/orders.py"], cwd=repo,
                          capture_output=True, check=True).stdout == edited
    assert subprocess.run(["git", "show", f"{ref}:src/api/new/deep/untracked.bin"], cwd=repo,
                          capture_output=True, check=True).stdout == bytes(range(256))
    assert "src/api/users.py" not in git(repo, "ls-tree", "-r", "--name-only", ref)
    # the worktree and its index were not touched
    assert git(api, "status", "--porcelain") == status_before
    assert _index_bytes(repo, "api") == index_before
    record = part_record(repo, "b1", "api")
    assert record["state"] == "blocked" and ref in record["reason"]
    # the next sweep has nothing more to do for it
    again = hf("sweep", "--json", cwd=repo).json["data"]
    assert again["repos"][0]["actions"] == []
    audit = (repo / ".git" / "hf" / "audit.log").read_text()
    assert '"action": "sweep-orphan"' in audit


def test_killed_supervisor_and_agent_is_judged_by_pid_and_start_time(
        split3, hf, tmp_path, procs):
    repo, docs = split3["repo"], split3["docs"]
    started = tmp_path / "started"
    script = agent_script(tmp_path, "sleeper", f"""
        open({str(started)!r}, "w").close()
        while True:
            time.sleep(1)
    """)
    sup = procs.hf_run(docs, script)
    pid = _worker_pid(repo, "docs")
    # (killed before it let its agent start, hf run leaves no agent: this one started)
    wait_for(started.exists, what="the agent started")
    os.kill(sup.pid, signal.SIGKILL)  # no exit gets recorded
    sup.wait(timeout=10)
    assert hf("status", "--json", cwd=repo).json["data"]["batches"][0]["parts"][2]["state"] \
        == "running"  # the agent lives on
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), what="agent gone")
    assert part_record(repo, "b1", "docs")["exit"] is None
    r = hf("sweep", "--json", cwd=repo).json["data"]
    docs_state = [p for p in r["repos"][0]["parts"] if p["part"] == "docs"][0]
    assert docs_state["state"] == "orphan"


def _record_worker(repo: Path, part: str, pid: int, started: float,
                   **exact: Any) -> None:
    """A worker recorded as older hf did (pid, epoch start, host), or with
    `exact` (ticks, boot) as hf records it on Linux now."""
    from hf_fanout import processes
    from hf_fanout.core.workspace import Workspace
    from hf_fanout.liveness import judge

    ws = Workspace.open(repo)
    judge.record_worker(ws, ws.store.load_part("b1", part), {
        **exact, "pid": pid, "started": started, "host": processes.host(), "pgid": pid,
        "command": "stand-in",
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))})


@pytest.mark.parametrize("exact", [False, True], ids=["epoch-start", "ticks"])
def test_a_zombie_worker_counts_as_gone(split3, hf, tmp_path, procs, exact):
    from hf_fanout import processes

    repo = split3["repo"]
    go = tmp_path / "go"
    pidfile = tmp_path / "child.pid"
    parent = agent_script(tmp_path, "nonreaper", f"""
        child = os.fork()
        if child == 0:
            while not os.path.exists({str(go)!r}):
                time.sleep(0.05)
            os._exit(0)
        open({str(pidfile)!r}, "w").write(str(child))
        while True:          # never waits for the child: it stays a zombie
            time.sleep(1)
    """)
    procs.start([sys.executable, str(parent)], tmp_path)
    child = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), what="child pid"))
    ident = processes.identity_of(child)
    assert ident is not None
    _record_worker(repo, "ui", child, ident.started,
                   **({"ticks": ident.ticks, "boot": ident.boot} if exact else {}))
    go.write_text("1")
    wait_for(lambda: psutil.Process(child).status() == psutil.STATUS_ZOMBIE,
             what="child to become a zombie")
    r = hf("sweep", "--json", cwd=repo).json["data"]
    ui = [p for p in r["repos"][0]["parts"] if p["part"] == "ui"][0]
    assert ui["state"] == "orphan", ui


def test_a_reused_pid_is_gone_and_that_process_is_left_alone(split3, hf, tmp_path, procs):
    from hf_fanout import processes

    repo = split3["repo"]
    other = procs.start([sys.executable, "-c", "import time; time.sleep(300)"], tmp_path)
    ident = wait_for(lambda: processes.identity_of(other.pid), what="other process")
    # the record says: this pid, but a process that started 1000 s earlier
    _record_worker(repo, "ui", other.pid, ident.started - 1000)
    r = hf("sweep", "--json", cwd=repo).json["data"]
    ui = [p for p in r["repos"][0]["parts"] if p["part"] == "ui"][0]
    assert ui["state"] == "orphan"
    r = hf("stop", "b1/ui", "--grace", "0.5", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert alive(other.pid), "a process that only shares the pid must never be signalled"
    assert other.poll() is None


@pytest.mark.parametrize(("offset", "exited", "why"), [
    # the pid's process started 0.2 s after the recorded worker: a quick reuse
    (-0.2, False, "worker pid {pid} is gone before `hf done`"),
    # the same start time (a pid reused within one clock tick reads the same):
    # only the recorded exit tells the two apart
    (0.0, True, "worker pid {pid} exited with code 0 before `hf done`"),
], ids=["started-later", "exit-recorded"])
def test_an_exited_workers_reused_pid_is_never_alive(split3, hf, tmp_path, procs,
                                                     offset, exited, why):
    from hf_fanout import processes
    from hf_fanout.core.workspace import Workspace
    from hf_fanout.liveness import judge

    repo = split3["repo"]
    other = procs.start([sys.executable, "-c", "import time; time.sleep(300)"], tmp_path)
    ident = wait_for(lambda: processes.identity_of(other.pid), what="other process")
    _record_worker(repo, "api", other.pid, ident.started + offset)
    if exited:
        ws = Workspace.open(repo)
        judge.record_exit(ws, ws.store.load_part("b1", "api"), 0, None)

    def api_state(parts: list[dict[str, object]]) -> object:
        return next(p["state"] for p in parts if p["name"] == "api")

    status = hf("status", "b1", "--json", cwd=repo)
    assert status.code == 0, status.err
    assert api_state(status.json["data"]["batches"][0]["parts"]) == "orphan"
    dry = hf("stop", "b1/api", "--dry-run", "--json", cwd=repo)
    assert dry.code == 0, dry.err
    assert dry.json["data"]["parts"][0]["would_signal"] == {"groups": [], "marked": []}
    sweep = hf("sweep", "--json", cwd=repo).json["data"]["repos"][0]
    api = next(p for p in sweep["parts"] if p["part"] == "api")
    assert (api["state"], api["why"]) == ("orphan", why.format(pid=other.pid))
    assert [(a["action"], a["part"]) for a in sweep["actions"]] == [("rescue+block", "api")]
    r = hf("stop", "b1/api", "--grace", "0.5", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert r.json["data"]["parts"][0]["groups"] == []
    assert alive(other.pid) and other.poll() is None, "only the pid is the same: left alone"


@pytest.mark.parametrize(("started", "ticks", "boot", "state"), [
    # the clock was adjusted since the worker was recorded: its epoch start reads a
    # second off (psutil adds the boot time, which moved), its ticks do not
    (1.0, 0, "same", "idle"),
    # a process that got the pid 0.2 s after the recorded one started
    (0.0, 20, "same", "orphan"),
    # the same pid and ticks in an earlier boot of the machine
    (0.0, 0, "earlier", "orphan"),
], ids=["clock-adjusted", "pid-reused", "rebooted"])
def test_a_worker_is_judged_by_its_start_in_ticks_since_boot(split3, hf, tmp_path, procs,
                                                              started, ticks, boot, state):
    from hf_fanout import processes

    repo = split3["repo"]
    other = procs.start([sys.executable, "-c", "import time; time.sleep(300)"], tmp_path)
    ident = wait_for(lambda: processes.identity_of(other.pid), what="other process")
    assert ident.ticks is not None and ident.boot is not None  # (Linux: /proc)
    _record_worker(repo, "api", other.pid, ident.started + started, ticks=ident.ticks + ticks,
                   boot=ident.boot if boot == "same" else "0" * 8 + ident.boot[8:])
    status = hf("status", "b1", "--json", cwd=repo)
    assert status.code == 0, status.err
    shown = next(p for p in status.json["data"]["batches"][0]["parts"] if p["name"] == "api")
    assert shown["state"] == state
    sweep = hf("sweep", "--json", cwd=repo).json["data"]["repos"][0]
    acted = [a["part"] for a in sweep["actions"]]
    assert acted == ([] if state == "idle" else ["api"])
    assert alive(other.pid)  # (never signalled either way)


def test_an_alive_worker_with_no_activity_is_idle_and_left_alone(split3, hf, tmp_path, procs):
    from hf_fanout import processes

    repo, ui = split3["repo"], split3["ui"]
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "hf" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("idle_minutes = 0.02\n")  # 1.2 s
    quiet = procs.start([sys.executable, "-c", "import time; time.sleep(300)"], ui)
    ident = wait_for(lambda: processes.identity_of(quiet.pid), what="quiet agent")
    _record_worker(repo, "ui", quiet.pid, ident.started)
    before = git(ui, "status", "--porcelain")
    r = hf("sweep", "--json", cwd=repo).json["data"]["repos"][0]
    ui_state = [p for p in r["parts"] if p["part"] == "ui"][0]
    assert ui_state["state"] == "idle", ui_state
    assert r["actions"] == []
    assert alive(quiet.pid) and git(ui, "status", "--porcelain") == before
    # a sign of work makes it running again
    assert hf("heartbeat", "--part", "b1/ui", cwd=repo).code == 0
    r = hf("sweep", "--json", cwd=repo).json["data"]["repos"][0]
    assert [p for p in r["parts"] if p["part"] == "ui"][0]["state"] == "running"


def test_an_idle_limit_that_is_not_a_number_is_one_clear_error(split3, hf, tmp_path, procs):
    """`idle_minutes = "soon"` is read only once a live worker is judged: it is
    then one line naming the key (exit 2), not a crash (exit 3)."""
    from hf_fanout import processes

    repo, ui = split3["repo"], split3["ui"]
    (repo / ".hf.toml").write_text('idle_minutes = "soon"\n')
    quiet = procs.start([sys.executable, "-c", "import time; time.sleep(300)"], ui)
    ident = wait_for(lambda: processes.identity_of(quiet.pid), what="quiet agent")
    _record_worker(repo, "ui", quiet.pid, ident.started)
    r = hf("status", "b1", "--json", cwd=repo)
    assert r.code == 2, r.out + r.err
    assert r.json["error"]["message"] == (
        "idle_minutes = 'soon' in the settings is not a positive number")
    assert "idle_minutes = 20" in r.json["error"]["hint"]
    assert alive(quiet.pid)


def test_a_heartbeat_interval_that_is_not_a_positive_number_is_refused(split3, hf):
    """From the settings the key is named; from the flag the flag is."""
    repo, api = split3["repo"], split3["api"]
    (repo / ".hf.toml").write_text('heartbeat_seconds = "often"\n')
    r = hf("run", "--dry-run", "--json", "--", "true", cwd=api)
    assert r.code == 2, r.out
    assert r.json["error"]["message"] == (
        "heartbeat_seconds = 'often' in the settings is not a positive number")
    (repo / ".hf.toml").write_text("heartbeat_seconds = 5\n")
    r = hf("run", "--dry-run", "--json", "--", "true", cwd=api)
    assert r.code == 0 and r.json["data"]["heartbeat_seconds"] == 5.0
    r = hf("run", "--dry-run", "--heartbeat", "0", "--json", "--", "true", cwd=api)
    assert r.code == 2 and "--heartbeat" in r.json["error"]["hint"]


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/unshare").exists(),
                    reason="making a mount namespace needs root and unshare")
def test_the_sandbox_watch_never_ends_a_namespace_made_after_the_sandbox_ended():
    """The kernel gives a freed namespace number to the next namespace made. The
    watch holds the sandbox's namespace from the moment it finds it: once the
    sandbox's processes are gone, a process in a namespace made afterwards (here
    `unshare -m`, as another part's sandbox would) is not the sandbox's and is
    left running."""
    from hf_fanout.orchestrator.workers import _SandboxWatch

    own = os.readlink("/proc/self/ns/mnt")
    # bubblewrap's stand-in: its child goes into a namespace of its own, then ends
    stand_in = subprocess.Popen(["sh", "-c", "unshare -m sleep 0.5; exec sleep 60"])
    other = None
    try:
        watch = _SandboxWatch(stand_in.pid)
        wait_for(lambda: watch.held is not None, timeout=10)
        sandboxed = watch.held[0]

        def namespaced_child_gone() -> bool:
            try:
                return not [c for c in psutil.Process(stand_in.pid).children()
                            if c.name() != "sleep" or "0.5" in c.cmdline()]
            except psutil.NoSuchProcess:  # (a child that ended while it was looked at)
                return False
        wait_for(namespaced_child_gone, timeout=10)
        other = subprocess.Popen(["unshare", "-m", "sleep", "60"])

        def other_namespace() -> str | None:
            try:
                found = os.readlink(f"/proc/{other.pid}/ns/mnt")
            except OSError:
                return None
            return found if found != own else None
        wait_for(lambda: other_namespace() is not None, timeout=10)
        assert other_namespace() != sandboxed  # the number was not free to take
        assert watch.end_left(0.5) == []
        time.sleep(0.2)
        assert other.poll() is None  # still running
    finally:
        for proc in (other, stand_in):
            if proc is not None:
                proc.kill()
                proc.wait()


def test_a_program_that_is_not_there_is_refused_and_a_relative_one_runs(split3):
    """The worker starts behind a gate (it waits until it is listed): a command that
    cannot start is still one line before anything runs, and a program named by a
    path from the part's folder starts as git would run it there."""
    api = split3["api"]
    r = hf_proc("run", "--no-sandbox", "--", "no-such-agent-here", cwd=api)
    assert r.returncode == 2
    assert "cannot start 'no-such-agent-here'" in r.stderr
    assert part_record(split3["repo"], "b1", "api").get("worker") in (None, {})
    script = api / "agent.sh"
    script.write_text("#!/bin/sh\necho \"ran as $0 in $(pwd)\" > out.txt\n")
    script.chmod(0o755)
    r = hf_proc("run", "--no-sandbox", "--", "./agent.sh", cwd=api)
    assert r.returncode == 0, r.stderr
    assert (api / "out.txt").read_text() == f"ran as ./agent.sh in {api}\n"
