"""The cost of an agent's hook: the `hf agent-event` command Claude Code runs on
every step (as `hf open` wrote it into `.claude/settings.local.json`), against
a bare `python -S -c pass` and a plain git command, measured in the same run,
interleaved. Not part of the test suite; run it by hand:

    PYTHONPATH=. python3 tests/bench/bench_agent_event.py [ROUNDS]

Prints the median wall-clock and CPU time (user + system of the child) per call
of each, and the hook's ratios to the other two. The hook's event is one that
does not change the state (`pre-tool-use` of Bash while working): the common
case. Python's bytecode cache is on (in a temp dir), as in an installed hf.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], cwd: Path, env: dict[str, str], stdin: bytes) -> tuple[float, float]:
    """One call: its wall and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, input=stdin, stdout=subprocess.DEVNULL,
                   check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    real = shutil.which("git")
    assert real is not None
    with tempfile.TemporaryDirectory(prefix="hf-bench-") as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HF_", "GIT_")) and k != "PYTHONDONTWRITEBYTECODE"}
        env.update({"PYTHONPATH": str(ROOT), "GIT_CONFIG_NOSYSTEM": "1", "HOME": tmp,
                    "XDG_CONFIG_HOME": f"{tmp}/.config", "XDG_STATE_HOME": f"{tmp}/.state",
                    "PYTHONPYCACHEPREFIX": f"{tmp}/pycache", "CI": "1"})
        (Path(tmp) / ".config" / "hf").mkdir(parents=True)
        (Path(tmp) / ".config" / "hf" / "config.toml").write_text('agent = "claude {prompt}"\n')
        git = [real, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
        subprocess.run([real, "init", "-q", "-b", "main"], cwd=repo, env=env, check=True)
        (repo / "src" / "api").mkdir(parents=True)
        (repo / "src" / "api" / "a.py").write_text("a = 1\n")
        subprocess.run([*git, "add", "-A"], cwd=repo, env=env, check=True)
        subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, env=env, check=True)
        hf = [sys.executable, "-m", "hf_fanout"]
        for argv in (["split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**"],
                     ["open", "b1/api", "--launcher", "print"]):
            subprocess.run([*hf, *argv], cwd=repo, env=env, check=True,
                           stdout=subprocess.DEVNULL)
        part = Path(tmp) / "repo.hf" / "b1" / "api"
        settings = json.loads((part / ".claude" / "settings.local.json").read_text())
        command = settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
        payload = json.dumps({"session_id": "s", "cwd": str(part),
                              "hook_event_name": "PreToolUse", "tool_name": "Bash",
                              "tool_input": {"command": "ls"}}).encode()
        cases = {"hook": ["sh", "-c", command],
                 "python -S -c pass": [sys.executable, "-S", "-c", "pass"],
                 "git rev-parse --git-dir": [real, "rev-parse", "--git-dir"]}
        for argv in cases.values():  # warm the caches (and the hook's bytecode)
            run(argv, part, env, payload)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, argv in cases.items():
                times[name].append(run(argv, part, env, payload))
        wall = {n: statistics.median(t[0] for t in v) * 1000 for n, v in times.items()}
        cpu = {n: statistics.median(t[1] for t in v) * 1000 for n, v in times.items()}
        print(f"python {sys.version.split()[0]}, {rounds} rounds, {os.cpu_count()} cores, "
              f"load {os.getloadavg()[0]:.2f}; median ms per call")
        print(f"{'command':<26}{'wall':>8}{'cpu':>8}")
        for name in cases:
            print(f"{name:<26}{wall[name]:>8.1f}{cpu[name]:>8.1f}")
        for name in list(cases)[1:]:
            print(f"hook / {name:<19}{wall['hook'] / wall[name]:>7.1f}x"
                  f"{cpu['hook'] / max(cpu[name], 1e-6):>7.1f}x")
        print(f"hook - python -S -c pass: {wall['hook'] - wall['python -S -c pass']:.1f} ms "
              "wall (what hf adds to starting python)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
