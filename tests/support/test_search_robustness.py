"""Whatever a query string holds, the search page and the staff API answer 200 or a 400 naming a parameter,
never a 500 (control characters, huge numbers, odd dates, unknown words), on SQLite and PostgreSQL."""

from __future__ import annotations

from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.support.search import ID_FILTERS, TEXT_FILTERS

NAMES = [*TEXT_FILTERS, *ID_FILTERS, "state", "error_class", "status_code", "from", "to", "before"]
VALUES = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["failed", "timeout", "2026-11-10", "2026-11-10T25:00", "2026-02-30", "404", "0", ""]),
)
QUERIES = st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERIES)
def test_any_query_is_answered_or_refused_never_a_500(console: FlaskClient, query: dict[str, str]) -> None:
    response = console.get("/support/deliveries", query_string=query)

    assert response.status_code in (200, 400), response.get_data(as_text=True)[:500]
