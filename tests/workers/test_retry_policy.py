"""The retry policy: when a failed send is tried again, and the tuning read from the environment."""

from __future__ import annotations

import random

import pytest

from dispatcher.egress.client import Exchange
from dispatcher.egress.errors import DeliveryError
from dispatcher.egress.verdict import judge
from dispatcher.models import AttemptOutcome, ErrorClass
from workers.retry_policy import decide, retry_delay_s
from workers.settings import DEFAULT_SCHEDULE_S, EngineSettings, from_env

DEFAULTS = EngineSettings()
NO_JITTER = EngineSettings(retry_jitter=0)


def http(status: int, **headers: str) -> Exchange:
    return Exchange(status_code=status, reason="X", headers=headers, excerpt="")


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


def test_a_pump_heartbeat_shorter_than_the_pump_interval_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"POSTBACK_PUMP_HEARTBEAT_TTL_S must be longer than .*\(5 s\), got 3"
    ):
        from_env({"POSTBACK_PUMP_INTERVAL_S": "5", "POSTBACK_PUMP_HEARTBEAT_TTL_S": "3"})

    assert from_env({"POSTBACK_PUMP_HEARTBEAT_TTL_S": "2"}).pump_heartbeat_ttl_s == 2
