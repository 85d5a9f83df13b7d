"""``shipyard.yaml``: its models, loading with precise errors, and a starter file."""

from shipyard.config.schema import ProjectConfig, parse_duration

__all__ = ["ProjectConfig", "parse_duration"]
