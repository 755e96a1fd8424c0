"""`hf trust`: a repository's `.hf.toml` runs nothing and loosens nothing until
the person trusted exactly its content; the user's own agent wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import git, hf_proc, snapshot

SETUP = 'setup = ["echo ran > .hf/setup-ran"]\n'
API = ("repo.hf", "b1", "api")


def _split(hf, repo, batch="b1"):
    return hf("split", batch, "--part", "api=src/api/**", "--json", cwd=repo)


def test_an_untrusted_setup_never_runs_and_nothing_is_made(repo, hf):
    (repo / ".hf.toml").write_text(SETUP)
    before = snapshot(repo)
    r = _split(hf, repo)
    assert r.code == 2, r.out
    error = r.json["error"]
    assert "sets `setup` (runs commands) and you have not trusted this content" \
        in error["message"]
    assert "hf trust" in error["hint"]
    assert not (repo.parent / "repo.hf" / "b1").exists()
    assert snapshot(repo) == before
    assert "hf/b1/api" not in git(repo, "branch", "--list", "hf/*")


def test_trusted_content_runs_and_any_change_needs_trust_again(repo, hf, tmp_path):
    (repo / ".hf.toml").write_text(SETUP)
    r = hf("trust", "--dry-run", "--json", cwd=repo)
    assert r.code == 0 and r.json["data"]["keys"] == ["setup"]
    assert _split(hf, repo).code == 2, "a dry run trusts nothing"
    r = hf("trust", cwd=repo)
    assert r.code == 0 and "trusted:" in r.out and "setup = " in r.out
    r = _split(hf, repo)
    assert r.code == 0, r.out
    assert (repo.parent.joinpath(*API) / ".hf" / "setup-ran").read_text() == "ran\n"
    # an agent (or a pull) changes the file: untrusted again
    (repo / ".hf.toml").write_text(SETUP + 'setup_timeout = 60\nagent = "evil {prompt}"\n')
    r = _split(hf, repo, "b2")
    assert r.code == 2 and "you have not trusted" in r.json["error"]["message"]
    stored = json.loads((Path(os.environ["XDG_STATE_HOME"]) / "hf" / "trusted.json")
                        .read_text())
    assert list(stored["files"]) == [os.path.realpath(repo / ".hf.toml")]
    assert hf("trust", "--revoke", cwd=repo).code == 0
    (repo / ".hf.toml").write_text(SETUP)
    assert _split(hf, repo, "b3").code == 2, "revoked: the old content is not trusted"


def test_settings_that_only_tighten_need_no_trust(repo, hf):
    (repo / ".hf.toml").write_text('port_base = 6100\n[guard]\nrefuse = ["gc"]\n')
    r = _split(hf, repo)
    assert r.code == 0, r.out
    api = repo.parent / "repo.hf" / "b1" / "api"
    r = hf("guard", "explain", "--json", "gc", cwd=api)
    assert r.code == 0 and r.json["data"]["allowed"] is False


def test_loosening_the_guard_or_the_sandbox_needs_trust(repo, hf):
    for text, key in (('[guard]\nenabled = false\n', "guard"),
                      ('[guard]\nallow = ["clean"]\n', "guard"),
                      ("sandbox = false\n", "sandbox")):
        (repo / ".hf.toml").write_text(text)
        r = hf("trust", "--dry-run", "--json", cwd=repo)
        assert r.json["data"]["keys"] == [key], text
    (repo / ".hf.toml").write_text('[guard]\nallow = ["clean"]\n')
    r = _split(hf, repo)
    assert r.code == 2 and "sets `guard` (loosens hf's protection)" in r.json["error"]["message"]
    (repo / ".hf.toml").write_text("sandbox = false\n")
    assert _split(hf, repo).code == 0
    api = repo.parent / "repo.hf" / "b1" / "api"
    r = hf_proc("run", "--", sys.executable, "-c", "pass", cwd=api)
    assert r.returncode == 2 and "sets `sandbox`" in r.stderr


def test_the_users_own_agent_wins_over_the_repositorys(repo, hf):
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "hf"
    config.mkdir(parents=True)
    (config / "config.toml").write_text('agent = "my-agent {prompt}"\n')
    (repo / ".hf.toml").write_text('agent = "their-agent {prompt}"\n')
    assert _split(hf, repo).code == 0, "the repository's agent is ignored, not refused"
    r = hf("open", "b1", "--launcher", "print", "--json", cwd=repo)
    assert r.code == 0, r.out
    command = json.dumps(r.json["data"])
    assert "my-agent" in command and "their-agent" not in command


def test_trust_and_accept_are_refused_from_inside_a_part(repo, hf, tmp_path):
    (repo / ".hf.toml").write_text(SETUP)
    env = {**os.environ, "HF_BATCH": "b1", "HF_PART": "api"}
    r = hf_proc("trust", cwd=repo, env=env)
    assert r.returncode == 1 and "hf trust from inside part b1/api" in r.stderr
    assert "only the person decides this" in r.stderr
    # an agent that unsets its own marker is still below one
    child = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    script = ("import os, subprocess, sys; env = {k: v for k, v in os.environ.items() "
              "if not k.startswith('HF_')}; sys.exit(subprocess.run([sys.executable, '-m', "
              "'hf_fanout', 'doctor', '--accept'], env=env).returncode)")
    r = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True,
                       text=True, env={**child, "HF_BATCH": "b1", "HF_PART": "api"},
                       check=False)
    assert r.returncode == 1 and "hf doctor --accept from inside part b1/api" in r.stderr
    assert not (Path(os.environ["XDG_STATE_HOME"]) / "hf" / "trusted.json").exists()
