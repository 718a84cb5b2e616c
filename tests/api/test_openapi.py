"""The OpenAPI document says what the app does: it is valid OpenAPI 3.1, every API route is in it and
everything in it is a route, its examples fit its schemas, and real answers (main successes and errors of
every operation) fit its response schemas."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from werkzeug.test import TestResponse

from dispatcher.api_spec import document
from tests.api.spec_checks import SPEC, operation, operations, response_problems, schema_errors
from tests.api.world import World

API_PREFIXES = ("/api/", "/s2s/", "/c/", "/livez", "/readyz", "/healthz", "/metrics")
IGNORED_METHODS = {"HEAD", "OPTIONS"}
Check = Callable[[str, str, TestResponse], TestResponse]


def test_the_document_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"].startswith("3.1")
    validate(document())


def test_the_served_document_is_the_document(world: World) -> None:
    response = world.client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == document()


def _routes(world: World) -> set[tuple[str, str]]:
    found = set()
    for rule in world.app.url_map.iter_rules():
        if rule.rule.startswith(API_PREFIXES):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            found |= {(method, path) for method in (rule.methods or set()) - IGNORED_METHODS}
    return found


def test_every_api_route_is_documented_and_every_documented_operation_is_a_route(world: World) -> None:
    routes = _routes(world)
    documented = {(method, path) for method, path, _ in operations()}
    assert sorted(routes - documented) == [], "routes missing from dispatcher/api_spec"
    assert sorted(documented - routes) == [], "documented operations that are not routes"


def test_operation_ids_are_unique_and_every_4xx_is_the_error_shape() -> None:
    ids = [found["operationId"] for _, _, found in operations()]
    assert len(ids) == len(set(ids))
    for method, path, found in operations():
        for status, response in found["responses"].items():
            json_schema = response.get("content", {}).get("application/json", {}).get("schema")
            if status.startswith("4") and json_schema is not None:
                assert schema_errors(json_schema, {"error": "x"}), (
                    f"{method} {path} {status} allows no fields"
                )
                shapes = (
                    {"error": "x", "fields": {"f": "y"}},
                    {"error": "x", "fields": {}, "current_status": "pending"},
                )
                assert any(not schema_errors(json_schema, shape) for shape in shapes), (
                    f"{method} {path} {status}"
                )


def _examples() -> list[tuple[str, dict[str, Any], Any]]:
    found = []
    for method, path, op in operations():
        for parameter in op.get("parameters", []) + SPEC["paths"][path].get("parameters", []):
            if "example" in parameter:
                found.append(
                    (f"{method} {path} {parameter['name']}", parameter["schema"], parameter["example"])
                )
        bodies = [("request", op.get("requestBody", {}))]
        bodies += [(status, response) for status, response in op["responses"].items()]
        for where, holder in bodies:
            for media_type, media in holder.get("content", {}).items():
                label = f"{method} {path} {where} {media_type}"
                for name, example in media.get("examples", {}).items():
                    found.append((f"{label} {name}", media["schema"], example["value"]))
                if "example" in media:
                    found.append((f"{label} example", media["schema"], media["example"]))
    return found


EXAMPLES = _examples()


def test_there_are_examples_for_every_request_body_and_json_success() -> None:
    labels = " ".join(label for label, _, _ in EXAMPLES)
    for method, path, op in operations():
        if "application/json" in op.get("requestBody", {}).get("content", {}):
            assert f"{method} {path} request application/json" in labels
        for status in op["responses"]:
            json_success = status.startswith("2") and "json" in str(op["responses"][status].get("content"))
            if json_success and path != "/api/openapi.json":
                assert f"{method} {path} {status} application/json" in labels


@pytest.mark.parametrize(("label", "schema", "example"), EXAMPLES, ids=[label for label, _, _ in EXAMPLES])
def test_each_example_fits_its_schema(label: str, schema: dict[str, Any], example: Any) -> None:
    assert schema_errors(schema, example) == []


def test_the_docs_page_shows_every_operation_escaped_and_without_script(world: World) -> None:
    response = world.client.get("/api/docs")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<script" not in page and "http://" not in page.replace("http://localhost", "")
    for method, path, op in operations():
        assert f"{method} {path}" in page and f'id="{op["operationId"]}"' in page
    # Text of the document that looks like markup is shown, not interpreted.
    assert "Bearer &lt;publisher API token&gt;" in page and "Bearer <publisher API token>" not in page
    assert world.client.get("/").get_data(as_text=True).count('href="/api/docs"') == 1


class Tour:
    """Calls operations for real and checks each answer against the document, noting what was seen."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.client: FlaskClient = world.client
        self.seen: dict[str, set[int]] = defaultdict(set)

    def check(self, method: str, path: str, response: TestResponse) -> TestResponse:
        problems = response_problems(method, path, response)
        assert problems == [], (
            f"{method} {path} -> {response.status_code}: {response.get_data(as_text=True)[:300]}"
        )
        self.seen[operation(method, path)["operationId"]].add(response.status_code)
        return response

    def new_click(self) -> str:
        w = self.world
        response = self.check(
            "GET",
            "/c/{program_id}",
            self.client.get(f"/c/{w.program_id}?pub={w.publisher_id}&ts={w.traffic_source_id}"),
        )
        return parse_qs(urlsplit(response.headers["Location"]).query)["ref"][0]


def test_real_answers_fit_the_documented_responses(world: World) -> None:
    tour = Tour(world)
    _clicks_and_probes(tour)
    _transactions(tour)
    _s2s(tour)
    _postbacks(tour)
    _deliveries(tour)
    _conversions(tour)
    missing = []
    for _method, _path, op in operations():
        statuses = tour.seen.get(op["operationId"], set())
        wants_error = any(status.startswith("4") for status in op["responses"])
        if not any(code < 400 for code in statuses) or (
            wants_error and not any(code >= 400 for code in statuses)
        ):
            missing.append(f"{op['operationId']}: saw {sorted(statuses)}")
    assert missing == [], "operations without a checked success and error"


def _clicks_and_probes(tour: Tour) -> None:
    w, c = tour.world, tour.client
    tour.new_click()
    tour.check("GET", "/c/{program_id}", c.get(f"/c/{w.program_id}?pub={w.publisher_id}&ts=999999"))
    tour.check("GET", "/c/{program_id}", c.get(f"/c/987654?pub={w.publisher_id}&ts={w.traffic_source_id}"))
    tour.check("GET", "/livez", c.get("/livez"))
    tour.check("GET", "/readyz", c.get("/readyz"))
    tour.check("GET", "/healthz", c.get("/healthz"))
    tour.check("GET", "/metrics", c.get("/metrics"))
    tour.check("GET", "/metrics", c.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}))
    tour.check("GET", "/api/openapi.json", c.get("/api/openapi.json"))
    tour.check("GET", "/api/docs", c.get("/api/docs"))


def _transactions(tour: Tour) -> None:
    w, c = tour.world, tour.client
    key = w.auth(w.api_key)
    sale = {"click_id": tour.new_click(), "order_number": "T-1", "sale_amount": "100.00"}
    report = "/api/v1/transactions"
    sales_id = tour.check("POST", report, c.post(report, headers=key, json=sale)).json["sales_id"]  # type: ignore[index]
    assert tour.check("POST", report, c.post(report, headers=key, json=sale)).status_code == 200
    assert (
        tour.check(
            "POST", report, c.post(report, headers=key, json={**sale, "sale_amount": "1.999"})
        ).status_code
        == 400
    )
    assert tour.check("POST", report, c.post(report, headers=key, json=[])).status_code == 400
    assert tour.check("POST", report, c.post(report, json=sale)).status_code == 401
    assert tour.check("POST", report, c.post(report, headers=key, data=b"{" * 70000)).status_code == 413
    status = "/api/v1/transactions/{sales_id}/status"
    url = f"/api/v1/transactions/{sales_id}/status"
    changed = tour.check(
        "POST", status, c.post(url, headers=key, json={"status": "approved", "sale_amount": "90"})
    )
    assert changed.json == {**changed.json, "event": "approved", "sale_amount": "90.00"}  # type: ignore[dict-item]
    assert (
        tour.check("POST", status, c.post(url, headers=key, json={"status": "declined"})).status_code == 409
    )
    assert tour.check("POST", status, c.post(url, headers=key, json={"status": "paid"})).status_code == 400
    assert (
        tour.check("POST", status, c.post(url, headers=w.auth(w.publisher_token), json={})).status_code == 401
    )
    missing = c.post("/api/v1/transactions/nope/status", headers=key, json={"status": "approved"})
    assert tour.check("POST", status, missing).status_code == 404
    _reads_and_changes_by_order(tour, sales_id)
    batch = "/api/v1/transactions/batch"
    csv = f"click_id,order_number,sale_amount\n{tour.new_click()},B-1,10.00\nnope,B-2,5.00\n"
    uploaded = tour.check("POST", batch, c.post(batch, headers={**key, "Content-Type": "text/csv"}, data=csv))
    summary = {"lines": 2, "recorded": 1, "changed": 0, "duplicates": 0, "rejected": 1}
    assert uploaded.json["summary"] == summary  # type: ignore[index]
    validation = "order_number,sale_amount,status\nB-1,10.00,approved\nT-1,95.00,approved\n"
    changed = c.post(batch, headers={**key, "Content-Type": "text/csv"}, data=validation)
    assert tour.check("POST", batch, changed).json["summary"]["changed"] == 1  # type: ignore[index]
    no_file = c.post(batch, headers=key, data={"other": "x"}, content_type="multipart/form-data")
    assert tour.check("POST", batch, no_file).status_code == 400
    assert tour.check("POST", batch, c.post(batch, data=csv)).status_code == 401


def _reads_and_changes_by_order(tour: Tour, sales_id: str) -> None:
    w, c = tour.world, tour.client
    key = w.auth(w.api_key)
    many, one = "/api/v1/transactions", "/api/v1/transactions/{sales_id}"
    page = tour.check("GET", many, c.get(f"{many}?order_number=T-1&status=approved", headers=key)).json
    assert page and [row["sales_id"] for row in page["transactions"]] == [sales_id]
    assert tour.check("GET", many, c.get(f"{many}?status=paid", headers=key)).status_code == 400
    assert tour.check("GET", many, c.get(many, headers=w.auth(w.publisher_token))).status_code == 401
    detail = tour.check("GET", one, c.get(f"{many}/{sales_id}", headers=key)).json
    assert detail and [event["kind"] for event in detail["events"]] == ["created", "approved"]
    assert tour.check("GET", one, c.get(f"{many}/nope", headers=key)).status_code == 404
    assert tour.check("GET", one, c.get(f"{many}/{sales_id}")).status_code == 401
    by_order = "/api/v1/transactions/status"
    post = c.post(by_order, headers=key, json={"order_number": "T-1", "sale_amount": "95.00"})
    assert tour.check("POST", by_order, post).json["event"] == "adjusted"  # type: ignore[index]
    for body, status in (
        ({"order_number": "T-1", "status": "declined"}, 409),
        ({"order_number": "T-1", "status": "paid"}, 400),
        ({"order_number": "nope", "status": "approved"}, 404),
    ):
        assert tour.check("POST", by_order, c.post(by_order, headers=key, json=body)).status_code == status
    assert tour.check("POST", by_order, c.post(by_order, json={"order_number": "T-1"})).status_code == 401
    assert tour.check("POST", by_order, c.post(by_order, headers=key, data=b"{" * 70000)).status_code == 413


def _s2s(tour: Tour) -> None:
    w, c = tour.world, tour.client
    path = "/s2s/transaction"
    query = f"{path}?token={w.s2s_token}&clickid={tour.new_click()}&on=S-1&sa=12.50"
    assert tour.check("GET", path, c.get(query)).status_code == 201
    assert tour.check("GET", path, c.get(query)).json["duplicate"] is True  # type: ignore[index]
    assert tour.check("GET", path, c.get(f"{query}&status=declined")).json["changed"] is True  # type: ignore[index]
    assert tour.check("GET", path, c.get(f"{query}&status=approved")).status_code == 409
    pixel = tour.check("GET", path, c.get(f"{query}&pixel=1"))
    assert pixel.mimetype == "image/gif"
    assert tour.check("GET", path, c.get(f"{path}?token={w.s2s_token}&on=S-2&sa=abc")).status_code == 400
    assert tour.check("GET", path, c.get(f"{path}?clickid=x&on=S-2&sa=1")).status_code == 401
    form = {"token": w.s2s_token, "clickid": tour.new_click(), "on": "S-3", "sa": "7.00"}
    assert tour.check("POST", path, c.post(path, data=form)).status_code == 201
    assert tour.check("POST", path, c.post(path, data={**form, "token": "s2s_bad"})).status_code == 401


def _postbacks(tour: Tour) -> None:
    w, c = tour.world, tour.client
    auth = w.auth(w.publisher_token)
    many, one = "/api/v1/postbacks", "/api/v1/postbacks/{postback_id}"
    assert tour.check("GET", many, c.get(many, headers=auth)).json["postbacks"]  # type: ignore[index]
    assert tour.check("GET", many, c.get(many)).status_code == 401
    body = {
        "url": f"{w.receiver.url}/t?cid=#fobs#",
        "method": "POST",
        "body_template": "a=#on#",
        "signing_secret": True,
    }
    created = tour.check("POST", many, c.post(many, headers=auth, json=body)).json
    assert created and created["signing_secret"].startswith("whsec_")
    refused = c.post(many, headers=auth, json={"url": "http://10.0.0.5/pb", "events": []})
    assert set(tour.check("POST", many, refused).json["fields"]) == {"url", "events"}  # type: ignore[index]
    assert tour.check("POST", many, c.post(many, headers=auth, data="x")).status_code == 400
    url = f"/api/v1/postbacks/{created['id']}"
    assert tour.check("GET", one, c.get(url, headers=auth)).json["id"] == created["id"]  # type: ignore[index]
    foreign = c.get(url, headers=w.auth(w.other_publisher_token))
    assert tour.check("GET", one, foreign).status_code == 404
    paused = tour.check("PUT", one, c.put(url, headers=auth, json={"active": False})).json
    assert paused and paused["status"] == "paused" and paused["method"] == "POST"
    assert (
        tour.check("PUT", one, c.put(url, headers=auth, json={"status_map": {"paid": "x"}})).status_code
        == 400
    )
    assert tour.check("PUT", one, c.put("/api/v1/postbacks/987654", headers=auth, json={})).status_code == 404
    preview = "/api/v1/postbacks/preview"
    shown = tour.check(
        "POST", preview, c.post(preview, headers=auth, json={"url": "https://t.example/?c={clickid}"})
    )
    assert shown.json["findings"][0]["field"] == "url"  # type: ignore[index]
    assert tour.check("POST", preview, c.post(preview, headers=auth, json={"nope": 1})).status_code == 400
    test = "/api/v1/postbacks/{postback_id}/test"
    sent = tour.check("POST", test, c.post(f"/api/v1/postbacks/{w.postback_id}/test", headers=auth)).json
    assert sent and sent["ok"] is True and sent["status_code"] == 200
    assert tour.check("POST", test, c.post("/api/v1/postbacks/987654/test", headers=auth)).status_code == 404
    assert tour.check("DELETE", one, c.delete(url, headers=auth)).status_code == 204
    assert tour.check("DELETE", one, c.delete(url, headers=auth)).status_code == 404


def _conversions(tour: Tour) -> None:
    w, c = tour.world, tour.client
    path = "/api/v1/conversions"
    page = tour.check("GET", path, c.get(path, headers=w.auth(w.publisher_token))).json
    assert page and page["conversions"] and page["totals"]["overall"]
    exported = tour.check("GET", path, c.get(f"{path}?format=csv", headers=w.auth(w.publisher_token)))
    assert exported.mimetype == "text/csv" and exported.get_data(as_text=True).startswith("sales_id,")
    assert (
        tour.check("GET", path, c.get(f"{path}?status=paid", headers=w.auth(w.publisher_token))).status_code
        == 400
    )
    assert tour.check("GET", path, c.get(path)).status_code == 401
    path = "/api/v1/programs"
    listed = tour.check("GET", path, c.get(path, headers=w.auth(w.publisher_token))).json
    assert listed and listed["programs"][0]["tracking_link"]
    assert (
        tour.check("GET", path, c.get(f"{path}?fobs2=a%01", headers=w.auth(w.publisher_token))).status_code
        == 400
    )


def _deliveries(tour: Tour) -> None:
    w, c = tour.world, tour.client
    many, one = "/api/v1/deliveries", "/api/v1/deliveries/{delivery_id}"
    replay = "/api/v1/deliveries/{delivery_id}/replay"
    for token in (w.publisher_token, w.staff_token):
        page = tour.check("GET", many, c.get(f"{many}?state=succeeded", headers=w.auth(token))).json
        assert page and [row["id"] for row in page["deliveries"]] == [w.delivery_id]
        detail = tour.check("GET", one, c.get(f"{many}/{w.delivery_id}", headers=w.auth(token))).json
        assert detail and detail["attempts"][0]["status_code"] == 200
    assert (
        tour.check("GET", many, c.get(f"{many}?state=done", headers=w.auth(w.publisher_token))).status_code
        == 400
    )
    assert (
        tour.check("GET", many, c.get(f"{many}?status_code=42", headers=w.auth(w.staff_token))).status_code
        == 400
    )
    assert tour.check("GET", many, c.get(many, headers=w.auth("stf_nope"))).status_code == 401
    foreign = c.get(f"{many}/{w.delivery_id}", headers=w.auth(w.other_publisher_token))
    assert tour.check("GET", one, foreign).status_code == 404
    url = f"{many}/{w.delivery_id}/replay"
    replayed = tour.check("POST", replay, c.post(url, headers=w.auth(w.publisher_token))).json
    assert replayed and replayed["delivery"]["state"] == "pending"
    assert tour.check("POST", replay, c.post(url, headers=w.auth(w.staff_token))).status_code == 409
    assert (
        tour.check("POST", replay, c.post(f"{many}/987654/replay", headers=w.auth(w.staff_token))).status_code
        == 404
    )
