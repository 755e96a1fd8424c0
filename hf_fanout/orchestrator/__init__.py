"""Orchestration of a batch: plans, ownership and the parts that run in parallel."""
