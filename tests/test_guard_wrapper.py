"""Layer 1: the `git` wrapper, as a real executable on PATH in front of the real git."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BASE_FILES, git, write

from hf_fanout.guard.env import bin_dir

REAL_GIT = shutil.which("git")


def wrapped_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir()}{os.pathsep}{env['PATH']}"
    env["HF_PYTHON"] = sys.executable
    return env


def wgit(cwd: Path, *args: str, input: bytes | None = None,
         extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """`git ARGS` as a tab runs it: the wrapper first on PATH (`extra`: more variables)."""
    return subprocess.run(["git", *args], cwd=cwd, env={**wrapped_env(), **(extra or {})},
                          input=input, capture_output=True, timeout=60, check=False)


def rgit(cwd: Path, *args: str, input: bytes | None = None,
         extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """The real git binary, directly."""
    return subprocess.run([REAL_GIT, *args], cwd=cwd, input=input, capture_output=True,
                          env={**os.environ, **(extra or {})}, timeout=60, check=False)


def test_wrapper_is_found_first_on_path(repo):
    proc = subprocess.run(["sh", "-c", "command -v git"], env=wrapped_env(), cwd=repo,
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == str(bin_dir() / "git")


# Refused inside a part; the same argv passes through unchanged outside parts.
# {main} is the main tree (inside the part) or the repository itself (outside).
REFUSED = [
    ["push", "origin", "HEAD"],
    ["pull"],
    ["fetch"],
    ["rebase", "main"],
    ["reset", "--hard"],
    ["reset", "--merge"],
    ["reset", "--keep", "HEAD"],
    ["checkout", "main"],
    ["checkout", "-b", "side"],
    ["checkout", "--detach"],
    ["checkout", "main", "--", "src/ui/app.js"],
    ["switch", "main"],
    ["switch", "-c", "side"],
    ["restore", "--source=main", "src/ui/app.js"],
    ["merge", "main"],
    ["cherry-pick", "main"],
    ["revert", "HEAD"],
    ["am", "x.patch"],
    ["tag", "v1"],
    ["tag", "-d", "v1"],
    ["stash"],
    ["stash", "push", "-m", "wip"],
    ["stash", "pop"],
    ["stash", "drop"],
    ["clean", "-fd"],
    ["clean", "-xdf"],
    ["worktree", "add", "../x"],
    ["worktree", "move", "../x", "../y"],
    ["worktree", "remove", "../x"],
    ["worktree", "prune"],
    ["branch", "-D", "main"],
    ["branch", "-f", "main", "HEAD"],
    ["branch", "-m", "renamed"],
    ["branch", "newbranch"],
    ["update-ref", "refs/heads/main", "HEAD"],
    ["update-ref", "-d", "refs/heads/main"],
    ["symbolic-ref", "HEAD", "refs/heads/main"],
    ["config", "user.name", "someone"],
    ["config", "--unset", "user.name"],
    ["config", "core.hooksPath", "/tmp/elsewhere"],
    ["commit", "--no-verify", "-m", "x"],
    ["commit", "-anm", "x"],
    ["-c", "core.hooksPath=/dev/null", "commit", "-m", "x"],
    ["-C", "{main}", "status"],
    ["--git-dir={main}/.git", "log", "-1"],
    ["--work-tree={main}", "status"],
    ["-c", "alias.nuke=reset --hard", "nuke"],
]


def _argv(template: list[str], main: Path) -> list[str]:
    return [word.replace("{main}", str(main)) for word in template]


def test_every_guarded_command_is_refused_inside_a_part(split3):
    api, repo = split3["api"], split3["repo"]
    (api / "src/api/orders.py").write_text("work in progress\n")
    git(api, "add", "src/api/orders.py")
    before = {
        "refs": git(repo, "for-each-ref"),
        "status": git(api, "status", "--porcelain"),
        "config": (repo / ".git/config").read_text(),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
    }
    failures = []
    for template in REFUSED:
        argv = _argv(template, repo)
        proc = wgit(api, *argv)
        lines = proc.stderr.decode().splitlines()
        if proc.returncode != 99 or len(lines) != 1 or proc.stdout:
            failures.append(f"{argv}: exit {proc.returncode}, stderr {lines}")
            continue
        line = lines[0]
        shown = next(w for w in argv if not w.startswith("-") and w != str(repo)
                     and "=" not in w)
        if not line.startswith("hf guard: refused `git ") or "part b1/api" not in line \
                or "instead:" not in line or shown.split("=")[0] not in line:
            failures.append(f"{argv}: unclear line {line!r}")
    assert not failures, "\n".join(failures)
    after = {
        "refs": git(repo, "for-each-ref"),
        "status": git(api, "status", "--porcelain"),
        "config": (repo / ".git/config").read_text(),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
    }
    assert after == before  # nothing a refused command touched changed


def _plain_template(root: Path) -> Path:
    template = root / "template"
    template.mkdir()
    git(template, "init", "-q", "-b", "main")
    write(template, BASE_FILES)
    git(template, "add", "-A")
    git(template, "commit", "-qm", "initial")
    git(template, "branch", "other")
    write(template, {"README.md": "# changed\n", "junk.tmp": "junk\n"})
    return template


def test_the_same_commands_outside_any_part_pass_through_unchanged(tmp_path):
    template = _plain_template(tmp_path)
    failures = []
    for n, template_argv in enumerate(REFUSED):
        direct_root = tmp_path / f"d{n}" / "repo"
        wrapped_root = tmp_path / f"w{n}" / "repo"
        shutil.copytree(template, direct_root, symlinks=True)
        shutil.copytree(template, wrapped_root, symlinks=True)
        direct = rgit(direct_root, *_argv(template_argv, direct_root))
        wrapped = wgit(wrapped_root, *_argv(template_argv, wrapped_root))

        def norm(data: bytes, root: Path) -> bytes:
            return data.replace(str(root.parent).encode(), b"ROOT")

        got = (wrapped.returncode, norm(wrapped.stdout, wrapped_root),
               norm(wrapped.stderr, wrapped_root))
        want = (direct.returncode, norm(direct.stdout, direct_root),
                norm(direct.stderr, direct_root))
        if got != want:
            failures.append(f"{template_argv}: wrapped {got!r} != direct {want!r}")
        if git(wrapped_root, "status", "--porcelain") != git(direct_root, "status",
                                                              "--porcelain"):
            failures.append(f"{template_argv}: the repositories differ afterwards")
    assert not failures, "\n".join(failures)


def test_the_main_tree_of_a_split_repo_is_not_guarded(split3):
    repo = split3["repo"]
    (repo / "README.md").write_text("scratch\n")
    proc = wgit(repo, "reset", "--hard")
    assert proc.returncode == 0, proc.stderr
    assert (repo / "README.md").read_text() == "# demo\n"
    proc = wgit(repo, "tag", "v1")
    assert proc.returncode == 0
    assert git(repo, "tag") == "v1\n"


ALLOWED_READS = [
    ["status", "--porcelain"],
    ["log", "--oneline", "-3"],
    ["diff", "--stat"],
    ["branch"],
    ["branch", "--show-current"],
    ["branch", "-a", "--list", "hf/*"],
    ["tag", "-l"],
    ["stash", "list"],
    ["config", "--get", "user.name"],
    ["config", "user.name"],
    ["symbolic-ref", "--short", "HEAD"],
    ["worktree", "list"],
    ["clean", "-n"],
    ["-C", "src", "status", "--short"],
    ["-c", "alias.st=status --short", "st"],
    ["rev-parse", "--verify", "no-such-rev"],
    ["diff", "--exit-code"],
    ["show", "main:README.md"],
]


def test_allowed_commands_inside_a_part_give_exactly_what_the_real_git_gives(split3):
    api = split3["api"]
    (api / "src/api/orders.py").write_text("changed\n")
    failures = []
    for argv in ALLOWED_READS:
        wrapped, direct = wgit(api, *argv), rgit(api, *argv)
        if (wrapped.returncode, wrapped.stdout, wrapped.stderr) != \
                (direct.returncode, direct.stdout, direct.stderr):
            failures.append(f"{argv}: {wrapped!r} != {direct!r}")
    assert not failures, "\n".join(failures)


def test_a_part_works_normally_on_its_own_branch_and_files(split3):
    api, repo = split3["api"], split3["repo"]
    (api / "src/api/orders.py").write_text("def orders():\n    return [1]\n")
    assert wgit(api, "add", "src/api/orders.py").returncode == 0
    proc = wgit(api, "commit", "-q", "-F", "-", input=b"orders return one\n")
    assert proc.returncode == 0, proc.stderr
    assert git(api, "log", "-1", "--format=%s hf/b1/api") .startswith("orders return one")
    assert git(repo, "log", "-1", "--format=%s", "main") == "initial\n"
    # paths it owns may come from another ref; restoring and soft resets are fine
    proc = wgit(api, "checkout", "main", "--", "src/api/orders.py")
    assert proc.returncode == 0, proc.stderr
    proc = wgit(api, "restore", "--source=main", "src/api/users.py")
    assert proc.returncode == 0, proc.stderr
    assert wgit(api, "reset", "--soft", "HEAD").returncode == 0
    assert wgit(api, "switch", "hf/b1/api").returncode == 0


def test_unusual_argv_passes_through_unchanged_inside_and_outside(split3, tmp_path):
    api = split3["api"]
    template = _plain_template(tmp_path)
    odd = "-dash ü file 'q'.py"
    for root, sub in ((api, "src/api"), (template, "src/api")):
        (root / sub / odd).write_text("x\n")
        for argv in (["add", "--", odd], ["-c", "core.quotepath=off", "status",
                                           "--porcelain", "--", "."],
                     ["--no-pager", "-c", "color.ui=never", "diff", "--cached", "--stat",
                      "--", odd], ["ls-files", "-z", "--", f"./{odd}"]):
            wrapped = wgit(root / sub, *argv)
            if argv[0] == "add":
                git(root / sub, "reset", "-q", "--", odd)
                direct = rgit(root / sub, *argv)
                git(root / sub, "reset", "-q", "--", odd)
                wrapped = wgit(root / sub, *argv)
            else:
                direct = rgit(root / sub, *argv)
            assert (wrapped.returncode, wrapped.stdout, wrapped.stderr) == \
                (direct.returncode, direct.stdout, direct.stderr), (root, argv)
        assert odd.encode() in rgit(root / sub, "ls-files", "-z").stdout


def test_stdin_and_exit_codes_pass_through(split3):
    for cwd in (split3["api"], split3["repo"]):
        data = os.urandom(4096)
        wrapped = wgit(cwd, "hash-object", "--stdin", input=data)
        direct = rgit(cwd, "hash-object", "--stdin", input=data)
        assert wrapped.stdout == direct.stdout and wrapped.returncode == 0
        assert wgit(cwd, "rev-parse", "--verify", "-q", "nope").returncode == 1
        assert wgit(cwd, "no-such-command").returncode == 1


def test_guard_list_is_configurable_in_hf_toml(split3, hf):
    repo, api = split3["repo"], split3["api"]
    (repo / ".hf.toml").write_text('[guard]\nallow = ["clean"]\nrefuse = ["gc"]\n')
    proc = wgit(api, "clean", "-f")
    assert proc.returncode == 99, "an allow list loosens the guard: not before `hf trust`"
    assert "you have not trusted this content" in proc.stderr.decode()
    assert hf("trust", cwd=repo).code == 0
    (api / "scratch.tmp").write_text("x\n")
    assert wgit(api, "clean", "-f").returncode == 0
    assert not (api / "scratch.tmp").exists()
    proc = wgit(api, "gc")
    assert proc.returncode == 99
    assert "refused by [guard] refuse" in proc.stderr.decode()
    assert wgit(api, "reset", "--hard").returncode == 99  # the rest still holds
    (repo / ".hf.toml").write_text('[guard]\nallow = ["nonsense"]\n')
    assert hf("trust", cwd=repo).code == 0
    proc = wgit(api, "status")
    assert proc.returncode == 99
    assert "unknown rules: nonsense" in proc.stderr.decode()


@pytest.mark.parametrize("argv", [["reset", "--hard"], ["push"]])
def test_guard_explain_says_what_would_happen(hf, split3, argv):
    r = hf("guard", "explain", "--json", *argv, cwd=split3["api"])
    assert r.code == 0, r.err
    data = r.json["data"]
    assert data["allowed"] is False and data["part"] == "b1/api" and data["in_part"]
    r = hf("guard", "explain", *argv, cwd=split3["repo"])
    assert "passes through to the real git unchanged" in r.out
    assert "refused (exit 99)" in r.out
    r = hf("guard", "explain", "--json", "status", cwd=split3["api"])
    assert r.json["data"]["allowed"] is True


def test_guard_subcommands_name_themselves_in_the_envelope(hf, split3):
    for argv in (["explain", "status"], ["env"], ["install", "--dry-run"]):
        r = hf("guard", *argv[:1], "--json", *argv[1:], cwd=split3["api"])
        assert r.code == 0, r.err
        assert r.json["command"] == f"guard {argv[0]}"


def test_guard_env_output_can_be_evaluated_by_a_shell(hf, split3):
    r = hf("guard", "env", cwd=split3["repo"])
    assert r.code == 0
    assert "export PATH=" in r.out
    script = r.out + "\ncd " + str(split3["api"]) + " && git reset --hard; echo rc=$?\n" \
        "command -v git\n"
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert "rc=99" in proc.stdout
    assert proc.stdout.strip().endswith(str(bin_dir() / "git"))
    # evaluating it twice does not grow PATH
    twice = subprocess.run(["sh", "-c", r.out + "\n" + r.out + "\necho $PATH"],
                           capture_output=True, text=True, check=True).stdout
    assert twice.count(str(bin_dir())) == 1


def _count_form(count: str, key: str) -> dict[str, str]:
    return {"GIT_CONFIG_COUNT": count, "GIT_CONFIG_KEY_0": "user.name",
            "GIT_CONFIG_VALUE_0": "someone", f"GIT_CONFIG_KEY_{int(count) - 1}": key,
            f"GIT_CONFIG_VALUE_{int(count) - 1}": "/dev/null"}


# core.hooksPath set through the environment rather than `-c`: git reads these
# as command-line config, above the part's config.worktree.
HOOKS_FROM_THE_ENVIRONMENT = [
    {"GIT_CONFIG_PARAMETERS": "'core.hooksPath'='/dev/null'"},
    {"GIT_CONFIG_PARAMETERS": "'user.name'='someone' 'core.hooksPATH'='/dev/null'"},
    {"GIT_CONFIG_PARAMETERS": "'core.hooksPath=/dev/null'"},  # the older quoting
    {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.hooksPath",
     "GIT_CONFIG_VALUE_0": "/dev/null"},
    _count_form("2", "core.hooksPATH"),
    # git reads the count with strtoul: leading blanks and a '+' are taken
    {**_count_form("1", "core.hooksPath"), "GIT_CONFIG_COUNT": " 1"},
    {**_count_form("1", "core.hooksPath"), "GIT_CONFIG_COUNT": "+1"},
]


def test_core_hooks_path_from_the_environment_is_refused_in_a_part(split3):
    api, repo = split3["api"], split3["repo"]
    (api / "src/api/orders.py").write_text("def orders():\n    return [1]\n")
    git(api, "add", "src/api/orders.py")
    head = git(api, "rev-parse", "HEAD")
    staged = git(api, "diff", "--cached", "--name-only")
    for extra in HOOKS_FROM_THE_ENVIRONMENT:
        # the real git takes each form: the part's hooks would not run
        seen = rgit(api, "config", "--get", "core.hooksPath", extra=extra)
        assert seen.stdout == b"/dev/null\n", (extra, seen)
        proc = wgit(api, "commit", "-q", "-m", "bypass", extra=extra)
        lines = proc.stderr.decode().splitlines()
        assert proc.returncode == 99, (extra, proc)
        assert lines == ["hf guard: refused `git commit -q -m bypass` in part b1/api: "
                         "overriding core.hooksPath skips the part's ownership checks; "
                         "instead: commit without overriding core.hooksPath"], extra
        assert proc.stdout == b""
        assert git(api, "rev-parse", "HEAD") == head, extra  # nothing committed
        assert git(api, "diff", "--cached", "--name-only") == staged
    # other config from the environment is no reason to refuse
    other = {**_count_form("1", "user.name"), "GIT_CONFIG_PARAMETERS": "'color.ui'='never'"}
    proc = wgit(api, "commit", "--dry-run", "-q", extra=other)
    assert proc.returncode == 0, proc.stderr
    assert git(api, "rev-parse", "HEAD") == head
    # the same commit without the variables goes through
    proc = wgit(api, "commit", "-q", "-m", "orders return one")
    assert proc.returncode == 0, proc.stderr
    assert git(api, "log", "-1", "--format=%s") == "orders return one\n"
    assert git(repo, "log", "-1", "--format=%s", "main") == "initial\n"


def test_variables_that_point_git_at_another_worktree_are_refused(split3):
    api, repo = split3["api"], split3["repo"]
    main_index = repo / ".git/index"
    before = main_index.read_bytes()
    cases = [
        ({"GIT_INDEX_FILE": str(main_index)}, ["rm", "--cached", "-q", "README.md"],
         f"GIT_INDEX_FILE={main_index}"),
        ({"GIT_OBJECT_DIRECTORY": str(repo / "elsewhere")}, ["status"],
         f"GIT_OBJECT_DIRECTORY={repo / 'elsewhere'}"),
        ({"GIT_COMMON_DIR": str(api)}, ["status"], f"GIT_COMMON_DIR={api}"),
    ]
    for extra, argv, shown in cases:
        proc = wgit(api, *argv, extra=extra)
        assert proc.returncode == 99, (extra, proc)
        line = proc.stderr.decode().strip()
        assert f"{shown} is outside the part's worktree" in line, line
    assert main_index.read_bytes() == before  # the main index was never touched
    # an index of the part's own, or a temporary one, is the agent's business
    own = wgit(api, "ls-files", extra={"GIT_INDEX_FILE": str(api / ".git-tmp-index")})
    assert own.returncode == 0, own.stderr


@pytest.mark.parametrize("argv, shown", [
    (["reflog", "expire", "--all", "--expire=now"], "git reflog expire"),
    (["reflog", "delete", "HEAD@{0}"], "git reflog delete"),
    (["gc", "--prune=now"], "git gc --prune=now"),
    (["prune"], "git prune"),
])
def test_what_destroys_recovery_data_is_refused(split3, argv, shown):
    api, repo = split3["api"], split3["repo"]
    reflog = git(repo, "reflog", "show", "hf/b1/api")
    proc = wgit(api, *argv)
    assert proc.returncode == 99
    assert proc.stderr.decode().startswith(f"hf guard: refused `{shown}")
    assert git(repo, "reflog", "show", "hf/b1/api") == reflog
    assert wgit(api, "reflog").returncode == 0  # reading it is fine


def test_a_git_file_made_in_a_part_that_names_the_main_git_data_is_refused(split3):
    """`gitdir: <repo>/.git` written into an owned folder: git there would work on the
    main repository's index and branches, past every rule of the part."""
    repo, api = split3["repo"], split3["api"]
    planted = api / "src/api/x"
    planted.mkdir()
    (planted / ".git").write_text(f"gitdir: {repo / '.git'}\n")
    head = rgit(repo, "rev-parse", "HEAD").stdout
    r = wgit(planted, f"--work-tree={api}", "commit", "-qam", "innocent")
    assert r.returncode == 99, r.stderr
    assert b"names" in r.stderr and b"the git data of a repository hf guards" in r.stderr
    assert rgit(repo, "rev-parse", "HEAD").stdout == head
    nested = api / "src/api/vendor"  # a repository of the part's own still works
    nested.mkdir()
    assert rgit(nested, "init", "-q").returncode == 0
    assert wgit(nested, "status", "--porcelain").returncode == 0
