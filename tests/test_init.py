"""`hf init`: a commented .hf.toml from what the repository holds; --dry-run
prints it, an existing file is kept unless --force."""

from __future__ import annotations

import tomllib

from conftest import git, write


def test_init_detects_env_files_lockfiles_and_refuses_to_overwrite(repo, hf):
    write(repo, {".gitignore": ".env*\n", ".env": "KEY=1\n", ".env.local": "X=2\n",
                 "uv.lock": "", "package-lock.json": "{}"})
    git(repo, "add", ".gitignore", "uv.lock", "package-lock.json")
    git(repo, "commit", "-qm", "locks")
    preview = hf("init", "--dry-run", cwd=repo)
    assert preview.code == 0 and 'copy = [".env", ".env.local"]' in preview.out
    assert not (repo / ".hf.toml").exists()
    r = hf("init", cwd=repo)
    assert r.code == 0 and "wrote" in r.out
    settings = tomllib.loads((repo / ".hf.toml").read_text())
    assert settings["copy"] == [".env", ".env.local"]
    assert settings["setup"] == ["uv sync", "npm ci"]
    assert settings["launcher"] in ("tmux", "code", "cursor", "print")
    (repo / ".hf.toml").write_text("# mine\n")
    again = hf("init", cwd=repo)
    assert again.code == 1 and "--force" in again.err
    assert (repo / ".hf.toml").read_text() == "# mine\n"
    assert hf("init", "--force", cwd=repo).code == 0
    assert "copy" in tomllib.loads((repo / ".hf.toml").read_text())


def test_a_tracked_env_file_is_not_copied(repo, hf):
    write(repo, {".env.example": "KEY=\n"})
    git(repo, "add", ".env.example")
    git(repo, "commit", "-qm", "example")
    assert hf("init", cwd=repo).code == 0
    assert "copy" not in tomllib.loads((repo / ".hf.toml").read_text())
