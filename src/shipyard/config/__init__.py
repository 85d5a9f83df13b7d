"""``shipyard.yaml``: its models, loading with precise errors, its reference, a starter file."""

from shipyard.config.loader import CONFIG_FILE, load_config, parse_config
from shipyard.config.reference import reference_markdown, schema_json
from shipyard.config.schema import ProjectConfig, parse_duration
from shipyard.config.starter import write_starter

__all__ = [
    "CONFIG_FILE",
    "ProjectConfig",
    "load_config",
    "parse_config",
    "parse_duration",
    "reference_markdown",
    "schema_json",
    "write_starter",
]
