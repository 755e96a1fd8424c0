"""The sweep's schedule through a stand-in `crontab` (the user's own table is never
touched), systemd/launchd refusals, `hf doctor`, and install/install.sh in a
throwaway HOME."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT, cron_command


def _ours() -> list[str]:
    from hf_fanout.liveness import schedule

    proc = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    return schedule.our_cron_lines(proc.stdout.splitlines() if proc.returncode == 0 else [])


def test_install_cron_once_idempotent_uninstall_and_the_line_runs_a_sweep(
        split3, hf, crontab, tmp_path):
    from hf_fanout.liveness import schedule

    other = "17 3 * * * echo someone-elses-job"
    subprocess.run(["crontab", "-"], input=other + "\n", text=True, check=True)
    r = hf("install", "--cron", "--json", cwd=tmp_path)
    assert r.code == 0, r.err
    assert r.json["data"]["changed"] is True
    assert len(_ours()) == 1
    r = hf("install", "--cron", "--json", cwd=tmp_path)
    assert r.json["data"]["changed"] is False
    assert len(_ours()) == 1
    assert other in subprocess.run(["crontab", "-l"], capture_output=True, text=True,
                                   check=True).stdout

    # run the installed line the way cron would: sh, a bare environment
    line = _ours()[0]
    assert line.startswith("* * * * * ")
    env = {"HOME": os.environ["HOME"], "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin",
           "LOGNAME": "cron"}
    proc = subprocess.run(["/bin/sh", "-c", cron_command(line)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    log = schedule.log_file().read_text().strip().splitlines()
    envelope = json.loads(log[-1])
    assert envelope["ok"] and envelope["command"] == "sweep"
    assert envelope["data"]["repos"][0]["repo"] == str(split3["repo"])
    doctor = hf("doctor", "--json", cwd=split3["repo"]).json["data"]["findings"]
    details = {f["what"]: f["detail"] for f in doctor}
    assert details["schedule"].startswith("cron every 1 min")
    assert details["sweep"].startswith("last sweep 20")

    r = hf("uninstall", "--json", cwd=tmp_path)
    assert r.code == 0, r.err
    assert _ours() == []
    assert subprocess.run(["crontab", "-l"], capture_output=True, text=True,
                          check=True).stdout.strip() == other
    assert hf("uninstall", "--json", cwd=tmp_path).json["data"]["removed"] == []
    details = {f["what"]: f["detail"] for f in
               hf("doctor", "--json", cwd=split3["repo"]).json["data"]["findings"]}
    assert details["schedule"].startswith("no sweep schedule installed")


def test_install_dry_run_changes_nothing(hf, crontab, tmp_path):
    r = hf("install", "--cron", "--every", "5", "--dry-run", "--json", cwd=tmp_path)
    assert r.code == 0, r.err
    assert r.json["data"]["line"].startswith("*/5 * * * * ")
    assert _ours() == []


def test_systemd_where_it_cannot_work_is_a_clear_error(hf, tmp_path):
    from hf_fanout.liveness import schedule

    if schedule.systemd_usable() is None:
        r = hf("install", "--systemd", "--json", cwd=tmp_path)
        assert r.code == 0, r.err
        assert (schedule.systemd_dir() / "hf-sweep.timer").exists()
        assert hf("uninstall", cwd=tmp_path).code == 0
        assert not (schedule.systemd_dir() / "hf-sweep.timer").exists()
        return
    r = hf("install", "--systemd", cwd=tmp_path)
    assert r.code == 1
    assert "cannot install a systemd timer" in r.err and "--cron" in r.err
    assert not schedule.systemd_dir().exists()


@pytest.mark.skipif(sys.platform == "darwin", reason="launchd works there")
def test_launchd_off_macos_is_a_clear_error(hf, tmp_path):
    r = hf("install", "--launchd", cwd=tmp_path)
    assert r.code == 1 and "macOS only" in r.err


def test_install_sh_in_a_throwaway_home(tmp_path, crontab):
    home = tmp_path / "home"
    home.mkdir()
    # a copy of the checkout: building it writes egg-info next to the sources
    src = tmp_path / "src"
    shutil.copytree(PROJECT_ROOT / "hf_fanout", src / "hf_fanout",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, src / name)
    env = {
        "HOME": str(home), "PATH": os.environ["PATH"], "HF_SOURCE": str(src),
        "HF_TEST_CRONTAB": os.environ["HF_TEST_CRONTAB"],
        "HF_INSTALL_METHOD": "venv", "HF_PYTHON": sys.executable,
        # offline CI: take the dependencies from this Python instead of the index
        "HF_VENV_ARGS": "--system-site-packages",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    import importlib.util

    if importlib.util.find_spec("wheel") is not None:
        env["HF_PIP_ARGS"] = "--no-build-isolation"  # no build backend download needed
    script = PROJECT_ROOT / "install" / "install.sh"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(script), *args], env=env, capture_output=True,
                              text=True, timeout=300, check=False)

    r = run("--cron")
    assert r.returncode == 0, r.stdout + r.stderr
    hf_link = home / ".local/bin/hf"
    venv = home / ".local/share/hf/venv"
    assert hf_link.is_symlink() and os.readlink(hf_link) == str(venv / "bin/hf")
    assert "linked" in r.stdout and "done:" in r.stdout
    version = subprocess.run([str(hf_link), "--version"], env=env, capture_output=True,
                             text=True, check=True).stdout
    assert version.startswith("hf ")
    marker = f"# hf-sweep state={home}/.local/state/hf"
    lines = [x for x in subprocess.run(["crontab", "-l"], capture_output=True, text=True,
                                       check=True).stdout.splitlines() if x.endswith(marker)]
    assert len(lines) == 1 and str(venv / "bin/python") in lines[0]

    r = run("--cron")  # again: same result, still one line
    assert r.returncode == 0, r.stdout + r.stderr
    assert "reusing the virtual environment" in r.stdout
    lines = [x for x in subprocess.run(["crontab", "-l"], capture_output=True, text=True,
                                       check=True).stdout.splitlines() if x.endswith(marker)]
    assert len(lines) == 1

    r = run("--uninstall")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not hf_link.exists() and not hf_link.is_symlink()
    assert not venv.exists()
    assert "removed the sweep schedule" in r.stdout
    proc = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    assert marker not in proc.stdout
