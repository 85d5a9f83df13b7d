"""A CycloneDX SBOM of the build environment, written by the cyclonedx tooling.

``cyclonedx-py environment PYTHON`` (the ``cyclonedx-bom`` package, one of Shipyard's
dependencies) runs from Shipyard's own interpreter and is pointed at the build environment's
interpreter, so it lists exactly what the build installed. Its schema validation is turned off
(it costs seconds of jsonschema per run and the tool's output is schema-valid by construction);
``--output-reproducible`` keeps the document stable for the same environment. The project
itself is added as the SBOM's root component (name and version of the artifact).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.errors import StageFailed

__all__ = ["SBOM_FILE", "SbomInfo", "write_sbom"]

SBOM_FILE = "sbom.cdx.json"


@dataclass(frozen=True)
class SbomInfo:
    path: Path
    sha256: str
    components: int
    spec_version: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "format": "CycloneDX",
            "spec_version": self.spec_version,
            "sha256": self.sha256,
            "components": self.components,
        }


def write_sbom(
    python: Path, out: Path, *, name: str, version: str, timeout: float = 300
) -> SbomInfo:
    """Write the SBOM of ``python``'s environment to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "cyclonedx_py", "environment", "--of", "JSON",
        "--output-reproducible", "--no-validate", "-o", str(out), str(python),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise StageFailed(f"cyclonedx-py did not finish within {timeout:g}s.") from error
    if done.returncode != 0 or not out.is_file():
        tail = (done.stderr or done.stdout).strip()[-1500:] or "(no output)"
        raise StageFailed(
            f"cyclonedx-py could not write the SBOM (exit code {done.returncode}): {tail}",
            hint="Check that `cyclonedx-bom` is installed beside Shipyard "
            "(`pip install cyclonedx-bom`), or leave `sbom` out of `analyze.checks`.",
        )
    document = json.loads(out.read_text(encoding="utf-8"))
    if document.get("bomFormat") != "CycloneDX":
        raise StageFailed(f"cyclonedx-py wrote something that is not a CycloneDX BOM: {out}")
    _add_root(document, name, version)
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
    out.write_bytes(data)
    return SbomInfo(
        path=out,
        sha256=hashlib.sha256(data).hexdigest(),
        components=len(document.get("components") or []),
        spec_version=str(document.get("specVersion", "")),
    )


def _add_root(document: dict[str, Any], name: str, version: str) -> None:
    metadata = document.setdefault("metadata", {})
    metadata.setdefault(
        "component",
        {"type": "application", "name": name, "version": version, "bom-ref": f"{name}@{version}"},
    )
