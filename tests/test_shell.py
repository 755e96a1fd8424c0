"""Shell life through a real bash: completion of `hf jo<TAB>` and of a batch name,
for `hf` and `hf-fanout`; `hf cd` with and without the shell integration."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def programs(tmp_path: Path) -> Path:
    """`hf` and `hf-fanout` on PATH, as installed: this checkout's entry point."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("hf", "hf-fanout"):
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\nexec {sys.executable} -m hf_fanout \"$@\"\n")
        path.chmod(0o755)
    return bin_dir


def bash(script: str, cwd: Path, bin_dir: Path) -> str:
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def complete(words: str, program: str = "hf") -> str:
    """bash's own call of the completion function for the words typed so far."""
    function = f"_{program.replace('-', '_')}_completion"
    return (f'eval "$({program} shell-init bash)"\n'
            f"COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n"
            f'{function} {program} "${{COMP_WORDS[-1]}}"\n'
            'printf "%s\\n" "${COMPREPLY[@]}"\n')


def test_bash_completes_commands_and_batch_names(split3, tmp_path):
    repo = split3["repo"]
    bin_dir = programs(tmp_path)
    assert bash(complete("hf jo"), repo, bin_dir).split() == ["join"]
    assert bash(complete("hf-fanout jo", "hf-fanout"), repo, bin_dir).split() == ["join"]
    assert bash(complete("hf join b"), repo, bin_dir).split() == ["b1"]
    assert "b1/api" in bash(complete("hf sync b1/"), repo, bin_dir).split()


def test_hf_cd_changes_the_shell_directory_with_the_integration(split3, tmp_path):
    repo, api = split3["repo"], split3["api"]
    bin_dir = programs(tmp_path)
    # without it: the path, for cd "$(hf cd api)"
    assert bash('cd "$(command hf cd api)" && pwd -P', repo, bin_dir).strip() == \
        str(api.resolve())
    out = bash('eval "$(hf shell-init bash)"\nhf cd b1/ui && pwd -P\nhf cd && pwd -P\n',
               repo, bin_dir).split()
    assert out == [str(split3["ui"].resolve()), str(repo.resolve())]
    # a bad name: one line, the shell stays where it was
    out = bash('eval "$(hf shell-init bash)"\nhf cd nope; echo "rc=$? $(pwd -P)"\n',
               repo, bin_dir)
    assert out.strip() == f"rc=1 {repo.resolve()}"


def test_shell_init_prints_zsh_and_fish_and_refuses_others(split3, hf):
    repo = split3["repo"]
    for shell, marker in (("zsh", "compdef"), ("fish", "complete --command hf")):
        r = hf("shell-init", shell, cwd=repo)
        assert r.code == 0, r.err
        assert marker in r.out and "hf-fanout" in r.out and " cd" in r.out
    r = hf("shell-init", "tcsh", cwd=repo)
    assert r.code == 2 and "bash, zsh, fish" in r.err
    assert hf("cd", "api", cwd=repo).out.strip() == str(split3["api"])
