"""A part an earlier join took, whose agent went on committing: `hf status` and the
batch's later joins say those commits are not in main, and how to bring them."""

from __future__ import annotations

from conftest import git, write


def test_commits_after_a_partial_join_are_shown_and_the_final_join_says_so(split3, hf):
    repo, api, ui = split3["repo"], split3["api"], split3["ui"]
    write(api, {"src/api/orders.py": "def orders():\n    return [2]\n"})
    assert hf("done", cwd=api).code == 0
    assert hf("join", "b1", "--partial", cwd=repo).code == 0
    status = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]
    assert {p["name"]: p["after_join"] for p in status["parts"]}["api"] == 0
    # the agent goes on after its part was joined
    write(api, {"src/api/orders.py": "def orders():\n    return [3]\n",
                "src/api/late.py": "late = 1\n"})
    git(api, "add", "-A")
    git(api, "commit", "-qm", "after the join")
    shown = hf("status", "b1", cwd=repo).out
    assert "api: 1 commit(s) on its branch after its join, not in main" in shown
    write(ui, {"src/ui/app.js": "ui 2\n"})
    for name in ("ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert "hf: note: part api has 1 commit(s) on hf/b1/api after its join" in r.err
    assert [a["part"] for a in r.json["data"]["after_join"]] == ["api"]
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return [2]\n"
    assert "`hf done b1/api` offers them to the batch's next join" in r.err
    assert hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]["state"] \
        == "joined"
    # the part's agent says it is done again: the next join takes what changed since
    r = hf("done", cwd=api)
    assert r.code == 0, r.err
    batch = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]
    assert batch["state"] == "running"
    assert {p["name"]: p["state"] for p in batch["parts"]} == {
        "api": "done", "ui": "joined", "docs": "joined"}
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert "part api: 2 file(s)" in r.out, r.out
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return [3]\n"
    assert (repo / "src/api/late.py").read_text() == "late = 1\n"
    assert (repo / "src/ui/app.js").read_text() == "ui 2\n"
    assert git(repo, "status", "--porcelain") == ""
    assert hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]["state"] \
        == "joined"
    gc = hf("gc", "b1", "--dry-run", cwd=repo)
    assert gc.code == 0 and "b1/api: would-remove" in gc.out, gc.out
    # and undoing that last join puts the part back to done, the first join's result
    # kept: joining again takes what changed since, as before
    assert hf("undo", "b1", cwd=repo).code == 0
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return [2]\n"
    assert not (repo / "src/api/late.py").exists()
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return [3]\n"
    assert (repo / "src/api/late.py").read_text() == "late = 1\n"
    assert git(repo, "status", "--porcelain") == ""


def test_done_of_a_joined_part_with_nothing_after_its_join_is_still_refused(split3, hf):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return [2]\n"})
    assert hf("done", cwd=api).code == 0
    assert hf("join", "b1", "--partial", cwd=repo).code == 0
    r = hf("done", cwd=api)
    assert r.code != 0 and "is already joined" in r.err


def test_a_joined_part_with_nothing_after_its_join_has_no_note(split3, hf):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return [2]\n",
                "src/api/loose.py": "uncommitted at the join\n"})
    git(api, "add", "src/api/orders.py")
    git(api, "commit", "-qm", "api work")
    for name in ("api", "ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    r = hf("join", "b1", "--keep-history", cwd=repo)  # (moves the branch onto its result)
    assert r.code == 0, r.err
    assert "after its join" not in r.err
    shown = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]
    assert [p["after_join"] for p in shown["parts"]] == [0, 0, 0]
    assert "after its join" not in hf("status", "--all", cwd=repo).out


def test_committing_the_work_the_join_took_is_nothing_after_the_join(split3, hf):
    """The join took the part's uncommitted work (as a commit of hf's on its tip); the
    agent then commits that same work itself: nothing new, nothing said."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return [2]\n"})
    assert hf("done", cwd=api).code == 0
    assert hf("join", "b1", "--partial", cwd=repo).code == 0
    git(api, "commit", "-qam", "the same work, committed by the agent")
    shown = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]["parts"]
    assert {p["name"]: p["after_join"] for p in shown}["api"] == 0
    assert hf("done", cwd=api).code != 0  # nothing to offer a join: still joined
    # a commit that does change an owned file is one
    write(api, {"src/api/orders.py": "def orders():\n    return [4]\n"})
    git(api, "commit", "-qam", "more")
    shown = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]["parts"]
    assert {p["name"]: p["after_join"] for p in shown}["api"] == 2


def test_uncommitted_work_after_a_partial_join_is_offered_by_done_and_joined(split3, hf):
    """The agent goes on without committing after its part was joined: `hf done`
    makes it done again (it was refused: "nothing to change"), the next join takes it."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return [2]\n"})
    assert hf("done", cwd=api).code == 0
    assert hf("join", "b1", "--partial", cwd=repo).code == 0
    shown = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]["parts"]
    assert {p["name"]: p["work_after_join"] for p in shown}["api"] is False
    write(api, {"src/api/orders.py": "def orders():\n    return [3]\n",
                "src/api/late.py": "late = 1\n"})
    # `hf status` says so, as for commits after the join
    shown = hf("status", "b1", cwd=repo).out
    assert "api: its owned files changed in its worktree after its join, not committed" \
        in shown and "`hf done b1/api`" in shown
    r = hf("join", "b1", "--partial", cwd=repo)  # nothing done: the joined part is named
    assert r.code == 1 and "(joined before: api)" in r.err and "`hf done b1/api`" in r.err
    r = hf("done", cwd=api)
    assert r.code == 0, r.err
    for name in ("ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return [3]\n"
    assert (repo / "src/api/late.py").read_text() == "late = 1\n"
    assert hf("done", cwd=api).code != 0  # nothing after this join: still joined
