"""`hf drop` and `hf gc`: remove what is integrated, keep what is not (unless forced,
and then only after a rescue ref holds it)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import git, split_with_submodule, write
from liveness_support import Procs, agent_script, alive, part_record, wait_for


@pytest.fixture
def procs():
    p = Procs()
    yield p
    p.end_all()


def test_gc_removes_worktrees_and_branches_of_a_joined_batch(split3, hf):
    repo = split3["repo"]
    write(split3["api"], {"src/api/orders.py": "def orders():\n    return [1]\n"})
    write(split3["docs"], {"docs/new.md": "new\n" * 5000})
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    assert git(repo, "for-each-ref", "refs/hf/results/b1")  # uncommitted work was joined
    mine = repo.parent / "mine"  # the user's own worktree, its folder missing for now
    git(repo, "worktree", "add", "-q", "-b", "mine", str(mine))
    shutil.rmtree(mine)
    dry = hf("gc", "--dry-run", "--json", cwd=repo)
    assert dry.code == 0, dry.err
    assert {p["action"] for p in dry.json["data"]["parts"]} == {"would-remove"}
    assert split3["api"].exists()
    r = hf("gc", "--json", cwd=repo)
    assert r.code == 0, r.err
    data = r.json["data"]
    assert {p["part"]: p["action"] for p in data["parts"]} == {
        "api": "removed", "ui": "removed", "docs": "removed"}
    assert data["freed_bytes"] > 20000
    for name in ("api", "ui", "docs"):
        assert not split3[name].exists()
        assert not git(repo, "branch", "--list", f"hf/b1/{name}")
    assert "repo.hf/b1" not in git(repo, "worktree", "list")
    assert f"{mine} " in git(repo, "worktree", "list")  # git's record of it stays
    assert not git(repo, "for-each-ref", "refs/hf/results/b1")
    assert "freed" in hf("gc", cwd=repo).out
    assert (repo / "docs/new.md").exists()  # the main tree keeps the joined work


def test_gc_removes_the_batch_folder_but_never_a_worktree_root_it_was_given(repo, hf,
                                                                            tmp_path):
    """`--worktree-root DIR` (the person's own folder, made before hf): gc removes the
    batch's folder in it, and leaves DIR, empty as it is; the default root beside
    the repository (`repo.hf`) goes once empty."""
    given = tmp_path / "my-worktrees"
    given.mkdir()
    for batch, extra in (("b1", ["--worktree-root", str(given)]), ("b2", [])):
        assert hf("split", batch, "--part", "api=src/api/**", *extra, cwd=repo).code == 0
        assert hf("done", f"{batch}/api", cwd=repo).code == 0
        assert hf("join", batch, cwd=repo).code == 0
    assert (given / "b1" / "api").is_dir() and (tmp_path / "repo.hf" / "b2").is_dir()
    assert hf("gc", cwd=repo).code == 0
    assert given.is_dir() and not any(given.iterdir())
    assert not (tmp_path / "repo.hf").exists()


def test_gc_keeps_a_dropped_part_with_work_unless_forced_then_rescues_it(split3, hf):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "unsaved work\n", "src/api/extra.py": "more\n"})
    r = hf("gc", "b1", cwd=repo)
    assert r.code == 1 and "running" in r.err  # a running batch is never collected
    assert hf("drop", "b1", "--json", cwd=repo).json["data"]["batch"]["state"] == "dropped"
    r = hf("gc", "--json", cwd=repo)
    parts = {p["part"]: p for p in r.json["data"]["parts"]}
    assert parts["api"]["action"] == "kept"
    assert "src/api/extra.py" in parts["api"]["why"]
    assert parts["ui"]["action"] == "removed"  # nothing of its own: nothing to lose
    assert api.exists() and git(repo, "branch", "--list", "hf/b1/api")
    r = hf("gc", "--force", "--json", cwd=repo)
    api_result = next(p for p in r.json["data"]["parts"] if p["part"] == "api")
    assert api_result["action"] == "removed"
    assert api_result["rescue"] == "refs/hf/rescue/b1/api"
    assert not api.exists()
    assert git(repo, "show", "refs/hf/rescue/b1/api:src/api/orders.py") == "unsaved work\n"
    assert git(repo, "show", "refs/hf/rescue/b1/api:src/api/extra.py") == "more\n"


def test_gc_sees_content_already_in_main_without_the_commits(split3, hf):
    """Join brings files, not commits: a part whose content main already has is integrated."""
    repo, ui = split3["repo"], split3["ui"]
    write(ui, {"src/ui/app.js": "console.log(2)\n"})
    git(ui, "commit", "-qam", "ui work")
    # the same content reaches main another way (a person copied it)
    write(repo, {"src/ui/app.js": "console.log(2)\n"})
    git(repo, "commit", "-qam", "copied by hand")
    assert hf("drop", "b1", cwd=repo).code == 0
    r = hf("gc", "--json", cwd=repo)
    parts = {p["part"]: p["action"] for p in r.json["data"]["parts"]}
    assert parts["ui"] == "removed"
    assert not git(repo, "branch", "--list", "hf/b1/ui")


def test_drop_refuses_while_a_worker_lives(split3, hf):
    import os

    from hf_fanout import processes
    from hf_fanout.core.workspace import Workspace
    from hf_fanout.liveness import judge

    repo = split3["repo"]
    ws = Workspace.open(repo)
    me = processes.identity_of(os.getpid())
    assert me is not None
    judge.record_worker(ws, ws.store.load_part("b1", "ui"), {
        **me.to_dict(), "pgid": 0, "command": "me", "since": "2026-01-01T00:00:00Z"})
    r = hf("drop", "b1", cwd=repo)
    assert r.code == 1 and "hf stop b1" in r.err
    batch = json.loads((repo / ".git/hf/batches/b1/batch.json").read_text())
    assert batch["state"] == "running"
    assert part_record(repo, "b1", "ui")["state"] == "running"


def test_stop_dry_run_prints_readable_lines_and_changes_nothing(split3, hf):
    repo = split3["repo"]
    r = hf("stop", "b1", "--dry-run", cwd=repo)
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        f"would stop b1/{name}: no running process to end; save its work at a rescue ref; "
        "mark it blocked" for name in ("api", "ui", "docs")]
    assert "{" not in r.out
    status = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]
    assert {p["state"] for p in status["parts"]} == {"running"}
    from hf_fanout.cli.liveness_cmds import _would_stop

    line = _would_stop({"state": "done", "would_signal": {"groups": [41], "marked": [42, 43]}})
    assert line == ("signal the worker's process group 41; end 2 process(es) of the part "
                    "(pid 42, 43); save its work at a rescue ref")


def registered() -> list[str]:
    from hf_fanout import registry

    return registry.registered()


def test_demo_takes_its_throwaway_repository_out_of_the_registry(hf, tmp_path):
    r = hf("demo", "--json", cwd=tmp_path)
    assert r.code == 0, r.err
    assert registered() == []
    r = hf("sweep", cwd=tmp_path)
    assert r.code == 0, r.err
    assert "skipped" not in r.out and "not a directory" not in r.out


def test_sweep_drops_a_vanished_repository_from_the_registry_saying_so_once(split3, hf):
    from hf_fanout import registry

    repo = split3["repo"]
    gone = repo.parent / "gone"  # a clone that had batches, since deleted
    registry.register(gone / ".git")

    r = hf("sweep", "--dry-run", "--json", cwd=repo)
    assert r.json["data"]["forgotten"] == [str(gone)]
    assert str(gone / ".git") in registered()  # a dry run changes nothing

    r = hf("sweep", cwd=repo)
    assert r.code == 0, r.err
    assert f"{gone}: no longer exists; removed from the registry" in r.out
    assert "skipped" not in r.out
    assert str(gone / ".git") not in registered()
    assert f"{repo}: 3 part(s)" in r.out  # the live repository is still swept
    r = hf("sweep", cwd=repo)
    assert str(gone) not in r.out  # said once


def test_gc_keeps_a_worktree_whose_git_metadata_is_gone(split3, hf):
    """Files git cannot read as a worktree may hold uncommitted work: never deleted."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/unsaved.py": "only here\n"})
    assert hf("drop", "b1", cwd=repo).code == 0
    (api / ".git").unlink()  # the worktree's link to the repository is gone
    r = hf("gc", "--force", "--json", cwd=repo)
    assert r.code == 0, r.err
    api_result = next(p for p in r.json["data"]["parts"] if p["part"] == "api")
    assert api_result["action"] == "kept" and "not a readable git worktree" in api_result["why"]
    assert (api / "src/api/unsaved.py").read_text() == "only here\n"


def test_gc_keeps_a_part_whose_worker_is_alive_even_forced(split3, hf, tmp_path, procs):
    repo, api = split3["repo"], split3["api"]
    assert hf("drop", "b1", cwd=repo).code == 0
    # an agent started on the part after the drop, still at work
    script = agent_script(tmp_path, "lingering", """
        while True:
            time.sleep(1)
    """)
    log = tmp_path / "run.log"
    procs.hf_run(api, script, log=log)
    pid = wait_for(lambda: (part_record(repo, "b1", "api").get("worker") or {}).get("pid"),
                   what="worker recorded")
    for argv in (["gc"], ["gc", "--force"]):
        if argv == ["gc", "--force"]:  # now with work of its own, which --force would take
            write(api, {"src/api/users.py": "in progress\n"})
        r = hf(*argv, cwd=repo)
        assert r.code == 0, r.err
        assert "b1/api: kept (its worker is alive; `hf stop` it first)" in r.out.splitlines()
        assert api.is_dir() and (api / "src/api/orders.py").is_file()
        assert str(api) in git(repo, "worktree", "list")
        assert git(repo, "branch", "--list", "hf/b1/api")
        assert not git(repo, "for-each-ref", "refs/hf/rescue/b1/api")  # not touched at all
        assert alive(pid), (argv, log.read_text())  # (what `hf run` said, if it ended)
    assert not split3["ui"].exists() and not split3["docs"].exists()  # nothing held them
    # once stopped (its work saved), nothing holds it
    assert hf("stop", "b1/api", "--grace", "0.5", cwd=repo).code == 0
    r = hf("gc", "--force", "--json", cwd=repo)
    assert [(p["part"], p["action"]) for p in r.json["data"]["parts"]
            if p["part"] == "api"] == [("api", "removed")]
    assert not api.exists() and not git(repo, "branch", "--list", "hf/b1/api")
    assert git(repo, "show", "refs/hf/rescue/b1/api:src/api/users.py") == "in progress\n"


def _ref_log_hook(repo: Path, worktree: Path, log: Path) -> None:
    """The repository's own reference-transaction hook: each committed ref update
    with its new value and whether the part's worktree exists at that moment."""
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.write_text(f"""#!/bin/sh
[ "$1" = committed ] || exit 0
if [ -d '{worktree}' ]; then where=present; else where=gone; fi
while read -r old new ref; do
    echo "$ref $new worktree-$where" >> '{log}'
done
""")
    hook.chmod(0o755)


def test_gc_force_removes_a_worktree_only_once_its_rescue_ref_holds_the_work(split3, hf,
                                                                             tmp_path):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return ['committed']\n"})
    git(api, "commit", "-qam", "orders, committed")
    write(api, {"src/api/users.py": "uncommitted\n", "src/api/new.py": "untracked\n"})
    assert hf("drop", "b1", cwd=repo).code == 0
    log = tmp_path / "refs.log"
    _ref_log_hook(repo, api, log)
    r = hf("gc", "--force", "--json", cwd=repo)
    assert r.code == 0, r.err
    result = next(p for p in r.json["data"]["parts"] if p["part"] == "api")
    assert (result["action"], result["rescue"]) == ("removed", "refs/hf/rescue/b1/api")
    assert not api.exists() and not git(repo, "branch", "--list", "hf/b1/api")
    rescue = git(repo, "rev-parse", "refs/hf/rescue/b1/api").strip()
    assert git(repo, "show", f"{rescue}:src/api/users.py") == "uncommitted\n"
    assert git(repo, "show", f"{rescue}:src/api/new.py") == "untracked\n"
    assert git(repo, "show", f"{rescue}:src/api/orders.py") == \
        "def orders():\n    return ['committed']\n"
    # the rescue ref got this very commit while the worktree was still there;
    # the branch went after the worktree
    events = log.read_text().splitlines()
    assert f"refs/hf/rescue/b1/api {rescue} worktree-present" in events
    gone = [e for e in events if e.startswith("refs/heads/hf/b1/api ")]
    assert gone and gone[-1].endswith("worktree-gone")
    assert events.index(f"refs/hf/rescue/b1/api {rescue} worktree-present") < \
        events.index(gone[-1])


def test_gc_force_keeps_a_part_whose_rescue_ref_cannot_be_written(split3, hf):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/users.py": "only here\n"})
    assert hf("drop", "b1", cwd=repo).code == 0
    # a git that crashed while writing the ref left its lock behind: git refuses the update
    lock = repo / ".git" / "refs" / "hf" / "rescue" / "b1" / "api.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    r = hf("gc", "--force", "--json", cwd=repo)
    assert r.code == 0, r.err
    parts = {p["part"]: p for p in r.json["data"]["parts"]}
    assert parts["api"]["action"] == "kept"
    assert parts["api"]["why"].startswith("could not save a rescue ref")
    assert parts["ui"]["action"] == "removed"  # the others are still collected
    assert (api / "src/api/users.py").read_text() == "only here\n"
    assert git(repo, "branch", "--list", "hf/b1/api")
    assert not git(repo, "for-each-ref", "refs/hf/rescue/b1/api")
    # with the stale lock gone the forced gc saves it and removes it
    lock.unlink()
    r = hf("gc", "--force", "--json", cwd=repo)
    assert [p["action"] for p in r.json["data"]["parts"] if p["part"] == "api"] == ["removed"]
    assert git(repo, "show", "refs/hf/rescue/b1/api:src/api/users.py") == "only here\n"


def open_with_claude_hooks(hf, seal, repo: Path, *parts: str) -> None:
    """The parts opened with Claude Code as their agent: hf's hooks in their worktrees."""
    config = seal / ".config" / "hf" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('agent = "claude {prompt}"\n')
    for name in parts:
        assert hf("open", f"b1/{name}", "--launcher", "print", cwd=repo).code == 0


def test_gc_takes_hfs_agent_hooks_out_of_a_worktree_it_keeps(split3, hf, seal):
    repo, api, ui = split3["repo"], split3["api"], split3["ui"]
    (api / ".claude").mkdir()
    mine = {"permissions": {"allow": ["Bash(make)"]},
            "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "echo mine"}]}]}}
    (api / ".claude" / "settings.local.json").write_text(json.dumps(mine))
    open_with_claude_hooks(hf, seal, repo, "api", "ui")
    assert "hf-agent-event" in (ui / ".claude" / "settings.local.json").read_text()
    for name in ("api", "ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    # work done after the join: gc keeps both worktrees
    write(api, {"src/api/late.py": "late\n"})
    write(ui, {"src/ui/late.py": "late\n"})
    r = hf("gc", "b1", "--json", cwd=repo)
    parts = {p["part"]: p for p in r.json["data"]["parts"]}
    assert (parts["api"]["action"], parts["api"]["agent_hooks"]) == ("kept", "cleaned")
    assert (parts["ui"]["action"], parts["ui"]["agent_hooks"]) == ("kept", "removed")
    assert json.loads((api / ".claude" / "settings.local.json").read_text()) == mine
    assert not (ui / ".claude").exists()  # hf made it, nothing else was in it
    assert (ui / "src/ui/late.py").read_text() == "late\n"
    again = hf("gc", "b1", "--json", cwd=repo)
    assert [p["agent_hooks"] for p in again.json["data"]["parts"]] == ["", "", ""]


def test_drop_takes_hfs_agent_hooks_out_of_the_dropped_parts(split3, hf, seal):
    repo, api = split3["repo"], split3["api"]
    open_with_claude_hooks(hf, seal, repo, "api")
    (api / ".claude" / "settings.local.json").write_text(json.dumps({
        **json.loads((api / ".claude" / "settings.local.json").read_text()),
        "model": "opus"}))  # the user added a setting meanwhile
    assert hf("drop", "b1/api", cwd=repo).code == 0
    assert json.loads((api / ".claude" / "settings.local.json").read_text()) == {
        "model": "opus"}


def test_gc_removes_parts_joined_three_way_but_keeps_work_made_after_the_join(repo, hf):
    """Main moved before the join: the joined files are merges, not the parts' own
    content, and yet the parts' work is in main; only what a part did after it is not."""
    write(repo, {"src/api/orders.py": "a\nb\nc\nd\ne\nf\n", "src/ui/app.js": "1\n2\n3\n4\n5\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "files to merge")
    assert hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
              cwd=repo).code == 0
    root = repo.parent / "repo.hf" / "b1"
    write(root / "api", {"src/api/orders.py": "A part\nb\nc\nd\ne\nf\n"})
    write(root / "ui", {"src/ui/app.js": "1 part\n2\n3\n4\n5\n"})
    for name in ("api", "ui"):
        assert hf("done", cwd=root / name).code == 0
    write(repo, {"src/api/orders.py": "a\nb\nc\nd\ne\nF main\n",
                 "src/ui/app.js": "1\n2\n3\n4\n5 main\n"})
    git(repo, "commit", "-qam", "main moves")
    assert hf("join", "b1", cwd=repo).code == 0
    assert (repo / "src/api/orders.py").read_text() == "A part\nb\nc\nd\ne\nF main\n"
    write(root / "ui", {"src/ui/app.js": "1 part\n2 after the join\n3\n4\n5\n"})
    r = hf("gc", "--json", cwd=repo)
    assert r.code == 0, r.err
    parts = {p["part"]: p for p in r.json["data"]["parts"]}
    assert parts["api"]["action"] == "removed", parts["api"]
    assert not (root / "api").exists()
    assert not git(repo, "branch", "--list", "hf/b1/api")
    assert parts["ui"]["action"] == "kept" and "src/ui/app.js" in parts["ui"]["why"]
    assert (root / "ui").exists()


@pytest.mark.parametrize("how", ["committed", "uncommitted", "committed, worktree gone"])
def test_gc_keeps_a_part_that_put_a_joined_file_back_as_it_was_after_the_join(
        split3, hf, how):
    """The agent takes back its own change after the join (a revert, a file it had
    added deleted): the path is as at the base again, but main has what was joined."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return 'buggy'\n",
                "src/api/extra.py": "added by the part\n"})
    git(api, "add", "-A")
    git(api, "commit", "-qm", "the part's change")
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    git(api, "checkout", "-q", "HEAD~1", "--", "src/api/orders.py")  # back to the base
    git(api, "rm", "-q", "src/api/extra.py")
    if how.startswith("committed"):
        git(api, "commit", "-qm", "revert: the change was wrong")
    if how.endswith("worktree gone"):  # (only the branch holds the revert)
        shutil.rmtree(api)
    r = hf("gc", "--json", cwd=repo)
    assert r.code == 0, r.err
    parts = {p["part"]: p for p in r.json["data"]["parts"]}
    assert parts["api"]["action"] == "kept", parts["api"]
    assert "src/api/orders.py" in parts["api"]["why"] and "src/api/extra.py" in parts["api"]["why"]
    assert git(repo, "branch", "--list", "hf/b1/api")
    assert parts["ui"]["action"] == "removed"  # (the others are integrated)
    forced = hf("gc", "--force", "--json", cwd=repo)
    assert forced.code == 0, forced.err
    rescue = {p["part"]: p for p in forced.json["data"]["parts"]}["api"]["rescue"]
    assert "buggy" not in git(repo, "show", f"{rescue}:src/api/orders.py")
    assert "src/api/extra.py" not in git(repo, "ls-tree", "-r", "--name-only", rescue)


def test_gc_removes_a_part_whose_joined_uncommitted_work_went_with_its_worktree(split3, hf):
    """The join took the part's uncommitted work (a commit of it on top of the
    branch); its worktree is gone since: the branch has commits after the join that
    do not touch that work, which is in main all the same."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return [1]\n"})  # uncommitted
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    git(api, "stash", "-q")  # (the joined edit set aside: the branch does not have it)
    write(api, {"src/api/users.py": "def users():\n    return [2]\n"})
    git(api, "commit", "-qam", "after the join")
    write(repo, {"src/api/users.py": "def users():\n    return [2]\n"})
    git(repo, "commit", "-qam", "main has the same")
    shutil.rmtree(api)
    r = hf("gc", "--json", cwd=repo)
    assert r.code == 0, r.err
    parts = {p["part"]: p for p in r.json["data"]["parts"]}
    assert parts["api"]["action"] in ("removed", "gone"), parts["api"]


def test_gc_force_keeps_a_part_holding_a_repository_of_its_own(split3, hf):
    """A rescue ref records a nested repository as a gitlink to a commit this
    repository does not have: forcing would lose its history and its files."""
    repo, api = split3["repo"], split3["api"]
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    vendor = api / "src/api/vendor"
    vendor.mkdir()
    git(vendor, "init", "-q")
    write(vendor, {"lib.py": "committed in the nested repository\n"})
    git(vendor, "add", "-A")
    git(vendor, "commit", "-qm", "vendored")
    write(vendor, {"wip.py": "not committed anywhere\n"})
    r = hf("gc", "--force", "--json", cwd=repo)
    assert r.code == 0, r.err
    parts = {p["part"]: p for p in r.json["data"]["parts"]}
    assert parts["api"]["action"] == "kept", parts["api"]
    assert "src/api/vendor" in parts["api"]["why"] and "move it out" in parts["api"]["why"]
    assert (vendor / "wip.py").exists() and git(vendor, "log", "--oneline")
    assert not git(repo, "for-each-ref", "refs/hf/rescue/b1/api")
    assert parts["ui"]["action"] == "removed"


def test_gc_forgets_a_part_whose_record_was_pointed_at_the_main_tree(split3, hf):
    """A process in the part rewrote git's record of its worktree to name the main
    tree's `.git`. Once gc removed the folder and the branch, git must not list the
    part any more (at the main tree's path, where `git worktree prune` never
    removes it), and the same part can be split again."""
    repo, api = split3["repo"], split3["api"]
    record = Path(git(api, "rev-parse", "--absolute-git-dir").strip())
    (record / "gitdir").write_text(f"{repo / '.git'}\n")
    assert hf("drop", "b1", cwd=repo).code == 0
    r = hf("gc", "--force", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert not api.exists() and not record.exists()
    assert "hf/b1/api" not in git(repo, "worktree", "list", "--porcelain")
    r = hf("split", "b1", "--part", "api=src/api/**", "--task", "again", cwd=repo)
    assert r.code == 0, r.err
    assert (api / "src/api").is_dir()


def test_gc_keeps_a_part_with_work_inside_a_submodule_checkout(tmp_path, hf):
    """Edits in a submodule's checkout are in no commit and no gitlink: the part is
    not integrated, and a rescue ref could not hold them either (--force keeps it)."""
    import shlex

    repo, vendor = split_with_submodule(tmp_path, hf)
    for part in ("sp", "ve"):
        assert hf("done", f"b1/{part}", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    write(vendor, {"vendor/lib/core.c": "v1\nthe agent's patch\n"})
    for force in ([], ["--force"]):
        r = hf("gc", *force, "--json", cwd=repo)
        assert r.code == 0, r.err
        parts = {p["part"]: p for p in r.json["data"]["parts"]}
        assert parts["ve"]["action"] == "kept" and parts["ve"]["why"].startswith(
            "work inside submodule checkout(s) vendor/lib, whose repository goes with the "
            "worktree: commit it there"), parts
    assert (vendor / "vendor/lib/core.c").read_text() == "v1\nthe agent's patch\n"
    # the hints, followed one after the other, keep the patch in main's submodule
    for command in parts["ve"]["why"].split("`")[1].split(" && "):
        assert subprocess.run(shlex.split(command), check=False).returncode == 0, command
    patched = git(vendor / "vendor/lib", "rev-parse", "HEAD").strip()
    r = hf("gc", "--json", cwd=repo)
    [kept] = [p for p in r.json["data"]["parts"] if p["part"] == "ve"]
    assert kept["action"] == "kept" and patched[:12] in kept["why"], kept
    keep = kept["why"].split("`")[1]
    assert subprocess.run(shlex.split(keep), check=False).returncode == 0, keep
    assert "the agent's patch" in git(repo / "vendor/lib", "show", "hf/b1/ve:core.c")
    # the part's moved gitlink is still not in main: kept, until forced (a rescue ref
    # records the gitlink, whose commit main's submodule now has)
    r = hf("gc", "--json", cwd=repo)
    [kept] = [p for p in r.json["data"]["parts"] if p["part"] == "ve"]
    assert kept["action"] == "kept" and kept["why"].startswith(
        "changes not in refs/heads/main: vendor/lib (--force"), kept
    r = hf("gc", "--force", "--json", cwd=repo)
    [forced] = [p for p in r.json["data"]["parts"] if p["part"] == "ve"]
    assert forced["action"] == "removed" and forced["rescue"], forced
    assert not vendor.exists()
    assert git(repo, "ls-tree", forced["rescue"], "vendor/lib").split()[2] == patched


def test_gc_keeps_a_part_whose_submodule_holds_a_commit_found_nowhere_else(tmp_path, hf):
    """git keeps a linked worktree's submodule repositories in that worktree's own git
    dir: an agent's commit in the part's submodule exists there alone. Put back to
    main's commit (the join takes no gitlink change), the part is integrated, yet gc,
    forced or not, keeps it and names the commit; its hint, followed, keeps the commit
    in the main tree's submodule on a branch, and the next gc removes the part."""
    import shlex

    repo, vendor = split_with_submodule(tmp_path, hf)
    lib = vendor / "vendor/lib"
    write(vendor, {"vendor/lib/core.c": "v1\nthe agent's fix\n"})
    git(lib, "commit", "-qam", "the agent's fix")
    fix = git(lib, "rev-parse", "HEAD").strip()
    git(vendor, "submodule", "update", "-q")  # (back to the commit main records)
    for part in ("sp", "ve"):
        assert hf("done", f"b1/{part}", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    for force in ([], ["--force"]):
        r = hf("gc", *force, "--json", cwd=repo)
        assert r.code == 0, r.err
        parts = {p["part"]: p for p in r.json["data"]["parts"]}
        assert parts["ve"]["action"] == "kept", parts
        assert f"its submodule vendor/lib has 1 commit(s) found nowhere else (the newest " \
               f"{fix[:12]}" in parts["ve"]["why"], parts["ve"]["why"]
        assert vendor.is_dir()
    hint = parts["ve"]["why"].split("`")[1]
    assert hint.startswith("git -C ") and hint.endswith(f"{fix}:refs/heads/hf/b1/ve"), hint
    assert subprocess.run(shlex.split(hint), capture_output=True, check=False).returncode == 0
    r = hf("gc", "--json", cwd=repo)
    parts = {p["part"]: p for p in r.json["data"]["parts"]}
    assert parts["ve"]["action"] == "removed", parts
    assert not vendor.exists()
    assert git(repo / "vendor/lib", "rev-parse", "refs/heads/hf/b1/ve").strip() == fix


def test_gc_keeps_a_part_a_process_works_in(split3, hf):
    """A shell or an agent hf did not start has its working directory in the part:
    its next write would go to a deleted folder."""
    import subprocess
    import sys

    repo = split3["repo"]
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    shell = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             cwd=split3["api"] / "src")
    try:
        r = hf("gc", "--json", cwd=repo)
        assert r.code == 0, r.err
        parts = {p["part"]: p for p in r.json["data"]["parts"]}
        assert parts["api"]["action"] == "kept"
        assert f"pid {shell.pid}" in parts["api"]["why"] and "in use" in parts["api"]["why"]
        assert split3["api"].exists() and not split3["ui"].exists()
    finally:
        shell.kill()
        shell.wait()
    r = hf("gc", "--json", cwd=repo)
    assert {p["part"]: p["action"] for p in r.json["data"]["parts"]}["api"] == "removed"


def test_the_files_a_gc_killed_after_a_parts_branch_went_left_are_counted(split3, hf):
    """Killed while a thread deleted a worktree (its branch already deleted): the next
    gc finds the part gone, deletes what is left of its files, and counts them."""
    from hf_fanout.worktrees import removal

    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/big.bin": "x" * 200_000})
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    api.rename(removal.aside_of(api))  # (as the killed gc left it)
    git(repo, "worktree", "prune")
    git(repo, "branch", "-D", "-q", "hf/b1/api")
    dry = hf("gc", "--dry-run", "--json", cwd=repo).json["data"]
    r = hf("gc", "--json", cwd=repo)
    assert r.code == 0, r.err
    part = {p["part"]: p for p in r.json["data"]["parts"]}["api"]
    assert part["action"] == "gone" and part["freed_bytes"] >= 200_000
    assert {p["part"]: p for p in dry["parts"]}["api"]["freed_bytes"] == part["freed_bytes"]
    assert not removal.aside_of(api).exists()


def test_gc_waits_for_the_commit_lock_and_gives_up_naming_its_holder(split3, hf):
    """A join, an undo or another gc holds the commit lock: gc checks and removes
    nothing meanwhile (an undo could bring back a part gc had judged integrated)."""
    from test_join_crash import lock_held_by_another_process

    repo = split3["repo"]
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    with lock_held_by_another_process(repo) as holder:
        r = hf("gc", "--wait", "0.3", "--json", cwd=repo)
        assert r.code == 75, r.out
        assert r.json["error"]["code"] == "lock_busy"
        assert f"pid {holder.pid}" in r.json["error"]["message"]
        assert "retry with a longer --wait" in r.json["error"]["hint"]  # (gc has --wait)
        assert all(split3[name].exists() for name in ("api", "ui", "docs"))
        assert git(repo, "branch", "--list", "hf/b1/api")
        dry = hf("gc", "--dry-run", "--json", cwd=repo)  # (changes nothing: no lock)
        assert dry.code == 0 and {p["action"] for p in dry.json["data"]["parts"]} == {
            "would-remove"}
    r = hf("gc", "--wait", "5", cwd=repo)
    assert r.code == 0, r.err
    assert not any(split3[name].exists() for name in ("api", "ui", "docs"))


def test_a_gc_killed_while_deleting_a_worktree_is_finished_by_the_next(split3, hf):
    """The worktree's folder is moved aside before its files go: a gc killed then leaves
    no half-deleted worktree git still lists, and the next gc finishes the job."""
    import os

    from conftest import hf_proc

    repo = split3["repo"]
    write(split3["api"], {"src/api/orders.py": "def orders():\n    return [1]\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    killed = hf_proc("gc", "b1", cwd=repo,
                     env={**os.environ, "HF_TEST_CRASH_AT": "removal-aside"})
    assert killed.returncode == -9, killed.stderr
    root = repo.parent / "repo.hf" / "b1"
    aside = sorted(p.name for p in root.iterdir())
    assert ".api.hf-removing" in aside and "api" not in aside  # (parts go in order)

    again = hf("gc", "b1", "--json", cwd=repo)

    assert again.code == 0, again.err
    assert {p["part"]: p["action"] for p in again.json["data"]["parts"]} == {
        "api": "removed", "ui": "removed", "docs": "removed"}
    assert not root.exists() and not (repo.parent / "repo.hf").exists()
    assert "repo.hf" not in git(repo, "worktree", "list")
    assert not git(repo, "branch", "--list", "hf/b1/*")
    assert (repo / "src/api/orders.py").exists()


def _object_count(repo: Path) -> dict[str, str]:
    """git's count of loose objects and packs."""
    lines = git(repo, "count-objects", "-v").splitlines()
    found = dict(line.split(": ", 1) for line in lines)
    return {key: found[key] for key in ("count", "packs")}


def test_gc_judges_a_worktree_as_add_would_record_it_and_writes_no_objects(split3, hf):
    repo, api, ui = split3["repo"], split3["api"], split3["ui"]
    before = (ui / "src/ui/app.js").read_text()
    write(ui, {"src/ui/app.js": "console.log('changed')\n"})
    git(ui, "commit", "-qam", "ui work")
    write(ui, {"src/ui/app.js": before})  # ... changed back, not committed
    (ui / "src/ui/latest.js").symlink_to("app.js")  # a new link main has as well
    (repo / "src/ui/latest.js").symlink_to("app.js")
    git(repo, "add", "src/ui/latest.js")
    git(repo, "commit", "-qm", "the same link, made by hand")
    write(api, {"src/api/extra.py": "only here\n"})
    assert hf("drop", "b1", cwd=repo).code == 0
    counted = _object_count(repo)
    r = hf("gc", "--json", cwd=repo)
    assert r.code == 0, r.err
    parts = {p["part"]: p for p in r.json["data"]["parts"]}
    assert parts["ui"]["action"] == "removed" and not ui.exists()
    assert parts["docs"]["action"] == "removed"
    assert parts["api"]["action"] == "kept"
    assert "src/api/extra.py" in parts["api"]["why"]
    assert (api / "src/api/extra.py").read_text() == "only here\n"
    # the check read the files: it left no blob, tree or pack behind
    assert _object_count(repo) == counted


def test_gc_keeps_a_worktree_git_cannot_read_although_its_head_file_can_be(split3, hf):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/unsaved.py": "only here\n"})
    assert hf("drop", "b1", cwd=repo).code == 0
    gitdir = Path(git(api, "rev-parse", "--absolute-git-dir").strip())
    (gitdir / "commondir").unlink()  # HEAD still names the branch; git sees no repository
    assert git(api, "status", check=False) == ""
    r = hf("gc", "--json", cwd=repo)
    assert r.code == 0, r.err
    parts = {p["part"]: p for p in r.json["data"]["parts"]}
    assert parts["api"]["action"] == "kept"
    assert "not a readable git worktree" in parts["api"]["why"]
    assert parts["ui"]["action"] == "removed"  # the others are collected all the same
    assert (api / "src/api/unsaved.py").read_text() == "only here\n"


def test_gc_keeps_a_worktree_that_became_a_repository_of_its_own(split3, hf):
    """An agent replaced the worktree's link with a fresh repository and committed
    there: that work is in no commit of this repository, and it stays."""
    repo, api = split3["repo"], split3["api"]
    assert hf("drop", "b1", cwd=repo).code == 0
    (api / ".git").unlink()
    git(api, "init", "-q", "-b", "hf/b1/api")  # the branch name its HEAD file had
    write(api, {"src/api/precious.py": "committed only here\n"})
    git(api, "add", "-A")
    git(api, "-c", "user.name=a", "-c", "user.email=a@a.invalid", "commit", "-qm", "work")
    r = hf("gc", "--json", cwd=repo)
    assert r.code == 0, r.err
    parts = {p["part"]: p for p in r.json["data"]["parts"]}
    assert parts["api"]["action"] == "kept"
    assert (api / "src/api/precious.py").read_text() == "committed only here\n"
    assert parts["ui"]["action"] == "removed"


def test_gc_forgets_a_removed_worktree_whose_head_was_detached_and_the_id_splits_again(
        split3, hf):
    """An agent left its worktree on a detached HEAD: gc removes the worktree and git's
    record of it (by its path, not by its branch), so the batch id splits again."""
    repo, api = split3["repo"], split3["api"]
    git(api, "checkout", "-q", "--detach")
    assert hf("drop", "b1", cwd=repo).code == 0
    r = hf("gc", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert {p["part"]: p["action"] for p in r.json["data"]["parts"]}["api"] == "removed"
    assert str(api) not in git(repo, "worktree", "list", "--porcelain")
    again = hf("split", "b1", "--part", "api=src/api/**", cwd=repo)
    assert again.code == 0, again.err


def test_a_part_whose_branch_is_locked_is_kept_whole_and_said(split3, hf):
    """A `.lock` file left beside a part's branch (a process killed in a git command
    there, or a hostile one) stops its deletion: gc keeps that part, worktree and
    branch, says why, and removes it once the lock is gone. Before, it said removed
    and left the branch."""
    repo = split3["repo"]
    write(split3["ui"], {"src/ui/view.py": "view = 2\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    lock = repo / ".git/refs/heads/hf/b1/ui.lock"
    lock.write_text("")
    r = hf("gc", "--json", cwd=repo)
    assert r.code == 0, r.err
    parts = {p["part"]: p for p in r.json["data"]["parts"]}
    assert parts["api"]["action"] == "removed"
    assert parts["ui"]["action"] == "kept"
    assert "is locked by" in parts["ui"]["why"] and "ui.lock" in parts["ui"]["why"]
    dry = hf("gc", "--dry-run", "--json", cwd=repo).json["data"]["parts"]
    assert {p["part"]: p["why"] for p in dry}["ui"] == parts["ui"]["why"]  # said the same
    assert split3["ui"].is_dir() and (split3["ui"] / "src/ui/view.py").exists()
    assert git(repo, "branch", "--list", "hf/b1/ui")
    lock.unlink()
    again = hf("gc", "--json", cwd=repo)
    assert {p["part"]: p["action"] for p in again.json["data"]["parts"]}["ui"] == "removed"
    assert not split3["ui"].exists()
    assert not git(repo, "branch", "--list", "hf/b1/ui")


def test_a_branch_git_will_not_delete_after_the_worktree_went_is_said(split3, hf):
    """The lock check passed, then git refused the deletion (here the repository's
    own reference-transaction hook): the part's line says its branch is still there,
    with the command that finishes it; it does not say removed and nothing more."""
    repo = split3["repo"]
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    hook = repo / ".git/hooks/reference-transaction"
    hook.write_text('#!/bin/sh\n[ "$1" = prepared ] || exit 0\n'
                    'if grep -q " refs/heads/hf/b1/ui$"; then echo "no, not that one" >&2; '
                    'exit 1; fi\nexit 0\n')
    hook.chmod(0o755)
    r = hf("gc", "--json", cwd=repo)
    assert r.code == 0, r.err
    ui = {p["part"]: p for p in r.json["data"]["parts"]}["ui"]
    assert ui["action"] == "removed" and "its branch is still there" in ui["why"]
    assert "git branch -D hf/b1/ui" in ui["why"]
    assert git(repo, "branch", "--list", "hf/b1/ui") and not split3["ui"].exists()


def test_a_part_branch_made_a_symbolic_ref_to_main_never_takes_main_with_it(split3, hf):
    """A process in the part writes `ref: refs/heads/main` into its branch's file.
    The join refuses that branch by name; gc deletes the part's branch itself, and
    main, its commits and its reflog stay."""
    repo = split3["repo"]
    main_tip = git(repo, "rev-parse", "main").strip()
    (repo / ".git/refs/heads/hf/b1/api").write_text("ref: refs/heads/main\n")
    for name in ("api", "ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    r = hf("join", "b1", cwd=repo)
    assert r.code == 1 and "its branch hf/b1/api is a symbolic ref to refs/heads/main" in r.err
    assert hf("drop", "b1", cwd=repo).code == 0
    r = hf("gc", "b1", "--force", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "rev-parse", "main").strip() == main_tip
    assert git(repo, "reflog", "show", "main", "--format=%H")
    assert not (repo / ".git/refs/heads/hf/b1/api").exists()


def test_a_part_whose_worktree_a_killed_gc_removed_is_collected_by_the_next(split3, hf):
    """The join took the part's uncommitted work on top of its branch; a gc killed
    between removing the worktree and deleting the branch leaves the branch alone,
    older than what main has. What it holds was all in the join: the next gc
    finishes the removal instead of keeping it as 'changes not in main'."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "committed\n"})
    git(api, "commit", "-qam", "committed")
    write(api, {"src/api/orders.py": "committed\nthen more, uncommitted\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    git(repo, "worktree", "remove", "--force", str(api))  # where the killed gc stopped
    r = hf("gc", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert "b1/api: removed (integrated)" in r.out.splitlines(), r.out
    assert not git(repo, "branch", "--list", "hf/b1/api")
    # a branch with a commit the join never took is still kept
    assert hf("split", "b2", "--part", "api2=src/api/**", cwd=repo).code == 0
    api2 = repo.parent / "repo.hf" / "b2" / "api2"
    write(api2, {"src/api/orders.py": "joined\n"})
    assert hf("done", cwd=api2).code == 0
    assert hf("join", "b2", cwd=repo).code == 0
    write(api2, {"src/api/orders.py": "after the join\n"})
    git(api2, "commit", "-qam", "after the join")
    git(repo, "worktree", "remove", "--force", str(api2))
    r = hf("gc", "b2", cwd=repo)
    assert "b2/api2: kept (changes not in refs/heads/main: src/api/orders.py" in r.out, r.out
