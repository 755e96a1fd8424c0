"""Every refusal of `hf join`: exit code, the offending paths named, nothing written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import git, hf_proc, new_repo, snapshot, split_with_submodule, write

from hf_fanout.guard.env import bin_dir


def all_done(hf: Any, split3: dict[str, Path]) -> None:
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0


def refused(hf: Any, repo: Path, *args: str, code: int = 1) -> tuple[dict[str, Any], str]:
    """Join (json and human): returns the error and the human stderr; proves nothing moved."""
    before = snapshot(repo)
    r = hf("join", "b1", *args, "--json", cwd=repo)
    assert r.code == code, r.out
    env = r.json
    assert env["ok"] is False and env["error"]["code"] and env["error"]["message"]
    assert snapshot(repo) == before
    human = hf("join", "b1", *args, cwd=repo)
    assert human.code == code
    assert human.out == ""
    assert human.err.startswith("hf: error: ")
    assert snapshot(repo) == before
    batch = json.loads((repo / ".git/hf/batches/b1/batch.json").read_text())
    assert batch["state"] == "running" and batch["joined_commit"] is None
    return env["error"], human.err


def test_changed_path_outside_ownership(split3, hf):
    repo = split3["repo"]
    write(split3["api"], {"src/api/ok.py": "ok\n", "src/ui/page.html": "<h1>api was here</h1>\n",
                          "stray.txt": "stray\n"})
    all_done(hf, split3)
    error, err = refused(hf, repo)
    assert error["code"] == "ownership_violation"
    for text in (error["message"], err.splitlines()[0]):
        assert "api" in text and "src/ui/page.html" in text and "stray.txt" in text
        assert "src/api/ok.py" not in text
    # beside the refusal: what each part would bring (also with --dry-run)
    dry = hf("join", "b1", "--dry-run", cwd=repo)
    assert dry.code == 1
    assert "part api: 3 changed file(s)" in dry.err and "added: src/api/ok.py" in dry.err
    assert "part docs: 0 changed file(s)" in dry.err


def test_a_main_branch_left_without_a_commit_is_refused(split3, hf):
    """The branch the batch goes into was made again as an orphan (no commit yet):
    the join and its dry run refuse in one line and nothing is written; with the
    branch back the join goes."""
    repo = split3["repo"]
    main = git(repo, "symbolic-ref", "--short", "HEAD").strip()
    write(split3["api"], {"src/api/orders.py": "the agent's\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    git(repo, "branch", "-q", "-m", main, "kept")
    git(repo, "switch", "-q", "--orphan", main)
    for extra in (["--dry-run"], []):
        r = hf("join", "b1", *extra, cwd=repo)
        assert r.code == 1, r.err
        assert r.err.splitlines() == [
            f"hf: error: the main tree's branch {main} has no commit yet: the join has no "
            "commit to go on",
            "hint: make its first commit (`git commit --allow-empty -m start`), then run the "
            "same hf command again"]
    assert git(repo, "rev-parse", "--verify", "-q", main, check=False) == ""
    git(repo, "switch", "-q", "kept")
    git(repo, "branch", "-q", "-m", "kept", main)
    assert hf("join", "b1", cwd=repo).code == 0
    assert git(repo, "show", f"{main}:src/api/orders.py") == "the agent's\n"


def test_outside_ownership_committed_on_the_branch(split3, hf):
    repo = split3["repo"]
    git(split3["docs"], "rm", "-q", "tools/run.sh")
    # --no-verify: a determined process gets past the guard hook; the join still refuses
    git(split3["docs"], "commit", "--no-verify", "-qm", "docs deletes a tool")
    all_done(hf, split3)
    error, _ = refused(hf, repo)
    assert error["code"] == "ownership_violation" and "tools/run.sh" in error["message"]


def test_the_hint_for_paths_outside_ownership_puts_them_back_through_the_guard(split3, hf):
    """A committed deletion and an uncommitted new file outside the part's ownership:
    the commands the refusal's hint names work in the part's tab, where the guard
    refuses `git restore --source` of an unowned file, and the join then goes."""
    repo, docs = split3["repo"], split3["docs"]
    base = git(repo, "rev-parse", "HEAD").strip()
    git(docs, "rm", "-q", "tools/run.sh")
    git(docs, "commit", "--no-verify", "-qm", "docs deletes a tool")
    # (a name like an option too: the hint's `rm` must not read it as one)
    write(docs, {"docs/guide.md": "guide\n", "stray.txt": "stray\n", "-rf": "dash\n"})
    all_done(hf, split3)
    error, _ = refused(hf, repo)
    hint = error["hint"]
    assert "put them back as the part's base has them, in docs's worktree" in hint, hint
    commands = hint.split("`")[1]
    tab = {**os.environ, "PATH": f"{bin_dir()}{os.pathsep}{os.environ['PATH']}",
           "HF_PYTHON": sys.executable}
    refused_restore = subprocess.run(
        ["git", "restore", f"--source={base}", "--", "tools/run.sh"], cwd=docs,
        env=tab, capture_output=True, text=True, check=False)
    assert refused_restore.returncode != 0  # (the way the hint does not send you)
    done = subprocess.run(["bash", "-c", commands], cwd=docs, env=tab, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 0, r.out
    assert (repo / "tools/run.sh").is_file() and not (repo / "stray.txt").exists()
    assert not (docs / "-rf").exists() and not (repo / "-rf").exists()
    assert (repo / "docs/guide.md").read_text() == "guide\n"
    # the join brought only the owned file: the tool is back as it was, mode and all
    assert git(repo, "diff", "--name-only", base, "HEAD").split() == ["docs/guide.md"]
    # the new files were not thrown away: the tar beside the worktree holds them
    kept = docs.parent / "docs.outside.tar"
    assert f"new files are kept in {kept}" in hint, hint
    listed = subprocess.run(["tar", "-tf", str(kept)], capture_output=True, text=True,
                            check=True).stdout.split()
    assert sorted(listed) == ["-rf", "stray.txt"]


def test_a_file_moved_out_of_the_part_is_moved_back_by_the_hint_with_its_edits(split3, hf):
    """The api part moved its file into ui's folder and edited it: refused, and the
    hint moves it back (not `rm`, which would throw the edit away); the join then
    brings the edit to the owned path."""
    repo, api = split3["repo"], split3["api"]
    git(api, "mv", "src/api/orders.py", "src/ui/orders.py")
    with (api / "src/ui/orders.py").open("a") as f:
        f.write("# the agent's new work\n")
    all_done(hf, split3)
    error, _ = refused(hf, repo)
    assert error["code"] == "ownership_violation"
    hint = error["hint"]
    assert "src/ui/orders.py is its src/api/orders.py moved out of its files" in hint, hint
    commands = hint.split("`")[1]
    assert "rm" not in commands, commands
    tab = {**os.environ, "PATH": f"{bin_dir()}{os.pathsep}{os.environ['PATH']}",
           "HF_PYTHON": sys.executable}
    done = subprocess.run(["bash", "-c", commands], cwd=api, env=tab, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "src/api/orders.py").read_text().endswith("# the agent's new work\n")
    assert not (repo / "src/ui/orders.py").exists()


def test_two_parts_changing_one_path(split3, hf):
    repo = split3["repo"]
    # Ownership at split is disjoint; a record edited afterwards is how two parts
    # can both claim a path (the join must not trust the split alone).
    record = repo / ".git/hf/batches/b1/parts/ui.json"
    data = json.loads(record.read_text())
    data["owns"] = ["src/**"]
    record.write_text(json.dumps(data))
    write(split3["api"], {"src/api/orders.py": "# api\n"})
    write(split3["ui"], {"src/api/orders.py": "# ui\n", "src/ui/app.js": "ui\n"})
    all_done(hf, split3)
    error, _ = refused(hf, repo)
    assert error["code"] == "tamper_detected"
    assert "b1/ui ownership changed: ['src/ui/**'] -> ['src/**']" in error["message"]
    # a person who accepts the edited record still gets no silent overlap
    assert hf("doctor", "--accept", cwd=repo).code == 0
    error, err = refused(hf, repo)
    assert error["code"] == "join_refused"
    for text in (error["message"], err.splitlines()[0]):
        assert "src/api/orders.py" in text and "api" in text and "ui" in text
        assert "src/ui/app.js" not in text


def test_gitlink_change(split3, hf, tmp_path):
    repo = split3["repo"]
    sub = split3["api"] / "src/api/vendored"
    sub.mkdir()
    git(sub, "init", "-q", "-b", "main")
    write(sub, {"x": "x\n"})
    git(sub, "add", "x")
    git(sub, "commit", "-qm", "sub")
    git(split3["api"], "add", "src/api/vendored")
    git(split3["api"], "commit", "-qm", "add a submodule")
    assert "160000" in git(split3["api"], "ls-tree", "HEAD", "src/api/vendored")
    all_done(hf, split3)
    error, err = refused(hf, repo)
    assert "submodule" in error["message"] and "src/api/vendored" in error["message"]
    assert "src/api/vendored" in err


@pytest.mark.parametrize("committed", [False, True], ids=["untracked", "committed"])
def test_a_repository_an_agent_made_in_its_part_joins_as_files_after_the_hint(
        split3, hf, committed):
    """`cargo new`, `git init` inside a part: a nested repository is a gitlink, which
    the join refuses; the hint's command turns it into plain files the join takes."""
    repo, api = split3["repo"], split3["api"]
    sub = api / "src/api/newpkg"
    sub.mkdir()
    git(sub, "init", "-q", "-b", "main")
    write(sub, {"lib.rs": "fn main() {}\n"})
    git(sub, "add", "lib.rs")
    git(sub, "commit", "-qm", "new package")
    if committed:
        git(api, "add", "src/api/newpkg")
        git(api, "commit", "-qm", "add the package")
    all_done(hf, split3)
    error, _ = refused(hf, repo)
    assert "submodule" in error["message"]
    command = error["hint"].split("`")[1]
    assert command == ("git rm -q --cached --ignore-unmatch src/api/newpkg && "
                       "rm -rf src/api/newpkg/.git"), error["hint"]
    tab = {**os.environ, "PATH": f"{bin_dir()}{os.pathsep}{os.environ['PATH']}",
           "HF_PYTHON": sys.executable}  # (through the guard, as in the part's tab)
    subprocess.run(["sh", "-c", command], cwd=api, env=tab, check=True)
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 0, r.out
    assert (repo / "src/api/newpkg/lib.rs").read_text() == "fn main() {}\n"
    assert git(repo, "ls-files", "-s", "src/api/newpkg").split()[0] == "100644"


def test_main_tree_unstaged_edit_on_an_affected_path(split3, hf):
    repo = split3["repo"]
    write(split3["api"], {"src/api/orders.py": "# part\n", "src/api/users.py": "# part\n"})
    write(repo, {"src/api/orders.py": "# my own unstaged edit\n"})
    all_done(hf, split3)
    error, err = refused(hf, repo)
    assert error["code"] == "join_refused"
    assert "src/api/orders.py" in error["message"] and "src/api/orders.py" in err
    assert "src/api/users.py" not in error["message"]


def test_main_tree_staged_edit_on_an_affected_path(split3, hf):
    repo = split3["repo"]
    write(split3["docs"], {"docs/guide.md": "# part\n"})
    write(repo, {"docs/guide.md": "# staged by me\n"})
    git(repo, "add", "docs/guide.md")
    all_done(hf, split3)
    error, _ = refused(hf, repo)
    assert "docs/guide.md" in error["message"]


def test_main_tree_staged_delete_on_a_path_the_part_deletes(split3, hf):
    repo = split3["repo"]
    git(split3["docs"], "rm", "-q", "docs/old.md")
    git(repo, "rm", "-q", "--cached", "docs/old.md")  # staged delete, file kept
    all_done(hf, split3)
    error, _ = refused(hf, repo)
    assert "docs/old.md" in error["message"]


def test_a_refused_path_with_a_newline_in_its_name_is_named_on_one_line(split3, hf):
    repo = split3["repo"]
    write(split3["ui"], {"src/ui/two\nlines.js": "// part\n"})
    write(repo, {"src/ui/two\nlines.js": "// mine, not tracked\n"})
    all_done(hf, split3)
    _, err = refused(hf, repo)
    lines = err.splitlines()
    assert lines[0].endswith('would write: "src/ui/two\\nlines.js"')  # as git quotes it
    assert lines[1].startswith("hint: ")
    assert '  added: "src/ui/two\\nlines.js"' in lines  # the preview, one line per path
    assert all(line.startswith(("hf: error:", "hint:", "part ", "  ")) for line in lines)


def test_untracked_file_in_the_main_tree_at_an_added_path(split3, hf):
    repo = split3["repo"]
    write(split3["ui"], {"src/ui/new.js": "// part\n"})
    write(repo, {"src/ui/new.js": "// mine, not tracked\n"})
    all_done(hf, split3)
    error, _ = refused(hf, repo)
    assert "src/ui/new.js" in error["message"]
    assert (repo / "src/ui/new.js").read_text() == "// mine, not tracked\n"


@pytest.mark.parametrize("many", [False, True])  # (more than 32 paths: another status)
def test_an_ignored_file_in_the_main_tree_where_a_part_adds_one_is_refused_and_kept(
        split3, hf, many):
    """The person's `.env` in the main tree is ignored by git; a part adds its own
    `src/ui/.env`. git would take the ignored file as expendable: the join refuses
    naming it (the undo would then have removed it for good), and after the move
    the hint names, the join goes and the person's file is kept aside."""
    repo, ui = split3["repo"], split3["ui"]
    write(repo, {".gitignore": ".env\n"})
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore .env")
    assert hf("doctor", "--accept", cwd=repo).code == 0
    extra = {f"src/ui/gen{i}.js": f"// {i}\n" for i in range(40)} if many else {}
    write(ui, {"src/ui/.env": "PART=1\n", **extra})
    write(repo, {"src/ui/.env": "SECRET=mine\n"})
    all_done(hf, split3)
    error, _ = refused(hf, repo)
    assert error["message"] == (
        "the main tree has files git ignores where this join writes new files: src/ui/.env "
        "(the join would overwrite them, and an undo remove them)"), error
    assert (repo / "src/ui/.env").read_text() == "SECRET=mine\n"
    move = error["hint"].split("`", 2)[1]
    subprocess.run(["bash", "-c", move], cwd=repo, check=True)
    assert hf("join", "b1", cwd=repo).code == 0
    assert (repo / "src/ui/.env.mine").read_text() == "SECRET=mine\n"
    assert (repo / "src/ui/.env").read_text() == "PART=1\n"


@pytest.mark.parametrize("many", [False, True])  # (more than 32 paths: another status)
@pytest.mark.parametrize("in_the_way", ["file", "symlink"])
def test_an_untracked_file_where_a_part_makes_a_folder_is_refused_and_kept(
        split3, hf, in_the_way, many):
    repo = split3["repo"]
    added = {f"src/ui/widgets/w{i}.js": "// part\n" for i in range(40 if many else 1)}
    write(split3["ui"], added)
    if in_the_way == "file":
        write(repo, {"src/ui/widgets": "mine, not tracked\n"})
    else:
        (repo / "src/ui/widgets").symlink_to(repo / "docs")  # a link to a folder
    all_done(hf, split3)
    error, err = refused(hf, repo)
    assert "uncommitted edits" in error["message"] and "src/ui/widgets" in err
    assert hf("join", "b1", "--json", cwd=repo).json["data"]["paths"] == ["src/ui/widgets"]


@pytest.mark.parametrize("many", [False, True])
@pytest.mark.parametrize("mark", ["--skip-worktree", "--assume-unchanged"])
def test_an_edit_git_status_does_not_show_is_refused_and_kept(split3, hf, mark, many):
    """A file marked skip-worktree or assume-unchanged (a local override): `git
    status` is silent about its edits, and `git merge` refuses to overwrite them."""
    repo = split3["repo"]
    write(split3["api"], {"src/api/orders.py": "# part\n",
                          **{f"src/api/more/m{i}.py": "" for i in range(40 if many else 0)}})
    git(repo, "update-index", mark, "src/api/orders.py")
    write(repo, {"src/api/orders.py": "# my local override\n"})
    assert "orders.py" not in git(repo, "status", "--porcelain")
    all_done(hf, split3)
    error, _ = refused(hf, repo)
    assert "skip-worktree or assume-unchanged" in error["message"]
    assert hf("join", "b1", "--json", cwd=repo).json["data"]["paths"] == ["src/api/orders.py"]
    assert "--no-skip-worktree" in error["hint"]


def test_a_marked_file_without_edits_is_joined(split3, hf):
    repo = split3["repo"]
    write(split3["api"], {"src/api/orders.py": "# part\n"})
    git(repo, "update-index", "--assume-unchanged", "src/api/orders.py")
    all_done(hf, split3)
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "src/api/orders.py").read_text() == "# part\n"
    assert git(repo, "show", "HEAD:src/api/orders.py") == "# part\n"


def test_part_not_done_without_partial(split3, hf):
    repo = split3["repo"]
    write(split3["api"], {"src/api/new.py": "n = 1\n"})
    assert hf("done", cwd=split3["api"]).code == 0
    assert hf("blocked", "--reason", "no schema", cwd=split3["ui"]).code == 0
    error, err = refused(hf, repo)
    assert error["code"] == "join_refused"
    assert "ui (blocked)" in error["message"] and "docs (running)" in error["message"]
    assert "api" not in error["message"].split(":", 1)[1]
    assert "--partial" in error["hint"] and "--partial" in err


def test_partial_with_no_part_done(split3, hf):
    error, _ = refused(hf, split3["repo"], "--partial")
    assert "no part" in error["message"]


def test_missing_worktree(split3, hf):
    repo = split3["repo"]
    write(split3["api"], {"src/api/new.py": "n = 1\n"})
    all_done(hf, split3)
    shutil.rmtree(split3["ui"])
    error, err = refused(hf, repo)
    assert "missing worktree" in error["message"]
    assert "ui" in error["message"] and str(split3["ui"]) in error["message"]
    assert str(split3["ui"]) in err
    # the hint's commands bring it back, and the join then goes through
    restore = error["hint"].split("`")[1]
    assert restore.startswith("git worktree prune && git worktree add ")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(restore.replace("hf guard", f"{sys.executable} -m hf_fanout guard"),
                          shell=True, cwd=repo, env=env, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "src/api/new.py").read_text() == "n = 1\n"


def test_worktree_switched_off_its_branch(split3, hf):
    repo = split3["repo"]
    nohooks = ("-c", "core.hooksPath=/dev/null")  # a determined process, past the guard hooks
    git(split3["api"], *nohooks, "switch", "-q", "-c", "elsewhere")
    write(split3["api"], {"src/api/new.py": "n = 1\n"})
    git(split3["api"], "add", "-A")
    git(split3["api"], *nohooks, "commit", "-qm", "work on the wrong branch")
    all_done(hf, split3)
    error, _ = refused(hf, repo)
    assert "api" in error["message"] and "hf/b1/api" in error["message"]


def test_main_tree_on_another_branch(split3, hf):
    repo = split3["repo"]
    all_done(hf, split3)
    git(repo, "switch", "-q", "-c", "feature")
    error, _ = refused(hf, repo)
    assert "refs/heads/feature" in error["message"] and "git switch main" in error["hint"]


def test_unknown_batch_and_bad_input(split3, hf):
    repo = split3["repo"]
    before = snapshot(repo)
    r = hf("join", "nope", "--json", cwd=repo)
    assert r.code == 1 and r.json["error"]["code"] == "not_found"
    r = hf("join", "b1", "--wait", "soon", cwd=repo)
    assert r.code == 2
    r = hf("join", cwd=repo)
    assert r.code == 2
    assert snapshot(repo) == before


@pytest.mark.parametrize("leave", [60_000, 400_000])
def test_a_full_disk_during_a_join_is_one_line_and_changes_nothing(small_disk, hf, leave):
    """Out of space while the join writes its objects (less room) or the main tree's
    files (more room): one line, and the main tree, index and HEAD as they were."""
    from conftest import small_repo

    repo = small_repo(small_disk)
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    api = repo.parent / "repo.hf/b1/api"
    write(api, {"src/api/blob.bin": os.urandom(300_000),
                "src/api/orders.py": "def orders():\n    return [1]\n"})
    assert hf("done", cwd=api).code == 0
    before = snapshot(repo)
    small_disk.fill(leave=leave)
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 1, r.out
    assert r.json["error"]["code"] == "no_space", r.json["error"]
    assert "\n" not in r.json["error"]["message"]
    assert snapshot(repo) == before
    assert not (repo / ".git/index.lock").exists()
    assert not (repo / ".git/hf/journal/join.json").exists()
    small_disk.free()
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "src/api/blob.bin").read_bytes() == (api / "src/api/blob.bin").read_bytes()
    assert git(repo, "status", "--porcelain") == ""


def test_symlinks_out_of_the_repository_or_into_git_are_refused_unless_allowed(split3, hf):
    repo, api = split3["repo"], split3["api"]
    (api / "src/api/outside").symlink_to("../../../elsewhere")
    (api / "src/api/into-git").symlink_to("../../.git/config")
    (api / "src/api/absolute").symlink_to("/etc/passwd")
    (api / "src/api/inside").symlink_to("users.py")
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    before = snapshot(repo)
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 1, r.out
    message = r.json["error"]["message"]
    assert message.startswith("symbolic links point out of the repository or into .git")
    for shown in ("src/api/outside (outside the repository)", "src/api/into-git (into .git)",
                  "src/api/absolute (an absolute path)"):
        assert shown in message
    assert "inside" not in message.replace("inside the repository", "")
    assert "--allow-outside-symlinks" in r.json["error"]["hint"]
    assert snapshot(repo) == before
    r = hf("join", "b1", "--allow-outside-symlinks", cwd=repo)
    assert r.code == 0, r.err
    assert os.readlink(repo / "src/api/absolute") == "/etc/passwd"
    assert os.readlink(repo / "src/api/inside") == "users.py"


@pytest.mark.parametrize("how", ["cut-off", "merge-conflict"])
def test_a_part_whose_sync_is_stopped_is_refused(split3, hf, how):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return ['part']\n"})
    git(api, "commit", "-qam", "api: orders")
    write(api, {"src/api/search.py": "uncommitted\n"})
    if how == "cut-off":  # killed after setting the work aside, before git's step
        write(repo, {"tools/run.sh": "#!/bin/sh\necho moved\n"})
        git(repo, "commit", "-qam", "main: run")
        killed = hf_proc("sync", "b1/api", cwd=repo,
                         env={**os.environ, "HF_TEST_CRASH_AT": "sync-cleared"})
        assert killed.returncode < 0 and not (api / "src/api/search.py").exists()
    else:  # its files hold git's conflict markers
        write(repo, {"src/api/orders.py": "def orders():\n    return ['main']\n"})
        git(repo, "commit", "-qam", "main: orders")
        assert hf("sync", "b1/api", "--merge", cwd=repo).code == 1
    all_done(hf, split3)
    error, human = refused(hf, repo, "--partial")
    assert error["message"] == "part 'api': its `hf sync` is stopped, not finished"
    assert "`hf sync b1/api --continue`" in human and "`hf sync b1/api --abort`" in human
    # the way out the hint names: the sync taken back, the work is in the worktree again
    assert hf("sync", "b1/api", "--abort", cwd=repo).code == 0
    assert (api / "src/api/search.py").read_text() == "uncommitted\n"


def test_a_worktree_that_became_a_repository_of_its_own_is_refused(split3, hf):
    """An agent replaced the worktree's link with a fresh repository on a branch of
    the part's name: its commits are not this repository's, and nothing of it is
    joined (the part's branch here says nothing of what the folder holds)."""
    repo, api = split3["repo"], split3["api"]
    all_done(hf, split3)
    (api / ".git").unlink()
    git(api, "init", "-q", "-b", "hf/b1/api")
    write(api, {"src/api/elsewhere.py": "committed in another repository\n"})
    git(api, "add", "-A")
    git(api, "-c", "user.name=a", "-c", "user.email=a@a.invalid", "commit", "-qm", "work")
    error, err = refused(hf, repo)
    assert "api" in error["message"] and "not a worktree of this repository" in error["message"]
    assert str(api) in err.splitlines()[0]
    assert "hf drop b1/api" in error["hint"]
    assert (api / "src/api/elsewhere.py").exists()


def test_a_worktree_whose_git_link_is_gone_is_refused_with_the_repair(split3, hf):
    """An agent deleted the worktree's `.git` file: the hint's `git worktree repair`
    puts it back, and the join then takes the part's work."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/new.py": "n = 1\n"})
    all_done(hf, split3)
    (api / ".git").unlink()
    error, err = refused(hf, repo)
    assert "the .git link of a worktree is gone" in error["message"] and str(api) in err
    repair = error["hint"].split("`")[1]
    assert repair == f"git worktree repair {api}"
    subprocess.run(repair, shell=True, cwd=repo, capture_output=True, check=False)
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "src/api/new.py").read_text() == "n = 1\n"


def test_work_inside_a_submodule_checkout_is_refused_not_dropped(tmp_path, hf):
    """The part's agent edited a file of the submodule's checkout: `git status` says
    "modified content", but no gitlink records it, so a join would take nothing of
    it (and say nothing). It is refused, named, with the ways out."""
    repo, vendor = split_with_submodule(tmp_path, hf)
    write(vendor, {"vendor/lib/core.c": "v1\nthe agent's patch\n", "vendor/lib/new.c": "n\n"})
    write(tmp_path / "repo.hf" / "b1" / "sp", {"src/a.py": "a2\n"})
    for part in ("sp", "ve"):
        assert hf("done", f"b1/{part}", cwd=repo).code == 0
    head = git(repo, "rev-parse", "HEAD")
    r = hf("join", "b1", cwd=repo)
    assert r.code == 1
    assert "part 've': work inside submodule(s) vendor/lib" in r.err
    assert "git -C vendor/lib stash -u" in r.err
    assert git(repo, "rev-parse", "HEAD") == head
    # set aside as the hint says: the rest joins, the patch is in the submodule's stash
    git(vendor / "vendor/lib", "stash", "-q", "-u")
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "src/a.py").read_text() == "a2\n"
    assert git(vendor / "vendor/lib", "stash", "list")


def test_a_part_on_a_detached_head_ahead_of_its_branch_is_told_how_to_keep_it(split3, hf,
                                                                                tmp_path):
    """The agent committed on its branch, detached, committed again: the join refuses
    (its worktree is not on its branch) and the hint's command takes the detached
    commit onto the branch; `git switch BRANCH` would have left it behind."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "one\n"})
    git(api, "commit", "-qam", "on the branch")
    git(api, "checkout", "-q", "--detach")
    write(api, {"src/api/orders.py": "two\n"})
    git(api, "commit", "-qam", "detached")
    all_done(hf, split3)
    error, err = refused(hf, repo)
    assert "HEAD has commits beyond the branch" in error["message"]
    hint = error["hint"]
    command = hint[hint.index("`") + 1:hint.rindex("`")]
    assert command == f"git -C {api} switch -C hf/b1/api"
    subprocess.run(command, shell=True, check=True, capture_output=True)
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "src/api/orders.py").read_text() == "two\n"


def test_a_join_waits_for_a_merge_under_way_in_the_main_tree(split3, hf):
    """The person is in the middle of a conflicted `git merge` in the main tree: a
    join commit on top would become the merge's first parent. Refused, with git's
    own ways to finish; once the merge is aborted the join goes ahead."""
    repo = split3["repo"]
    git(repo, "switch", "-q", "-c", "side")
    write(repo, {"tools/run.sh": "side\n"})
    git(repo, "commit", "-qam", "side")
    git(repo, "switch", "-q", "main")
    write(repo, {"tools/run.sh": "main\n"})
    git(repo, "commit", "-qam", "main")
    git(repo, "merge", "side", check=False)
    assert (repo / ".git" / "MERGE_HEAD").exists()
    write(split3["api"], {"src/api/orders.py": "joined\n"})
    all_done(hf, split3)
    error, _ = refused(hf, repo)
    assert error["message"] == "the main tree is in the middle of a `git merge`"
    assert "`git merge --abort`" in error["hint"]
    git(repo, "merge", "--abort")
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "src/api/orders.py").read_text() == "joined\n"


def test_a_batch_split_from_a_detached_head_says_how_to_go_back_to_it(repo, hf):
    base = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "--detach")
    assert hf("split", "b1", "--part", "api=src/api/**", "--task", "t", cwd=repo).code == 0
    assert hf("done", "b1/api", cwd=repo).code == 0
    git(repo, "switch", "-q", "main")
    r = hf("join", "b1", cwd=repo)
    assert r.code == 1
    assert "the main tree is on refs/heads/main, batch 'b1' was split from a detached HEAD" \
        in r.err
    command = r.err[r.err.index("`") + 1:r.err.rindex("`")]
    assert command == f"git switch --detach {base[:12]}"
    git(repo, *command.split()[1:])
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err


def test_a_main_branch_renamed_after_the_split_is_named_gone_with_a_way_that_works(split3, hf):
    """`git branch -m main trunk` after the split: the refusal says the batch's
    branch no longer exists, and the commands its hint names let the join go
    (before: the hint was `git switch main`, a branch that is not there)."""
    repo = split3["repo"]
    write(split3["api"], {"src/api/orders.py": "def orders():\n    return [9]\n"})
    all_done(hf, split3)
    git(repo, "branch", "-m", "main", "trunk")
    error, _ = refused(hf, repo)
    assert error["message"] == ("batch 'b1' was split from refs/heads/main, which no longer "
                                "exists (renamed or deleted)")
    rename, back = error["hint"].split("`")[1::2]
    assert (rename, back) == ("git branch -m trunk main", "git branch -m main trunk")
    subprocess.run(rename.split(), cwd=repo, check=True)
    assert hf("join", "b1", cwd=repo).code == 0
    subprocess.run(back.split(), cwd=repo, check=True)
    assert "return [9]" in git(repo, "show", "trunk:src/api/orders.py")


@pytest.mark.parametrize("sparse", [False, True], ids=["full", "sparse"])
def test_files_put_in_a_submodule_folder_not_checked_out_are_refused_and_kept(
        tmp_path, hf, sparse):
    """The part's worktree has the submodule's folder empty (not checked out); the
    agent filled it. `git status` shows nothing there and `git add` takes nothing:
    the join refuses, naming it, and gc keeps the part instead of calling it
    integrated and deleting the files. A sparse part without `.gitmodules` in
    its folder is checked the same way."""
    lib = new_repo(tmp_path / "lib", {"core.c": "v1\n"}, "lib")
    repo = new_repo(tmp_path / "repo", {"src/a.py": "a\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib),
        "vendor/lib")
    git(repo, "commit", "-qm", "add the submodule")
    assert hf("split", "b1", "--part", "sp=src/**", "--part", "ve=vendor/**",
              *(["--sparse"] if sparse else []), cwd=repo).code == 0
    vendor = tmp_path / "repo.hf" / "b1" / "ve"
    assert (vendor / ".gitmodules").exists() is not sparse
    (vendor / "vendor/lib").mkdir(parents=True, exist_ok=True)
    assert not any((vendor / "vendor/lib").iterdir())
    write(vendor, {"vendor/lib/agent_work.c": "the agent's work\n"})
    shown = {p["name"]: p for p in hf("status", "b1", "--json", cwd=repo).json["data"][
        "batches"][0]["parts"]}
    # (status asks only where `.gitmodules` is in the folder: the join asks the sparse one)
    assert shown["ve"]["changed"] == (0 if sparse else 1) and shown["sp"]["changed"] == 0
    for part in ("sp", "ve"):
        assert hf("done", f"b1/{part}", cwd=repo).code == 0
    head = git(repo, "rev-parse", "HEAD")
    r = hf("join", "b1", cwd=repo)
    assert r.code == 1
    assert r.err.startswith("hf: error: part 've': files in the folder of submodule(s) "
                            "vendor/lib, which is not checked out in the part"), r.err
    assert git(repo, "rev-parse", "HEAD") == head
    assert hf("drop", "b1", cwd=repo).code == 0
    r = hf("gc", "b1", cwd=repo)
    assert r.code == 0 and "b1/ve: kept" in r.out, r.out
    r = hf("gc", "b1", "--force", cwd=repo)  # a rescue ref could not hold them either
    assert r.code == 0 and ("b1/ve: kept (files in the folder of submodule(s) vendor/lib, "
                            "which is not checked out") in r.out, r.out
    assert (vendor / "vendor/lib/agent_work.c").read_text() == "the agent's work\n"


@pytest.mark.parametrize("committed", [False, True], ids=["uncommitted", "committed"])
def test_a_submodule_moved_in_a_part_is_refused_with_a_hint_that_brings_its_commit(
        tmp_path, hf, committed):
    """The agent committed in the part's submodule (whose repository is in the part's
    own git dir: main's submodule lacks the commit). The join refuses the gitlink
    change; its hint's command brings the commit into the main tree's submodule and
    checks it out there; after the person commits the new gitlink in the main tree and
    puts the part's back as the hint says, the join goes through with main's gitlink."""
    import shlex

    repo, vendor = split_with_submodule(tmp_path, hf)
    lib = vendor / "vendor/lib"
    write(vendor, {"vendor/lib/core.c": "v1\nthe agent's fix\n"})
    git(lib, "commit", "-qam", "the agent's fix")
    fix = git(lib, "rev-parse", "HEAD").strip()
    if committed:
        git(vendor, "commit", "-qam", "use the fixed lib")
    for part in ("sp", "ve"):
        assert hf("done", f"b1/{part}", cwd=repo).code == 0
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 1 and r.json["error"]["message"] == (
        "submodule (gitlink) changes cannot be joined: ve: vendor/lib"), r.out
    hint = r.json["error"]["hint"]
    assert hint.count("`") == 6, hint
    bring = hint.split("`")[1]
    for command in bring.split(" && "):
        assert subprocess.run(shlex.split(command), capture_output=True,
                              check=False).returncode == 0, command
    assert git(repo / "vendor/lib", "rev-parse", "HEAD").strip() == fix
    git(repo, "commit", "-qam", "the fixed lib")
    put_back = hint.split("`")[5 if committed else 3]
    if committed:
        assert put_back == "hf sync b1/ve"
        assert hf("sync", "b1/ve", cwd=repo).code == 0
    else:
        assert put_back == "git submodule update -- vendor/lib"
        git(vendor, *shlex.split(put_back)[1:])
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "ls-tree", "HEAD", "vendor/lib").split()[2] == fix


def test_a_name_with_terminal_escapes_is_shown_quoted_and_the_hint_runs_as_printed(
        split3, hf):
    """A part made a file whose name erases the terminal's line (ESC [2K): `hf
    status`, `hf diff` and the join's refusal show it quoted, never raw, and the
    hint's command (bash's $'...') removes exactly that file."""
    repo, api = split3["repo"], split3["api"]
    name = "README2\x1b[2K"
    write(api, {name: "not the part's\n", "src/api/orders.py": "mine\n"})
    all_done(hf, split3)
    quoted = '"README2\\033[2K"'
    status = hf("status", cwd=repo)
    assert f"  api: outside its ownership: {quoted}" in status.out.splitlines()
    diff = hf("diff", "b1", "api", cwd=repo)
    assert f"#   {quoted} (owned by no part)" in diff.out.splitlines()
    error, err = refused(hf, repo)
    assert "\x1b" not in status.out + diff.out + err
    command = err.split("worktree: `", 1)[1].split("`", 1)[0]
    kept = api.parent / "api.outside.tar"
    assert command == f"tar -rf {kept} -- $'README2\\033[2K' && rm -f -- $'README2\\033[2K'"
    subprocess.run(["bash", "-c", command], cwd=api, check=True)
    assert not (api / name).exists() and (api / "src/api/orders.py").exists()
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "show", "HEAD:src/api/orders.py") == "mine\n"


def test_a_part_whose_head_was_pointed_at_another_parts_branch_is_said_and_refused(
        split3, hf):
    """With the guard bypassed, an agent pointed its worktree's HEAD at another part's
    branch: `hf status` says so, the join refuses naming both branches, and the
    hint's `git switch` (not a `branch -f`, which would move its branch onto the
    other part's commits) puts it back."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "mine\n"})
    git(api, "commit", "-qam", "api work")
    subprocess.run(["git", "symbolic-ref", "HEAD", "refs/heads/hf/b1/ui"], cwd=api,
                   check=True, env={**os.environ, "PATH": "/usr/bin:/bin"})
    status = hf("status", cwd=repo)
    assert (f"  api: its worktree is on the branch hf/b1/ui, not on its own hf/b1/api: "
            f"`git -C {api} switch hf/b1/api` puts it back; the join refuses it until "
            "then") in status.out.splitlines(), status.out
    all_done(hf, split3)
    error, err = refused(hf, repo)
    assert err.splitlines()[0] == ("hf: error: part 'api': its worktree is on the branch "
                                   "hf/b1/ui, not on its own branch hf/b1/api")
    command = err.split("hint: `", 1)[1].split("`", 1)[0]
    assert command == f"git -C {api} switch hf/b1/api"
    subprocess.run(command, shell=True, check=True, capture_output=True)
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "show", "HEAD:src/api/orders.py") == "mine\n"
