"""Tabs and handoffs: launchers, the handoff file, a ready environment, the handoff queue."""
