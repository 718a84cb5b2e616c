"""The retry policy: which answers are retried, and when."""

from __future__ import annotations

import random

import pytest

from dispatcher.models import AttemptOutcome, ErrorClass
from workers.egress import Exchange
from workers.errors import DeliveryError
from workers.retry_policy import decide, judge, retry_delay_s
from workers.settings import DEFAULT_SCHEDULE_S, EngineSettings, from_env

DEFAULTS = EngineSettings()
NO_JITTER = EngineSettings(retry_jitter=0)


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


def test_the_default_schedule_is_eight_attempts_over_about_28_hours() -> None:
    assert DEFAULT_SCHEDULE_S == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert DEFAULTS.max_attempts == 8


@pytest.mark.parametrize("attempt", range(1, 8))
def test_delays_follow_the_schedule_within_20_percent(attempt: int) -> None:
    scheduled = DEFAULT_SCHEDULE_S[attempt]
    error = DeliveryError(ErrorClass.HTTP_STATUS, "503 X", permanent=False)
    rng = random.Random(attempt)

    delays = [retry_delay_s(error, attempt, DEFAULTS, rng) for _ in range(200)]

    assert min(delays) >= scheduled * 0.8 and max(delays) <= scheduled * 1.2
    assert max(delays) - min(delays) > scheduled * 0.2  # jitter spreads them


def test_after_a_timeout_or_429_the_next_try_waits_at_least_a_minute() -> None:
    timeout = DeliveryError(ErrorClass.TIMEOUT, "slow", permanent=False)
    too_many = judge(http(429))
    assert too_many is not None

    assert retry_delay_s(timeout, 1, NO_JITTER) == 60
    assert retry_delay_s(too_many, 1, NO_JITTER) == 60
    assert retry_delay_s(timeout, 3, NO_JITTER) == 1800


@pytest.mark.parametrize(("retry_after", "expected"), [("1", 300), ("400", 400), ("100000", 600)])
def test_retry_after_is_honoured_within_the_scheduled_delay_and_twice_it(
    retry_after: str, expected: float
) -> None:
    error = judge(http(503, **{"Retry-After": retry_after}))
    assert error is not None

    assert retry_delay_s(error, 2, NO_JITTER) == expected


def test_retry_after_as_an_http_date_is_understood() -> None:
    error = judge(http(503, **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))

    assert error is not None and error.retry_after_s == 0


def test_the_last_attempt_fails_and_permanent_errors_fail_at_once() -> None:
    retryable = DeliveryError(ErrorClass.CONNECT, "refused", permanent=False)
    permanent = DeliveryError(ErrorClass.SSRF, "private", permanent=True)

    assert decide(retryable, 7, NO_JITTER).outcome is AttemptOutcome.RETRY
    assert decide(retryable, 8, NO_JITTER).outcome is AttemptOutcome.FAILED
    assert decide(permanent, 1, NO_JITTER).outcome is AttemptOutcome.FAILED
    assert decide(None, 1, NO_JITTER).outcome is AttemptOutcome.SUCCEEDED


def test_the_schedule_and_limits_come_from_the_environment() -> None:
    tuning = from_env({"POSTBACK_RETRY_SCHEDULE": "0, 1,2", "POSTBACK_HOST_CONCURRENCY": "3"})

    assert (tuning.retry_schedule_s, tuning.host_concurrency, tuning.max_attempts) == ((0, 1, 2), 3, 3)


@pytest.mark.parametrize(
    ("name", "value"),
    [("POSTBACK_RETRY_SCHEDULE", "0,soon"), ("POSTBACK_LEASE_S", "-1"), ("POSTBACK_MAX_IN_FLIGHT", "0")],
)
def test_a_bad_setting_names_itself(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        from_env({name: value})
