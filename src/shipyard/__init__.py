"""Shipyard: from a git commit to a live, canary-released model."""

__version__ = "0.1.0"
