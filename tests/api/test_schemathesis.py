"""Schemathesis against the app, driven by the served OpenAPI document, with real credentials.

For every operation, valid-looking (positive) and schema-violating (negative) requests: no 5xx, the status,
content type and body are what the document says, a negative request is refused with a 4xx, and a refused
request wrote no row (clicks, transactions, events, deliveries, attempts and postbacks counted before and
after).
A stateful run follows the document's links (create a postback, then read, change and delete it).

Budget: `FUZZ_EXAMPLES` examples per operation and mode (default 6; a release run uses e.g. 500, see README
"Development"). `POST /api/v1/postbacks/{id}/test` is left out: it sends to the fuzzed URL, on the internet.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.fuzz_stats import FUZZ_STATS
from tests.api.spec_checks import operations
from tests.api.world import World, row_counts

# Its properties are built inside the tests (schemathesis), which Hypothesis's own mark does not see.
pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
SKIPPED = {"testPostback"}  # sends a real request to whatever URL the fuzzer made up
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Operations that answer 200 to a body the schema calls invalid, by design.
NEGATIVE_ANSWERED_200 = {"uploadSales": "any text is a CSV file; each refused line is reported in the 200"}
FUZZED = [(method, path, op) for method, path, op in operations() if op["operationId"] not in SKIPPED]
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
)


@pytest.fixture(scope="module")
def api_schema(world: World) -> Any:
    """The document as the app serves it, bound to the app (requests go through its WSGI interface)."""
    served = schemathesis.openapi.from_wsgi("/api/openapi.json", world.app)
    # Also out of the linked sequences, where schemathesis would reach it from a created postback's id.
    return served.exclude(operation_id=sorted(SKIPPED))


def credentials(world: World, op: dict[str, Any]) -> dict[str, Any]:
    """What a real client of this operation sends: its bearer token, or the S2S token in the query."""
    schemes = {name for requirement in op.get("security", []) for name in requirement}
    if "s2sToken" in schemes:
        return {"params": {"token": world.s2s_token}}
    if "staffToken" in schemes and op["operationId"] == "listDeliveries":
        # The staff view checks every filter; a publisher's ignores the staff-only ones.
        return {"headers": world.auth(world.staff_token)}
    for scheme, token in (("advertiserKey", world.api_key), ("publisherToken", world.publisher_token)):
        if scheme in schemes:
            return {"headers": world.auth(token)}
    return {}


def run_case(world: World, case: Case, op: dict[str, Any], mode: GenerationMode) -> None:
    label = f"{case.method} {case.operation.path}"
    before = row_counts(world.app)
    FUZZ_STATS.record_case(label)
    try:
        given = credentials(world, op)
        response = case.call(**given)
        negative = mode is GenerationMode.NEGATIVE and op["operationId"] not in NEGATIVE_ANSWERED_200
        if (
            negative
            and response.status_code < 300
            and "headers" in given
            and "Authorization" not in case.headers
        ):
            # The case's mutations were: no Authorization header (which the credentials above put back) and
            # one that did not survive serialization (an extra query parameter with no value: `?fobs=` was
            # sent, nothing more). What is left to check is the missing header, so send it as generated.
            response = case.call()
        checks = CHECKS + ([negative_data_rejection] if negative else [])
        case.validate_response(response, checks=checks)
        if 400 <= response.status_code < 500:
            assert row_counts(world.app) == before, f"a refused request wrote rows: {case.as_curl_command()}"
    except BaseException:
        FUZZ_STATS.record_failure(label)
        raise


def fuzz(world: World, api_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    op = next(found for m, p, found in FUZZED if (m, p) == (method, path))
    operation = api_schema[path][method]

    @SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def each(case: Case) -> None:
        run_case(world, case, op, mode)

    each()


def _has_inputs(op: dict[str, Any]) -> bool:
    return bool(op.get("parameters") or op.get("requestBody"))


IDS = [op["operationId"] for _, _, op in FUZZED]


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in FUZZED], ids=IDS)
def test_valid_looking_requests_are_answered_as_documented(
    world: World, api_schema: Any, method: str, path: str
) -> None:
    fuzz(world, api_schema, method, path, GenerationMode.POSITIVE)


@pytest.mark.parametrize(
    ("method", "path"), [(m, p) for m, p, op in FUZZED if _has_inputs(op)], ids=[i for i, (_, _, op) in
    zip(IDS, FUZZED, strict=True) if _has_inputs(op)],
)  # fmt: skip
def test_schema_violating_requests_are_refused_with_the_error_shape_and_write_nothing(
    world: World, api_schema: Any, method: str, path: str
) -> None:
    fuzz(world, api_schema, method, path, GenerationMode.NEGATIVE)


def test_following_links_create_read_change_and_delete_postbacks(world: World, api_schema: Any) -> None:
    operations_by_id = {op["operationId"]: op for _, _, op in FUZZED}
    machine: Callable[..., Any] = api_schema.as_state_machine()

    class Links(machine):  # type: ignore[valid-type, misc]
        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            op = operations_by_id.get(case.operation.definition.raw.get("operationId", ""), {})
            return credentials(world, op)

        def validate_response(self, response: Any, case: Case, **kwargs: Any) -> None:
            label = f"{case.method} {case.operation.path}"
            FUZZ_STATS.record_case(label, stateful=True)
            try:
                case.validate_response(response, checks=CHECKS)
            except BaseException:
                FUZZ_STATS.record_failure(label)
                raise

    settings = hypothesis.settings(SETTINGS, max_examples=max(2, EXAMPLES // 2), stateful_step_count=6)
    for _ in range(5):
        try:
            Links.run(settings=settings)
            return
        except FlakyStrategyDefinition:
            # What a replayed sequence draws depends on the app's answers, which change as it runs, so
            # Hypothesis' replay check can end a session early; like schemathesis' own engine, start a fresh
            # one. Every answer seen so far was checked; a failed check raises, and fails the test.
            continue
