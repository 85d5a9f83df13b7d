"""The API fuzzed from its own OpenAPI document: whatever a client sends, never a 5xx.

Schemathesis generates requests for every operation, both fitting the document and not
(out-of-range numbers, wrong types, missing fields), against the app in process, with an admin token so the requests reach the routes.
Bounded and derandomized: 30 examples per operation, the same ones on every run.
"""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from shipyard.domain import STAGES, Status, TokenRole
from shipyard.server.app import create_app
from shipyard.services import Services
from shipyard.wiring import open_adapters

EXAMPLES = settings(
    max_examples=30, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)


def fuzzed_app(tmp_path: Path) -> tuple[schemathesis.BaseSchema, dict[str, str], Services]:
    """The app on a fresh state directory holding one finished run and an admin token."""
    services = Services(open_adapters(tmp_path / "state"))
    _, secret = services.tokens.create("fuzzer", TokenRole.ADMIN)
    store = services.adapters.store
    store.ensure_project("tiny", "/repos/tiny")
    store.create_run("tiny", "ab" * 20, "main")
    for stage in STAGES:
        store.set_stage_status("tiny", 1, stage, Status.SKIPPED)
    store.set_run_status("tiny", 1, Status.PASSED)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(services))
    return schema, {"authorization": f"Bearer {secret}"}, services


def test_no_request_makes_the_api_answer_5xx(tmp_path: Path) -> None:
    schema, admin, services = fuzzed_app(tmp_path)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6
    for operation in operations:

        @EXAMPLES
        @given(
            case=st.one_of([operation.as_strategy(mode) for mode in schemathesis.GenerationMode])
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers=admin)
            case.validate_response(response, checks=[not_a_server_error])

        fuzz()
    services.adapters.store.close()
