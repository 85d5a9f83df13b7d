"""The build stage's training data: checked and profiled before training (``shipyard.data``),
drift reported against the release live in production, the profile into the build-info and
the input schema into the model directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from shipyard.artifacts.local import digest_of
from shipyard.data import DataReport, FileProfile, LiveData, inspect_data
from shipyard.errors import DataCheckFailed, NotFound
from shipyard.pipeline import deploy
from shipyard.pipeline.context import RunContext

INPUT_SCHEMA_FILE = "input_schema.json"  # read by the model server (runtime/serving/loaders.py)


def check_data(ctx: RunContext) -> DataReport | None:
    """Check and profile the data files, and report drift against the live release."""
    config = ctx.config.data
    if config is None:
        return None
    report = inspect_data(ctx.code_dir, config, _live_data(ctx))
    for role, profile in report.profiles.items():
        ctx.say("build", f"data: {role} {profile['file']}: {profile['rows']:,} rows, checks passed")
    for line in report.drift_lines():
        ctx.say("build", f"data: {line}")
    drifted = report.drifted()
    if drifted and config.drift.gate:
        raise DataCheckFailed(drifted, hint="Set data.drift.gate: false to only report drift.")
    return report


def _live_data(ctx: RunContext) -> LiveData | None:
    """The release live in production and its training data's profile (None before data:)."""
    live = deploy.stable(ctx.adapters, ctx.project, "production")
    if live is None:
        return None
    try:
        info = ctx.store.get_artifact(ctx.project, live.version).build_info
    except NotFound:
        return None
    data = info.get("data")
    profiles = data.get("profile") if isinstance(data, dict) else None
    train = profiles.get("train") if isinstance(profiles, dict) else None
    return LiveData(live.version, cast(FileProfile, train) if isinstance(train, dict) else None)


def write_input_schema(ctx: RunContext, data: DataReport | None) -> None:
    """The features and their types, for a model server whose model does not name its inputs."""
    if data is None:
        return
    path = ctx.model_dir / INPUT_SCHEMA_FILE
    if path.exists():
        ctx.say("build", f"data: the train command wrote {INPUT_SCHEMA_FILE}; keeping it")
        return
    schema = data.input_schema()
    path.write_text(json.dumps(schema, indent=2) + "\n")
    ctx.say("build", f"data: input schema of {len(schema)} features -> {INPUT_SCHEMA_FILE}")


def data_info(ctx: RunContext, data: DataReport | None) -> dict[str, Any]:
    """The build-info's ``data``: the data files by digest, their profiles and the drift."""
    files = {
        str(path.relative_to(ctx.code_dir)): digest_of(path).digest for path in _data_files(ctx)
    }
    return {"files": files, **(data.to_build_info() if data else {})}


def data_summary(data: DataReport) -> dict[str, Any]:
    rows = {role: profile["rows"] for role, profile in data.profiles.items()}
    drift = {item.feature: item.psi for item in data.drift}
    return {"rows": rows, "against": data.live.version if data.live else None, "psi": drift}


def _data_files(ctx: RunContext) -> list[Path]:
    """The files under data/, and the configured data files wherever they are."""
    data_dir = ctx.code_dir / "data"
    found = {path for path in data_dir.rglob("*") if path.is_file()} if data_dir.is_dir() else set()
    config = ctx.config.data
    named = [config.train, config.holdout] if config else []
    found |= {ctx.code_dir / name for name in named if name and (ctx.code_dir / name).is_file()}
    return sorted(found)
