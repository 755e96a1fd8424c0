"""`Worktree.status_paths` for many paths (no pathspec per path) answers what git's pathspec does.

The join asks which of the (often thousands of) paths it writes have
uncommitted edits in the main tree; a status limited by a pathspec per path
costs seconds in a big repository, so past a few paths hf filters a status of
the whole tree instead. It must answer exactly what the pathspec would.
"""

from pathlib import Path

from conftest import git, write

from hf_fanout.paths import RepoPath
from hf_fanout.worktrees.repository import Worktree
from hf_fanout.worktrees.status import FEW_PATHS as _FEW_PATHS


def pathspec_status(root: Path, paths: list[str]) -> set[str]:
    """git's own answer: a status limited to the paths (literal pathspecs)."""
    out = git(root, "--literal-pathspecs", "status", "--porcelain=v1", "-z",
              "--untracked-files=all", "--no-renames", "--ignore-submodules=none", "--", *paths)
    return {item[3:] for item in out.split("\0") if item}


def test_many_paths_give_the_same_answer_as_a_pathspec(repo: Path):
    files = {f"src/mod{i}/file{j}.py": f"x = {i * 10 + j}\n" for i in range(5) for j in range(10)}
    files[".gitignore"] = "*.log\n"
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "many files")
    # every kind of uncommitted change, on wanted and on unwanted paths
    write(repo, {"src/mod0/file0.py": "changed\n", "src/mod4/file9.py": "changed, not wanted\n"})
    write(repo, {"src/mod1/file1.py": "staged\n"})
    git(repo, "add", "src/mod1/file1.py")
    (repo / "src/mod2/file2.py").unlink()
    (repo / "src/mod2/file3.py").chmod(0o755)
    write(repo, {
        "src/new.py": "untracked at a wanted path\n",
        "src/newdir/inner.py": "untracked below a wanted path\n",
        "src/other.py": "untracked, not wanted\n",
        "src/debug.log": "ignored at a wanted path\n",
    })
    git(repo, "rm", "-q", "--cached", "src/mod3/file4.py")
    wanted = [f"src/mod{i}/file{j}.py" for i in range(4) for j in range(10)]
    wanted += ["src/new.py", "src/newdir", "src/debug.log", "src/absent.py", "docs/gone/x.md"]
    assert len(wanted) > _FEW_PATHS

    got = Worktree.discover(repo).status_paths([RepoPath(p) for p in wanted])

    expected = pathspec_status(repo, wanted)
    assert set(got) == expected
    assert len(got) == len(set(got))
    assert expected == {"src/mod0/file0.py", "src/mod1/file1.py", "src/mod2/file2.py",
                        "src/mod2/file3.py", "src/new.py", "src/newdir/inner.py",
                        "src/mod3/file4.py"}


def test_a_few_paths_and_a_clean_tree(repo: Path):
    main = Worktree.discover(repo)
    assert main.status_paths([RepoPath("README.md")]) == []
    many = [RepoPath(f"missing/{i}.txt") for i in range(_FEW_PATHS + 5)] + [RepoPath("README.md")]
    assert main.status_paths(many) == []
    write(repo, {"README.md": "edited\n"})
    assert main.status_paths(many) == ["README.md"]
    assert main.status_paths([RepoPath("README.md")]) == ["README.md"]


def test_a_tracked_file_that_is_now_a_directory_lists_the_directorys_files(repo: Path):
    write(repo, {"conf/app.txt": "a file\n", "conf/keep.txt": "kept\n", "lib/mod.py": "x\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "files")
    (repo / "conf/app.txt").unlink()
    write(repo, {"conf/app.txt/inner.py": "now a directory\n", "lib/mod.py": "changed\n"})
    (repo / "lib/gone.py").write_text("untracked\n")

    got = Worktree.discover(repo).changed_paths()

    everything = git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all",
                     "--no-renames")
    assert set(got) == {item[3:] for item in everything.split("\0") if item}
    assert {"conf/app.txt", "conf/app.txt/inner.py", "lib/mod.py", "lib/gone.py"} == set(got)
