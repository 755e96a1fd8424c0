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
