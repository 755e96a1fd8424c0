"""Parts on other machines, end to end: a real bare repository as the remote, machine
A (splits, joins, collects) and machine B (takes parts, works them, `hf done`), each
with its own HOME, running hf as real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import snapshot
from remote_support import Machine, fsck_clean, remote_refs, two_machines

PLAN = """\
batch = "b1"
task = "add search"

[[part]]
name = "docs"
owns = ["docs/**", "README.md"]

[[part]]
name = "api"
owns = ["src/api/**"]
remote = "origin"
task = "the search endpoint"

[[part]]
name = "ui"
owns = ["src/ui/**"]
remote = "origin"
"""

# The stand-in agent of a taken part: it edits an owned and an unowned file, tries to
# commit both (the guard refuses), commits the owned one, tries to push (the guard
# refuses), then `hf done`.
AGENT = """\
echo "$OWNED_LINE" >> "$OWNED"
echo "not mine" >> "$UNOWNED"
if git add -A && git commit -qm everything; then echo committed-all >> "$LOG"; fi
git reset -q
git add "$OWNED" && git commit -qm "$PART: work" && echo committed-owned >> "$LOG"
git push origin HEAD:refs/heads/elsewhere; echo "push $?" >> "$LOG"
"$HF_PYTHON" -m hf_fanout done --note "$PART done"; echo "done $?" >> "$LOG"
"""


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Machine, Machine]:
    return two_machines(tmp_path)


def split_b1(a: Machine, tmp: Path) -> dict[str, object]:
    plan = tmp / "plan.toml"
    plan.write_text(PLAN)
    return a.hf_json("split", "--plan", str(plan))  # type: ignore[no-any-return]


def work_taken(b: Machine, part: str, owned: str, unowned: str, tmp: Path) -> list[str]:
    """B's agent works `part` under `hf run` (guard on PATH); what it logged."""
    worktree = b.worktree("b1", part)
    script = tmp / f"agent-{part}.sh"
    script.write_text(AGENT)
    log = tmp / f"agent-{part}.log"
    env = {**b.guarded_env(), "OWNED": owned, "UNOWNED": unowned, "LOG": str(log),
           "PART": part, "OWNED_LINE": f"# {part} searched"}
    proc = subprocess.run([sys.executable, "-m", "hf_fanout", "run", "--", "sh", str(script)],
                          cwd=worktree, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return log.read_text().split("\n")


def test_one_local_and_two_remote_parts_join_as_one_commit(world, tmp_path):
    remote, a, b = world
    made = split_b1(a, tmp_path)
    parts = {p["name"]: p for p in made["parts"]}  # type: ignore[attr-defined]
    # the remote parts have no worktree on A; their branch and task are on the remote
    assert not Path(parts["api"]["worktree"]).exists()
    assert Path(parts["docs"]["worktree"]).is_dir()
    base = a.git("rev-parse", "HEAD").strip()
    refs = remote_refs(remote)
    assert refs["refs/heads/hf/b1/api"] == refs["refs/heads/hf/b1/ui"] == base
    assert "refs/heads/hf/b1/docs" not in refs and "refs/hf/task/b1/docs" not in refs
    task = a.git("show", f"{refs['refs/hf/task/b1/api']}:TASK.md", cwd=a.repo)
    assert "Push your work to branch `hf/b1/api` and touch nothing else" in task
    assert "the search endpoint" in task

    # machine B takes both remote parts, its agents work them
    for part in ("api", "ui"):
        taken = b.hf_json("take", "origin", f"b1/{part}")
        assert taken["tip"] == base
        assert (b.worktree("b1", part) / ".hf" / "TASK.md").is_file()
    api_log = work_taken(b, "api", "src/api/orders.py", "src/ui/app.js", tmp_path)
    ui_log = work_taken(b, "ui", "src/ui/page.html", "docs/guide.md", tmp_path)
    for log in (api_log, ui_log):
        assert "committed-all" not in log and "committed-owned" in log
        assert "push 99" in log  # the agent's own push: refused by the guard
        assert "done 0" in log
    refs = remote_refs(remote)
    assert "refs/heads/elsewhere" not in refs
    api_tip = b.git("rev-parse", "hf/b1/api").strip()
    ui_tip = b.git("rev-parse", "hf/b1/ui").strip()
    assert refs["refs/heads/hf/b1/api"] == refs["refs/hf/done/b1/api"] == api_tip
    assert refs["refs/heads/hf/b1/ui"] == refs["refs/hf/done/b1/ui"] == ui_tip

    # machine A: its local part, then the join
    docs = Path(parts["docs"]["worktree"])
    (docs / "docs" / "guide.md").write_text("# guide\nsearch is here\n")
    assert a.hf("done", "b1/docs").returncode == 0
    status = a.hf_json("status", "b1")["batches"][0]
    shown = {p["name"]: p for p in status["parts"]}
    assert shown["api"]["state"] == shown["ui"]["state"] == "done"
    assert shown["api"]["remote"]["done_tip"] == api_tip
    joined = a.hf_json("join", "b1")
    head = a.git("rev-parse", "HEAD").strip()
    assert joined["commit"] == head
    changed = a.git("diff", "--name-only", base, head).split()
    assert sorted(changed) == ["docs/guide.md", "src/api/orders.py", "src/ui/page.html"]
    assert a.git("show", f"{head}:src/api/orders.py").endswith("# api searched\n")
    assert "not mine" not in a.git("show", f"{head}:src/ui/app.js")
    message = a.git("log", "-1", "--format=%B")
    assert f"Hf-Part: api {api_tip} remote=origin" in message
    assert f"Hf-Part: ui {ui_tip} remote=origin" in message
    assert a.git("rev-list", "--count", f"{base}..{head}").strip() == "1"
    assert a.git("status", "--porcelain").strip() == ""
    # B kept its unowned edits where they were: never pushed, never joined
    assert "not mine" in (b.worktree("b1", "api") / "src/ui/app.js").read_text()
    fsck_clean(a)
    fsck_clean(b)


def _joined_b1(a: Machine, b: Machine, tmp: Path) -> None:
    """b1 split on A, its two remote parts taken and finished on B, docs done on A,
    and the batch joined on A."""
    split_b1(a, tmp)
    _take_and_finish(b, "api", "src/api/users.py", "def users(): return [1]\n")
    _take_and_finish(b, "ui", "src/ui/app.js", "console.log(2)\n")
    assert a.hf("done", "b1/docs").returncode == 0
    assert a.hf("join", "b1").returncode == 0


def _take_and_finish(b: Machine, part: str, path: str, text: str) -> str:
    assert b.hf("take", "origin", f"b1/{part}").returncode == 0
    worktree = b.worktree("b1", part)
    (worktree / path).write_text(text)
    b.git("commit", "-qam", f"{part} work", cwd=worktree)
    done = b.hf("done", cwd=worktree)
    assert done.returncode == 0, done.stderr
    return b.git("rev-parse", "HEAD", cwd=worktree).strip()


def _a_unchanged(a: Machine, before: dict[str, object], base: str) -> None:
    assert snapshot(a.repo) == before
    assert a.git("rev-parse", "hf/b1/api").strip() == base  # the fetched tip not taken
    records = a.hf_json("status", "b1")["batches"][0]["parts"]
    assert {p["name"]: p["state"] for p in records}["docs"] == "done"


def test_a_branch_force_pushed_after_done_is_refused(world, tmp_path):
    remote, a, b = world
    split_b1(a, tmp_path)
    base = a.git("rev-parse", "HEAD").strip()
    assert a.hf("done", "b1/docs").returncode == 0
    done_tip = _take_and_finish(b, "api", "src/api/users.py", "def users(): return [1]\n")
    # someone replaces the branch after done (real git, bypassing everything)
    worktree = b.worktree("b1", "api")
    b.git("commit", "-q", "--amend", "-m", "rewritten", cwd=worktree)
    rewritten = b.git("rev-parse", "HEAD", cwd=worktree).strip()
    b.git("push", "-q", "-f", "origin", f"{rewritten}:refs/heads/hf/b1/api")
    before = snapshot(a.repo)
    proc = a.hf("join", "b1", "--partial")
    assert proc.returncode == 1
    assert "moved after it was done" in proc.stderr
    assert done_tip[:12] in proc.stderr and rewritten[:12] in proc.stderr
    _a_unchanged(a, before, base)
    # the hint's push, on the machine that works the part, puts the done tip back
    assert proc.stderr.count("`") == 2  # one way named, the one that works (before: also
    # "`hf done` again there", which the remote refuses: its branch moved)
    push = proc.stderr.split("`")[1]
    assert push.startswith("git push --force-with-lease=refs/heads/hf/b1/api:")
    back = subprocess.run(push, shell=True, cwd=b.repo, env=b.env, capture_output=True,
                          text=True, check=False)
    assert back.returncode == 0, back.stderr
    assert remote_refs(remote)["refs/heads/hf/b1/api"] == done_tip
    joined = a.hf("join", "b1", "--partial")
    assert joined.returncode == 0, joined.stderr
    assert "def users(): return [1]" in a.git("show", "HEAD:src/api/users.py")


def test_a_branch_not_descending_from_the_base_is_refused(world, tmp_path):
    remote, a, b = world
    split_b1(a, tmp_path)
    base = a.git("rev-parse", "HEAD").strip()
    assert a.hf("done", "b1/docs").returncode == 0
    # a hosted agent without hf pushes a history of its own to the part branch
    hosted = tmp_path / "hosted"
    subprocess.run(["git", "clone", "-q", str(remote), str(hosted)], check=True, env=b.env)
    b.git("switch", "-q", "--orphan", "fresh", cwd=hosted)
    (hosted / "src" / "api").mkdir(parents=True)
    (hosted / "src" / "api" / "orders.py").write_text("def orders(): return [2]\n")
    b.git("add", "-A", cwd=hosted)
    b.git("commit", "-qm", "from scratch", cwd=hosted)
    b.git("push", "-q", "-f", "origin", "HEAD:refs/heads/hf/b1/api", cwd=hosted)
    assert a.hf("done", "b1/api").returncode == 0  # the person says the agent finished
    before = snapshot(a.repo)
    proc = a.hf("join", "b1", "--partial")
    assert proc.returncode == 1
    assert "does not descend from the batch's base" in proc.stderr
    _a_unchanged(a, before, base)


def test_a_hosted_agents_unowned_change_is_refused(world, tmp_path):
    """Whatever a hosted agent pushed, the join's ownership check holds."""
    remote, a, b = world
    split_b1(a, tmp_path)
    base = a.git("rev-parse", "HEAD").strip()
    prompt = a.hf("task", "b1/api", "--prompt")
    assert "push your work to branch `hf/b1/api` and touch nothing else" in prompt.stdout.lower()
    assert "`src/api/**`" in prompt.stdout
    hosted = tmp_path / "hosted"
    subprocess.run(["git", "clone", "-q", "-b", "hf/b1/api", str(remote), str(hosted)],
                   check=True, env=b.env)
    (hosted / "src" / "api" / "orders.py").write_text("def orders(): return [3]\n")
    (hosted / "README.md").write_text("# taken over\n")
    b.git("commit", "-qam", "hosted work", cwd=hosted)
    b.git("push", "-q", "origin", "HEAD:hf/b1/api", cwd=hosted)
    assert a.hf("done", "b1/api").returncode == 0
    assert a.hf("done", "b1/docs").returncode == 0
    before = snapshot(a.repo)
    proc = a.hf("join", "b1", "--partial")
    assert proc.returncode == 1
    assert "outside the part's ownership: api: README.md" in proc.stderr
    assert snapshot(a.repo) == before
    assert a.git("rev-parse", "HEAD").strip() == base
    # what was fetched can be looked at: `hf diff` reads the part's branch here
    parts = {p["part"]: p for p in a.hf_json("diff", "b1", "--name-only")["parts"]}
    assert parts["api"]["owned"] == ["src/api/orders.py"]
    assert parts["api"]["outside"] == [{"path": "README.md", "owner": "docs"}]
    assert parts["ui"]["owned"] == [] and parts["ui"]["outside"] == []


def test_an_unreachable_remote_refuses_or_partial_joins_the_rest(world, tmp_path):
    remote, a, b = world
    split_b1(a, tmp_path)
    base = a.git("rev-parse", "HEAD").strip()
    _take_and_finish(b, "api", "src/api/users.py", "def users(): return [1]\n")
    docs = a.worktree("b1", "docs")
    (docs / "README.md").write_text("# demo, searched\n")
    assert a.hf("done", "b1/docs").returncode == 0
    shutil.move(remote, tmp_path / "away.git")
    before = snapshot(a.repo)
    proc = a.hf("join", "b1")
    assert proc.returncode == 1
    assert "reading origin failed: fatal:" in proc.stderr
    assert snapshot(a.repo) == before
    # where the part is worked, gc cannot tell whether the batch is over: try again
    gc = b.hf("gc", "b1")
    assert gc.returncode == 1 and "cannot tell whether it is over" in gc.stderr
    assert "`hf gc b1` again once origin answers" in gc.stderr
    joined = a.hf_json("join", "b1", "--partial")
    assert [p["part"] for p in joined["parts"]] == ["docs"]
    assert "api, ui" in joined["remote_left_out"][0]
    assert a.git("diff", "--name-only", base, "HEAD").split() == ["README.md"]
    status = a.hf_json("status", "b1")["batches"][0]
    states = {p["name"]: p["state"] for p in status["parts"]}
    assert states["docs"] == "joined" and states["api"] == states["ui"] == "unreachable"
    # back again: the rest joins, on top of the moved main
    shutil.move(tmp_path / "away.git", remote)
    joined = a.hf_json("join", "b1", "--partial")
    assert [p["part"] for p in joined["parts"]] == ["api"]
    assert "def users(): return [1]" in a.git("show", "HEAD:src/api/users.py")


def test_a_remote_that_does_not_answer_is_given_up_on_within_remote_timeout(world, tmp_path):
    """A host that never answers (its ssh hangs): `hf status` says so for the
    remote's parts after `remote_timeout` seconds, and `hf take` fails in one
    line, instead of hanging with it."""
    import time

    remote, a, b = world
    split_b1(a, tmp_path)
    hang = tmp_path / "hanging-ssh"
    hang.write_text("#!/bin/sh\nexec sleep 60\n")  # (also what it starts keeps the pipes)
    hang.chmod(0o755)
    for machine in (a, b):
        machine.git("config", "core.sshCommand", str(hang))
        machine.git("remote", "set-url", "origin", "ssh://git.example.invalid/r.git")
        (machine.home / ".config/hf").mkdir(parents=True, exist_ok=True)
        (machine.home / ".config/hf/config.toml").write_text("remote_timeout = 1\n")
    started = time.monotonic()
    status = a.hf_json("status", "b1")["batches"][0]
    assert time.monotonic() - started < 20
    unreachable = {p["name"] for p in status["parts"] if p["state"] == "unreachable"}
    assert unreachable == {"api", "ui"}
    started = time.monotonic()
    took = b.hf("take", "origin", "b1/api")
    assert time.monotonic() - started < 20
    assert took.returncode != 0
    assert "reading origin failed: no answer within 1 s" in took.stderr
    assert "remote_timeout" in took.stderr
    assert not b.worktree("b1", "api").exists()


def test_commands_on_a_remote_part_s_worktree_point_to_where_it_is_worked(world, tmp_path):
    """On the machine that split, a remote part has no worktree: running its worker,
    going to its worktree or widening it says where it is worked, not that a
    worktree is damaged (whose advice, dropping the part, would lose its work)."""
    remote, a, b = world
    split_b1(a, tmp_path)
    before = remote_refs(remote)
    for args in (("run", "--part", "b1/api", "--", "true"), ("cd", "b1/api"),
                 ("widen", "b1/api", "docs/**")):
        proc = a.hf(*args)
        assert proc.returncode != 0, args
        assert "b1/api is a remote part on origin" in proc.stderr, (args, proc.stderr)
        assert "`hf take origin b1/api`" in proc.stderr
        assert "drop" not in proc.stderr and "missing" not in proc.stderr
    assert remote_refs(remote) == before


def test_a_split_killed_after_its_push_takes_its_refs_back_off_the_remote(world, tmp_path):
    """Killed once the remote parts' branches and tasks were pushed, before the batch
    record: the next command removes the split here and its refs there, so no
    machine takes a part of a batch that does not exist, and the id splits again."""
    remote, a, b = world
    before = remote_refs(remote)
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    killed = a.hf("split", "--plan", str(plan), extra={"HF_TEST_CRASH_AT": "split-records"})
    assert killed.returncode == -9
    assert "refs/hf/task/b1/api" in remote_refs(remote)  # it had landed there
    status = a.hf("status")
    assert "a split of 'b1' that was cut off was removed" in status.stderr, status.stderr
    assert remote_refs(remote) == before
    assert b.hf("take", "origin", "b1/api").returncode != 0  # nothing left to take
    split_b1(a, tmp_path)  # the id is free again, here and there
    assert "refs/hf/task/b1/api" in remote_refs(remote)


def test_a_split_killed_before_its_push_leaves_another_split_s_refs_alone(world, tmp_path):
    """Killed before it pushed: taking it back deletes nothing on the remote, even
    where another machine has since pushed a batch of the same id."""
    remote, a, b = world
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    killed = a.hf("split", "--plan", str(plan), extra={"HF_TEST_CRASH_AT": "split-handoffs"})
    assert killed.returncode == -9
    assert b.hf("split", "--plan", str(plan)).returncode == 0  # the same id, from B
    theirs = remote_refs(remote)
    assert "refs/hf/task/b1/api" in theirs
    status = a.hf("status")
    assert "a split of 'b1' that was cut off was removed" in status.stderr, status.stderr
    assert remote_refs(remote) == theirs


def test_gc_removes_exactly_the_remote_refs_hf_created(world, tmp_path):
    remote, a, b = world
    before_split = remote_refs(remote)
    split_b1(a, tmp_path)
    _take_and_finish(b, "api", "src/api/users.py", "def users(): return [1]\n")
    _take_and_finish(b, "ui", "src/ui/app.js", "console.log(2)\n")
    wt = b.worktree("b1", "ui")
    assert b.hf("heartbeat", cwd=wt).returncode == 0
    # refs others made: a hosted agent's other branch, a person's branch
    b.git("push", "-q", "origin", "hf/b1/ui:refs/heads/hf/b1/ui-extra")
    b.git("push", "-q", "origin", "main:refs/heads/feature")
    assert a.hf("done", "b1/docs").returncode == 0
    assert a.hf("join", "b1").returncode == 0
    before = remote_refs(remote)
    hf_refs = {r for r in before if r.startswith(("refs/hf/", "refs/heads/hf/b1/"))
               and r != "refs/heads/hf/b1/ui-extra"}
    assert any(r.startswith("refs/hf/heartbeat/b1/ui/") for r in hf_refs)
    assert len(hf_refs) == 2 * 5 + 1  # branch, task, done, claim, claimed per part; a beat
    gc = a.hf_json("gc", "b1")
    after = remote_refs(remote)
    assert set(before) - set(after) == hf_refs
    assert sorted(gc["refs_removed"]) == sorted(f"origin:{r}" for r in hf_refs)
    assert set(after) == set(before_split) | {"refs/heads/hf/b1/ui-extra", "refs/heads/feature"}
    assert a.git("for-each-ref", "refs/heads/hf/", "refs/hf/").strip() == ""
    fsck_clean(a)


def test_gc_with_a_remote_that_does_not_answer_collects_the_rest_and_retries(world, tmp_path):
    """The remote gone at gc: one line saying its refs are left and which `hf gc` takes
    them, exit 1; everything else collected (another batch too); the next gc, with
    the remote back, removes them."""
    remote, a, b = world
    _joined_b1(a, b, tmp_path)
    other = a.hf_json("split", "b2", "--part", "tools=tools/**", "--task", "tidy")
    b2_worktree = Path(other["parts"][0]["worktree"])
    assert a.hf("drop", "b2").returncode == 0
    url = a.git("remote", "get-url", "origin").strip()
    a.git("remote", "set-url", "origin", str(tmp_path / "gone.git"))
    proc = a.hf("gc")
    assert proc.returncode == 1
    error, hint = proc.stderr.strip().splitlines()
    assert error.startswith("hf: error: batch b1's refs on its remote are left: reading "
                            "origin failed: ")
    assert error.endswith("; all else was collected")
    assert hint == ("hint: once the remote answers (`git ls-remote` it), `hf gc b1` again "
                    "removes them")
    assert not b2_worktree.exists()  # the other batch was collected all the same
    assert not (a.repo.parent / "repo.hf" / "b1" / "docs").exists()
    assert any(r.startswith("refs/hf/") for r in remote_refs(remote))
    a.git("remote", "set-url", "origin", url)
    again = a.hf_json("gc")
    assert "origin:refs/heads/hf/b1/api" in again["refs_removed"]
    assert set(remote_refs(remote)) == {"refs/heads/main"}
    fsck_clean(a)


def test_a_split_refused_pushes_nothing(world, tmp_path):
    remote, a, b = world
    before = remote_refs(remote)
    proc = a.hf("split", "b1", "--part", "api=src/api/**", "--part", "all=src/**",
                "--remote", "origin")
    assert proc.returncode == 2 and "both own" in proc.stderr
    proc = a.hf("split", "b1", "--part", "api=src/api/**", "--remote", "nosuch")
    assert proc.returncode == 2
    assert "no remote named 'nosuch'" in proc.stderr
    # a part's branch on the remote already (an earlier batch b1): refused, nothing made
    a.git("push", "-q", "origin", "main:refs/heads/hf/b1/ui")
    proc = a.hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
                "--remote", "origin")
    assert proc.returncode == 1
    assert "origin has refs/heads/hf/b1/ui already" in proc.stderr
    assert remote_refs(remote) == {**before, "refs/heads/hf/b1/ui": before["refs/heads/main"]}
    assert a.git("for-each-ref", "refs/heads/hf/").strip() == ""
    assert json.loads(a.hf("status", "--json").stdout)["data"]["batches"] == []


def test_a_push_the_remote_refuses_takes_the_whole_split_back(world, tmp_path):
    remote, a, b = world
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'no pushes today' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = remote_refs(remote)
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    proc = a.hf("split", "--plan", str(plan))
    assert proc.returncode == 1
    assert "split of 'b1' failed, nothing was kept" in proc.stderr
    assert "no pushes today" in proc.stderr
    assert remote_refs(remote) == before
    assert a.git("for-each-ref", "refs/heads/hf/").strip() == ""
    assert not a.worktree("b1", "docs").exists()  # the local part is taken back too
    assert json.loads(a.hf("status", "--json").stdout)["data"]["batches"] == []


def test_the_sweep_auto_joins_once_the_remote_parts_are_done_there(world, tmp_path):
    remote, a, b = world
    made = a.hf("split", "b1", "--part", "api=src/api/**", "--remote", "origin", "--auto-join")
    assert made.returncode == 0, made.stderr
    sweep = a.hf_json("sweep", "--repo", str(a.repo))
    assert not [x for r in sweep["repos"] for x in r["actions"]]
    tip = _take_and_finish(b, "api", "src/api/users.py", "def users(): return [7]\n")
    sweep = a.hf_json("sweep", "--repo", str(a.repo))
    assert [x["action"] for r in sweep["repos"] for x in r["actions"]] == ["auto-join"]
    assert f"Hf-Part: api {tip} remote=origin" in a.git("log", "-1", "--format=%B")


def test_open_on_the_splitting_machine_skips_the_remote_parts(world, tmp_path):
    remote, a, b = world
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    made = a.hf_json("split", "--plan", str(plan), "--open", "--launcher", "print")
    assert {t["tab"]: t["action"] for t in made["tabs"]} == \
        {"docs": "printed", "api": "skipped", "ui": "skipped"}
    opened = a.hf_json("open", "b1", "--launcher", "print")
    tabs = {t["tab"]: t for t in opened["tabs"]}
    assert tabs["docs"]["action"] == "printed"
    assert tabs["api"]["action"] == tabs["ui"]["action"] == "skipped"
    assert "`hf take origin b1/api` on its machine" in tabs["api"]["hint"]


def test_a_second_remote_refusing_takes_back_what_the_first_got(world, tmp_path):
    remote, a, b = world
    mirror = tmp_path / "mirror.git"
    subprocess.run(["git", "init", "-q", "--bare", str(mirror)], check=True)
    hook = mirror / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'closed' >&2\nexit 1\n")
    hook.chmod(0o755)
    a.git("remote", "add", "mirror", str(mirror))
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.replace('name = "ui"\nowns = ["src/ui/**"]\nremote = "origin"',
                                 'name = "ui"\nowns = ["src/ui/**"]\nremote = "mirror"'))
    before = remote_refs(remote)
    proc = a.hf("split", "--plan", str(plan))
    assert proc.returncode == 1 and "pushing the remote parts to mirror failed" in proc.stderr
    assert remote_refs(remote) == before  # api's branch and task ref went again
    assert a.git("for-each-ref", "refs/heads/hf/").strip() == ""


def a_state(a: Machine) -> dict[str, object]:
    """Everything of A's a dry run must leave alone: every ref, the records, the audit log."""
    hf_dir = a.repo / ".git" / "hf"
    records = {str(p.relative_to(hf_dir)): p.read_bytes()
               for p in sorted((hf_dir / "batches").rglob("*.json"))}
    audit = hf_dir / "audit.log"
    return {"refs": a.git("for-each-ref", "--format=%(refname) %(objectname)"),
            "records": records, "audit": audit.read_bytes() if audit.exists() else b"",
            "main": snapshot(a.repo)}


def test_a_dry_run_join_reads_the_remote_and_writes_nothing(world, tmp_path):
    remote, a, b = world
    split_b1(a, tmp_path)
    base = a.git("rev-parse", "HEAD").strip()
    tip = _take_and_finish(b, "api", "src/api/users.py", "def users(): return [1]\n")
    assert a.hf("done", "b1/docs").returncode == 0
    before = a_state(a)
    dry = a.hf_json("join", "b1", "--partial", "--dry-run")
    assert a_state(a) == before  # no ref moved or left behind, no record, no audit line
    # where the part was worked, the next step is the splitting machine's join
    shown = b.hf("status", "b1").stdout
    assert "next: `hf join b1` on the machine that split it (its parts are done on origin)" \
        in shown, shown
    assert dry["dry_run"] is True and dry["commit"] is None
    assert dry["remote_fetched"] == {"api": tip}
    parts = {p["part"]: p for p in dry["parts"]}
    assert sorted(parts) == ["api", "docs"]  # ui is not done: left out, as --partial says
    assert parts["api"]["tip"] == tip
    assert [f["path"] for f in parts["api"]["files"]] == ["src/api/users.py"]
    assert a.git("rev-parse", "hf/b1/api").strip() == base
    states = {p["name"]: p["state"] for p in a.hf_json("status", "b1")["batches"][0]["parts"]}
    assert states["api"] == "done"  # as the remote shows it; its record here still running
    assert json.loads((a.repo / ".git/hf/batches/b1/parts/api.json").read_text())[
        "state"] == "running"
    # publishing to hf/b1 could never be made beside the remote part's hf/b1/api:
    # refused before the join, with a name that can
    refused = a.hf("join", "b1", "--partial", "--push", "--branch", "hf/b1")
    assert refused.returncode == 2 and "--branch hf-pr/b1" in refused.stderr
    assert a_state(a) == before
    # the real join after it takes what the dry run showed
    joined = a.hf_json("join", "b1", "--partial")
    assert sorted(p["part"] for p in joined["parts"]) == ["api", "docs"]
    assert a.git("rev-parse", "hf/b1/api").strip() == tip
    assert "def users(): return [1]" in a.git("show", "HEAD:src/api/users.py")
    # fetched from the remote's name, yet no remote-tracking ref was made for it
    assert a.git("for-each-ref", "--format=%(refname)", "refs/remotes/").split() == [
        "refs/remotes/origin/main"]


def test_gc_on_the_worker_machine_removes_a_taken_batch_once_it_is_over(world, tmp_path):
    remote, a, b = world
    split_b1(a, tmp_path)
    _take_and_finish(b, "api", "src/api/users.py", "def users(): return [1]\n")
    _take_and_finish(b, "ui", "src/ui/app.js", "console.log(2)\n")
    stray = b.worktree("b1", "ui") / "src" / "api" / "notes.txt"
    stray.write_text("only on machine b\n")  # uncommitted, unowned: pushed nowhere
    # not over where it was split: B's gc keeps everything and says why
    proc = b.hf("gc", "b1")
    assert proc.returncode == 1 and "not over where it was split yet" in proc.stderr
    assert b.hf_json("gc")["parts"] == []
    assert b.worktree("b1", "api").is_dir()
    # A joins and publishes the result on the remote's main
    assert a.hf("done", "b1/docs").returncode == 0
    joined = a.hf("join", "b1", "--push", "--remote", "origin", "--branch", "main")
    assert joined.returncode == 0, joined.stderr
    before = b.git("for-each-ref", "--format=%(refname) %(objectname)")
    gc = b.hf_json("gc", "b1")
    actions = {p["part"]: p for p in gc["parts"]}
    assert actions["api"]["action"] == "removed"
    assert actions["ui"]["action"] == "kept"
    assert "changes only here" in actions["ui"]["why"]
    assert "src/api/notes.txt" in actions["ui"]["why"]
    assert gc["taken_removed"] == []
    assert not b.worktree("b1", "api").exists() and stray.read_text() == "only on machine b\n"
    # the fetch of the remote's main left no ref behind
    after = b.git("for-each-ref", "--format=%(refname) %(objectname)")
    assert set(after.splitlines()) == set(before.splitlines()) - {
        line for line in before.splitlines() if line.startswith("refs/heads/hf/b1/api ")}
    # the stray file put away: the rest goes, records and folders with it
    stray.unlink()
    gc = b.hf_json("gc")
    assert [p["action"] for p in gc["parts"]] == ["gone", "removed"]
    assert gc["taken_removed"] == ["b1"]
    assert not (b.repo.parent / "repo.hf").exists()  # no empty folders left
    assert not (b.repo / ".git" / "hf" / "batches" / "b1").exists()
    assert not (b.repo / ".git" / "hf" / "guard" / "b1.json").exists()  # its baseline, both
    assert not list((b.home / ".local" / "state" / "hf" / "baselines").glob("*/b1.json"))
    assert b.hf_json("status", "--all")["batches"] == []
    assert b.git("for-each-ref", "refs/heads/hf/", "refs/hf/").strip() == ""
    assert b.git("worktree", "list", "--porcelain").count("worktree ") == 1
    fsck_clean(b)


def test_gc_on_the_worker_machine_after_the_splitting_machine_collected(world, tmp_path):
    remote, a, b = world
    split_b1(a, tmp_path)
    _take_and_finish(b, "api", "src/api/users.py", "def users(): return [1]\n")
    assert a.hf("drop", "b1/ui").returncode == 0
    assert a.hf("done", "b1/docs").returncode == 0
    assert a.hf("join", "b1").returncode == 0  # joined on A only: main not pushed
    proc = b.hf("gc", "b1")
    assert proc.returncode == 1 and "not over where it was split yet" in proc.stderr
    assert a.hf("gc", "b1").returncode == 0  # A's refs of the batch leave the remote
    gc = b.hf_json("gc", "b1")
    assert [(p["part"], p["action"]) for p in gc["parts"]] == [("api", "removed")]
    assert gc["taken_removed"] == ["b1"]
    assert not (b.repo.parent / "repo.hf").exists()


def test_a_remote_named_by_a_relative_path_is_given_whole_to_a_hosted_agent(world, tmp_path):
    """`git remote add origin ../remote.git` works here only; the prompt for another
    machine, and hf's own pushes from the part's worktree, name it in full."""
    remote, a, b = world
    relative = os.path.relpath(remote, a.repo)
    assert not os.path.isabs(relative)
    a.git("remote", "set-url", "origin", relative)
    split_b1(a, tmp_path)
    prompt = a.hf("task", "b1/api", "--prompt").stdout
    assert f"Repository: {remote}\n" in prompt, prompt
    assert a.git("ls-remote", str(remote), "refs/heads/hf/b1/api").strip()


def test_gc_never_deletes_a_push_that_lands_while_it_works(world, tmp_path):
    """gc lists hf's refs, then deletes them leased on that listing: a worker's push
    landing in between fails the delete (and the next gc retries) rather than being
    deleted."""
    import signal
    import time

    remote, a, b = world
    _joined_b1(a, b, tmp_path)
    gc = subprocess.Popen([sys.executable, "-m", "hf_fanout", "gc", "b1"], cwd=a.repo,
                          env={**a.env, "HF_TEST_STOP_AT": "remote-gc-listed"},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and gc.poll() is None:
            with open(f"/proc/{gc.pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "T":
                    break
            time.sleep(0.05)
        # more work lands on the part branch while gc is between list and delete
        late_clone = tmp_path / "late"
        subprocess.run(["git", "clone", "-q", "-b", "hf/b1/api", str(remote), str(late_clone)],
                       check=True, env=b.env)
        (late_clone / "src" / "api" / "late.py").write_text("late = 1\n")
        b.git("add", "src/api/late.py", cwd=late_clone)
        b.git("commit", "-qm", "late work", cwd=late_clone)
        late = b.git("rev-parse", "HEAD", cwd=late_clone).strip()
        b.git("push", "-q", "origin", "HEAD:refs/heads/hf/b1/api", cwd=late_clone)
        os.kill(gc.pid, signal.SIGCONT)
        out, err = gc.communicate(timeout=120)
    finally:
        if gc.poll() is None:
            gc.kill()
    assert gc.returncode == 1, out + err
    assert "`hf gc b1` again" in err
    assert remote_refs(remote).get("refs/heads/hf/b1/api") == late  # the late push stays
    fsck_clean(a)


def _dead_pid() -> int:
    pid = 999_999
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except OSError:
            pass
        pid -= 1


def test_what_a_fetch_killed_half_way_left_stops_no_later_join(world, tmp_path):
    """A join killed inside its fetch left git's lock on the scratch ref it fetched
    into, and every later join of that part failed on it ("cannot lock ref"). Each
    process now fetches into refs of its own; what a dead one left is removed."""
    _remote, a, b = world
    split_b1(a, tmp_path)
    assert a.hf("done", "b1/docs").returncode == 0
    _take_and_finish(b, "api", "src/api/users.py", "def users(): return [1]\n")
    base = a.git("rev-parse", "HEAD").strip()
    dead = _dead_pid()
    scratch = a.repo / ".git/refs/hf/scratch"
    # a killed join's lock on its incoming ref, and a scratch ref packed since
    (scratch / f"{dead}-1/incoming/b1").mkdir(parents=True)
    (scratch / f"{dead}-1/incoming/b1/api.lock").write_text(base + "\n")
    a.git("update-ref", f"refs/hf/scratch/{dead}-2/incoming/b1/ui", base)
    a.git("pack-refs", "--all")
    joined = a.hf("join", "b1", "--partial")
    assert joined.returncode == 0, joined.stderr
    assert "def users(): return [1]" in a.git("show", "HEAD:src/api/users.py")
    assert a.git("for-each-ref", "refs/hf/scratch/").strip() == ""
    assert not (scratch / f"{dead}-1").exists()


def test_a_remote_part_branch_that_moved_after_the_join_is_kept_and_said(world, tmp_path):
    """The worker on B goes on after A joined its part and pushes: A's gc kept the
    branch but deleted the part's other refs and said nothing of it."""
    remote, a, b = world
    _joined_b1(a, b, tmp_path)
    worktree = b.worktree("b1", "api")
    (worktree / "src/api/late.py").write_text("late = 1\n")
    b.git("add", "src/api/late.py", cwd=worktree)
    b.git("commit", "-qm", "after the join", cwd=worktree)
    late = b.git("rev-parse", "HEAD", cwd=worktree).strip()
    b.git("push", "-q", "origin", "hf/b1/api:refs/heads/hf/b1/api")  # (from its main tree)
    gc = a.hf("gc", "b1")
    assert gc.returncode == 0, gc.stderr
    assert (f"kept refs/heads/hf/b1/api on origin (and the part's other refs there): it is "
            f"at {late[:12]}, commits no join of the batch took") in gc.stdout, gc.stdout
    after = remote_refs(remote)
    assert after["refs/heads/hf/b1/api"] == late
    assert "refs/hf/done/b1/api" in after and "refs/hf/task/b1/api" in after
    assert not any(r.startswith(("refs/heads/hf/b1/ui", "refs/hf/done/b1/ui")) for r in after)
    fetch = gc.stdout.split("`")[1]
    assert fetch == "git fetch origin refs/heads/hf/b1/api"


@pytest.mark.parametrize("look_first", [True, False], ids=["status-first", "done-first"])
def test_a_remote_part_worked_on_after_its_join_is_shown_and_joined_again(world, tmp_path,
                                                                          look_first):
    """B's agent goes on after A joined its part and `hf done` there pushes it: A's
    status says so, `hf done` on A (with or without a status before) offers it to the
    batch's next join, which takes exactly what changed since."""
    remote, a, b = world
    _joined_b1(a, b, tmp_path)
    first = a.git("rev-parse", "HEAD").strip()
    worktree = b.worktree("b1", "api")
    (worktree / "src/api/late.py").write_text("late = 1\n")
    b.git("add", "src/api/late.py", cwd=worktree)
    b.git("commit", "-qm", "after the join", cwd=worktree)
    late = b.git("rev-parse", "HEAD", cwd=worktree).strip()
    again = b.hf("done", cwd=worktree)
    assert again.returncode == 0, again.stderr
    assert remote_refs(remote)["refs/hf/done/b1/api"] == late
    if look_first:
        shown = {p["name"]: p for p in a.hf_json("status", "b1")["batches"][0]["parts"]}
        assert shown["api"]["after_join"] == 1 and shown["ui"]["after_join"] == 0
        assert shown["api"]["worktree"] == "(on origin)"  # (none here: it is worked there)
        human = a.hf("status", "b1").stdout
        assert "api: 1 commit(s) on its branch after its join" in human, human
        # (no worktree here to keep: gc keeps the branch on the remote)
        assert "`hf gc` keeps its branch on origin while" in human, human
        assert "worktree" not in human.split("after its join", 1)[1].splitlines()[0]
    assert a.hf("done", "b1/ui").returncode != 0  # (nothing after its join)
    done = a.hf("done", "b1/api")
    assert done.returncode == 0, done.stderr
    join = a.hf("join", "b1")
    assert join.returncode == 0, join.stderr
    assert (a.repo / "src/api/late.py").read_text() == "late = 1\n"
    assert a.git("diff", "--name-only", first, "HEAD").split() == ["src/api/late.py"]


def test_the_last_join_says_a_remote_part_an_earlier_join_took_was_worked_on_since(
        world, tmp_path):
    _remote, a, b = world
    split_b1(a, tmp_path)
    _take_and_finish(b, "api", "src/api/users.py", "def users(): return [1]\n")
    assert a.hf("join", "b1", "--partial").returncode == 0
    worktree = b.worktree("b1", "api")
    (worktree / "src/api/late.py").write_text("late = 1\n")
    b.git("add", "src/api/late.py", cwd=worktree)
    b.git("commit", "-qm", "after the join", cwd=worktree)
    assert b.hf("done", cwd=worktree).returncode == 0
    _take_and_finish(b, "ui", "src/ui/app.js", "console.log(2)\n")
    assert a.hf("done", "b1/docs").returncode == 0
    join = a.hf("join", "b1", "--json")
    assert join.returncode == 0, join.stderr
    assert "hf: note: part api has 1 commit(s) on hf/b1/api after its join" in join.stderr
    assert [x["part"] for x in json.loads(join.stdout)["data"]["after_join"]] == ["api"]
    assert not (a.repo / "src/api/late.py").exists()  # (a joined part is not joined again)


def test_a_dropped_remote_part_with_pushed_work_goes_with_gc_force(world, tmp_path):
    """A part worked through the remote, then dropped here: its pushed commits are
    no join's. gc keeps its refs on the remote and says how they go; gc --force
    keeps the commits at the part's rescue ref here and removes them there, so the
    machine that worked it can collect it too."""
    remote, a, b = world
    split_b1(a, tmp_path)
    tip = _take_and_finish(b, "api", "src/api/users.py", "def users(): return [1]\n")
    assert a.hf("drop", "b1").returncode == 0
    kept = a.hf("gc", "b1")
    assert kept.returncode == 0 and "go with `hf gc --force`" in kept.stdout, kept.stdout
    assert "refs/heads/hf/b1/api" in remote_refs(remote)
    forced = a.hf("gc", "b1", "--force")
    assert forced.returncode == 0, forced.stderr
    assert not [r for r in remote_refs(remote) if "/b1/api" in r]
    assert a.git("rev-parse", "refs/hf/rescue/b1/api").strip() == tip
    assert "removed taken batch b1" in b.hf("gc", "b1").stdout


def test_publish_on_the_machine_that_took_the_part_points_to_the_one_that_split_it(
        world, tmp_path):
    """On B, where a part was taken and done, the batch is never joined: publish's
    refusal says where it is joined and published, not "`hf join b1`", which B
    refuses."""
    _remote, a, b = world
    split_b1(a, tmp_path)
    _take_and_finish(b, "api", "src/api/users.py", "def users(): return [7]\n")
    proc = b.hf("publish", "b1")
    assert proc.returncode != 0
    assert "hint: its parts were taken here from origin: it is joined and published on the " \
        "machine that split it" in proc.stderr
    assert "hf join" not in proc.stderr


def test_a_batch_id_used_again_on_a_is_not_taken_as_the_old_part_on_b(world, tmp_path):
    """A drops b1 and collects it, then splits a new b1. On B, which still has the
    old b1/api, `hf take origin b1/api` refuses in one line (the part here is an
    earlier one of that name) with the way on; before, it said "taken here
    already" and handed back the old worktree, old base and old task, while it
    claimed the new part on the remote."""
    _remote, a, b = world
    split_b1(a, tmp_path)
    _take_and_finish(b, "api", "src/api/users.py", "def users(): return [8]\n")
    assert a.hf("drop", "b1").returncode == 0
    gc = a.hf("gc", "b1", "--force")
    assert gc.returncode == 0, gc.stderr
    plan = tmp_path / "plan2.toml"
    plan.write_text(PLAN.replace('task = "the search endpoint"', 'task = "a second task"'))
    assert a.hf("split", "--plan", str(plan)).returncode == 0
    again = b.hf("take", "origin", "b1/api")
    assert again.returncode != 0
    assert "part b1/api here is an earlier part of that name" in again.stderr
    assert "hint: end the old one here (`hf drop b1`, then `hf gc b1`" in again.stderr
    claims = [r for r in remote_refs(_remote) if r.startswith("refs/hf/claim/b1/api")]
    assert claims == []  # nothing claimed on the remote for the old part


def test_the_state_summary_of_a_remote_part_names_its_machine_and_the_take(world, tmp_path):
    """`hf report b1 --state` on A: a remote part is worked on another machine, and
    it carries on with `hf take` there (before: "work in" a worktree A never made,
    and `hf open`, which skips remote parts)."""
    _remote, a, _b = world
    split_b1(a, tmp_path)
    r = a.hf("report", "b1", "--state")
    assert r.returncode == 0, r.stderr
    continuity = r.stdout.split("## Continuity")[1]
    assert "- **api** (running): worked on another machine through `origin` on branch " \
        "`hf/b1/api`" in continuity
    assert "  - resume: `hf take origin b1/api` there" in continuity
    assert "hf open b1/api" not in continuity
    assert "hf open b1/docs" in continuity  # (worked here: its tab)


def test_a_part_dropped_on_the_machine_that_took_it_is_not_handed_back_as_taken(
        world, tmp_path):
    """On B, a taken part whose batch was dropped there: `hf take` again refuses in
    one line with the gc that comes first (before: "taken here already", exit 0)."""
    _remote, a, b = world
    split_b1(a, tmp_path)
    assert b.hf("take", "origin", "b1/api").returncode == 0
    assert b.hf("drop", "b1").returncode == 0
    again = b.hf("take", "origin", "b1/api")
    assert again.returncode != 0
    assert "hf: error: part b1/api was taken here before and dropped" in again.stderr
    assert "hint: collect it first (`hf gc b1`), then take it again" in again.stderr
