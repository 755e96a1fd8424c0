"""Tabs and handoffs: launchers, the handoff file, a ready environment, the handoff queue.

Importing this package registers its split steps (the handoff file, copied
files, setup commands, the port); the CLI imports it.
"""

from hf_fanout.tabs import environment, handoff

__all__ = ["environment", "handoff"]
