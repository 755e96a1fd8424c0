"""The components that hook into the core: the guard (split and join steps, the
sweep's tamper check), tabs (handoff file, copied files, setup) and liveness
(derived states, heartbeats).

Loaded once, when a command opens a repository, so `hf --help` pays for none
of them.
"""

from __future__ import annotations

_loaded = False


def load() -> None:
    global _loaded  # noqa: PLW0603 -- a once-per-process switch
    if _loaded:
        return
    _loaded = True
    from hf_fanout.guard import steps
    from hf_fanout.orchestrator import liveness
    from hf_fanout.tabs import environment, handoff

    steps.register()
    del liveness, environment, handoff  # importing them registered their steps


def preload(*modules: str) -> None:
    """Import `modules` in a background thread: for a command that is about to
    wait on git processes (the GIL is free meanwhile) and needs them after."""
    import importlib
    import threading

    def run() -> None:
        for name in modules:
            importlib.import_module(name)

    threading.Thread(target=run, name="hf-preload").start()
