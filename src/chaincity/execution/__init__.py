"""Deterministic, metered execution of committed blocks."""
