"""The build's look at its data: read each file, check it, profile it, compare it with live.

Runs in Shipyard's own process before the train command, so a bad data file fails the build
before it costs an environment or a training run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.config.schema import DataConfig
from shipyard.data.checks import check_frame
from shipyard.data.drift import FeatureDrift, feature_drift
from shipyard.data.files import read_frame
from shipyard.data.profile import FileProfile, Kind, profile_frame
from shipyard.errors import DataCheckFailed, StageFailed
from shipyard.paths import project_file

if TYPE_CHECKING:
    import pandas as pd

# The model server's datatypes (Open Inference Protocol) for the profile's kinds.
OIP_DATATYPES: dict[Kind, str] = {
    "float": "FP64",
    "int": "INT64",
    "str": "BYTES",
    "bool": "BOOL",
    "other": "ANY",
}


@dataclass(frozen=True)
class LiveData:
    """The release live in production: its version and its training data's profile, if any."""

    version: str
    train: FileProfile | None


@dataclass(frozen=True)
class DataReport:
    config: DataConfig
    profiles: dict[str, FileProfile]  # "train", and "holdout" when configured
    live: LiveData | None = None
    drift: list[FeatureDrift] = field(default_factory=list)

    def drift_lines(self) -> list[str]:
        """What the build log says about drift, one line per feature."""
        if self.live is None:
            return ["no live release to compare with"]
        if self.live.train is None:
            return [f"the live release {self.live.version} has no training data profile"]
        limit = self.config.drift.psi_max
        heading = f"drift of {self.config.train} against the live release {self.live.version}:"
        return [heading, *(f"  {item.sentence(limit)}" for item in self.drift)]

    def drifted(self) -> list[str]:
        """A sentence per feature past ``psi_max``, naming its PSI and the limit."""
        limit = self.config.drift.psi_max
        return [
            f"{self.config.train}: feature {item.sentence(limit)}, against the live release "
            f"{self.live.version if self.live else '?'}"
            for item in self.drift
            if item.drifted(limit)
        ]

    def input_schema(self) -> dict[str, str]:
        """The training data's features (all columns but the label) and their OIP datatypes."""
        columns = self.profiles["train"]["columns"]
        return {
            name: OIP_DATATYPES[column.get("kind", "other")]
            for name, column in columns.items()
            if name != self.config.label
        }

    def to_build_info(self) -> dict[str, Any]:
        limit = self.config.drift.psi_max
        drift = {
            "against": self.live.version if self.live else None,
            "psi_max": limit,
            "gate": self.config.drift.gate,
            "psi": {item.feature: item.psi for item in self.drift},
            "drifted": [item.feature for item in self.drift if item.drifted(limit)],
        }
        return {"profile": self.profiles, "drift": drift}


def inspect_data(code_dir: Path, config: DataConfig, live: LiveData | None) -> DataReport:
    """Check and profile the data files; DataCheckFailed with every problem at once."""
    files = {"train": config.train, "holdout": config.holdout}
    frames: dict[str, pd.DataFrame] = {}
    problems: list[str] = []
    for role, name in files.items():
        if name is None:
            continue
        try:
            frames[role] = _read(code_dir, name, config)
        except DataCheckFailed as exc:
            problems += exc.problems
            continue
        problems += check_frame(frames[role], config, name)
    if problems:
        raise DataCheckFailed(problems)
    profiles = {role: profile_frame(frames[role], files[role] or role) for role in frames}
    drift = feature_drift(frames["train"], live.train, config.label) if live and live.train else []
    return DataReport(config, profiles, live, drift)


def _read(code_dir: Path, name: str, config: DataConfig) -> pd.DataFrame:
    text = [column for column, rule in config.columns.items() if rule.dtype == "str"]
    try:
        path = project_file(code_dir, name)
    except StageFailed as exc:  # not in the commit, or a symlink leading out of the project
        raise DataCheckFailed([exc.message.rstrip(".")], hint=exc.hint) from None
    return read_frame(path, name, text)
