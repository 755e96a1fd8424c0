"""The frequent commands without typer (cli/light.py): the same answers either
way in, and only what they use loaded."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hf_fanout import timefmt
from hf_fanout.cli import app, light


def imported(*args: str, cwd: Path) -> set[str]:
    """The modules `hf ARGS` loads, run as a real process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "hf_fanout", *args],
                          cwd=cwd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


HEAVY = {"typer", "click", "rich", "pygit2", "psutil", "hf_fanout.cli.app",
         "hf_fanout.orchestrator.split", "hf_fanout.guard.hooks", "hf_fanout.guard.fingerprint",
         "hf_fanout.orchestrator.sweep", "hf_fanout.orchestrator.join",
         "hf_fanout.core.ownership", "hf_fanout.tabs.environment"}


def test_status_with_no_batch_loads_neither_typer_nor_what_a_batch_needs(repo):
    found = imported("status", cwd=repo)
    assert "hf_fanout.orchestrator.status" in found
    assert not found & (HEAVY | {"hf_fanout.liveness.judge", "concurrent.futures"})
    assert not found & {"socket", "secrets"}  # (the host name and ids need neither)


def test_status_of_a_live_batch_in_a_pipe_loads_no_split_guard_install_or_typer(split3):
    found = imported("status", cwd=split3["repo"])
    assert "hf_fanout.liveness.judge" in found  # it did look at the parts
    assert not found & (HEAVY - {"hf_fanout.core.ownership"})


def test_version_loads_only_what_prints_it(repo):
    found = imported("--version", cwd=repo)
    assert not any(m.startswith(("hf_fanout.core", "hf_fanout.worktrees", "typer"))
                   for m in found)


@pytest.mark.parametrize("args", [["done", "--note", "ok"], ["heartbeat"]])
def test_done_and_heartbeat_in_a_part_load_no_typer(split3, args):
    found = imported(*args, cwd=split3["api"])
    assert not found & HEAVY


# what opening a workspace loads: the records, the store, the repository's refs and
# process runner; not the object database, the writers, the status or scan code
OPEN = {"hf_fanout", "hf_fanout.atomic", "hf_fanout.cli", "hf_fanout.cli.light",
        "hf_fanout.cli.output", "hf_fanout.config", "hf_fanout.core", "hf_fanout.core.audit",
        "hf_fanout.core.inbox", "hf_fanout.core.records", "hf_fanout.core.remote_refs",
        "hf_fanout.core.store", "hf_fanout.core.workspace", "hf_fanout.errors", "hf_fanout.gitlink",
        "hf_fanout.locks", "hf_fanout.orchestrator", "hf_fanout.orchestrator.workspace_open",
        "hf_fanout.paths", "hf_fanout.timefmt", "hf_fanout.trust", "hf_fanout.worktrees",
        "hf_fanout.worktrees.process", "hf_fanout.worktrees.refs",
        "hf_fanout.worktrees.repository", "hf_fanout.worktrees.zparse"}
ADAPTER = {f"hf_fanout.worktrees.{m}" for m in
           ("objects", "trees", "commits", "scan", "checkout", "status")}


def own(found: set[str]) -> set[str]:
    return {m for m in found if m.startswith("hf_fanout")}


def test_heartbeat_loads_the_heartbeat_and_no_lock_library(split3):
    found = imported("heartbeat", cwd=split3["api"])
    assert own(found) == OPEN | {"hf_fanout.orchestrator.beat", "hf_fanout.liveness",
                                 "hf_fanout.liveness.heartbeat"}
    assert "filelock" not in found


def test_done_loads_the_lock_library_only_when_it_changes_the_record(split3, hf):
    first = imported("done", cwd=split3["api"])
    assert own(first) == OPEN | {"hf_fanout.orchestrator.lifecycle", "hf_fanout.core.states",
                                 "hf_fanout.orchestrator.notify", "hf_fanout.tabs",
                                 "hf_fanout.tabs.window_marks"}
    assert "filelock" in first  # it took the state lock
    again = imported("done", cwd=split3["api"])
    assert own(again) == OPEN | {"hf_fanout.orchestrator.lifecycle", "hf_fanout.core.states"}
    assert "filelock" not in again
    assert hf("done", cwd=split3["api"]).out.strip() == "b1/api is done (already)"
    noted = hf("done", "--note", "now with a note", "--json", cwd=split3["api"])
    assert noted.json["data"]["changed"] is True  # a new note is a change, under the lock
    assert noted.json["data"]["part"]["note"] == "now with a note"


def test_status_with_no_batch_loads_none_of_the_object_database(repo):
    assert not imported("status", cwd=repo) & ADAPTER


def test_each_plain_command_takes_exactly_the_typer_commands_options():
    import typer.main

    built = typer.main.get_command(app.build())
    for name, quick in light.QUICK.items():
        command = built.commands[name]  # type: ignore[attr-defined]
        options = {o: p.name for p in command.params for o in p.opts
                   if p.param_type_name == "option" and o not in ("--help", "-h")}
        arguments = tuple(p.name for p in command.params if p.param_type_name == "argument")
        assert {**quick.flags, **quick.values} == options, name
        assert quick.positional == arguments, name
        for option, parameter in quick.flags.items():
            assert next(p for p in command.params if p.name == parameter).is_flag, option


@pytest.mark.parametrize("args", [
    ["status"], ["status", "--json"], ["status", "b1", "--json"], ["status", "-C", "."],
])
def test_status_answers_the_same_plain_or_through_typer(split3, hf, args):
    """`--repo=.` is not plain: typer parses it; the answer must be the same."""
    plain = hf(*args, cwd=split3["repo"])
    assert light.parse(args) is not None
    through_typer = hf(*args, "--repo=.", cwd=split3["repo"])
    assert light.parse([*args, "--repo=."]) is None
    def shown(out: str) -> str:  # the two runs may be a second apart: "0s ago" / "1s ago"
        return re.sub(r"\b\d+s\b", "Ns", out.replace("\t", " "))

    assert (plain.code, shown(plain.out)) == (through_typer.code, shown(through_typer.out))


def test_what_is_not_plain_goes_to_typer(split3, hf):
    assert light.parse(["status", "--help"]) is None
    assert light.parse(["done", "--note"]) is None
    assert light.parse(["done", "--note", "--json"]) is None
    assert light.parse(["status", "b1", "b2"]) is None
    assert light.parse(["heartbeat", "b1/api"]) is None
    r = hf("status", "--bogus", cwd=split3["repo"])
    assert r.code == 2 and "No such option" in r.err
    r = hf("status", "--help", cwd=split3["repo"])
    assert r.code == 0 and "Example: hf status" in r.out


def test_done_plain_marks_the_part_and_says_so(split3, hf):
    r = hf("done", "b1/api", "--note", "tests pass", "--json", cwd=split3["repo"])
    assert r.code == 0, r.err
    assert r.json["command"] == "done"
    assert r.json["data"]["part"]["state"] == "done"
    assert r.json["data"]["part"]["note"] == "tests pass"
    r = hf("done", cwd=split3["api"])
    assert r.code == 0 and r.out.strip() == "b1/api is done (already)"
    r = hf("done", cwd=split3["repo"])  # the main tree is no part: one line, a hint
    assert r.code == 1 and "not a part's worktree" in r.err


def test_heartbeat_plain_touches_the_parts_heartbeat(split3, hf):
    r = hf("heartbeat", "--part", "b1/ui", "--json", cwd=split3["repo"])
    assert r.code == 0, r.err
    assert r.json["data"]["part"] == "ui"
    status = hf("status", "b1", "--json", cwd=split3["repo"]).json["data"]["batches"][0]
    ui = next(p for p in status["parts"] if p["name"] == "ui")
    assert ui["last_activity"] == timefmt.iso(r.json["data"]["heartbeat"]["at"])


def test_version_plain(repo, hf):
    from hf_fanout import __version__

    r = hf("--version", cwd=repo)
    assert (r.code, r.out) == (0, f"hf {__version__}\n")
