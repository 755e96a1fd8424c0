"""`hf pause` / `hf resume`: nothing new starts while paused (refused with the
pause named), `--freeze` suspends a real agent and `hf resume` continues it, the
pause survives a new process, the sweep does not auto-join a paused batch."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cron_command, hf_proc
from liveness_support import Procs, agent_script, alive, part_record, wait_for
from test_limits import user_config


@pytest.fixture
def procs():
    p = Procs()
    yield p
    p.end_all()


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def audit_actions(repo: Path) -> list[str]:
    return [json.loads(line)["action"]
            for line in (repo / ".git/hf/audit.log").read_text().splitlines()]


def spinning_agent(split3, tmp_path, procs) -> int:
    """A real agent that spins under `hf run` in b1/api; its pid once recorded."""
    script = agent_script(tmp_path, "spins", """
        while True:
            time.sleep(0.01)
    """)
    procs.hf_run(split3["api"], script)
    return wait_for(lambda: part_record(split3["repo"], "b1", "api").get("worker"),
                    what="a worker")["pid"]


def test_pause_refuses_run_and_open_naming_the_pause_and_survives_a_new_process(
        split3, tmp_path, hf):
    repo = split3["repo"]
    r = hf("pause", "b1", "--reason", "review first", cwd=repo)
    assert r.code == 0 and "paused: b1" in r.out
    script = agent_script(tmp_path, "quick", "pass")
    # a new process (a fresh hf run) still sees the pause: it lives in a file
    run = hf_proc("run", "--", sys.executable, str(script), cwd=split3["api"])
    assert run.returncode == 1
    assert "batch b1 is paused" in run.stderr and "review first" in run.stderr
    assert "hf resume b1" in run.stderr
    assert part_record(repo, "b1", "api").get("worker") is None  # nothing started
    opened = hf("open", "b1", cwd=repo)
    assert opened.code == 1 and "paused" in opened.err
    assert "refused-paused" in audit_actions(repo)
    status = json.loads(hf("pause", "b1", "--json", cwd=repo).out)
    assert status["data"]["already"] is True  # idempotent
    assert hf("resume", "b1", cwd=repo).code == 0
    assert "not paused" in hf("resume", "b1", cwd=repo).out  # idempotent
    assert hf_proc("run", "--", sys.executable, str(script), cwd=split3["api"]).returncode == 0


def test_repository_pause_covers_every_batch_and_dry_run_changes_nothing(split3, hf, tmp_path):
    repo = split3["repo"]
    assert hf("pause", "--dry-run", cwd=repo).code == 0
    assert not (repo / ".git/hf/pauses/_repo.json").exists()
    assert hf("pause", cwd=repo).code == 0
    script = agent_script(tmp_path, "quick", "pass")
    run = hf_proc("run", "--", sys.executable, str(script), cwd=split3["ui"])
    assert run.returncode == 1 and "the repository is paused" in run.stderr
    assert hf("resume", cwd=repo).code == 0
    assert "resume" in audit_actions(repo) and "pause" in audit_actions(repo)


def test_freeze_suspends_a_real_agent_and_resume_continues_it(split3, tmp_path, hf, procs):
    repo = split3["repo"]
    pid = spinning_agent(split3, tmp_path, procs)
    assert hf("pause", "b1", "--freeze", cwd=repo).code == 0
    wait_for(lambda: proc_state(pid) == "T", what="the agent stopped (state T)")
    handoff = (split3["api"] / ".hf" / "TASK.md").read_text()
    assert "PAUSED" in handoff
    assert hf("resume", "b1", cwd=repo).code == 0
    wait_for(lambda: proc_state(pid) in ("S", "R"), what="the agent running again")


def test_sweep_does_not_auto_join_a_paused_batch(repo, hf):
    r = hf("split", "b2", "--part", "api=src/api/**", "--task", "t", "--auto-join", cwd=repo)
    assert r.code == 0, r.err
    assert hf("done", "b2/api", cwd=repo).code == 0
    assert hf("pause", "b2", cwd=repo).code == 0
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout
    assert hf("sweep", cwd=repo).code == 0
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout == head
    assert "sweep-auto-join" not in audit_actions(repo)
    assert hf("resume", "b2", cwd=repo).code == 0
    assert hf("sweep", cwd=repo).code == 0
    assert "sweep-auto-join" in audit_actions(repo)


def test_status_shows_the_pause(split3, hf):
    repo = split3["repo"]
    assert hf("pause", "--reason", "lunch", cwd=repo).code == 0
    shown = hf("status", cwd=repo)
    assert "PAUSED: the repository is paused" in shown.out and "lunch" in shown.out
    data = json.loads(hf("status", "--json", cwd=repo).out)["data"]
    assert "lunch" in data["batches"][0]["paused"]
    assert hf("resume", cwd=repo).code == 0
    assert "PAUSED" not in hf("status", cwd=repo).out


def test_a_watcher_takes_nothing_while_paused_and_next_refuses(repo, hf):
    entry = hf("handoff", "--task", "t", "--next", "n", "--json", cwd=repo).json["data"]
    assert hf("pause", "--reason", "night", cwd=repo).code == 0
    r = hf("next", "--launcher", "print", cwd=repo)
    assert r.code == 1 and "night" in r.err
    r = hf("next", "--watch", "--timeout", "0", "--launcher", "print", "--json", cwd=repo)
    assert r.code == 0 and r.json["data"]["taken"] == []
    states = [e["state"] for e in hf("queue", "--json", cwd=repo).json["data"]["entries"]]
    assert states == ["pending"]
    assert hf("resume", cwd=repo).code == 0
    r = hf("next", "--launcher", "print", "--json", cwd=repo)
    assert r.json["data"]["taken"][0]["id"] == entry["id"]


def test_split_open_is_refused_while_the_repository_is_paused(repo, hf):
    assert hf("pause", cwd=repo).code == 0
    r = hf("split", "b3", "--part", "api=src/api/**", "--task", "t", "--open",
           "--launcher", "print", cwd=repo)
    assert r.code == 1 and "the repository is paused" in r.err
    assert not (repo / ".git/hf/batches/b3").exists()


# ------------------------------------------------ a watcher and the cron sweep, real processes


def agents_of(script: Path) -> list[int]:
    """The live processes running the stand-in agent `script` (by command line)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if str(script) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc.pid)
    return found


def end_agents(script: Path) -> None:
    import signal

    for pid in agents_of(script):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def batch_state(repo: Path, batch: str) -> str:
    return json.loads((repo / f".git/hf/batches/{batch}/batch.json").read_text())["state"]


def queue_states(hf, repo: Path) -> list[str]:
    return [e["state"] for e in hf("queue", "--json", cwd=repo).json["data"]["entries"]]


def sweeps_run() -> int:
    """How many sweeps the cron line ran: each appends its JSON envelope to the log."""
    from hf_fanout.liveness import schedule

    log = schedule.log_file()
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines() if '"command": "sweep"' in line)


def git_out(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_a_pause_holds_a_real_watcher_and_the_cron_sweep_and_resume_lets_them_go_on(
        repo, hf, tmp_path, crontab, procs):
    """A real `hf next --watch` and the sweep run by its installed cron line (a loop
    standing in for cron, a new `hf sweep` process each time); `hf pause`; a queue
    entry arrives and the auto-join batch's last part is done: the entry stays
    pending, no agent process starts, the batch is not joined, however many sweeps
    run. After `hf resume` the watcher opens the entry's agent and the sweep joins."""
    from hf_fanout.core.workspace import Workspace
    from hf_fanout.tabs import queue as q

    standin = agent_script(tmp_path, "queue-agent", "time.sleep(120)")
    user_config(f'agent = "{sys.executable} {standin} {{handoff}}"\n')
    r = hf("split", "b2", "--part", "api=src/api/**", "--task", "t", "--auto-join", cwd=repo)
    assert r.code == 0, r.err
    assert hf("install", "--cron", "--json", cwd=tmp_path).code == 0
    [line] = [x for x in crontab.read_text().splitlines() if x.startswith("* * * * * ")]
    # cron: sh, a bare environment, the installed command every so often
    cron = tmp_path / "cron.sh"
    cron.write_text(f"while :; do\n{cron_command(line)}\nsleep 0.2\ndone\n")
    bare = {"HOME": os.environ["HOME"], "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin"}
    procs.start(["/bin/sh", str(cron)], tmp_path, env=bare)
    watcher = procs.start([sys.executable, "-m", "hf_fanout", "next", "--watch",
                           "--launcher", "sh -c {command}"], repo, log=tmp_path / "watch.log")
    try:
        ws = Workspace.open(repo)
        wait_for(lambda: q.watchers(ws), what="the watcher watching")
        wait_for(lambda: sweeps_run() >= 1, timeout=60, what="a first sweep")

        paused = hf_proc("pause", "--reason", "night", cwd=repo)
        assert paused.returncode == 0, paused.stderr
        entry = hf("handoff", "--task", "t", "--next", "n", "--json", cwd=repo).json["data"]
        api = repo.parent / "repo.hf" / "b2" / "api"
        (api / "src/api/search.py").write_text("def search():\n    return []\n")
        git_out(api, "add", "-A")
        git_out(api, "commit", "-qm", "search")
        assert hf("done", "b2/api", cwd=repo).code == 0
        head = git_out(repo, "rev-parse", "HEAD")
        seen = sweeps_run()
        wait_for(lambda: sweeps_run() >= seen + 2, timeout=60,
                 what="two sweeps over the paused repository")

        assert queue_states(hf, repo) == ["pending"]
        assert agents_of(standin) == []
        assert batch_state(repo, "b2") == "running"
        assert git_out(repo, "rev-parse", "HEAD") == head
        assert watcher.poll() is None  # still watching
        actions = audit_actions(repo)
        assert "spawn" not in actions and "sweep-auto-join" not in actions

        resumed = hf_proc("resume", cwd=repo)
        assert resumed.returncode == 0, resumed.stderr
        wait_for(lambda: queue_states(hf, repo) == ["submitted"], what="the entry taken")
        [agent] = wait_for(lambda: agents_of(standin), what="the entry's agent started")
        environ = Path(f"/proc/{agent}/environ").read_bytes().split(b"\0")
        assert f"HF_QUEUE_ENTRY={entry['id']}".encode() in environ
        wait_for(lambda: batch_state(repo, "b2") == "joined", timeout=60,
                 what="the sweep joined b2")
        assert git_out(repo, "show", "HEAD:src/api/search.py").startswith("def search")
        wait_for(lambda: "sweep-auto-join" in audit_actions(repo), what="the join audited")
    finally:
        end_agents(standin)


# ------------------------------------------------------------- user-wide, two repositories


def test_pause_all_refuses_in_every_repository_and_freezes_and_stops_their_agents(
        split3, hf, tmp_path, procs):
    """Two registered repositories, each with batch b1 and a real live agent in its
    api part: `hf pause --all` refuses run, open and next in both; `--freeze`
    suspends both agents (state T) and `hf resume --all` continues both; `--stop`
    ends both, their uncommitted work rescued."""
    from conftest import make_repo

    first = split3["repo"]
    (tmp_path / "second").mkdir()
    second = make_repo(tmp_path / "second" / "repo")
    assert hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
              "--task", "t", cwd=second).code == 0
    apis = {first: split3["api"], second: second.parent / "repo.hf" / "b1" / "api"}
    uis = {first: split3["ui"], second: second.parent / "repo.hf" / "b1" / "ui"}
    spins = agent_script(tmp_path, "spins", """
        open("wip.txt", "w").write("work in progress\\n")
        while True:
            time.sleep(0.01)
    """)
    pids = {}
    for repo, api in apis.items():
        procs.hf_run(api, spins)
        pids[repo] = wait_for(lambda r=repo: part_record(r, "b1", "api").get("worker"),
                              what="a worker")["pid"]
        wait_for(lambda a=api: (a / "wip.txt").exists(), what="the agent at work")

    frozen = hf_proc("pause", "--all", "--freeze", "--reason", "upgrade", cwd=first)
    assert frozen.returncode == 0, frozen.stderr
    assert frozen.stdout.splitlines()[0] == "paused: every repository (upgrade)"
    for repo in apis:
        assert f"b1/api: frozen (in {repo})" in frozen.stdout
        wait_for(lambda p=pids[repo]: proc_state(p) == "T", what=f"{repo}'s agent stopped")
    quick = agent_script(tmp_path, "quick", "pass")
    for repo, api in apis.items():
        run = hf_proc("run", "--", sys.executable, str(quick), cwd=uis[repo])
        assert run.returncode == 1
        assert "every repository (hf pause --all) is paused" in run.stderr
        assert "upgrade" in run.stderr and "hf resume --all" in run.stderr
        assert part_record(repo, "b1", "ui").get("worker") is None
        opened = hf("open", "b1", "--launcher", "print", cwd=repo)
        assert opened.code == 1 and "every repository" in opened.err
        assert hf("handoff", "--task", "t", "--next", "n", cwd=repo).code == 0
        taken = hf("next", "--launcher", "print", cwd=repo)
        assert taken.code == 1 and "every repository" in taken.err
        assert queue_states(hf, repo) == ["pending"]
        assert "PAUSED: every repository" in (api / ".hf/TASK.md").read_text()

    resumed = hf_proc("resume", "--all", cwd=second)  # from either repository
    assert resumed.returncode == 0, resumed.stderr
    for repo in apis:
        assert f"b1/api: continued (in {repo})" in resumed.stdout
        wait_for(lambda p=pids[repo]: proc_state(p) in ("R", "S"), what="running again")
        assert hf("next", "--launcher", "print", cwd=repo).code == 0

    stopped = hf_proc("pause", "--all", "--stop", cwd=first, timeout=180)
    assert stopped.returncode == 0, stopped.stderr
    for repo in apis:
        wait_for(lambda p=pids[repo]: not alive(p), what="the agent ended")
        assert part_record(repo, "b1", "api")["state"] == "blocked"
        rescued = git_out(repo, "show", "refs/hf/rescue/b1/api:wip.txt")
        assert rescued == "work in progress"
    assert hf("resume", "--all", cwd=first).code == 0


# --------------------------------------------------------------- the note in the handoff file


def notes(handoff: Path) -> list[str]:
    return [line for line in handoff.read_text().splitlines()
            if line.startswith(("PAUSED: ", "RESUMED: "))]


def test_the_handoff_file_says_paused_then_resumed_never_both(split3, tmp_path, hf, procs):
    repo = split3["repo"]
    handoff = split3["api"] / ".hf" / "TASK.md"
    original = handoff.read_text()
    sleeper = agent_script(tmp_path, "sleeps", "time.sleep(60)")
    procs.hf_run(split3["api"], sleeper)
    wait_for(lambda: part_record(repo, "b1", "api").get("worker"), what="a worker")

    assert hf("pause", "b1", "--reason", "review first", cwd=repo).code == 0
    text = handoff.read_text()
    assert text.startswith(original.rstrip("\n"))  # the task itself is untouched
    [note] = notes(handoff)
    assert note.startswith("PAUSED: batch b1 is paused by ") and "review first" in note
    assert "start nothing new until it is lifted" in note

    assert hf("resume", "b1", cwd=repo).code == 0
    [note] = notes(handoff)
    assert note.startswith("RESUMED: batch b1 was lifted by ") and "Carry on" in note
    assert handoff.read_text().startswith(original.rstrip("\n"))

    # a repository pause over a batch pause: lifting the batch's leaves the wider one said
    assert hf("pause", "b1", cwd=repo).code == 0
    assert hf("pause", "--reason", "night", cwd=repo).code == 0
    [note] = notes(handoff)
    assert note.startswith("PAUSED: the repository is paused") and "night" in note
    assert hf("resume", "b1", cwd=repo).code == 0
    [note] = notes(handoff)
    assert note.startswith("PAUSED: the repository is paused")
    assert hf("resume", cwd=repo).code == 0
    [note] = notes(handoff)
    assert note.startswith("RESUMED: the repository was lifted by ")
    # a part the pause did not reach (no live agent) is left as it was
    assert notes(split3["ui"] / ".hf" / "TASK.md") == []


def test_status_and_doctor_show_a_repository_pause_with_no_batch(repo, hf):
    assert hf("pause", "--reason", "lunch", cwd=repo).code == 0
    shown = hf("status", cwd=repo).out.splitlines()
    assert shown[0].startswith("no batches in this repository")
    assert shown[1].startswith("PAUSED: the repository is paused by ") and "lunch" in shown[1]
    data = hf("status", "--json", cwd=repo).json["data"]
    assert [(p["scope"], p["reason"]) for p in data["paused"]] == [("_repo", "lunch")]
    doctor = hf("doctor", "--json", cwd=repo).json["data"]["findings"]
    assert any(f["what"] == "pause" and "the repository is paused" in f["detail"]
               and "lunch" in f["detail"] for f in doctor)
    assert hf("resume", cwd=repo).code == 0
    assert "PAUSED" not in hf("status", cwd=repo).out
    assert hf("status", "--json", cwd=repo).json["data"]["paused"] == []


def test_a_damaged_pause_file_stays_paused_and_hf_resume_lifts_it(split3, tmp_path, hf, procs):
    """A torn pause file once left no way out: `hf run`, `hf pause`, `hf resume` and
    `hf doctor` all failed, each naming `hf doctor`. Now what it paused stays paused,
    the refusal names `hf resume b1`, and that continues a frozen agent and lifts it."""
    repo = split3["repo"]
    pid = spinning_agent(split3, tmp_path, procs)
    assert hf("pause", "b1", "--freeze", cwd=repo).code == 0
    wait_for(lambda: proc_state(pid) == "T", what="the agent stopped (state T)")
    pause_file = repo / ".git/hf/pauses/b1.json"
    pause_file.write_text('{"by": "x", "fro')  # torn
    refused = hf_proc("run", "--", sys.executable, "-c", "pass", cwd=split3["ui"])
    assert refused.returncode != 0
    assert refused.stderr.splitlines()[-1] == "hint: `hf resume b1` lifts it (and removes the file)"
    doctor = hf("doctor", cwd=repo)
    assert doctor.code == 1
    assert "pauses/b1.json is not valid JSON" in doctor.err
    assert "hint: `hf resume b1` lifts it" in doctor.err
    r = hf("resume", "b1", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert r.json["data"]["was_paused"] is True
    assert [c["part"] for c in r.json["data"]["continued"]] == ["api"]
    wait_for(lambda: proc_state(pid) in ("S", "R"), what="the agent running again")
    assert not pause_file.exists()
    assert audit_actions(repo)[-1] == "resume"
    # and a damaged file is replaced by a new `hf pause`, dated now
    pause_file.write_text("not json")
    assert hf("pause", "b1", "--reason", "again", cwd=repo).code == 0
    data = json.loads(pause_file.read_text())
    assert data["reason"] == "again" and data["at"]


def test_a_resume_racing_a_freeze_waits_for_it_and_leaves_no_agent_stopped(
        split3, tmp_path, procs):
    """`hf resume` run while `hf pause --freeze` was between writing the pause and
    stopping the agents once continued them first; the freeze then stopped them
    with no pause left to lift. Now the resume waits and continues them after."""
    repo = split3["repo"]
    pid = spinning_agent(split3, tmp_path, procs)
    env = {**os.environ, "HF_TEST_STOP_AT": "pause-written"}
    pausing = subprocess.Popen([sys.executable, "-m", "hf_fanout", "pause", "b1", "--freeze"],
                               cwd=repo, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: proc_state(pausing.pid) == "T", what="hf pause stopped after writing")
        assert (repo / ".git/hf/pauses/b1.json").exists()
        resuming = subprocess.Popen([sys.executable, "-m", "hf_fanout", "resume", "b1"],
                                    cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            resuming.wait(timeout=1.0)
        assert resuming.poll() is None  # held by the pause under way
    finally:
        os.kill(pausing.pid, signal.SIGCONT)
    assert pausing.wait(timeout=60) == 0
    assert resuming.wait(timeout=60) == 0, resuming.stderr.read() if resuming.stderr else ""
    wait_for(lambda: proc_state(pid) in ("S", "R"), what="the agent running again")
    assert not (repo / ".git/hf/pauses/b1.json").exists()


@pytest.mark.parametrize("content", ["null", "[]", '"x"', "0", "{}"])
def test_a_pause_file_that_holds_no_pause_still_pauses(split3, hf, content):
    """The pause file exists exactly while the pause holds: one edited to JSON that is
    no pause (`null`, a list, a record without its time) refuses `hf run` like a
    torn one, doctor names it, and `hf resume b1` lifts it."""
    repo = split3["repo"]
    assert hf("pause", "b1", cwd=repo).code == 0
    pause_file = repo / ".git/hf/pauses/b1.json"
    pause_file.write_text(content)
    refused = hf_proc("run", "--", sys.executable, "-c", "pass", cwd=split3["ui"])
    assert refused.returncode != 0
    assert f"{pause_file} is not a pause" in refused.stderr, refused.stderr
    assert refused.stderr.splitlines()[-1] == "hint: `hf resume b1` lifts it (and removes the file)"
    doctor = hf("doctor", cwd=repo)
    assert doctor.code == 1 and "pauses/b1.json is not a pause" in doctor.err, doctor.err
    assert hf("resume", "b1", cwd=repo).code == 0
    assert not pause_file.exists()
    assert hf_proc("run", "--", sys.executable, "-c", "pass", cwd=split3["ui"]).returncode == 0
