"""Layers that keep parallel agents from reaching outside their part (filled by the guard issue)."""
