"""Liveness: who works a part, whether it lives, heartbeats, rescue, the schedule."""
