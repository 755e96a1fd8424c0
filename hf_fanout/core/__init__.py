"""The shared core: records, the store, the state machine, the workspace, ownership, plans."""
