"""Coordination by leases (ARCHITECTURE.md 7): who drives a run, a rollout, a deploy turn."""

from shipyard.coordination.interface import HeldLease, LeaseInfo, LeaseLost, Leases, new_owner

__all__ = ["HeldLease", "LeaseInfo", "LeaseLost", "Leases", "new_owner"]
