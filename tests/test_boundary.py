"""From inside a part (an agent, or anything below one) hf acts on that part
only: batch-wide commands and commands aimed at another part are refused with
one line, and nothing changes."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from conftest import git, hf_proc
from liveness_support import part_record


def _as_agent(part: str) -> dict[str, str]:
    return {**os.environ, "HF_BATCH": "b1", "HF_PART": part}


def test_commands_on_other_parts_or_the_batch_are_refused_inside_a_part(split3):
    repo, api = split3["repo"], split3["api"]
    head = git(repo, "rev-parse", "HEAD")
    for args in (["done", "b1/ui"], ["blocked", "b1/docs", "--reason", "x"],
                 ["stop", "b1/ui"], ["drop", "b1/ui"], ["join", "b1"], ["gc", "b1"],
                 ["split", "b2", "--part", "xx=src/**"]):
        r = hf_proc(*args, cwd=api, env=_as_agent("api"))
        assert r.returncode == 1, (args, r.stderr)
        assert "from inside part b1/api" in r.stderr or \
            "named from inside part b1/api" in r.stderr, (args, r.stderr)
        assert "(HF_PART is set in this process's environment)" in r.stderr, r.stderr
    assert part_record(repo, "b1", "ui")["state"] == "running"
    assert part_record(repo, "b1", "docs")["state"] == "running"
    assert git(repo, "rev-parse", "HEAD") == head
    assert not (repo / ".git" / "hf" / "batches" / "b2").exists()
    # its own part it may act on
    r = hf_proc("done", "b1/api", cwd=api, env=_as_agent("api"))
    assert r.returncode == 0, r.stderr
    assert part_record(repo, "b1", "api")["state"] == "done"


def test_an_agent_that_clears_its_own_marker_is_still_below_one(split3):
    repo = split3["repo"]
    script = ("import os, subprocess, sys; env = {k: v for k, v in os.environ.items() "
              "if not k.startswith('HF_')}; sys.exit(subprocess.run([sys.executable, '-m', "
              "'hf_fanout', 'join', 'b1'], env=env).returncode)")
    r = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True,
                       text=True, env=_as_agent("api"), check=False)
    assert r.returncode == 1 and "hf join b1 from inside part b1/api" in r.stderr
    assert "only the person decides this" in r.stderr
    # (the refusal names the ancestor whose environment says so)
    assert "HF_PART is set in the environment of process " in r.stderr, r.stderr


def test_the_person_in_the_main_tree_is_not_refused(split3):
    repo = split3["repo"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    r = hf_proc("drop", "b1/ui", cwd=repo, env=clean)
    assert r.returncode == 0, r.stderr
    assert part_record(repo, "b1", "ui")["state"] == "dropped"


def test_a_process_working_in_a_part_without_a_marker_is_inside_it(split3):
    """An agent started by hand in a part's worktree carries no marker: its folder
    says whose it is. It may not drop another part, join, accept a fingerprint,
    or reach the main tree with --repo; its own part it may still finish."""
    repo, api = split3["repo"], split3["api"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    head = git(repo, "rev-parse", "HEAD")
    for args in (["drop", "b1/ui"], ["done", "b1/ui"], ["join", "b1"],
                 ["doctor", "--accept"], ["join", "b1", "--repo", str(repo)]):
        r = hf_proc(*args, cwd=api / "src", env=clean)
        assert r.returncode == 1, (args, r.stderr)
        assert "inside part b1/api" in r.stderr, (args, r.stderr)
        assert f"the current directory is in its worktree ({api / 'src'})" in r.stderr
    assert part_record(repo, "b1", "ui")["state"] == "running"
    assert git(repo, "rev-parse", "HEAD") == head
    r = hf_proc("done", cwd=api / "src", env=clean)
    assert r.returncode == 0, r.stderr
    assert part_record(repo, "b1", "api")["state"] == "done"


def test_a_shell_that_leaves_the_part_does_not_take_what_it_runs_out_of_it(split3):
    """An agent working in a part runs `cd / && hf ... --repo MAIN`: hf's own folder
    is no part's, but its shell's, in the same session, is. Still inside: the
    fingerprint is not accepted, nothing is dropped or joined. The same command
    run by the person from the main tree goes."""
    repo, api = split3["repo"], split3["api"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    hf_cmd = f"{sys.executable} -m hf_fanout"
    for args in (f"doctor --accept --repo {repo}", f"drop b1/ui --repo {repo}",
                 f"join b1 --repo {repo}"):
        # (the agent, in the part, runs a shell that leaves it; `; exit` keeps bash
        # from handing its own process over to the last command)
        inner = shlex.quote(f"cd / && {hf_cmd} {args}")
        r = subprocess.run(["bash", "-c", f"sh -c {inner}; exit $?"],
                           cwd=api, env=clean, capture_output=True, text=True, check=False,
                           timeout=60)
        assert r.returncode == 1, (args, r.stderr)
        assert "inside part b1/api" in r.stderr, (args, r.stderr)
        # (the refusal names the ancestor that works in the part, and where)
        assert "(bash) works in its worktree (" in r.stderr, r.stderr
        assert f"{api})" in r.stderr, r.stderr
    assert part_record(repo, "b1", "ui")["state"] == "running"
    r = subprocess.run(["bash", "-c", f"cd / && {hf_cmd} drop b1/ui --repo {repo}"],
                       cwd=repo, env=clean, capture_output=True, text=True, check=False,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert part_record(repo, "b1", "ui")["state"] == "dropped"
