"""The sweep's schedule: a crontab line, a systemd user timer, or a launchd agent.

`install` adds exactly one schedule, marked so `uninstall` removes exactly what
was added; both are idempotent. What was installed is recorded in
`<state dir>/schedule.json` (for `hf doctor` and `hf uninstall`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hf_fanout import atomic, timefmt
from hf_fanout.config import user_config_dir, user_state_dir
from hf_fanout.errors import BadInput, HfError

KINDS = ("cron", "systemd", "launchd")
UNIT = "hf-sweep"
LAUNCHD_LABEL = "dev.hf-fanout.sweep"
# Variables the sweep needs to find the same registry, config, git and Python
# packages as the shell that ran `hf install`.
_CARRIED_ENV = ("PATH", "HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
                "PYTHONPATH")


def default_kind() -> str:
    return "launchd" if sys.platform == "darwin" else "cron"


def record_file() -> Path:
    return user_state_dir() / "schedule.json"


def installed() -> dict[str, Any] | None:
    from hf_fanout.atomic import read_json

    data = read_json(record_file(), "schedule record")
    return data if isinstance(data, dict) else None


def log_file() -> Path:
    return user_state_dir() / "sweep.log"


def sweep_argv() -> list[str]:
    return [sys.executable, "-m", "hf_fanout", "sweep", "--json"]


def carried_env() -> dict[str, str]:
    return {k: os.environ[k] for k in _CARRIED_ENV if os.environ.get(k)}


def cron_marker() -> str:
    # The state dir names the installation: two hf set-ups with different state
    # dirs keep their own lines, and a reinstall replaces its own.
    return f"# hf-sweep state={user_state_dir()}"


def cron_line(minutes: int) -> str:
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in carried_env().items())
    command = (f"cd / && env {env} {shlex.join(sweep_argv())} >> "
               f"{shlex.quote(str(log_file()))} 2>&1")
    when = "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    # `%` ends a cron command (the rest is stdin) unless escaped.
    return f"{when} {command.replace('%', chr(92) + '%')} {cron_marker()}"


def _crontab() -> str:
    exe = shutil.which("crontab")
    if exe is None:
        raise HfError("no `crontab` command on this machine",
                      "install cron (Debian/Ubuntu: apt-get install cron), or use "
                      "hf install --systemd")
    return exe


def read_crontab() -> list[str]:
    proc = subprocess.run([_crontab(), "-l"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        if "no crontab" in proc.stderr.lower():
            return []
        raise HfError(f"`crontab -l` failed: {proc.stderr.strip()}",
                      "check that cron is installed and you may use it")
    return proc.stdout.splitlines()


def write_crontab(lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    proc = subprocess.run([_crontab(), "-"], input=text, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise HfError(f"`crontab -` failed: {proc.stderr.strip()}",
                      "check that cron is installed and you may use it")


def our_cron_lines(lines: list[str]) -> list[str]:
    marker = cron_marker()
    return [line for line in lines if line.rstrip().endswith(marker)]


# --- systemd -----------------------------------------------------------------


def systemd_dir() -> Path:
    return user_config_dir().parent / "systemd" / "user"


def _systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("systemctl")
    if exe is None:
        raise HfError("no `systemctl` on this machine", "use hf install --cron")
    proc = subprocess.run([exe, "--user", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise HfError(f"`systemctl --user {' '.join(args)}` failed: "
                      f"{proc.stderr.strip() or proc.returncode}",
                      "systemd user services need a user session (loginctl enable-linger "
                      "$USER); or use hf install --cron")
    return proc


def systemd_usable() -> str | None:
    """None when `systemctl --user` works here, else why not."""
    if shutil.which("systemctl") is None:
        return "there is no systemctl on this machine"
    proc = _systemctl("show-environment", check=False)
    if proc.returncode != 0:
        return f"`systemctl --user` does not work here: {proc.stderr.strip() or 'no session'}"
    return None


def systemd_units(minutes: int) -> dict[str, str]:
    env = "".join(f"Environment={shlex.quote(f'{k}={v}')}\n" for k, v in carried_env().items())
    service = (
        "[Unit]\nDescription=hf sweep: liveness of parallel coding parts\n\n"
        f"[Service]\nType=oneshot\n{env}ExecStart={shlex.join(sweep_argv())}\n"
        f"StandardOutput=append:{log_file()}\nStandardError=append:{log_file()}\n"
    )
    timer = (
        "[Unit]\nDescription=Run the hf sweep every "
        f"{minutes} minute(s)\n\n[Timer]\nOnBootSec=1min\nOnUnitActiveSec={minutes}min\n"
        "AccuracySec=10s\n\n[Install]\nWantedBy=timers.target\n"
    )
    return {f"{UNIT}.service": service, f"{UNIT}.timer": timer}


# --- launchd -----------------------------------------------------------------


def launchd_plist_path() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"


def launchd_plist(minutes: int) -> bytes:
    import plistlib

    return plistlib.dumps({
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": sweep_argv(),
        "StartInterval": minutes * 60,
        "RunAtLoad": True,
        "EnvironmentVariables": carried_env(),
        "StandardOutPath": str(log_file()),
        "StandardErrorPath": str(log_file()),
    })


# --- install / uninstall -------------------------------------------------------


def install(kind: str, minutes: int, *, dry_run: bool) -> dict[str, Any]:
    if kind not in KINDS:
        raise BadInput(f"unknown schedule {kind!r}", "pick --cron, --systemd or --launchd")
    if minutes < 1 or minutes > 59:
        raise BadInput("--every must be 1 to 59 minutes", "e.g. --every 1")
    result: dict[str, Any] = {"kind": kind, "every_minutes": minutes, "dry_run": dry_run,
                              "command": shlex.join(sweep_argv()), "changed": False}
    if kind == "cron":
        line = cron_line(minutes)
        lines = read_crontab()
        ours = our_cron_lines(lines)
        result["line"] = line
        result["changed"] = ours != [line]
        if result["changed"] and not dry_run:
            write_crontab([x for x in lines if x not in ours] + [line])
    elif kind == "systemd":
        why = systemd_usable()
        if why is not None:
            raise HfError(f"cannot install a systemd timer: {why}",
                          "use hf install --cron (needs the cron package)")
        units = systemd_units(minutes)
        result["files"] = [str(systemd_dir() / n) for n in units]
        if not dry_run:
            for name, text in units.items():
                path = systemd_dir() / name
                if not path.exists() or path.read_text() != text:
                    result["changed"] = True
                    atomic.atomic_write(path, text.encode())
            _systemctl("daemon-reload")
            _systemctl("enable", "--now", f"{UNIT}.timer")
    else:
        if sys.platform != "darwin":
            raise HfError("launchd schedules exist on macOS only",
                          "use hf install --cron (or --systemd) on this system")
        path = launchd_plist_path()
        data = launchd_plist(minutes)
        result["files"] = [str(path)]
        if not dry_run:
            result["changed"] = not path.exists() or path.read_bytes() != data
            if result["changed"]:
                subprocess.run(["launchctl", "unload", str(path)], capture_output=True,
                               check=False)
                atomic.atomic_write(path, data)
            proc = subprocess.run(["launchctl", "load", "-w", str(path)], capture_output=True,
                                  text=True, check=False)
            if proc.returncode != 0 and "already loaded" not in proc.stderr:
                raise HfError(f"`launchctl load` failed: {proc.stderr.strip()}",
                              "check the plist with `plutil -lint`")
    if not dry_run:
        atomic.atomic_write_json(record_file(), {
            "kind": kind, "every_minutes": minutes, "command": result["command"],
            "installed_at": timefmt.iso(),
            "line": result.get("line"), "files": result.get("files", [])})
    return result


def uninstall(*, dry_run: bool) -> dict[str, Any]:
    """Remove what `install` added: our crontab line(s), our units, our plist."""
    removed: list[str] = []
    if shutil.which("crontab"):
        lines = read_crontab()
        ours = our_cron_lines(lines)
        if ours:
            removed += [f"crontab: {x}" for x in ours]
            if not dry_run:
                write_crontab([x for x in lines if x not in ours])
    units = [systemd_dir() / f"{UNIT}.timer", systemd_dir() / f"{UNIT}.service"]
    if any(p.exists() for p in units):
        if not dry_run and systemd_usable() is None:
            _systemctl("disable", "--now", f"{UNIT}.timer", check=False)
        for path in units:
            if path.exists():
                removed.append(str(path))
                if not dry_run:
                    atomic.remove_durably(path)
        if not dry_run and systemd_usable() is None:
            _systemctl("daemon-reload", check=False)
    plist = launchd_plist_path()
    if plist.exists():
        removed.append(str(plist))
        if not dry_run:
            subprocess.run(["launchctl", "unload", "-w", str(plist)], capture_output=True,
                           check=False)
            atomic.remove_durably(plist)
    if not dry_run:
        atomic.remove_durably(record_file())
    return {"removed": removed, "dry_run": dry_run}


def describe() -> dict[str, str]:
    """One doctor finding about the schedule."""
    record = installed()
    if not record:
        return {"what": "schedule", "detail": "no sweep schedule installed "
                "(`hf install` adds one)"}
    detail = f"{record.get('kind')} every {record.get('every_minutes')} min, installed " \
             f"{record.get('installed_at')}"
    if record.get("kind") == "cron" and shutil.which("crontab"):
        try:
            present = bool(our_cron_lines(read_crontab()))
        except HfError:
            present = True
        if not present:
            detail += "; but its crontab line is gone (run `hf install --cron` again)"
    return {"what": "schedule", "detail": detail}
