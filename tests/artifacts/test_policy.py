"""The promotion policy as a pure function, and how it may change."""

from __future__ import annotations

import pytest

from shipyard.artifacts.policy import (
    RELEASE_GATES,
    ProjectStatement,
    PromotionPolicy,
    Verdict,
    change_policy,
    decide,
    effective_policy,
    stated,
)
from shipyard.errors import InvalidInput

RELEASE = PromotionPolicy(RELEASE_GATES)
ALL_PASSED = dict.fromkeys(RELEASE_GATES, "passed")


def test_all_three_passed_is_allowed() -> None:
    decision = decide(RELEASE, ALL_PASSED, "run #3")
    assert decision.allowed and decision.refused == []
    assert decision.summary() == "run #3: test passed, analyze passed, qa passed"


@pytest.mark.parametrize("status", ["skipped", "failed", "cancelled", "queued", "rolled-back"])
def test_anything_but_passed_refuses_by_default(status: str) -> None:
    decision = decide(RELEASE, {**ALL_PASSED, "qa": status}, "run #3")
    assert not decision.allowed
    assert [(c.stage, c.status) for c in decision.refused] == [("qa", status)]


def test_a_stage_with_no_record_refuses() -> None:
    decision = decide(RELEASE, {"test": "passed"}, "imported stage results")
    assert [(c.stage, c.status) for c in decision.refused] == [
        ("analyze", "unknown"),
        ("qa", "unknown"),
    ]


def test_an_allowed_skip_passes_and_shows_but_a_failure_never_does() -> None:
    loose = PromotionPolicy(RELEASE_GATES, ("qa",))
    skipped = decide(loose, {**ALL_PASSED, "qa": "skipped"}, "run #1")
    assert skipped.allowed
    assert "qa skipped (skip allowed by policy)" in skipped.summary()
    assert not decide(loose, {**ALL_PASSED, "qa": "failed"}, "run #1").allowed


def test_a_repository_without_requirements_takes_anything() -> None:
    assert decide(PromotionPolicy(), {}, "run #1").allowed


def test_tightening_adds_stages_and_loosening_is_reported() -> None:
    tighter = change_policy(RELEASE, require=["staging"])
    assert tighter.policy.require == (*RELEASE_GATES, "staging")
    assert (tighter.loosened, tighter.tightened) == ((), ("staging",))
    looser = change_policy(tighter.policy, allow_skipped=["qa", "analyze"])
    assert looser.loosened == ("qa", "analyze")
    assert looser.policy.allow_skipped == ("qa", "analyze")
    back = change_policy(looser.policy, disallow_skipped=["qa"])
    assert back.policy.allow_skipped == ("analyze",) and back.tightened == ("qa",)
    assert back.policy.require == tighter.policy.require  # required stages never go


def test_bad_policy_changes_are_refused() -> None:
    with pytest.raises(InvalidInput, match="'canary' cannot gate a promotion") as caught:
        change_policy(RELEASE, require=["canary"])
    assert "build, test, analyze, publish, staging, qa" in (caught.value.hint or "")
    with pytest.raises(InvalidInput, match="the policy does not require it"):
        change_policy(RELEASE, allow_skipped=["staging"])


STATED = ProjectStatement(("analyze",), ("test", "qa"))


def test_a_project_that_states_it_has_no_tests_or_qa_may_skip_them_and_the_summary_says_so() -> (
    None
):
    policy = effective_policy(RELEASE, STATED)
    skipped = {**ALL_PASSED, "test": "skipped", "qa": "skipped"}
    decision = decide(policy, skipped, "run #4")
    assert decision.allowed
    assert [c.verdict for c in decision.checks] == [
        Verdict.STATED_NONE,
        Verdict.PASSED,
        Verdict.STATED_NONE,
    ]
    assert decision.summary() == (
        "run #4: test skipped (project states none: release.requires [analyze]), "
        "analyze passed, qa skipped (project states none: release.requires [analyze])"
    )


@pytest.mark.parametrize("status", ["failed", "cancelled", "unknown", "unverified"])
def test_a_stated_none_stage_still_refuses_anything_but_skipped(status: str) -> None:
    decision = decide(effective_policy(RELEASE, STATED), {**ALL_PASSED, "test": status}, "run #4")
    assert [(c.stage, c.status) for c in decision.refused] == [("test", status)]


def test_a_statement_tightens_the_repository_policy_and_never_drops_a_stage() -> None:
    loose = PromotionPolicy(RELEASE_GATES, ("qa",))
    policy = effective_policy(loose, ProjectStatement(("qa", "staging"), ("test", "analyze")))
    assert policy.require == (*RELEASE_GATES, "staging")
    assert policy.allow_skipped == ()  # the project requires qa: its skip is no longer enough
    statuses = {**ALL_PASSED, "qa": "skipped", "staging": "passed"}
    assert [c.stage for c in decide(policy, statuses, "run #1").refused] == ["qa"]
    assert effective_policy(loose, None) is loose


def test_only_a_stage_the_project_does_not_configure_is_stated_away() -> None:
    assert stated(["analyze"], ["build", "analyze", "publish"]) == STATED
    # test is configured but not listed: it stays as the repository says, never waived.
    assert stated(["analyze"], ["build", "test", "analyze", "publish"]).waived == ("qa",)
    assert STATED.to_dict() == {"requires": ["analyze"], "waived": ["test", "qa"]}


def test_a_carried_statement_is_read_back_and_can_waive_only_release_gates() -> None:
    assert ProjectStatement.from_dict(STATED.to_dict()) == STATED
    forged = {"requires": ["analyze", "deploy"], "waived": ["test", "staging", "analyze"]}
    assert ProjectStatement.from_dict(forged) == ProjectStatement(("analyze",), ("test",))
    assert ProjectStatement.from_dict(None) is None
    assert ProjectStatement.from_dict({"requires": "analyze"}) is None
