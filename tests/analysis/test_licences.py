"""Installed distributions and their licences, read by a real interpreter from real metadata."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from shipyard.analysis.dependencies import installed_distributions
from shipyard.analysis.interface import Distribution, Target
from shipyard.analysis.licences import LicenceScanner, denied_by, licence_of
from shipyard.config.schema import LicencesConfig
from shipyard.errors import StageFailed


def dist_info(site: Path, name: str, version: str, *headers: str) -> None:
    folder = site / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True)
    lines = ["Metadata-Version: 2.4", f"Name: {name}", f"Version: {version}", *headers]
    (folder / "METADATA").write_text("\n".join(lines) + "\n\nThe description.\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of installed distributions, as a site-packages holds them."""
    site = tmp_path_factory.mktemp("site-packages")
    dist_info(site, "Modern", "2.0", "License-Expression: MIT OR Apache-2.0")
    dist_info(site, "old_style", "1.4", "License: BSD-3-Clause")
    dist_info(
        site,
        "classified",
        "0.3",
        "License: Copyright (c) 2020 Someone.",  # a sentence, not a licence name
        "Classifier: License :: OSI Approved :: GNU General Public License v3 (GPLv3)",
        "Classifier: Programming Language :: Python :: 3",
    )
    dist_info(
        site,
        "dual",
        "1.0",
        "Classifier: License :: OSI Approved :: GNU Affero General Public License v3",
        "Classifier: License :: OSI Approved :: MIT License",
    )
    dist_info(site, "nothing-said", "0.1", "License: UNKNOWN")
    dist_info(
        site,
        "strong",
        "3.0",
        "License-Expression: GPL-2.0-only WITH Classpath-exception-2.0 AND MIT",
    )
    return site


def test_installed_distributions_are_read_by_the_environments_interpreter(site: Path) -> None:
    found = {d.name: d for d in installed_distributions(Path(sys.executable), paths=[site])}
    assert sorted(found, key=str.lower) == [
        "classified",
        "dual",
        "Modern",
        "nothing-said",
        "old_style",
        "strong",
    ]
    assert found["Modern"] == Distribution("Modern", "2.0", "MIT OR Apache-2.0", None, ())
    assert found["classified"].classifiers == (
        "License :: OSI Approved :: GNU General Public License v3 (GPLv3)",
    )


def test_the_first_distribution_of_a_name_wins(site: Path, tmp_path: Path) -> None:
    dist_info(tmp_path, "modern", "9.9")  # same project, later on the path
    found = installed_distributions(Path(sys.executable), paths=[site, tmp_path])
    assert [d.version for d in found if d.name.lower() == "modern"] == ["2.0"]


def test_a_broken_interpreter_is_a_clear_failure(tmp_path: Path) -> None:
    with pytest.raises(StageFailed, match="Could not list the distributions of"):
        installed_distributions(tmp_path / "no-python")


def test_where_a_licence_is_read_from(site: Path) -> None:
    found = {d.name: d for d in installed_distributions(Path(sys.executable), paths=[site])}
    assert licence_of(found["Modern"]) == ("MIT OR Apache-2.0", "License-Expression")
    assert licence_of(found["old_style"]) == ("BSD-3-Clause", "License")
    assert licence_of(found["classified"]) == ("GPL-3.0-only", "classifiers")
    assert licence_of(found["dual"]) == ("AGPL-3.0-only OR MIT", "classifiers")
    assert licence_of(found["nothing-said"]) == ("UNKNOWN", "none")
    long_text = Distribution("numpyish", "1", license="Copyright (c) 2005\nAll rights reserved.")
    assert licence_of(long_text) == ("UNKNOWN", "none")


@pytest.mark.parametrize(
    ("expression", "deny", "expected"),
    [
        ("MIT", ["GPL-*"], None),
        ("GPL-3.0-only", ["GPL-*"], "GPL-*"),
        ("gpl-3.0-or-later", ["GPL-3.0*"], "GPL-3.0*"),  # case does not matter
        ("MIT OR GPL-3.0-only", ["GPL-*"], None),  # the user may pick MIT
        ("AGPL-3.0-only OR GPL-3.0-only", ["GPL-*", "AGPL-*"], "AGPL-*"),
        ("MIT AND GPL-3.0-only", ["GPL-*"], "GPL-*"),  # both apply
        ("(MIT OR GPL-2.0-only) AND BSD-3-Clause", ["GPL-*"], None),
        ("(GPL-2.0-only OR LGPL-2.1-only) AND MIT", ["*GPL-*"], "*GPL-*"),
        ("GPL-2.0-only WITH Classpath-exception-2.0", ["GPL-2.0*"], "GPL-2.0*"),
        ("GNU GPL v3", ["GNU GPL*"], "GNU GPL*"),  # not SPDX: matched whole
        ("MIT OR", ["MIT*"], "MIT*"),  # not SPDX either
        ("GPL-3.0-only", [], None),
    ],
)
def test_deny_list_reads_spdx_expressions(
    expression: str, deny: list[str], expected: str | None
) -> None:
    assert denied_by(expression, deny) == expected


def test_the_licence_scanner(site: Path) -> None:
    dists = installed_distributions(Path(sys.executable), paths=[site])
    scanner = LicenceScanner(LicencesConfig(deny=["GPL-*", "AGPL-*"]))
    result = scanner.scan(Target(site, distributions=dists))
    by_package = {f.details["package"]: f for f in result.findings}
    assert sorted(by_package) == ["classified", "strong"]  # dual is MIT OR AGPL: allowed
    finding = by_package["classified"]
    assert finding.id == "licence-denied" and finding.severity == "high"
    assert finding.location == "classified==0.3"
    assert finding.aliases == ("licence-denied:classified",)
    assert finding.title == "licensed GPL-3.0-only, denied by 'GPL-*'"
    assert result.notes == ["no licence in the metadata of: nothing-said"]
    assert result.data["counts"]["UNKNOWN"] == 1
    assert result.scope == "6 installed distributions; denied: GPL-*, AGPL-*"

    nothing_denied = LicenceScanner(LicencesConfig()).scan(Target(site, distributions=dists))
    assert nothing_denied.findings == []
    no_env = LicenceScanner(LicencesConfig()).scan(Target(site))
    assert no_env.notes == ["NOT CHECKED: no environment"]
