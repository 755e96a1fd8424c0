"""Importing modules in a background thread, while a command waits on git processes."""

from __future__ import annotations


def preload(*modules: str) -> None:
    """Import `modules` in a background thread: for a command that is about to
    wait on git processes (the GIL is free meanwhile) and needs them after."""
    import importlib
    import threading

    def run() -> None:
        for name in modules:
            importlib.import_module(name)

    threading.Thread(target=run, name="hf-preload").start()
