"""Limits: with max_live_agents = 2 a third `hf run` is refused with the count;
`--force` starts it anyway and the override is in `hf log`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import hf_proc, write
from liveness_support import Procs, agent_script, part_record, wait_for


@pytest.fixture
def procs():
    p = Procs()
    yield p
    p.end_all()


def test_a_third_agent_is_refused_with_the_count_and_force_is_logged(split3, tmp_path, procs):
    repo = split3["repo"]
    write(repo, {".hf.toml": "max_live_agents = 2\n"})
    sleeper = agent_script(tmp_path, "sleeps", "time.sleep(60)")
    for name in ("api", "ui"):
        procs.hf_run(split3[name], sleeper)
        wait_for(lambda n=name: part_record(repo, "b1", n).get("worker"), what=f"{name} live")
    quick = agent_script(tmp_path, "quick", "pass")
    refused = hf_proc("run", "--", sys.executable, str(quick), cwd=split3["docs"])
    assert refused.returncode == 1
    assert "2 agents are live and max_live_agents is 2" in refused.stderr
    assert part_record(repo, "b1", "docs").get("worker") is None
    forced = hf_proc("run", "--force", "--", sys.executable, str(quick), cwd=split3["docs"])
    assert forced.returncode == 0, forced.stderr
    log = subprocess.run([sys.executable, "-m", "hf_fanout", "log", "--json"], cwd=repo,
                         capture_output=True, text=True, check=True)
    actions = [e["action"] for e in json.loads(log.stdout)["data"]["events"]]
    assert "limit-refused" in actions and "limit-forced" in actions
    human = subprocess.run([sys.executable, "-m", "hf_fanout", "log"], cwd=repo,
                           capture_output=True, text=True, check=True).stdout
    assert "limit-forced" in human


def audit_of(repo, action: str) -> list[dict]:
    log = repo / ".git/hf/audit.log"
    return [e for e in map(json.loads, log.read_text().splitlines()) if e["action"] == action]


def user_config(text: str) -> None:
    from hf_fanout.config import user_config_dir

    user_config_dir().mkdir(parents=True, exist_ok=True)
    (user_config_dir() / "config.toml").write_text(text)


def test_the_per_user_limit_counts_agents_of_every_repository(split3, hf, tmp_path, procs):
    """Two repositories, one agent live in each; with max_live_agents_per_user = 2 (the
    user's config) a third in either is refused naming the limit and the count."""
    from conftest import make_repo

    repo = split3["repo"]
    other = make_repo(tmp_path / "other")
    assert hf("split", "o1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
              cwd=other).code == 0
    user_config("max_live_agents_per_user = 2\n")
    sleeper = agent_script(tmp_path, "sleeps", "time.sleep(60)")
    procs.hf_run(split3["api"], sleeper)
    procs.hf_run(other.parent / "other.hf/o1/api", sleeper, batch="o1")
    wait_for(lambda: part_record(repo, "b1", "api").get("worker"), what="b1/api live")
    wait_for(lambda: part_record(other, "o1", "api").get("worker"), what="o1/api live")
    quick = agent_script(tmp_path, "quick", "pass")
    refused = hf_proc("run", "--", sys.executable, str(quick), cwd=split3["ui"])
    assert refused.returncode == 1
    line = refused.stderr.splitlines()[0]
    assert line == ("hf: error: hf run b1/ui refused: 2 agents are live across your "
                    "repositories and max_live_agents_per_user is 2")
    assert part_record(repo, "b1", "ui").get("worker") is None
    r = hf("status", "--json", cwd=repo)
    found = {u["limit"]: (u["count"], u["max"]) for u in r.json["data"]["limits"]}
    assert found["max_live_agents_per_user"] == (2, 2)
    assert found["max_live_agents"][0] == 1
    forced = hf_proc("run", "--force", "--", sys.executable, str(quick), cwd=split3["ui"])
    assert forced.returncode == 0, forced.stderr
    assert [e["limit"] for e in audit_of(repo, "limit-forced")] == ["max_live_agents_per_user"]


RACER = """
import subprocess, sys, time
start = float(sys.argv[1])
while time.time() < start:
    pass
sys.exit(subprocess.run([sys.executable, "-m", "hf_fanout", "run", "--", sys.executable,
                         sys.argv[2]]).returncode)
"""


def test_two_runs_started_in_the_same_instant_do_not_both_take_the_last_place(
        split3, tmp_path, procs):
    """max_live_agents = 1 and two `hf run`s released at the same moment: the agents
    lock makes the second one count the first, so exactly one agent starts."""
    import time

    repo = split3["repo"]
    write(repo, {".hf.toml": "max_live_agents = 1\n"})
    marker = tmp_path / "started"
    sleeper = agent_script(tmp_path, "sleeps", f"""
        open({str(marker)!r} + str(os.getpid()), "w").close()
        time.sleep(60)
        """)
    racer = tmp_path / "racer.py"
    racer.write_text(RACER)
    start = time.time() + 1.5
    runs = [procs.start([sys.executable, str(racer), str(start), str(sleeper)], split3[name])
            for name in ("api", "ui")]
    wait_for(lambda: any(r.poll() is not None for r in runs), what="one run refused")
    refused = [r for r in runs if r.poll() is not None]
    assert len(refused) == 1 and refused[0].returncode == 1
    live = wait_for(lambda: list(tmp_path.glob("started*")), what="one agent started")
    assert len(live) == 1
    records = [part_record(repo, "b1", n).get("worker") for n in ("api", "ui")]
    assert sum(1 for w in records if w) == 1
    assert len(audit_of(repo, "limit-refused")) == 1


def test_split_over_max_parts_per_batch_is_refused_and_makes_nothing(repo, hf):
    from conftest import git

    user_config("max_parts_per_batch = 2\n")
    parts = ("--part", "api=src/api/**", "--part", "ui=src/ui/**", "--part", "docs=docs/**")
    dry = hf("split", "b1", *parts, "--dry-run", cwd=repo)
    assert dry.code == 1
    assert dry.err.splitlines()[0] == ("hf: error: hf split b1 refused: 3 parts in the plan "
                                       "and max_parts_per_batch is 2")
    assert not (repo / ".git/hf/audit.log").exists()  # a dry run writes nothing
    proc = hf_proc("split", "b1", *parts, "--json", cwd=repo)  # as a real process
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "limit_reached" and "max_parts_per_batch" in error["hint"]
    assert git(repo, "branch", "--list", "hf/*") == ""
    assert not (repo.parent / "repo.hf/b1").exists()
    assert [e["count"] for e in audit_of(repo, "limit-refused")] == [3]
    # the repository's .hf.toml wins over the user's config
    write(repo, {".hf.toml": "max_parts_per_batch = 3\n"})
    assert hf("split", "b1", *parts, "--dry-run", cwd=repo).code == 0
    write(repo, {".hf.toml": "max_parts_per_batch = 'many'\n"})
    bad = hf("split", "b1", *parts, cwd=repo)
    assert bad.code == 2 and "max_parts_per_batch = 'many'" in bad.err
    write(repo, {".hf.toml": ""})
    r = hf("split", "b1", *parts, "--force", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/hf/b1/").split() \
        == ["hf/b1/api", "hf/b1/docs", "hf/b1/ui"]
    assert [e["what"] for e in audit_of(repo, "limit-forced")] == ["hf split b1"]


def test_the_queue_watcher_spawns_at_most_max_spawns_per_hour(repo, hf):
    """Three entries, max_spawns_per_hour = 2: a real `hf next --watch` takes two,
    says it holds (once, and audits it once), and leaves the third; `hf next` then
    refuses with the count, and `--force` takes it."""
    write(repo, {".hf.toml": "max_spawns_per_hour = 2\n"})
    for i in range(3):
        assert hf("handoff", "--task", f"t{i}", "--next", f"do {i}", cwd=repo).code == 0
    watcher = subprocess.run(
        [sys.executable, "-m", "hf_fanout", "next", "--watch", "--timeout", "1.5",
         "--launcher", "print"], cwd=repo, capture_output=True, text=True, timeout=120,
        check=False)
    assert watcher.returncode == 0, watcher.stderr
    holding = [line for line in watcher.stdout.splitlines() if "holding" in line]
    assert holding == ["hf next --watch refused: 2 tabs were opened from the queue in the "
                       "last hour and max_spawns_per_hour is 2; holding until the oldest "
                       "is an hour old"]
    assert len(audit_of(repo, "spawn")) == 2
    assert len(audit_of(repo, "limit-refused")) == 1  # not one per poll
    pending = [e for e in hf("queue", "--json", cwd=repo).json["data"]["entries"]
               if e["state"] == "pending"]
    assert len(pending) == 1
    refused = hf_proc("next", "--launcher", "print", cwd=repo)
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[0] == (
        "hf: error: hf next refused: 2 tabs were opened from the queue in the last hour "
        "and max_spawns_per_hour is 2")
    status = hf("status", cwd=repo).out
    assert "max_spawns_per_hour 2/2" in status
    dry = hf("next", "--dry-run", "--launcher", "print", cwd=repo)
    assert dry.code == 0 and dry.out.startswith("would take nothing: 2 tabs were opened")
    forced = hf("next", "--force", "--launcher", "print", "--json", cwd=repo)
    assert forced.code == 0, forced.err
    assert len(forced.json["data"]["taken"]) == 1
    assert [e["limit"] for e in audit_of(repo, "limit-forced")] == ["max_spawns_per_hour"]


@pytest.mark.parametrize("value", ["inf", "1e400", "2.5"])
def test_a_limit_that_is_not_a_whole_number_is_one_clear_error(repo, hf, value):
    """`inf` once crashed `hf split` and `hf status`; `2.5` was silently taken as 2."""
    write(repo, {".hf.toml": f"max_parts_per_batch = {value}\n"})
    for args in (("split", "b1", "--part", "api=src/api/**"), ("status",)):
        r = hf(*args, cwd=repo)
        assert r.code == 2, r.err
        lines = r.err.splitlines()
        assert lines[0] == (f"hf: error: max_parts_per_batch = {float(value):g} in the "
                            "settings is not a whole number")
        assert lines[1].startswith("hint: e.g. max_parts_per_batch = 32 in .hf.toml")
        assert len(lines) == 2
    proc = hf_proc("status", "--json", cwd=repo)
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["code"] == "bad_input"
    from conftest import git

    assert git(repo, "branch", "--list", "hf/*") == ""
