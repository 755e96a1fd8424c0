"""Spawns from the queue counted under a lock: takers released at the same instant
for the last place under `max_spawns_per_hour` open exactly one tab between them;
a taker that died holding a reservation does not use up a place."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from conftest import write
from test_tabs_queue import crashed_taker, wait_until_stopped

from hf_fanout.core.workspace import Workspace
from hf_fanout.tabs import queue as q


def spawn_lines(repo) -> list[dict]:
    log = repo / ".git/hf/audit.log"
    if not log.exists():
        return []
    return [e for e in map(json.loads, log.read_text().splitlines()) if e["action"] == "spawn"]


def test_takers_racing_for_the_last_place_take_one_between_them(repo):
    ws = Workspace.open(repo)
    rounds, racers = 8, 4
    for i in range(rounds + racers):  # always more pending entries than racers
        q.write_entry(ws, task=f"t{i}", text=f"step {i}")
    for round_ in range(rounds):
        most = round_ + 1  # one place left each round
        write(repo, {".hf.toml": f"max_spawns_per_hour = {most}\n"})
        # each racer stops itself right before it counts; all are let go at once
        procs = [subprocess.Popen(
            [sys.executable, "-m", "hf_fanout", "next", "--launcher", "print", "--json"],
            cwd=repo, env={**os.environ, "HF_TEST_STOP_AT": "spawn"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(racers)]
        try:
            wait_until_stopped(procs)
            for p in procs:
                os.kill(p.pid, signal.SIGCONT)
            results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        took = [json.loads(out)["data"]["taken"] for out, _, code in results if code == 0]
        refused = [json.loads(out)["error"]["message"] for out, _, code in results if code]
        assert len(took) == 1 and len(took[0]) == 1, f"round {round_}: {results}"
        assert refused == [f"hf next refused: {most} tabs were opened from the queue in "
                           f"the last hour and max_spawns_per_hour is {most}"] * (racers - 1)
        assert len(spawn_lines(repo)) == most
    states = [e.state for e in q.entries(ws)]
    assert states.count("submitted") == rounds and states.count("pending") == racers
    assert not (q.queue_dir(ws) / "spawning").exists()  # no reservation left behind


def test_a_dead_takers_reservation_uses_up_no_place(repo, hf):
    write(repo, {".hf.toml": "max_spawns_per_hour = 1\n"})
    first = hf("handoff", "--task", "t", "--next", "n", "--json", cwd=repo).json["data"]["id"]
    dead = crashed_taker(repo)  # killed inside its reservation, after its claim
    spawning = repo / ".git/hf/queue/spawning"
    assert [p.name for p in spawning.glob("*.json")] == [f"{dead}.json"]
    assert spawn_lines(repo) == []
    r = hf("next", "--launcher", "print", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert [t["id"] for t in r.json["data"]["taken"]] == [first]
    assert not spawning.exists()  # the void one removed, and the taker's own
    assert len(spawn_lines(repo)) == 1
