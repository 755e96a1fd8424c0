"""Layer 3: `hf commit` commits exactly the named paths; other tabs' staging survives."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from conftest import git, hf_proc, write


def staged(root: Path) -> list[str]:
    return git(root, "diff", "--cached", "--name-only").split()


def committed(root: Path, rev: str = "HEAD") -> list[str]:
    return git(root, "show", "--name-status", "--format=", rev).split("\n")[:-1]


def tab(root: Path, *args: str) -> None:
    """Another tab in the same main tree: a separate process running git."""
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_plain_git_commit_sweeps_in_another_tabs_staging_and_hf_commit_does_not(repo):
    # the shared-index problem, for real: tab A stages its file ...
    write(repo, {"src/api/orders.py": "tab A's half-done work\n",
                 "src/ui/app.js": "tab B's finished work\n"})
    tab(repo, "add", "src/api/orders.py")
    # ... tab B commits its own file with plain git: A's file is swept in.
    tab(repo, "add", "src/ui/app.js")
    tab(repo, "commit", "-qm", "B: app")
    assert sorted(committed(repo)) == ["M\tsrc/api/orders.py", "M\tsrc/ui/app.js"]

    git(repo, "reset", "-q", "--soft", "HEAD~1")
    git(repo, "reset", "-q", "--", "src/ui/app.js")
    assert staged(repo) == ["src/api/orders.py"]
    # The same with hf commit: only B's file is committed, A's stays staged.
    proc = hf_proc("commit", "-m", "B: app", "src/ui/app.js", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert committed(repo) == ["M\tsrc/ui/app.js"]
    assert staged(repo) == ["src/api/orders.py"]
    assert "still staged, not committed: src/api/orders.py" in proc.stdout
    assert git(repo, "status", "--porcelain") == "M  src/api/orders.py\n"
    assert git(repo, "log", "-1", "--format=%s") == "B: app\n"
    assert "hf commit: B: app" in git(repo, "reflog", "-1", "--format=%gs", "main")
    git(repo, "fsck", "--no-progress")


def test_staged_version_is_replaced_by_the_working_tree_and_only_named_paths_move(repo, hf):
    write(repo, {"src/api/orders.py": "staged version\n"})
    git(repo, "add", "src/api/orders.py")
    write(repo, {"src/api/orders.py": "newest version\n", "new/file.txt": "new\n",
                 "src/ui/app.js": "unrelated, unstaged\n"})
    (repo / "docs/old.md").unlink()
    r = hf("commit", "--json", "-m", "three", "src/api/orders.py", "new/file.txt",
           "docs/old.md", cwd=repo)
    assert r.code == 0, r.err
    assert sorted(committed(repo)) == ["A\tnew/file.txt", "D\tdocs/old.md",
                                       "M\tsrc/api/orders.py"]
    assert git(repo, "show", "HEAD:src/api/orders.py") == "newest version\n"
    assert git(repo, "status", "--porcelain") == " M src/ui/app.js\n"
    assert r.json["data"]["paths"] == ["src/api/orders.py", "new/file.txt", "docs/old.md"]


def test_paths_relative_to_a_subdirectory(repo, hf):
    write(repo, {"src/api/users.py": "changed\n"})
    r = hf("commit", "-m", "users", "users.py", cwd=repo / "src" / "api")
    assert r.code == 0, r.err
    assert committed(repo) == ["M\tsrc/api/users.py"]


def test_a_named_path_without_a_change_aborts_with_both_lists(repo, hf):
    write(repo, {"src/api/orders.py": "changed\n"})
    git(repo, "add", "src/api/orders.py")
    head = git(repo, "rev-parse", "HEAD")
    r = hf("commit", "--json", "-m", "x", "src/api/orders.py", "README.md", cwd=repo)
    assert r.code == 1
    error = r.json["error"]
    assert error["code"] == "staged_set_mismatch"
    assert "missing README.md; extra none" in error["message"]
    assert git(repo, "rev-parse", "HEAD") == head
    assert staged(repo) == ["src/api/orders.py"]


def test_directories_and_paths_outside_are_bad_input(repo, hf, tmp_path):
    assert hf("commit", "-m", "x", "src", cwd=repo).code == 2
    assert hf("commit", "-m", "x", str(tmp_path / "elsewhere.txt"), cwd=repo).code == 2
    assert hf("commit", "-m", "  ", "README.md", cwd=repo).code == 2


def test_a_path_that_does_not_exist_is_bad_input_naming_it(repo, hf):
    write(repo, {"src/api/orders.py": "changed\n"})
    head = git(repo, "rev-parse", "HEAD")
    r = hf("commit", "-m", "x", "src/api/orders.py", "nonexist", cwd=repo)
    assert r.code == 2
    assert r.err.splitlines()[0] == ("hf: error: no such file: nonexist "
                                     "(not in the work tree, not in HEAD)")
    assert "pathspec" not in r.err and "fatal" not in r.err
    r = hf("commit", "--json", "-m", "x", "nonexist", cwd=repo)
    assert r.json["error"]["code"] == "bad_input"
    assert git(repo, "rev-parse", "HEAD") == head
    # a tracked file that was deleted is still committed as a deletion
    (repo / "docs/old.md").unlink()
    assert hf("commit", "-m", "drop old", "docs/old.md", cwd=repo).code == 0
    assert "docs/old.md" not in git(repo, "ls-files")


def test_dry_run_changes_nothing(repo, hf):
    write(repo, {"README.md": "changed\n"})
    head = git(repo, "rev-parse", "HEAD")
    r = hf("commit", "--dry-run", "-m", "x", "README.md", cwd=repo)
    assert r.code == 0 and "would commit 1 path(s)" in r.out
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == " M README.md\n"


def test_commit_waits_for_the_commit_lock_and_says_who_holds_it(repo):
    write(repo, {"README.md": "changed\n"})
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from pathlib import Path\n"
         "from hf_fanout.core.store import Store\n"
         "with Store(Path(sys.argv[1])).commit_lock(5):\n"
         "    print('held', flush=True)\n"
         "    sys.stdin.read()\n", str(repo / ".git")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        deadline = time.monotonic() + 30
        line = holder.stdout.readline()
        assert line.strip() == "held" and time.monotonic() < deadline
        proc = hf_proc("commit", "--wait", "0", "-m", "x", "README.md", cwd=repo)
        assert proc.returncode == 75, proc.stderr
        assert git(repo, "status", "--porcelain") == " M README.md\n"
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    proc = hf_proc("commit", "--wait", "5", "-m", "x", "README.md", cwd=repo)
    assert proc.returncode == 0, proc.stderr


def test_in_a_part_hf_commit_refuses_files_the_part_does_not_own(split3, hf):
    api = split3["api"]
    write(api, {"src/api/orders.py": "mine\n", "src/ui/app.js": "theirs\n"})
    r = hf("commit", "-m", "x", "src/api/orders.py", "src/ui/app.js", cwd=api)
    assert r.code == 1 and "does not own src/ui/app.js" in r.err
    r = hf("commit", "-m", "orders", "src/api/orders.py", cwd=api)
    assert r.code == 0, r.err
    assert git(api, "log", "-1", "--format=%s%n%D") .startswith("orders\nHEAD -> hf/b1/api")


def test_the_repos_commit_hooks_run_unless_no_verify(repo, hf, tmp_path):
    hook = repo / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho 'lint failed' >&2\nexit 1\n")
    hook.chmod(0o755)
    write(repo, {"README.md": "changed\n"})
    r = hf("commit", "-m", "x", "README.md", cwd=repo)
    assert r.code == 1 and "pre-commit hook refused the commit: lint failed" in r.err
    assert git(repo, "status", "--porcelain") == " M README.md\n"
    r = hf("commit", "--no-verify", "-m", "x", "README.md", cwd=repo)
    assert r.code == 0, r.err
