"""The guard's fast path (guard/fast.py, bin/git, the sh hooks): what sh decides
is what python decides, and an allowed command or commit starts no python."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import git, write
from test_guard_wrapper import wrapped_env

from hf_fanout.guard import fast
from hf_fanout.guard.entry import GitProbe, context_for
from hf_fanout.guard.wrapper import decide

CORPUS = [
    ["status"], ["status", "--short"], ["diff", "HEAD"], ["log", "--oneline", "-3"],
    ["show", "HEAD"], ["rev-parse", "HEAD"], ["ls-files"], ["grep", "def"],
    ["blame", "src/api/orders.py"], ["cat-file", "-t", "HEAD"], ["add", "src/api/orders.py"],
    ["commit", "-q", "-m", "x", "--allow-empty"], ["commit", "-m", "-n", "--allow-empty"],
    ["commit", "--no-verify", "-m", "x"], ["commit", "-anm", "x"], ["commit", "-m", "x", "-n"],
    ["push"], ["reset", "--hard"], ["checkout", "main"], ["gc", "--prune=now"],
    ["reflog", "expire", "--all"], ["-C", "..", "status"], ["-c", "core.hooksPath=/x", "status"],
    ["stash", "list"], ["update-ref", "refs/heads/main", "HEAD"], ["--version"],
]


def _warm(api: Path, env: dict[str, str]) -> Path:
    """One slow-path command writes the fast file; then wait out its margin. Every
    python run of the guard (wrapper or hook) dates the file anew: its time says
    whether python ran since."""
    subprocess.run(["git", "stash", "list"], cwd=api, env=env, capture_output=True, check=True)
    fast_file = Path(git(api, "rev-parse", "--absolute-git-dir").strip()) / fast.FAST_FILE
    assert fast_file.is_file()
    os.utime(fast_file)  # (what two seconds of waiting would give)
    return fast_file


@pytest.mark.parametrize("argv", CORPUS, ids=" ".join)
def test_sh_and_python_give_the_same_verdict(split3, argv):
    api = split3["api"]
    env = wrapped_env()
    _warm(api, env)
    ctx = context_for(api)
    assert ctx is not None
    decision = decide(argv, ctx, GitProbe(api))
    proc = subprocess.run(["git", *argv], cwd=api, env=env, capture_output=True, check=False)
    assert (proc.returncode == 99) == (not decision.allowed), proc.stderr
    if not decision.allowed:
        assert proc.stderr.decode().strip() == decision.line(ctx)


def test_allowed_commands_and_a_commit_start_no_python(split3, tmp_path):
    api = split3["api"]
    env = wrapped_env()
    fast_file = _warm(api, env)
    dated = fast_file.stat().st_mtime_ns
    for argv in (["status"], ["diff"], ["log", "-1"], ["rev-parse", "HEAD"], ["ls-files"]):
        assert subprocess.run(["git", *argv], cwd=api, env=env, capture_output=True,
                              check=False).returncode == 0
    write(api, {"src/api/orders.py": "# changed\n"})
    for argv in (["add", "src/api/orders.py"], ["commit", "-q", "-m", "owned change"]):
        proc = subprocess.run(["git", *argv], cwd=api, env=env, capture_output=True,
                              check=False)
        assert proc.returncode == 0, proc.stderr
    assert git(api, "log", "-1", "--format=%s").strip() == "owned change"
    assert fast_file.stat().st_mtime_ns == dated, "neither the wrapper nor a hook ran python"
    # what needs policy still meets python, and its refusal
    proc = subprocess.run(["git", "push"], cwd=api, env=env, capture_output=True, check=False)
    assert proc.returncode == 99 and "push publishes the branch" in proc.stderr.decode()
    assert fast_file.stat().st_mtime_ns != dated


def test_a_commit_outside_ownership_still_meets_pythons_refusal(split3, tmp_path):
    api = split3["api"]
    env = wrapped_env()
    fast_file = _warm(api, env)
    dated = fast_file.stat().st_mtime_ns
    write(api, {"src/ui/app.js": "// not api's\n", "src/api/orders.py": "# ok\n"})
    subprocess.run(["git", "add", "-A"], cwd=api, env=env, check=True)
    proc = subprocess.run(["git", "commit", "-q", "-m", "reach"], cwd=api, env=env,
                          capture_output=True, check=False)
    assert proc.returncode != 0
    assert "1 staged path(s) outside its ownership" in proc.stderr.decode()
    assert "src/ui/app.js" in proc.stderr.decode()
    assert fast_file.stat().st_mtime_ns != dated, "python's pre-commit check ran"


def test_a_refuse_list_written_later_is_seen_at_once(split3, tmp_path):
    repo, api = split3["repo"], split3["api"]
    env = wrapped_env()
    _warm(api, env)
    assert subprocess.run(["git", "status"], cwd=api, env=env, capture_output=True,
                          check=False).returncode == 0
    (repo / ".hf.toml").write_text('[guard]\nrefuse = ["status"]\n')
    proc = subprocess.run(["git", "status"], cwd=api, env=env, capture_output=True,
                          check=False)
    assert proc.returncode == 99 and "refused by [guard] refuse" in proc.stderr.decode()


def test_only_globs_sh_matches_exactly_are_given_to_sh():
    text = fast.render("hf/b1/api", ["src/api/**", "README.md", "*.py", "it's/**"],
                       frozenset({"gc"}), (Path("/r/.hf.toml"), Path("/u"), Path("/t")))
    owned = text.split("hf_fast_owned() {", 1)[1]
    assert "'src/api/'*" in owned and "'README.md'|'README.md/'*" in owned
    assert "*.py" not in owned  # `*` in sh crosses `/`: left to python
    assert "'it'\\''s/'*" in owned
    for path, owned_by_sh in (("src/api/x.py", True), ("README.md", True), ("a.py", False),
                              ("src/apix", False), ("it's/a", True)):
        script = text + f'hf_fast_owned {shlex_quote(path)} && echo yes || echo no\n'
        out = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                             check=True).stdout.strip()
        assert out == ("yes" if owned_by_sh else "no"), path


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
