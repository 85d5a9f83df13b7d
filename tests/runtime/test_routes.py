"""The route table's pure decisions: which backend is stable, who may pin, where traffic fails over."""

from __future__ import annotations

import json
from pathlib import Path

from shipyard.runtime.interface import Backend
from shipyard.runtime.routes import RouteTable, load_routes, pin_digest

STABLE = Backend("3", "http://127.0.0.1:1", 80, stable=True)
CANARY = Backend("4", "http://127.0.0.1:2", 20)


def test_the_stable_backend_is_the_marked_one_while_it_has_traffic() -> None:
    assert RouteTable.of(1, "w", [CANARY, STABLE]).stable == STABLE
    canary_ahead = [Backend("3", STABLE.url, 30, stable=True), Backend("4", CANARY.url, 70)]
    assert RouteTable.of(1, "w", canary_ahead).stable == canary_ahead[0]
    # Going live: the new version takes everything while the old one is still marked.
    live = [Backend("4", CANARY.url, 100), Backend("3", STABLE.url, 0, stable=True)]
    assert RouteTable.of(1, "w", live).stable == live[0]
    assert RouteTable.of(1, "w", []).stable is None


def test_only_the_stable_backend_is_pinned_without_the_token() -> None:
    closed = RouteTable.of(1, "w", [STABLE, CANARY])
    assert closed.may_pin(STABLE, None)
    assert not closed.may_pin(CANARY, None) and not closed.may_pin(CANARY, b"anything")
    table = RouteTable.of(1, "w", [STABLE, CANARY], pin_token_sha256=pin_digest(b"s3cret"))
    assert table.may_pin(CANARY, b"s3cret")
    assert not table.may_pin(CANARY, b"s3cret ") and not table.may_pin(CANARY, None)
    assert "s3cret" not in str(table.to_dict())


def test_traffic_fails_over_to_a_ready_backend_of_weight_zero() -> None:
    standby = Backend("2", "http://127.0.0.1:3", 0)
    other = Backend("1", "http://127.0.0.1:4", 0)
    table = RouteTable.of(1, "w", [Backend("3", STABLE.url, 100, stable=True), standby, other])
    assert table.choice(set()).pick() == table.backends[0]
    failed_over = table.choice({STABLE.url})
    assert [b.version for b in failed_over.backends] == ["2"]
    last = table.choice({STABLE.url, standby.url}).pick()
    assert last is not None and last.version == "1"
    assert table.choice({STABLE.url, standby.url, other.url}).pick() is None


def test_the_routes_file_keeps_the_marker_and_the_digest(tmp_path: Path) -> None:
    table = RouteTable.of(2, "w", [STABLE, CANARY], pin_token_sha256=pin_digest(b"t"))
    data = table.to_dict()
    assert data["backends"][0]["stable"] is True and "stable" not in data["backends"][1]
    (tmp_path / "routes.json").write_text(json.dumps(data))
    loaded = load_routes(tmp_path / "routes.json")
    assert loaded.stable == STABLE and loaded.pin_token_sha256 == pin_digest(b"t")
