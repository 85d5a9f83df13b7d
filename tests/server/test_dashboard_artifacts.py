"""The artifacts pages: the dev and release repositories as a table, searching them, an
artifact's build-info with its SBOM summarised and both downloadable, and promoting it.

Artifacts are packed and published the way the pipeline does (real store, real blobs, the
state directory's signing key); the pages are driven through the app in process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shipyard.artifacts.catalog import Catalog
from shipyard.domain import TokenRole
from shipyard.server.dashboard.pages.artifacts import human_size
from shipyard.services import Services
from shipyard.store.models import Artifact

from ..services.conftest import PASSING, published
from .test_dashboard_session import sign_in

RELEASABLE = {**PASSING, "qa": "passed"}
SBOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "components": [
        {"name": "numpy", "licenses": [{"license": {"id": "BSD-3-Clause"}}]},
        {"name": "scipy", "licenses": [{"license": {"id": "BSD-3-Clause"}}]},
        {"name": "pandas", "licenses": [{"license": {"id": "BSD-3-Clause"}}]},
        {"name": "requests", "licenses": [{"expression": "Apache-2.0"}]},
        {"name": "bare"},
    ],
}


def publish(
    services: Services, tmp_path: Path, statuses: dict[str, str] = RELEASABLE, **info: object
) -> Artifact:
    folder = tmp_path / f"build-{len(list(tmp_path.glob('build-*')))}"
    return published(services.adapters, folder, statuses, dict(info))


def rows(html: str) -> list[str]:
    """The artifacts in the table, in order: ``iris:1-ab12cd3``, ..."""
    return re.findall(r'<tr id="artifact-([^"]+)">', html)


def versions(html: str) -> list[str]:
    return [row.split("-", 1)[1] for row in rows(html)]


@pytest.fixture
def two(services: Services, tmp_path: Path) -> tuple[Artifact, Artifact]:
    """iris 1 promoted into release (so signed), iris 2 in dev with team=vision."""
    first = publish(services, tmp_path)
    second = publish(services, tmp_path)
    services.artifacts.promote("iris", first.version)
    Catalog(services.adapters.store).set_properties(second, {"team": "vision"})
    return first, second


def test_the_table_shows_both_repositories_with_digest_size_and_signatures(
    api: TestClient, tokens: dict[TokenRole, str], two: tuple[Artifact, Artifact]
) -> None:
    first, second = two
    sign_in(api, tokens[TokenRole.VIEWER])
    page = api.get("/artifacts")
    assert page.status_code == 200
    assert versions(page.text) == [second.version, first.version]  # newest first
    assert "2 artifacts matched" in page.text
    row = page.text.split(f'id="artifact-iris-{first.version}"')[1].split("</tr>")[0]
    assert "repo-release" in row and "repo-dev" in row
    short = first.digest.split(":")[-1][:12]
    assert f'<code title="{first.digest}">{short}</code>' in row
    assert f'<td class="number">{human_size(first.size)}</td>' in row
    assert "✓ verifies" in row  # release signed it with the key this Shipyard trusts
    other = page.text.split(f'id="artifact-iris-{second.version}"')[1].split("</tr>")[0]
    assert "unsigned" in other and "repo-release" not in other
    assert "team</span>=vision" in other


def test_sizes_read_as_people_read_them() -> None:
    assert [human_size(n) for n in (0, 999, 1000, 1_234_567, 5 * 10**9, 7 * 10**12)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "1.2 MB",
        "5.0 GB",
        "7000.0 GB",
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"name": "iris"}, [2, 1]),
        ({"name": "other"}, []),
        ({"version": ">=2"}, [2]),
        ({"version": ">=1,<2"}, [1]),
        ({"property": "team=vision"}, [2]),
        ({"property": "team=vision,git.sha=nope"}, []),  # comma-separated: every one holds
        ({"repository": "release"}, [1]),
        ({"repository": "dev", "version": "!=2"}, [1]),
    ],
)
def test_search_narrows_the_table(
    api: TestClient,
    tokens: dict[TokenRole, str],
    two: tuple[Artifact, Artifact],
    query: dict[str, str],
    expected: list[int],
) -> None:
    sign_in(api, tokens[TokenRole.VIEWER])
    page = api.get("/artifacts", params=query)
    assert page.status_code == 200
    assert [int(v.split("-")[0]) for v in versions(page.text)] == expected
    for value in query.values():  # the form keeps what was asked
        assert f'value="{value}"' in page.text.replace("&gt;", ">").replace("&lt;", "<") or (
            f'value="{value}" selected' in page.text
        )


def test_repeated_property_fields_all_hold(
    api: TestClient, tokens: dict[TokenRole, str], two: tuple[Artifact, Artifact]
) -> None:
    sign_in(api, tokens[TokenRole.VIEWER])
    both = api.get("/artifacts?property=team%3Dvision&property=build.run%3D9")
    assert versions(both.text) == []
    one = api.get("/artifacts?property=team%3Dvision&property=team%3Dvision")
    assert versions(one.text) == [two[1].version]


@pytest.mark.parametrize(
    ("query", "message", "hint"),
    [
        ({"version": ">=x"}, "is not a version range", "A range compares the run number"),
        ({"property": "team"}, "&#39;team&#39; is not key=value", "team.owner=vision"),
    ],
)
def test_a_bad_filter_is_a_400_that_says_what_to_fix(
    api: TestClient,
    tokens: dict[TokenRole, str],
    two: tuple[Artifact, Artifact],
    query: dict[str, str],
    message: str,
    hint: str,
) -> None:
    sign_in(api, tokens[TokenRole.VIEWER])
    page = api.get("/artifacts", params=query)
    assert page.status_code == 400
    alert = page.text.split('id="filter-error"')[1].split("</div>")[0]
    assert message in alert and hint in alert
    assert 'class="filters"' in page.text and rows(page.text) == []  # the form stays to fix it


def test_the_table_is_paged_and_says_how_many_matched(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    store = services.adapters.store
    store.ensure_project("iris", "/repos/iris")
    for n in range(1, 56):
        artifact = store.add_artifact("iris", f"{n}-ab12cd3", f"sha256:{n:064x}", n, {}, None)
        store.add_ref("dev", artifact)
    sign_in(api, tokens[TokenRole.VIEWER])
    first = api.get("/artifacts")
    assert "55 artifacts matched; page 1 of 2" in first.text
    assert len(rows(first.text)) == 50 and versions(first.text)[0] == "55-ab12cd3"
    assert 'href="/artifacts?page=2" rel="next"' in first.text
    second = api.get("/artifacts?page=2")
    assert versions(second.text) == [f"{n}-ab12cd3" for n in range(5, 0, -1)]
    assert 'href="/artifacts?page=1" rel="prev"' in second.text


def test_the_detail_page_summarises_the_sbom_and_shows_the_build_info(
    api: TestClient, services: Services, tokens: dict[TokenRole, str], tmp_path: Path
) -> None:
    artifact = publish(services, tmp_path, sbom=SBOM)
    sign_in(api, tokens[TokenRole.VIEWER])
    page = api.get(f"/artifacts/iris/{artifact.version}")
    assert page.status_code == 200
    summary = page.text.split('id="sbom-summary"')[1].split("</p>")[0]
    assert "CycloneDX 1.6" in summary
    assert "<strong>5</strong> components under <strong>3</strong> licences" in summary
    licences = re.findall(
        r'<tr><th scope="row">([^<]+)</th><td class="number">(\d+)</td></tr>', page.text
    )
    assert licences == [("BSD-3-Clause", "3"), ("Apache-2.0", "1"), ("unknown", "1")]
    assert f'href="/artifacts/iris/{artifact.version}/sbom.json"' in page.text
    assert f'href="/artifacts/iris/{artifact.version}/build-info.json"' in page.text
    assert artifact.digest in page.text
    assert '<a href="/projects/iris/runs/1">#1</a>' in page.text
    assert "artifact.published" in page.text  # its history


def test_the_sbom_and_the_build_info_download_in_full(
    api: TestClient, services: Services, tokens: dict[TokenRole, str], tmp_path: Path
) -> None:
    artifact = publish(services, tmp_path, sbom=SBOM)
    sign_in(api, tokens[TokenRole.VIEWER])
    sbom = api.get(f"/artifacts/iris/{artifact.version}/sbom.json")
    assert sbom.status_code == 200 and sbom.headers["content-type"] == "application/json"
    disposition = f'attachment; filename="iris-{artifact.version}.sbom.cdx.json"'
    assert sbom.headers["content-disposition"] == disposition
    assert sbom.json() == SBOM
    info = api.get(f"/artifacts/iris/{artifact.version}/build-info.json")
    assert info.headers["content-disposition"].startswith("attachment;")
    assert info.json() == json.loads(json.dumps(artifact.build_info))
    assert info.json()["sbom"] == SBOM and info.json()["run"] == 1


def test_without_an_sbom_the_page_says_so_and_its_download_is_404(
    api: TestClient, services: Services, tokens: dict[TokenRole, str], tmp_path: Path
) -> None:
    artifact = publish(services, tmp_path)
    sign_in(api, tokens[TokenRole.VIEWER])
    assert "This build has no SBOM" in api.get(f"/artifacts/iris/{artifact.version}").text
    missing = api.get(f"/artifacts/iris/{artifact.version}/sbom.json")
    assert missing.status_code == 404 and "has no SBOM in its build-info" in missing.text


def test_an_unknown_artifact_is_a_404_page(api: TestClient, tokens: dict[TokenRole, str]) -> None:
    sign_in(api, tokens[TokenRole.VIEWER])
    page = api.get("/artifacts/iris/9-fffffff")
    assert page.status_code == 404 and "<h1>" in page.text and "iris" in page.text


def test_a_releaser_promotes_from_the_page_and_the_promotion_is_audited(
    api: TestClient, services: Services, tokens: dict[TokenRole, str], tmp_path: Path
) -> None:
    artifact = publish(services, tmp_path)
    csrf = sign_in(api, tokens[TokenRole.RELEASER])
    url = f"/artifacts/iris/{artifact.version}"
    before = api.get(url).text
    assert f'action="{url}/promote"' in before and "Promote into release" in before
    done = api.post(f"{url}/promote", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"{url}?done=promoted"
    after = api.get(done.headers["location"]).text
    assert 'id="promoted"' in after and f'action="{url}/promote"' not in after
    assert services.artifacts.show("iris", artifact.version).repositories == ["dev", "release"]
    event = services.adapters.store.events(f"iris:{artifact.version}")[0]
    assert (event.action, event.actor) == ("artifact.promoted", "releaser-token")
    assert "artifact.promoted</strong> by releaser-token into <code>release</code>" in after


def test_a_developer_sees_no_promote_button_and_its_post_is_refused(
    api: TestClient, services: Services, tokens: dict[TokenRole, str], tmp_path: Path
) -> None:
    artifact = publish(services, tmp_path)
    csrf = sign_in(api, tokens[TokenRole.DEVELOPER])
    url = f"/artifacts/iris/{artifact.version}"
    page = api.get(url).text
    assert "Promote into release" in page  # the policy's view is for everyone
    assert f'action="{url}/promote"' not in page
    refused = api.post(f"{url}/promote", data={"csrf": csrf}, follow_redirects=False)
    assert refused.status_code == 403 and "this needs releaser" in refused.text
    assert services.artifacts.show("iris", artifact.version).repositories == ["dev"]


def test_a_refused_promotion_lists_what_the_policy_refuses(
    api: TestClient, services: Services, tokens: dict[TokenRole, str], tmp_path: Path
) -> None:
    artifact = publish(services, tmp_path, {**PASSING, "test": "failed", "qa": "passed"})
    csrf = sign_in(api, tokens[TokenRole.RELEASER])
    url = f"/artifacts/iris/{artifact.version}"
    refused = api.post(f"{url}/promote", data={"csrf": csrf}, follow_redirects=False)
    assert refused.status_code == 409
    alert = refused.text.split('id="promote-error"')[1].split("</div>")[0]
    assert "refuses" in alert and "test failed" in alert
    checks = re.findall(
        r'<tr><th scope="row">(\w+)</th><td>(\w+)</td><td class="([^"]*)">', refused.text
    )
    assert ("test", "failed", "error") in checks and ("qa", "passed", "") in checks
    assert services.artifacts.show("iris", artifact.version).repositories == ["dev"]


def test_a_promotion_without_the_csrf_token_is_refused(
    api: TestClient, services: Services, tokens: dict[TokenRole, str], tmp_path: Path
) -> None:
    artifact = publish(services, tmp_path)
    sign_in(api, tokens[TokenRole.RELEASER])
    url = f"/artifacts/iris/{artifact.version}/promote"
    assert api.post(url, follow_redirects=False).status_code == 403
    assert services.artifacts.show("iris", artifact.version).repositories == ["dev"]
