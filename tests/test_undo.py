"""`hf undo`: a join taken back, by moving the branch back or by a revert commit;
its refusals; and an undo killed half way, settled by the next command."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import git, hf_proc, snapshot, write
from test_join_crash import assert_clean_at, batch_record, head, part_states, prepare


def tree(repo: Path, rev: str = "HEAD") -> str:
    return git(repo, "rev-parse", f"{rev}^{{tree}}").strip()


def audit(repo: Path) -> list[dict[str, Any]]:
    lines = (repo / ".git/hf/audit.log").read_text().splitlines()
    return [json.loads(line) for line in lines]


def joined(split3: dict[str, Path], hf: Any, *flags: str) -> tuple[str, str, str]:
    """Work in every part, joined: (the commit before, its tree, the join commit)."""
    repo = split3["repo"]
    prepare(split3, hf)
    before = head(repo)
    r = hf("join", "b1", *flags, cwd=repo)
    assert r.code == 0, r.err
    return before, tree(repo), head(repo)


@pytest.mark.parametrize("flags", [(), ("--keep-history",)])
def test_undo_of_the_tip_moves_the_branch_back_and_a_rejoin_gives_the_same_tree(
        split3, hf, flags):
    repo = split3["repo"]
    before, _, join = joined(split3, hf, *flags)
    join_tree = tree(repo)
    r = hf("undo", "b1", "--json", cwd=repo)
    assert r.code == 0, r.err
    data = r.json["data"]
    assert data["how"] == "fast" and data["join"] == join and data["commit"] == before
    assert head(repo) == before
    assert tree(repo) == tree(repo, before)
    assert_clean_at(repo, before)
    assert not (repo / "src/api/search.py").exists() and (repo / "src/ui/page.html").exists()
    assert part_states(repo) == {"api": "done", "ui": "done", "docs": "done"}
    record = batch_record(repo)
    assert record["state"] == "running" and record["joined_commit"] is None
    # branches and worktrees untouched: the parts' work is where it was
    assert (split3["api"] / "src/api/search.py").exists()
    assert git(repo, "rev-parse", "--verify", "hf/b1/api").strip()
    undo_lines = [e for e in audit(repo) if e["action"] == "undo"]
    assert len(undo_lines) == 1 and undo_lines[0]["join"] == join
    assert hf("log", "b1", cwd=repo).out.count("undo") >= 1
    r = hf("join", "b1", *flags, cwd=repo)
    assert r.code == 0, r.err
    assert tree(repo) == join_tree
    assert git(repo, "rev-parse", "HEAD^").strip() == before


LONG = "".join(f"line {n}\n" for n in range(1, 11))


def long_batch(repo: Path, hf: Any, *flags: str) -> tuple[Path, str]:
    """Batch b1 (api, docs) over a ten-line docs/long.md, joined: its docs part
    changed line 2 and added a file, its api part changed orders.py."""
    write(repo, {"docs/long.md": LONG})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a long file")
    assert hf("split", "b1", "--part", "api=src/api/**", "--part", "docs=docs/**",
              cwd=repo).code == 0
    api, docs = repo.parent / "repo.hf/b1/api", repo.parent / "repo.hf/b1/docs"
    write(api, {"src/api/orders.py": "def orders():\n    return [1]\n"})
    write(docs, {"docs/long.md": LONG.replace("line 2\n", "line two\n"), "docs/new.md": "n\n"})
    for part in (api, docs):
        assert hf("done", cwd=part).code == 0
    r = hf("join", "b1", *flags, cwd=repo)
    assert r.code == 0, r.err
    return docs, head(repo)


@pytest.mark.parametrize("flags", [(), ("--keep-history",)])
def test_undo_after_main_moved_on_makes_a_revert_commit_keeping_main_s_change(
        repo, hf, flags):
    _, join = long_batch(repo, hf, *flags)
    # main goes on: a file no part owns, and another line of a file the join changed
    write(repo, {"tools/run.sh": "#!/bin/sh\necho later\n",
                 "docs/long.md": LONG.replace("line 2\n", "line two\n")
                 .replace("line 9\n", "line nine\n")})
    git(repo, "commit", "-qam", "main goes on")
    later = head(repo)
    r = hf("undo", "b1", "--json", cwd=repo)
    assert r.code == 0, r.err
    data = r.json["data"]
    assert data["how"] == "revert" and data["merged"] == ["docs/long.md"]
    revert = head(repo)
    assert git(repo, "rev-parse", "HEAD^").strip() == later
    trailers = git(repo, "log", "-1", "--format=%(trailers)", "HEAD")
    assert "Hf-Batch: b1" in trailers and f"Hf-Undo: {join}" in trailers
    assert_clean_at(repo, revert)
    # main's later changes kept, the join's taken back
    assert (repo / "tools/run.sh").read_text() == "#!/bin/sh\necho later\n"
    assert (repo / "docs/long.md").read_text() == LONG.replace("line 9\n", "line nine\n")
    assert not (repo / "docs/new.md").exists()
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return []\n"
    assert part_states(repo) == {"api": "done", "docs": "done"}
    assert batch_record(repo)["state"] == "running"
    r = hf("join", "b1", *flags, cwd=repo)  # joined again, three-way over main's change
    assert r.code == 0, r.err
    assert (repo / "docs/long.md").read_text() == \
        LONG.replace("line 2\n", "line two\n").replace("line 9\n", "line nine\n")
    assert (repo / "docs/new.md").exists()
    assert (repo / "tools/run.sh").read_text() == "#!/bin/sh\necho later\n"
    assert_clean_at(repo, head(repo))


def test_undo_refuses_when_main_changed_the_same_lines_since(repo, hf):
    _, join = long_batch(repo, hf)
    write(repo, {"docs/long.md": LONG.replace("line 2\n", "line TWO by main\n")})
    git(repo, "commit", "-qam", "main rewrites line 2")
    before = snapshot(repo)
    r = hf("undo", "b1", cwd=repo)
    assert r.code == 1
    assert "conflicts" in r.err and "docs/long.md" in r.err
    assert f"git revert {join[:12]}" in r.err
    assert snapshot(repo) == before
    assert part_states(repo) == {"api": "joined", "docs": "joined"}


def test_undo_refuses_an_untracked_file_where_it_makes_a_folder_again(split3, hf):
    repo = split3["repo"]
    for name in ("orders.py", "users.py"):  # the part deletes the whole folder
        (split3["api"] / "src/api" / name).unlink()
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    shutil.rmtree(repo / "src/api", ignore_errors=True)
    write(repo, {"src/api": "mine, made after the join\n"})
    before = snapshot(repo)
    r = hf("undo", "b1", "--json", cwd=repo)
    assert r.code == 1
    assert r.json["data"]["paths"] == ["src/api"]
    assert snapshot(repo) == before


@pytest.mark.parametrize("mark", ["--skip-worktree", "--assume-unchanged"])
def test_undo_refuses_an_edit_git_status_does_not_show(split3, hf, mark):
    repo = split3["repo"]
    joined(split3, hf)
    git(repo, "update-index", mark, "src/api/search.py")  # (the join added it)
    write(repo, {"src/api/search.py": "my local override\n"})
    before = snapshot(repo)
    r = hf("undo", "b1", "--json", cwd=repo)
    assert r.code == 1
    error = r.json["error"]
    assert "skip-worktree or assume-unchanged" in error["message"]
    assert r.json["data"]["paths"] == ["src/api/search.py"]
    assert snapshot(repo) == before


def test_undo_refuses_a_dirty_affected_path_and_writes_nothing(split3, hf):
    repo = split3["repo"]
    joined(split3, hf)
    write(repo, {"src/api/search.py": "my own edit\n"})
    before = snapshot(repo)
    records = batch_record(repo)
    r = hf("undo", "b1", "--json", cwd=repo)
    assert r.code == 1
    error = r.json["error"]
    assert error["code"] == "undo_refused"
    assert "uncommitted edits" in error["message"] and "src/api/search.py" in error["message"]
    assert error["hint"]
    assert snapshot(repo) == before and batch_record(repo) == records
    assert not (repo / ".git/index.lock").exists()
    assert not (repo / ".git/hf/journal/join.json").exists()


def test_undo_refuses_a_batch_with_nothing_joined(split3, hf):
    repo = split3["repo"]
    prepare(split3, hf)
    before = snapshot(repo)
    r = hf("undo", "b1", cwd=repo)
    assert r.code == 1
    assert "has no join to take back" in r.err and "api done" in r.err
    assert "hint:" in r.err
    assert snapshot(repo) == before
    r = hf("undo", "nosuch", cwd=repo)
    assert r.code != 0 and "nosuch" in r.err


def test_undo_refuses_when_gc_removed_the_branches_the_work_lives_on(split3, hf):
    repo = split3["repo"]
    _, _, join = joined(split3, hf)
    assert hf("gc", "b1", cwd=repo).code == 0
    assert git(repo, "branch", "--list", "hf/b1/*") == ""
    before = snapshot(repo)
    r = hf("undo", "b1", "--json", cwd=repo)
    assert r.code == 1
    error = r.json["error"]
    assert error["code"] == "undo_refused"
    assert "api, ui, docs" in error["message"] and "nowhere else" in error["message"]
    assert f"git revert {join[:12]}" in error["hint"] and "git branch hf/b1/api" in error["hint"]
    assert snapshot(repo) == before
    assert batch_record(repo)["state"] == "joined"
    # the hint's way out: the branch back from the trailer, then the undo works
    results = git(repo, "log", "-1", "--format=%(trailers:key=Hf-Part,valueonly)", join)
    for line in results.split("\n"):
        if line.strip():
            name, commit = line.split()
            git(repo, "branch", f"hf/b1/{name}", commit)
    r = hf("undo", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert part_states(repo) == {"api": "done", "ui": "done", "docs": "done"}


def test_undo_dry_run_shows_the_plan_and_writes_nothing(split3, hf):
    repo = split3["repo"]
    before_commit, _, join = joined(split3, hf)
    before = snapshot(repo)
    log = (repo / ".git/hf/audit.log").read_text()
    records = batch_record(repo)
    r = hf("undo", "b1", "--dry-run", cwd=repo)
    assert r.code == 0, r.err
    assert f"would take back the join {join[:12]}" in r.out
    assert f"would move back to {before_commit[:12]}" in r.out and "nothing changed" in r.out
    assert snapshot(repo) == before
    assert (repo / ".git/hf/audit.log").read_text() == log
    assert batch_record(repo) == records


def test_undo_takes_back_only_the_last_of_two_partial_joins(split3, hf):
    repo = split3["repo"]
    write(split3["api"], {"src/api/search.py": "def search():\n    pass\n"})
    assert hf("done", cwd=split3["api"]).code == 0
    assert hf("join", "b1", "--partial", cwd=repo).code == 0
    first = head(repo)
    write(split3["ui"], {"src/ui/app.js": "console.log(2)\n"})
    write(split3["docs"], {"docs/guide.md": "# guide v2\n"})
    for name in ("ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    assert batch_record(repo)["state"] == "joined"
    r = hf("undo", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert head(repo) == first
    assert part_states(repo) == {"api": "joined", "ui": "done", "docs": "done"}
    record = batch_record(repo)
    assert record["state"] == "running" and record["joined_commit"] == first
    r = hf("undo", "b1", cwd=repo)  # and then the first one
    assert r.code == 0, r.err
    assert part_states(repo) == {"api": "done", "ui": "done", "docs": "done"}
    assert batch_record(repo)["joined_commit"] is None


def test_undo_of_a_join_that_brought_nothing_changes_only_the_records(split3, hf):
    repo = split3["repo"]
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    start = head(repo)
    assert hf("join", "b1", cwd=repo).code == 0
    assert head(repo) == start
    r = hf("undo", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert "only the records change" in r.out
    assert head(repo) == start and part_states(repo)["api"] == "done"


def test_undo_turns_off_the_batch_s_automatic_join(repo, hf):
    r = hf("split", "b1", "--part", "api=src/api/**", "--auto-join", cwd=repo)
    assert r.code == 0, r.err
    api = repo.parent / "repo.hf/b1/api"
    write(api, {"src/api/orders.py": "# v2\n"})
    assert hf("done", cwd=api).code == 0
    assert hf("sweep", cwd=repo).code == 0
    assert batch_record(repo)["state"] == "joined"
    assert hf("undo", "b1", cwd=repo).code == 0
    assert batch_record(repo)["auto_join"] is False
    before = head(repo)
    assert hf("sweep", cwd=repo).code == 0
    assert head(repo) == before and batch_record(repo)["state"] == "running"


@pytest.mark.parametrize("crash_at, next_command", [
    ("journal", ("status",)), ("applied", ("doctor",)), ("swapped", ("doctor",)),
])
def test_undo_killed_before_the_ref_moved_rolls_back(split3, hf, crash_at, next_command):
    repo = split3["repo"]
    _, _, join = joined(split3, hf)
    before = snapshot(repo)
    proc = hf_proc("undo", "b1", cwd=repo, env={**os.environ, "HF_TEST_CRASH_AT": crash_at})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    journal = json.loads((repo / ".git/hf/journal/join.json").read_text())
    assert journal["action"] == "undo" and journal["join"] == join
    if crash_at != "journal":  # the main tree holds half an undo
        assert not (repo / "src/api/search.py").exists()
    r = hf(*next_command, cwd=repo)
    assert r.code == 0, r.err
    assert not (repo / ".git/hf/journal/join.json").exists()
    assert_clean_at(repo, join)
    assert snapshot(repo) == before
    assert part_states(repo) == {"api": "joined", "ui": "joined", "docs": "joined"}
    assert any(e["action"] == "undo-recovered" and e["outcome"] == "rolled-back"
               for e in audit(repo))
    assert hf("undo", "b1", cwd=repo).code == 0  # and it can simply be run again


@pytest.mark.parametrize("main_moved", [False, True])
def test_undo_killed_after_the_ref_moved_is_finished_by_doctor(split3, hf, main_moved):
    repo = split3["repo"]
    before, _, join = joined(split3, hf)
    if main_moved:
        write(repo, {"tools/run.sh": "#!/bin/sh\necho later\n"})
        git(repo, "commit", "-qam", "main goes on")
    moved_from = head(repo)
    proc = hf_proc("undo", "b1", cwd=repo, env={**os.environ, "HF_TEST_CRASH_AT": "ref"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    landed = head(repo)
    assert landed == before if not main_moved else \
        git(repo, "rev-parse", "HEAD^").strip() == moved_from
    assert batch_record(repo)["state"] == "joined"  # only the journal knows
    r = hf("doctor", cwd=repo)
    assert r.code == 0, r.out + r.err
    assert not (repo / ".git/hf/journal/join.json").exists()
    assert_clean_at(repo, landed)
    assert not (repo / "src/api/search.py").exists()
    assert part_states(repo) == {"api": "done", "ui": "done", "docs": "done"}
    assert batch_record(repo)["state"] == "running"
    assert any(e["action"] == "undo" and e["join"] == join and e.get("recovered")
               and e.get("how") == ("revert" if main_moved else "fast") for e in audit(repo))


def test_the_join_s_hint_to_take_it_back_works(split3, hf):
    repo = split3["repo"]
    prepare(split3, hf)
    before = head(repo)
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    hint = next(line for line in r.out.splitlines() if "hf undo" in line)
    command = hint.split("hf ", 1)[1].split()
    assert command == ["undo", "b1"]
    assert hf(*command, cwd=repo).code == 0
    assert head(repo) == before


def test_what_the_user_staged_stays_staged_and_out_of_the_undo(split3, hf):
    repo = split3["repo"]
    before, _, _ = joined(split3, hf)
    write(repo, {"notes.txt": "mine\n"})
    git(repo, "add", "notes.txt")
    r = hf("undo", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert head(repo) == before
    assert git(repo, "status", "--porcelain") == "A  notes.txt\n"
    assert git(repo, "diff", "--cached", "--name-only") == "notes.txt\n"


def test_a_join_main_already_took_back_by_hand_changes_only_the_records(repo, hf):
    _, join = long_batch(repo, hf)
    git(repo, "revert", "--no-edit", join)
    reverted = head(repo)
    r = hf("undo", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert "has none of its changes any more" in r.out
    assert head(repo) == reverted
    assert part_states(repo) == {"api": "done", "docs": "done"}


def test_undo_of_a_join_with_remote_parts_takes_it_back_and_it_joins_again(tmp_path):
    """The join's trailer of a remote part carries `remote=NAME` after the commit:
    undo reads the commit, puts the parts back to done, and the join again fetches
    nothing new and makes the same tree."""
    from remote_support import fsck_clean, two_machines

    remote, a, b = two_machines(tmp_path)
    made = a.hf("split", "b1", "--part", "api=src/api/**", "--remote", "origin",
                "--task", "add search")
    assert made.returncode == 0, made.stderr
    base = a.git("rev-parse", "HEAD").strip()
    assert b.hf("take", "origin", "b1/api").returncode == 0
    wt = b.worktree("b1", "api")
    (wt / "src" / "api" / "orders.py").write_text("def orders(): return [1]\n")
    b.git("commit", "-qam", "orders", cwd=wt)
    assert b.hf("done", cwd=wt).returncode == 0
    first = a.hf_json("join", "b1")["commit"]
    assert "remote=origin" in a.git("log", "-1", "--format=%B")
    undone = a.hf("undo", "b1")
    assert undone.returncode == 0, undone.stderr
    assert a.git("rev-parse", "HEAD").strip() == base
    assert a.git("status", "--porcelain").strip() == ""
    parts = a.hf_json("status", "b1")["batches"][0]["parts"]
    assert [(p["name"], p["state"]) for p in parts] == [("api", "done")]
    again = a.hf_json("join", "b1")["commit"]
    assert a.git("rev-parse", f"{again}^{{tree}}") == a.git("rev-parse", f"{first}^{{tree}}")
    fsck_clean(a)


def test_a_join_the_branch_was_reset_past_is_taken_back_in_the_records(split3, hf):
    """`git reset --hard HEAD~1` in the main tree dropped the join commit: main has
    none of the batch's work, and no join would take it again. Status and a join say
    so; the undo takes the join back in the records, and the batch joins anew."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "joined\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    write(repo, {"src/api/orders.py": "the person's own\n"})  # (none of the join's)
    git(repo, "commit", "-qam", "the person's own edit")
    assert "its join commit is not in its branch's history any more: `hf undo b1`" in \
        hf("status", "b1", cwd=repo).out
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0 and "is not in the history of its branch any more" in r.err
    assert (repo / "src/api/orders.py").read_text() != "joined\n"
    r = hf("undo", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert "main has none of its changes any more, so only the records change" in r.out
    assert git(repo, "status", "--porcelain") == ""
    r = hf("join", "b1", cwd=repo)
    assert r.code == 1 and "src/api/orders.py" in r.err  # (main changed it its own way)


def test_an_amended_join_is_not_taken_back_in_the_records_only(split3, hf):
    """The join commit was reworded (`git commit --amend`): main has all of its
    changes under another commit. The undo must not say there is nothing to take
    back, nor reopen the batch: it names the way (revert what carries them)."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "joined\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    git(repo, "commit", "-q", "--amend", "-m", "search, reworded")
    before = snapshot(repo)
    r = hf("undo", "b1", cwd=repo)
    assert r.code == 1
    assert "but all of its changes are (the branch was rewritten" in r.err
    assert "`git log -- src/api/orders.py` finds the commit" in r.err
    assert snapshot(repo) == before
    assert {p["name"]: p["state"] for p in hf("status", "b1", "--json", cwd=repo)
            .json["data"]["batches"][0]["parts"]}["api"] == "joined"


def test_undo_refuses_when_main_made_a_file_of_a_folder_the_join_emptied(split3, hf):
    """The join deleted the docs part's folder; main then put a file at that name.
    Taking the join back would write the folder's files under a file: a conflict
    named as such (not "uncommitted edits"), and nothing is written."""
    repo, docs = split3["repo"], split3["docs"]
    git(docs, "rm", "-rq", "docs")
    for name in ("api", "ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    write(repo, {"docs": "main's file now\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "main: docs is a file")
    before = snapshot(repo)
    for extra in (["--dry-run"], []):
        r = hf("undo", "b1", *extra, cwd=repo)
        assert r.code == 1, r.err
        assert "taking the join back conflicts with that" in r.err, r.err
        assert "main made docs a file; this path is written in that folder" in r.err, r.err
        assert "uncommitted edits" not in r.err
    assert snapshot(repo) == before


def test_undo_refuses_to_overwrite_a_file_git_ignores_where_it_writes_one_back(split3, hf):
    """The join deleted docs' guide; the person then keeps a file of their own, which
    git ignores, at that path. Taking the join back would write the guide over it:
    refused naming it, nothing written; after the hint's move the undo goes."""
    repo, docs = split3["repo"], split3["docs"]
    git(docs, "rm", "-q", "README.md")
    for name in ("api", "ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    (repo / ".git/info/exclude").write_text("README.md\n")
    write(repo, {"README.md": "my own notes\n"})
    before = snapshot(repo)
    r = hf("undo", "b1", cwd=repo)
    assert r.code == 1, r.err
    assert r.err.splitlines()[0] == (
        "hf: error: the main tree has files git ignores where this undo writes files back: "
        "README.md (the undo would overwrite them)"), r.err
    assert snapshot(repo) == before
    move = r.err.split("`", 2)[1]
    subprocess.run(["bash", "-c", move], cwd=repo, check=True)
    assert hf("undo", "b1", cwd=repo).code == 0
    assert (repo / "README.md.mine").read_text() == "my own notes\n"
    assert git(repo, "show", "HEAD:README.md") == (repo / "README.md").read_text()
