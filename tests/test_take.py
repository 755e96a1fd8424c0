"""`hf take` and what a taken part does on the machine that works it: `hf done`
pushes, heartbeats reach the remote at most once a minute and the machine that split
sees them (`hf status`, `hf sweep`); the refusals."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from remote_support import Machine, another_machine, name_host, remote_refs, two_machines

T0 = "2026-12-03T10:00:00Z"


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Machine, Machine]:
    remote, a, b = two_machines(tmp_path)
    made = a.hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
                "--remote", "origin", "--task", "add search", extra={"HF_CLOCK": T0})
    assert made.returncode == 0, made.stderr
    return remote, a, b


def heartbeats(remote: Path, part: str) -> list[str]:
    return sorted(r for r in remote_refs(remote) if r.startswith(f"refs/hf/heartbeat/b1/{part}/"))


def test_heartbeats_reach_the_remote_once_a_minute_and_a_sees_them(world):
    remote, a, b = world
    # taken before the first beat (a take stamps its claim with the clock)
    assert b.hf("take", "origin", "b1/api",
                extra={"HF_CLOCK": "2026-12-03T10:00:30Z"}).returncode == 0
    wt = b.worktree("b1", "api")
    host = b.hf_json("heartbeat", cwd=wt, extra={"HF_CLOCK": "2026-12-03T10:01:00Z"})
    seen = host["heartbeat"]["remote"]
    assert seen["ok"] is True
    first = heartbeats(remote, "api")
    assert first == [seen["ref"]] and seen["ref"].endswith("/20261203T100100Z")
    # 30 s later: not again
    again = b.hf_json("heartbeat", cwd=wt, extra={"HF_CLOCK": "2026-12-03T10:01:30Z"})
    assert again["heartbeat"]["remote"] is None
    assert heartbeats(remote, "api") == first
    # a minute later: the new one, and the old one gone
    later = b.hf_json("heartbeat", cwd=wt, extra={"HF_CLOCK": "2026-12-03T10:02:00Z"})
    assert heartbeats(remote, "api") == [later["heartbeat"]["remote"]["ref"]]

    # A: seen within a minute
    status = a.hf_json("status", "b1", extra={"HF_CLOCK": "2026-12-03T10:02:40Z"})
    api = {p["name"]: p for p in status["batches"][0]["parts"]}["api"]
    assert api["state"] == "remote"
    assert api["remote"]["seen"].endswith(f"; last seen 40 s ago on {seen['host']}")
    assert api["remote"]["seen"].startswith(f"taken by {seen['host']} ")
    shown = a.hf("status", "b1", extra={"HF_CLOCK": "2026-12-03T10:02:40Z"})
    assert f"last seen 40 s ago on {seen['host']}" in shown.stdout
    # gone for longer than the threshold (10 min by default): stale, never rescued
    late = {"HF_CLOCK": "2026-12-03T10:13:00Z"}
    status = a.hf_json("status", "b1", extra=late)
    api = {p["name"]: p for p in status["batches"][0]["parts"]}["api"]
    assert api["state"] == "stale" and "last seen 11 min ago" in api["remote"]["seen"]
    sweep = a.hf_json("sweep", "--repo", str(a.repo), extra=late)
    parts = {p["part"]: p for r in sweep["repos"] for p in r["parts"]}
    assert parts["api"]["state"] == "stale"
    assert not [x for r in sweep["repos"] for x in r["actions"]]
    assert a.git("for-each-ref", "refs/hf/rescue/").strip() == ""
    # the threshold is a setting
    (a.repo / ".hf.toml").write_text('remote_stale_after = "1h"\n')
    status = a.hf_json("status", "b1", extra=late)
    assert {p["name"]: p["state"] for p in status["batches"][0]["parts"]}["api"] == "remote"


def test_hf_run_beats_on_the_remote_while_the_worker_lives(world):
    remote, a, b = world
    assert b.hf("take", "origin", "b1/ui").returncode == 0
    wt = b.worktree("b1", "ui")
    proc = subprocess.run([sys.executable, "-m", "hf_fanout", "run", "--", "true"], cwd=wt,
                          env={**b.env, "HF_CLOCK": "2026-12-03T10:05:00Z"},
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert [r.rsplit("/", 1)[1] for r in heartbeats(remote, "ui")] == ["20261203T100500Z"]


def test_a_remote_that_hangs_never_stops_hf_runs_local_heartbeats(world, tmp_path):
    """The remote's heartbeat is pushed beside the local one, never in its way: a remote
    that does not answer (an ssh that hangs) leaves the local beats going and `hf run`
    ending with its worker."""
    remote, a, b = world
    assert b.hf("take", "origin", "b1/ui").returncode == 0
    wt = b.worktree("b1", "ui")
    pids = tmp_path / "ssh.pids"
    stuck = tmp_path / "stuck-ssh"
    stuck.write_text(f"#!/bin/sh\necho $$ >> {pids}\nexec sleep 90\n")
    stuck.chmod(0o755)
    b.git("config", "remote.origin.url", "ssh://stuck.invalid/remote.git")
    b.git("config", "core.sshCommand", str(stuck))
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "hf_fanout", "run", "--heartbeat", "0.5", "--",
             "sleep", "3"], cwd=wt, env=b.env, capture_output=True, text=True,
            timeout=60, check=False)
        took = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr
        assert took < 30, f"hf run took {took:.0f} s: the hung remote held it"
        beats = b.repo / ".git" / "hf" / "batches" / "b1" / "heartbeats"
        beat = json.loads((beats / "ui").read_text())
        assert beat["by"] == "hf run" and beat["at"] >= time.time() - took + 2
    finally:
        for pid in (pids.read_text().split() if pids.exists() else []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    assert pids.exists()  # the remote was asked, and hung


def test_done_refuses_uncommitted_owned_work_and_pushes_nothing(world):
    remote, a, b = world
    assert b.hf("take", "origin", "b1/api").returncode == 0
    wt = b.worktree("b1", "api")
    (wt / "src" / "api" / "orders.py").write_text("def orders(): return [1]\n")
    before = remote_refs(remote)
    proc = b.hf("done", cwd=wt)
    assert proc.returncode == 1
    assert "uncommitted changes to files the part owns: src/api/orders.py" in proc.stderr
    assert remote_refs(remote) == before
    status = b.hf_json("status", "b1")
    assert status["batches"][0]["parts"][0]["state"] == "running"
    b.git("commit", "-qam", "orders", cwd=wt)
    assert b.hf("done", cwd=wt).returncode == 0
    tip = b.git("rev-parse", "HEAD", cwd=wt).strip()
    assert remote_refs(remote)["refs/hf/done/b1/api"] == tip


def test_a_remote_whose_hook_refuses_is_said_so_and_the_local_work_goes_on(world):
    """A pre-receive hook refusing every push: `hf done` says the hook's line with a
    hint about access, not about commits the branch lacks; the heartbeat still beats
    here; nothing moves on the remote; once the hook lets it, `hf done` lands."""
    remote, a, b = world
    assert b.hf("take", "origin", "b1/api").returncode == 0
    wt = b.worktree("b1", "api")
    (wt / "src" / "api" / "orders.py").write_text("def orders(): return [1]\n")
    b.git("commit", "-qam", "orders", cwd=wt)
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are closed today' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = remote_refs(remote)
    beat = b.hf_json("heartbeat", cwd=wt, extra={"HF_CLOCK": "2026-12-03T10:01:00Z"})
    assert beat["heartbeat"]["remote"]["ok"] is False
    assert "pushes are closed today" in beat["heartbeat"]["remote"]["error"]
    proc = b.hf("done", cwd=wt)
    assert proc.returncode == 1
    error, hint = proc.stderr.strip().splitlines()
    assert error == ("hf: error: pushing hf/b1/api to origin failed: remote: pushes are "
                     "closed today")
    assert "`git ls-remote origin`" in hint and "commits this one has not" not in hint
    assert remote_refs(remote) == before
    assert b.hf_json("status", "b1")["batches"][0]["parts"][0]["state"] == "running"
    hook.unlink()
    assert b.hf("done", cwd=wt).returncode == 0
    assert remote_refs(remote)["refs/hf/done/b1/api"] == b.git("rev-parse", "HEAD",
                                                               cwd=wt).strip()


def test_take_by_a_url_that_cannot_be_cloned_names_a_command_that_works(world, tmp_path):
    remote, a, b = world
    gone = tmp_path / "gone.git"
    proc = b.hf("take", str(gone), "b1/api", cwd=tmp_path)
    assert proc.returncode == 1
    error, hint = proc.stderr.strip().splitlines()
    assert error.startswith(f"hf: error: cloning {gone} failed: ")
    assert hint == f"hint: check the URL and your access to it (`git ls-remote {gone}`)"
    check = subprocess.run(["git", "ls-remote", str(remote)], capture_output=True, check=False)
    assert check.returncode == 0  # the form of the hint runs, given a URL that is there
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["a", "b", "home-a", "home-b", "remote.git"])  # no half-made clone left


def test_take_refusals(world, tmp_path):
    remote, a, b = world
    proc = b.hf("take", "origin", "b1/nope")
    assert proc.returncode == 1 and "origin has no remote part b1/nope" in proc.stderr
    proc = b.hf("take", "upstream", "b1/api")
    assert proc.returncode == 2 and "this repository has no remote 'upstream'" in proc.stderr
    proc = b.hf("take", "origin", "b1")
    assert proc.returncode == 2 and "BATCH/PART" in proc.stderr
    assert b.hf("take", "origin", "b1/api").returncode == 0
    # its base stays the batch's: `hf sync` leaves it alone, saying why
    proc = b.hf("sync", cwd=b.worktree("b1", "api"))
    assert "keeps the batch's base" in proc.stdout + proc.stderr
    assert b.git("rev-parse", "hf/b1/api").strip() == a.git("rev-parse", "HEAD").strip()
    # the batch joins where it was split
    proc = b.hf("join", "b1", "--partial")
    assert proc.returncode == 1 and "it joins on the machine that split it" in proc.stderr
    # on A, a join before the remote parts are done says where they are finished
    proc = a.hf("join", "b1")
    assert proc.returncode == 1
    assert "a remote part (api, ui) is done once `hf done` ran where it is worked" in proc.stderr


def test_take_by_url_outside_a_repository_clones(world, tmp_path):
    remote, a, b = world
    elsewhere = tmp_path / "c"
    elsewhere.mkdir()
    taken = b.hf_json("take", str(remote), "b1/ui", cwd=elsewhere)
    assert taken["cloned"] == str(elsewhere / "remote")
    worktree = Path(taken["part"]["worktree"])
    assert worktree == elsewhere / "remote.hf" / "b1" / "ui"
    assert (worktree / "src" / "ui" / "page.html").is_file()
    clone = elsewhere / "remote"
    # what the take fetched is on the branch; no scratch ref of hf's is left
    assert b.git("for-each-ref", "--format=%(refname)", "refs/hf/", cwd=clone).strip() == ""
    task = (worktree / ".hf" / "TASK.md").read_text()
    assert "This part was taken from `origin`" in task and "`src/ui/**`" in task
    assert "only committed work\n  travels" in task and "the join takes both" not in task
    # the guard is installed: a commit of a file ui does not own is refused
    (worktree / "README.md").write_text("# mine now\n")
    b.git("add", "README.md", cwd=worktree)
    proc = subprocess.run(["git", "commit", "-qm", "x"], cwd=worktree, env=b.env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "outside its ownership" in proc.stderr


def test_a_done_part_cannot_be_taken(world):
    remote, a, b = world
    assert b.hf("take", "origin", "b1/api").returncode == 0
    assert b.hf("done", cwd=b.worktree("b1", "api")).returncode == 0
    other = b.repo.parent / "second"
    subprocess.run(["git", "clone", "-q", str(remote), str(other)], env=b.env, check=True)
    proc = b.hf("take", "origin", "b1/api", cwd=other)
    assert proc.returncode == 1 and "is done on origin already" in proc.stderr


def test_a_sandboxed_agents_done_that_cannot_push_is_refused_not_looped(world, tmp_path):
    remote, a, b = world
    assert b.hf("take", "origin", "b1/api").returncode == 0
    wt = b.worktree("b1", "api")
    log = tmp_path / "agent.log"
    script = ('echo more >> src/api/orders.py; "$HF_PYTHON" -m hf_fanout done; '
              f'echo "done $?" > {log}')
    proc = subprocess.run([sys.executable, "-m", "hf_fanout", "run", "--", "sh", "-c", script],
                          cwd=wt, env={**b.env, "HF_PYTHON": sys.executable},
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().strip() == "done 1"
    assert "refused by hf outside the sandbox: uncommitted changes to files the part owns" \
        in proc.stderr
    assert "refs/hf/done/b1/api" not in remote_refs(remote)
    assert b.hf_json("status", "b1")["batches"][0]["parts"][0]["state"] != "done"
    rejected = [e for e in b.hf_json("log")["events"] if e.get("action") == "inbox-rejected"]
    assert rejected and "uncommitted changes to files the part owns" in rejected[-1]["why"]


def test_take_opens_a_tab_with_the_same_launchers_and_dry_run_makes_nothing(world):
    remote, a, b = world
    dry = b.hf_json("take", "origin", "b1/ui", "--dry-run")
    assert dry["dry_run"] is True and not b.worktree("b1", "ui").exists()
    assert b.git("for-each-ref", "refs/heads/hf/").strip() == ""
    assert b.hf_json("status")["batches"] == []
    taken = b.hf_json("take", "origin", "b1/ui", "--open", "--launcher", "print")
    [tab] = taken["tabs"]
    assert tab["launcher"] == "print" and tab["action"] == "printed"
    assert str(b.worktree("b1", "ui")) in tab["command"]


def test_a_take_claims_the_part_and_a_second_machine_is_refused(world, tmp_path):
    remote, a, b = world
    name_host(b, "machine-b")
    c = another_machine(tmp_path, remote, "machine-c")
    taken = b.hf_json("take", "origin", "b1/api", extra={"HF_CLOCK": "2026-12-03T10:10:00Z"})
    refs = remote_refs(remote)
    claim = refs["refs/hf/claim/b1/api"]
    assert taken["claim"] == claim
    assert refs["refs/hf/claimed/b1/api/machine-b/20261203T101000Z"] == claim
    # another machine: refused in one line naming who holds it and since when
    before = remote_refs(remote)
    proc = c.hf("take", "origin", "b1/api", extra={"HF_CLOCK": "2026-12-03T10:15:00Z"})
    assert proc.returncode == 1
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("hf: error")]
    assert "part b1/api is taken on origin by machine-b since 2026-12-03T10:10:00Z " \
           "(5 min ago)" in line
    assert "--steal" in proc.stderr and "`hf take` again there does nothing new" in proc.stderr
    assert remote_refs(remote) == before
    assert not c.worktree("b1", "api").exists()
    assert c.git("for-each-ref", "refs/heads/hf/", "refs/hf/").strip() == ""
    # again on the claiming machine: nothing new, nothing refused
    again = b.hf_json("take", "origin", "b1/api")
    assert again["already"] is True and again["claim"] == claim
    assert remote_refs(remote) == before
    assert "is taken here already" in b.hf("take", "origin", "b1/api").stdout
    # A sees who took it
    status = a.hf_json("status", "b1", extra={"HF_CLOCK": "2026-12-03T10:12:00Z"})
    api = {p["name"]: p for p in status["batches"][0]["parts"]}["api"]
    assert api["remote"]["taken_by"] == "machine-b"
    assert api["remote"]["seen"] == "taken by machine-b 2 min ago"
    shown = a.hf("status", "b1", extra={"HF_CLOCK": "2026-12-03T10:12:00Z"})
    assert "api: remote part on origin: taken by machine-b 2 min ago" in shown.stdout
    # the heartbeat names the host the setting gives
    beat = b.hf_json("heartbeat", cwd=b.worktree("b1", "api"),
                     extra={"HF_CLOCK": "2026-12-03T10:12:30Z"})
    assert beat["heartbeat"]["remote"]["ref"] == \
        "refs/hf/heartbeat/b1/api/machine-b/20261203T101230Z"


def test_steal_takes_the_claim_over_and_the_old_holders_done_is_refused(world, tmp_path):
    remote, a, b = world
    name_host(b, "machine-b")
    c = another_machine(tmp_path, remote, "machine-c")
    assert b.hf("take", "origin", "b1/api", extra={"HF_CLOCK": T0}).returncode == 0
    old_claim = remote_refs(remote)["refs/hf/claim/b1/api"]
    stole = c.hf_json("take", "origin", "b1/api", "--steal",
                      extra={"HF_CLOCK": "2026-12-03T11:00:00Z"})
    assert stole["stolen"]["host"] == "machine-b"
    assert stole["stolen"]["since"] == T0
    refs = remote_refs(remote)
    assert refs["refs/hf/claim/b1/api"] == stole["claim"] != old_claim
    claimed = sorted(r for r in refs if r.startswith("refs/hf/claimed/b1/api/"))
    assert claimed == ["refs/hf/claimed/b1/api/machine-c/20261203T110000Z"]
    audit = [json.loads(x) for x in
             (c.repo / ".git" / "hf" / "audit.log").read_text().splitlines()]
    [take] = [x for x in audit if x["action"] == "take"]
    assert take["stole"]["host"] == "machine-b" and take["host"] == "machine-c"
    # C's heartbeat is C's: B's next beat fails on the claim and leaves it in place
    wt = b.worktree("b1", "api")
    assert c.hf("heartbeat", cwd=c.worktree("b1", "api"),
                extra={"HF_CLOCK": "2026-12-03T11:01:00Z"}).returncode == 0

    def beats() -> set[str]:
        return {r for r in remote_refs(remote) if r.startswith("refs/hf/heartbeat/b1/api/")}

    beats_of_c = beats()
    assert beats_of_c and all("/machine-c/" in r for r in beats_of_c), beats_of_c
    assert b.hf("heartbeat", cwd=wt, extra={"HF_CLOCK": "2026-12-03T11:05:00Z"}).returncode == 0
    assert beats() == beats_of_c
    # B's work can no longer land as the part's: its `hf done` is refused, nothing pushed
    (wt / "src" / "api" / "users.py").write_text("def users(): return [2]\n")
    b.git("add", "-A", cwd=wt)
    b.git("commit", "-qm", "b's work", cwd=wt)
    before = remote_refs(remote)
    proc = b.hf("done", cwd=wt)
    assert proc.returncode == 1
    assert "was taken over on origin by machine-c since 2026-12-03T11:00:00Z" in proc.stderr
    assert remote_refs(remote) == before
    # C finishes it; its done lands
    wt_c = c.worktree("b1", "api")
    (wt_c / "src" / "api" / "users.py").write_text("def users(): return [3]\n")
    c.git("add", "-A", cwd=wt_c)
    c.git("commit", "-qm", "c's work", cwd=wt_c)
    assert c.hf("done", cwd=wt_c).returncode == 0
    tip = c.git("rev-parse", "HEAD", cwd=wt_c).strip()
    assert remote_refs(remote)["refs/hf/done/b1/api"] == tip
    # gc on A removes the claim refs with the others
    assert a.hf("drop", "b1/ui").returncode == 0
    assert a.hf("join", "b1").returncode == 0
    gc = a.hf_json("gc", "b1")
    assert "origin:refs/hf/claim/b1/api" in gc["refs_removed"]
    assert not [r for r in remote_refs(remote) if r.startswith("refs/hf/")]


def test_two_machines_taking_at_once_one_gets_the_part(world, tmp_path):
    remote, a, b = world
    name_host(b, "machine-b")
    c = another_machine(tmp_path, remote, "machine-c")
    procs = {m.name: subprocess.Popen([sys.executable, "-m", "hf_fanout", "take", "origin",
                                       "b1/ui"], cwd=m.repo, env=m.env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for m in (b, c)}
    results = {name: (p.wait(timeout=120), p.stderr.read()) for name, p in procs.items()}
    for p in procs.values():
        assert p.stdout is not None and p.stderr is not None
        p.stdout.close()
        p.stderr.close()
    winners = [name for name, (code, _err) in results.items() if code == 0]
    assert len(winners) == 1, results
    [loser] = [name for name in results if name not in winners]
    host = {"b": "machine-b", "machine-c": "machine-c"}[winners[0]]
    assert results[loser][0] == 1
    assert f"part b1/ui is taken on origin by {host} since" in results[loser][1]
    refs = remote_refs(remote)
    claimed = [r for r in refs if r.startswith("refs/hf/claimed/b1/ui/")]
    assert len(claimed) == 1 and f"/{host}/" in claimed[0]
    machines = {"b": b, "machine-c": c}
    assert machines[winners[0]].worktree("b1", "ui").is_dir()
    assert not machines[loser].worktree("b1", "ui").exists()


def test_a_take_that_fails_after_claiming_deletes_its_claim(world, tmp_path):
    remote, a, b = world
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    before = remote_refs(remote)
    proc = b.hf("take", "origin", "b1/api", "--worktree-root", str(blocker / "wt"))
    assert proc.returncode == 2
    assert "cannot make the part's worktree" in proc.stderr and "--worktree-root" in proc.stderr
    assert remote_refs(remote) == before  # the claim went again
    assert b.git("for-each-ref", "refs/heads/hf/", "refs/hf/").strip() == ""
    assert b.hf_json("status", "--all")["batches"] == []
    # so another take gets it
    assert b.hf("take", "origin", "b1/api").returncode == 0


def test_done_after_the_claim_went_is_refused_until_it_is_claimed_again(world):
    remote, a, b = world
    assert b.hf("take", "origin", "b1/api").returncode == 0
    wt = b.worktree("b1", "api")
    (wt / "src" / "api" / "users.py").write_text("def users(): return [4]\n")
    b.git("add", "-A", cwd=wt)
    b.git("commit", "-qm", "users", cwd=wt)
    gone = [r for r in remote_refs(remote) if r.startswith(("refs/hf/claim/", "refs/hf/claimed/"))]
    b.git("push", "-q", "origin", *(f":{r}" for r in gone))  # by hand, outside hf
    before = remote_refs(remote)
    proc = b.hf("done", cwd=wt)
    assert proc.returncode == 1 and "its claim is gone from origin" in proc.stderr
    assert remote_refs(remote) == before
    again = b.hf_json("take", "origin", "b1/api")
    assert again["already"] is True and again["claim"] in remote_refs(remote).values()
    assert b.hf("done", cwd=wt).returncode == 0
    assert remote_refs(remote)["refs/hf/done/b1/api"] == b.git("rev-parse", "HEAD", cwd=wt).strip()


# --------------------------------------------------------------------- a take cut off


def _kill_take_in_its_setup(b: Machine, tmp_path: Path) -> None:
    """`hf take origin b1/api` on B killed (SIGKILL) once its worktree exists: its setup
    command kills it, the first time only."""
    once = tmp_path / "killed-once"
    (b.repo / ".hf.toml").write_text(
        f'setup = ["[ -e {once} ] || {{ touch {once}; kill -9 $PPID; }}"]\n')
    assert b.hf("trust").returncode == 0
    proc = b.hf("take", "origin", "b1/api")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert b.worktree("b1", "api").is_dir()  # what the killed take left
    assert b.git("rev-parse", "--verify", "-q", "refs/heads/hf/b1/api", check=False).strip()


def _claims(remote: Path) -> dict[str, str]:
    return {r: oid for r, oid in remote_refs(remote).items()
            if r.startswith(("refs/hf/claim/b1/api", "refs/hf/claimed/b1/api/"))}


def test_a_take_killed_after_its_worktree_exists_is_taken_back_and_taken_again(
        world, tmp_path):
    remote, a, b = world
    _kill_take_in_its_setup(b, tmp_path)
    left_claim = remote_refs(remote)["refs/hf/claim/b1/api"]
    proc = b.hf("take", "origin", "b1/api", "--json")  # not "no batch 'b1'"; no --steal
    assert proc.returncode == 0, proc.stderr
    taken = json.loads(proc.stdout)["data"]
    assert taken["already"] is False and taken["stolen"] is None
    [note] = taken["notices"]
    assert note.startswith("a take of b1/api that was cut off was taken back here")
    assert f"hf: note: {note}" in proc.stderr  # said, as every command says it
    wt = b.worktree("b1", "api")
    assert (wt / ".hf" / "TASK.md").is_file()
    claims = _claims(remote)
    assert claims["refs/hf/claim/b1/api"] == taken["claim"] != left_claim
    assert len(claims) == 2  # the claim and one name ref: the old one went
    status = b.hf_json("status", "b1")
    assert [p["name"] for p in status["batches"][0]["parts"]] == ["api"]
    assert b.hf("doctor").returncode == 0
    recovered = [json.loads(x) for x in (b.repo / ".git" / "hf" / "audit.log").read_text()
                 .splitlines() if '"take-recovered"' in x]
    assert [(r["outcome"], r["claim"]) for r in recovered] == [("removed", left_claim)]
    b.git("commit", "-qm", "work", "--allow-empty", cwd=wt)
    assert b.hf("done", cwd=wt).returncode == 0  # the claim is this machine's


def test_a_take_cut_off_is_settled_by_the_next_command_and_hf_doctor_says_so(world, tmp_path):
    remote, a, b = world
    _kill_take_in_its_setup(b, tmp_path)
    report = b.hf_json("doctor")
    [found] = [f for f in report["findings"] if f["what"] == "take"]
    assert found["level"] == "fixed"
    assert found["detail"].startswith("a take of b1/api that was cut off was taken back here")
    assert not b.worktree("b1", "api").exists()
    assert b.git("for-each-ref", "refs/heads/hf/", "refs/hf/").strip() == ""
    assert not (b.repo / ".git" / "hf" / "batches" / "b1").exists()
    assert "no problem found" in b.hf("doctor").stdout
    assert b.hf("take", "origin", "b1/api").returncode == 0


def test_a_take_cut_off_keeps_a_branch_with_commits_and_says_so(world, tmp_path):
    remote, a, b = world
    _kill_take_in_its_setup(b, tmp_path)
    wt = b.worktree("b1", "api")
    (wt / "src" / "api" / "orders.py").write_text("def orders(): return [9]\n")
    b.git("commit", "-qam", "work made in the meantime", cwd=wt)
    work = b.git("rev-parse", "HEAD", cwd=wt).strip()
    proc = b.hf("status")
    assert "a take of b1/api that was cut off was taken back except branch hf/b1/api" \
        in proc.stderr and "commits on it are kept" in proc.stderr
    assert b.git("rev-parse", "hf/b1/api").strip() == work and wt.is_dir()
    proc = b.hf("take", "origin", "b1/api")
    assert proc.returncode == 1 and "commits on it are kept" in proc.stderr
    assert "git branch NAME hf/b1/api" in proc.stderr
    assert b.git("rev-parse", "hf/b1/api").strip() == work
    doctor = b.hf("doctor")
    assert doctor.returncode == 1 and "commits on it are kept" in doctor.stdout + doctor.stderr
    # once the person kept the work elsewhere and removed what was left, it is taken again
    b.git("branch", "kept", "hf/b1/api")
    b.git("worktree", "remove", "--force", str(wt))
    b.git("branch", "-D", "hf/b1/api")
    assert b.hf("take", "origin", "b1/api").returncode == 0
    assert b.git("rev-parse", "kept").strip() == work


def test_a_take_killed_just_after_its_claim_push_is_taken_again_here(world, tmp_path):
    """The claim is on the remote, nothing is here yet: the same machine takes the part
    again without --steal; another clone under the same host name is refused, told
    what to do."""
    remote, a, b = world
    name_host(b, "machine-b")
    pid_file, once = tmp_path / "take.pid", tmp_path / "hook-ran"
    hook = remote / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\ngrep -q refs/hf/claim/b1/api || exit 0\n"
                    f"[ -e {once} ] && exit 0\ntouch {once}\nkill -9 $(cat {pid_file})\n")
    hook.chmod(0o755)
    proc = subprocess.Popen([sys.executable, "-m", "hf_fanout", "take", "origin", "b1/api"],
                            cwd=b.repo, env=b.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    pid_file.write_text(str(proc.pid))
    assert proc.wait(timeout=120) == -signal.SIGKILL
    left_claim = _claims(remote)["refs/hf/claim/b1/api"]
    assert not b.worktree("b1", "api").exists()
    c = another_machine(tmp_path, remote, "machine-b")  # (a clone under the same name)
    proc_c = c.hf("take", "origin", "b1/api")
    assert proc_c.returncode == 1
    assert "by machine-b (the name of this machine)" in proc_c.stderr
    assert "hf take origin b1/api --steal" in proc_c.stderr
    taken = b.hf_json("take", "origin", "b1/api")
    assert taken["stolen"] is None
    claims = _claims(remote)
    assert claims["refs/hf/claim/b1/api"] == taken["claim"] != left_claim and len(claims) == 2
    assert b.worktree("b1", "api").is_dir()


def test_steal_by_the_same_host_name_in_the_same_second(world, tmp_path):
    remote, a, b = world
    clock = {"HF_CLOCK": "2026-12-04T12:00:00Z"}
    name_host(b, "machine-b")
    c = another_machine(tmp_path, remote, "machine-b")
    assert b.hf("take", "origin", "b1/api", extra=clock).returncode == 0
    stole = c.hf_json("take", "origin", "b1/api", "--steal", extra=clock)
    assert stole["stolen"]["host"] == "machine-b"
    claims = _claims(remote)
    assert claims == {"refs/hf/claim/b1/api": stole["claim"],
                      "refs/hf/claimed/b1/api/machine-b/20261204T120000Z": stole["claim"]}
    # two claims, not one commit: the clone that lost it cannot `hf done`
    proc = b.hf("done", cwd=b.worktree("b1", "api"), extra=clock)
    assert proc.returncode == 1 and "was taken over on origin by machine-b" in proc.stderr


def test_a_failing_post_checkout_hook_leaves_the_taken_part_made_and_says_so(world):
    """As at split (and as `git worktree add` does): the checkout stays."""
    remote, a, b = world
    hook = b.repo / ".git/hooks/post-checkout"
    hook.write_text('#!/bin/sh\necho "git-lfs was not found on your path." >&2\nexit 2\n')
    hook.chmod(0o755)
    proc = b.hf("take", "origin", "b1/api")
    assert proc.returncode == 0, proc.stderr
    assert ("part api: the repository's post-checkout hook failed in its new worktree "
            "(exit 2: git-lfs was not found on your path.)") in proc.stderr
    worktree = b.worktree("b1", "api")
    assert (worktree / "src/api").is_dir()
    assert b.git("status", "--porcelain", cwd=worktree) == ""
    assert b.hf("done", cwd=worktree).returncode == 0


def test_a_heartbeat_whose_push_hangs_gives_up_after_remote_timeout(world):
    """The remote's pre-receive hook never ends (a hung connection does the same):
    the agent's `hf heartbeat` writes its local beat, gives the push up after
    `remote_timeout` and says so, instead of blocking the agent."""
    remote, a, b = world
    assert b.hf("take", "origin", "b1/api",
                extra={"HF_CLOCK": "2026-12-03T10:00:30Z"}).returncode == 0
    config = b.home / ".config" / "hf" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("remote_timeout = 2\n")
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nexec sleep 60\n")
    hook.chmod(0o755)
    started = time.monotonic()
    seen = b.hf_json("heartbeat", cwd=b.worktree("b1", "api"),
                     extra={"HF_CLOCK": "2026-12-03T10:01:00Z"})
    assert time.monotonic() - started < 30
    assert seen["heartbeat"]["remote"] == {"ok": False, "error": "no answer within 2 s"}
    assert heartbeats(remote, "api") == []
    said = b.hf("heartbeat", cwd=b.worktree("b1", "api"),
                extra={"HF_CLOCK": "2026-12-03T10:03:00Z"})
    assert said.stdout.strip() == ("heartbeat for b1/api (here only: its push to the remote "
                                   "failed: no answer within 2 s)"), said.stdout


def test_takes_of_one_batch_at_once_into_one_clone_each_make_their_part(world):
    """Two `hf take` of different parts of one batch, run at once into one clone (real
    processes, several rounds): each part is in the batch's record and works
    (`hf done`); two takes of one part at once: one takes it, the other finds it
    taken here already."""
    remote, a, b = world
    for round_ in range(4):
        batch = f"r{round_}"
        made = a.hf("split", batch, "--part", "api=src/api/**", "--part", "ui=src/ui/**",
                    "--remote", "origin", "--task", "t", extra={"HF_CLOCK": T0})
        assert made.returncode == 0, made.stderr
        procs = [subprocess.Popen([sys.executable, "-m", "hf_fanout", "take", "origin",
                                   f"{batch}/{name}", "--json"], cwd=b.repo, env=b.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for name in ("api", "ui", "ui")]
        results = [p.communicate(timeout=180) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], results
        taken = [json.loads(out)["data"] for out, _err in results]
        assert sorted(t["already"] for t in taken[1:]) == [False, True], taken
        record = json.loads((b.repo / f".git/hf/batches/{batch}/batch.json").read_text())
        assert sorted(record["parts"]) == ["api", "ui"], record
        for name in ("api", "ui"):
            done = b.hf("done", cwd=b.worktree(batch, name))
            assert done.returncode == 0, done.stderr


def test_takes_of_different_batches_at_once_into_one_clone_each_make_their_part(world):
    """Two `hf take` of parts of two batches, run at once into one clone (real
    processes, several rounds): both take their part, both batches are recorded, the
    clone's main tree points at hf's main-tree hooks once (its setting is written under
    a lock of its own), and each part works (`hf done`)."""
    remote, a, b = world
    hooks_dir = str(b.repo / ".git" / "hf" / "main-hooks")
    for round_ in range(3):
        batches = [f"x{round_}", f"y{round_}"]
        for batch in batches:
            made = a.hf("split", batch, "--part", "api=src/api/**", "--remote", "origin",
                        "--task", "t", extra={"HF_CLOCK": T0})
            assert made.returncode == 0, made.stderr
        procs = [subprocess.Popen([sys.executable, "-m", "hf_fanout", "take", "origin",
                                   f"{batch}/api", "--json"], cwd=b.repo, env=b.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for batch in batches]
        results = [p.communicate(timeout=180) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], results
        assert [json.loads(out)["data"]["already"] for out, _err in results] == [False, False]
        for batch in batches:
            record = json.loads((b.repo / f".git/hf/batches/{batch}/batch.json").read_text())
            assert list(record["parts"]) == ["api"], record
        setting = b.git("config", "--worktree", "--get-all", "core.hooksPath").splitlines()
        assert setting == [hooks_dir], setting
        for batch in batches:
            done = b.hf("done", cwd=b.worktree(batch, "api"))
            assert done.returncode == 0, done.stderr


def test_a_take_whose_remote_drops_after_the_claim_says_so_and_takes_it_again(world, tmp_path):
    """The remote stops answering reads right after the take claimed the part: the take
    fails, its claim cannot be deleted, and it says so; once the remote answers, a
    take here knows the claim for its own (no `--steal`)."""
    remote, a, b = world
    counter = tmp_path / "reads"
    upload = tmp_path / "upload-pack.sh"
    upload.write_text(f"#!/bin/sh\nn=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); "
                      f"echo $n > {counter}\n"
                      "if [ $n -ge 3 ]; then echo 'fatal: connection lost' >&2; exit 1; fi\n"
                      'exec git-upload-pack "$@"\n')
    upload.chmod(0o755)
    b.git("config", "remote.origin.uploadpack", str(upload))
    failed = b.hf("take", "origin", "b1/api")
    assert failed.returncode == 1, failed.stderr
    assert "connection lost" in failed.stderr.splitlines()[0], failed.stderr
    assert ("its claim is left on origin (it could not be deleted): `hf take origin b1/api` "
            "here takes the part again once the remote answers") in failed.stderr
    assert "refs/hf/claim/b1/api" in remote_refs(remote)
    b.git("config", "--unset", "remote.origin.uploadpack")
    again = b.hf("take", "origin", "b1/api", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["data"]["stolen"] is None
    assert b.hf("done", cwd=b.worktree("b1", "api")).returncode == 0


def test_sigterm_while_a_remote_hangs_ends_hf_and_the_git_it_runs(world, tmp_path):
    """`kill` of an `hf take` waiting on a remote that does not answer: one line
    (`interrupted (SIGTERM)`, exit 143), and the git it started, with what git
    started, ends too instead of running on."""
    import psutil

    remote, a, b = world
    hang = tmp_path / "hanging-upload-pack.sh"
    hang.write_text("#!/bin/sh\nexec sleep 120\n")
    hang.chmod(0o755)
    b.git("config", "remote.origin.uploadpack", str(hang))
    proc = subprocess.Popen([sys.executable, "-m", "hf_fanout", "take", "origin", "b1/api"],
                            cwd=b.repo, env=b.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def hanging() -> list[psutil.Process]:
        return [p for p in psutil.process_iter(["cmdline"])
                if p.info["cmdline"] and p.info["cmdline"][:2] == ["sleep", "120"]
                or (p.info["cmdline"] or [])[-1:] == [str(hang)]]

    deadline = time.monotonic() + 30
    while not any(p.info["cmdline"][:1] == ["sleep"] for p in hanging()):
        assert time.monotonic() < deadline, "the remote's upload-pack never started"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert err.splitlines()[0] == "hf: error: interrupted (SIGTERM)", err
    deadline = time.monotonic() + 10
    while hanging():
        assert time.monotonic() < deadline, f"left running: {hanging()}"
        time.sleep(0.1)


@pytest.mark.parametrize(("content", "why"), [
    ("null", "it is not a record a take writes"),
    ('{"batch": "b1"}', "it has no 'part'")])
def test_a_damaged_take_journal_says_what_is_wrong_in_words(world, content, why):
    """A take journal left damaged names what is wrong with it, not python's words
    ('NoneType' object is not subscriptable)."""
    remote, a, b = world
    journal = b.repo / ".git" / "hf" / "journal" / "take-b1--api.json"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text(content)
    r = b.hf("doctor")
    assert r.returncode == 1
    assert (f"the journal of a take that was cut off, {journal}, is damaged ({why})"
            in r.stdout + r.stderr), r.stdout + r.stderr
    assert "NoneType" not in r.stdout + r.stderr


def test_stop_of_a_remote_part_says_nothing_was_stopped_there(world):
    """On the machine that split: `hf stop` of a part worked through the remote has no
    process to end; it says so instead of "stopped"."""
    remote, a, b = world
    assert b.hf("take", "origin", "b1/api").returncode == 0
    r = a.hf("stop", "b1/api")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("b1/api is worked through origin, on another machine: nothing "
                               "was stopped there"), r.stdout
    assert "stopped b1/api" not in r.stdout


def test_done_of_a_part_whose_batch_was_collected_where_it_was_split_says_so(world):
    """The machine that split dropped and collected the batch while another worked a
    part: that machine's `hf done` says the batch is gone (not "take it again", which
    cannot work), with how to keep the commits; the drop it names goes."""
    remote, a, b = world
    assert b.hf("take", "origin", "b1/api").returncode == 0
    wt = b.worktree("b1", "api")
    (wt / "src/api/orders.py").write_text("the work\n")
    b.git("commit", "-qam", "work", cwd=wt)
    assert a.hf("drop", "b1").returncode == 0
    assert a.hf("gc", "b1", "--force").returncode == 0
    r = b.hf("done", cwd=wt)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == (
        "hf: error: part b1/api: its batch is gone from origin (dropped or collected on the "
        "machine that split it): nothing was pushed"), r.stderr
    assert "git push origin hf/b1/api:refs/heads/NAME" in r.stderr
    assert b.hf("drop", "b1").returncode == 0
