"""What an answer means: which answers are a success, which are retried and which are given up on."""

from __future__ import annotations

import pytest

from dispatcher.egress.client import Exchange
from dispatcher.egress.verdict import judge
from dispatcher.models import ErrorClass


def http(status: int, **headers: str) -> Exchange:
    return Exchange(status_code=status, reason="X", headers=headers, excerpt="")


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_success(status: int) -> None:
    assert judge(http(status)) is None


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(500, False), (502, False), (503, False), (599, False), (408, False), (429, False)]
    + [
        (400, True),
        (401, True),
        (403, True),
        (404, True),
        (405, True),
        (409, True),
        (410, True),
        (422, True),
    ],
)
def test_5xx_408_429_are_retried_other_4xx_are_not(status: int, permanent: bool) -> None:
    error = judge(http(status))

    assert error is not None and (error.error_class, error.permanent) == (ErrorClass.HTTP_STATUS, permanent)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_permanent_failure_that_names_the_location(status: int) -> None:
    error = judge(http(status, location="http://10.0.0.1/"))

    assert error is not None and error.error_class is ErrorClass.REDIRECT and error.permanent
    assert "http://10.0.0.1/" in error.message


def test_410_asks_for_a_pause() -> None:
    error = judge(http(410))

    assert error is not None and error.pause_reason and "410" in error.pause_reason


def test_retry_after_as_an_http_date_is_understood() -> None:
    error = judge(http(503, **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))

    assert error is not None and error.retry_after_s == 0
