"""The delivery engine's tuning, read from the environment by the worker and pump entry points.

Everything has a production default; tests and benchmarks pass shorter schedules to the processes they spawn.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from dispatcher.config import ConfigError
from dispatcher.egress.render import USER_AGENT

DEFAULT_SCHEDULE_S = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@dataclass(frozen=True)
class EngineSettings:
    # Delay before each attempt, counted from the previous one; the first entry is the first attempt.
    retry_schedule_s: tuple[float, ...] = DEFAULT_SCHEDULE_S
    retry_jitter: float = 0.2
    # After a timeout or a 429 the receiver is struggling: never come back sooner than this.
    throttle_min_s: float = 60.0
    connect_timeout_s: float = 5.0
    total_timeout_s: float = 15.0
    # Longer than the worst case of one send (total timeout plus writing its outcome).
    lease_s: float = 20.0
    host_concurrency: int = 8
    # Sends in flight per worker process; a job claims no more than the free slots. With 128, a process held
    # about 80 requests in flight to receivers answering in 100 ms (the job being claimed and logged holds its
    # share meanwhile): bench.delivery's 100 ms run, 2 processes, delivered 1,090/s; 1,250/s with 256 (no more
    # with 512: the CPU is the limit then). With jobs of 100, 512 made the 100 ms run 12% faster (4
    # interleaved pairs) but, in 3 of 3 fast-sink runs of 8,000, left the last deliveries 1-2.6 s behind the
    # others (they came in at the pump's 1 s steps), against none in 3 runs with 256: not taken.
    max_in_flight: int = 256
    # Consecutive timeouts after which a host gets one slot until it answers again.
    circuit_timeouts: int = 3
    # A delivery refused for lack of a host slot waits this long before the pump offers it again.
    defer_s: float = 2.0
    # The pump re-hands a delivery still due this long after it was queued (its job was lost).
    rehand_after_s: float = 15.0
    pump_interval_s: float = 1.0
    pump_batch: int = 5000
    # A pump's heartbeat in Redis lives this long unless renewed by its next pass (dispatcher.heartbeats):
    # a few intervals, so that a slow pass does not make a working pump look dead.
    pump_heartbeat_ttl_s: int = 30
    auto_pause_after_s: float = 5 * 24 * 3600.0
    user_agent: str = USER_AGENT

    @property
    def max_attempts(self) -> int:
        return len(self.retry_schedule_s)


_FLOATS = {
    "POSTBACK_RETRY_JITTER": "retry_jitter",
    "POSTBACK_THROTTLE_MIN_S": "throttle_min_s",
    "POSTBACK_CONNECT_TIMEOUT_S": "connect_timeout_s",
    "POSTBACK_TOTAL_TIMEOUT_S": "total_timeout_s",
    "POSTBACK_LEASE_S": "lease_s",
    "POSTBACK_DEFER_S": "defer_s",
    "POSTBACK_REHAND_AFTER_S": "rehand_after_s",
    "POSTBACK_PUMP_INTERVAL_S": "pump_interval_s",
    "POSTBACK_AUTO_PAUSE_AFTER_S": "auto_pause_after_s",
}
_INTS = {
    "POSTBACK_HOST_CONCURRENCY": "host_concurrency",
    "POSTBACK_MAX_IN_FLIGHT": "max_in_flight",
    "POSTBACK_CIRCUIT_TIMEOUTS": "circuit_timeouts",
    "POSTBACK_PUMP_BATCH": "pump_batch",
    "POSTBACK_PUMP_HEARTBEAT_TTL_S": "pump_heartbeat_ttl_s",
}


def from_env(environ: Mapping[str, str] | None = None) -> EngineSettings:
    """`POSTBACK_RETRY_SCHEDULE=0,5,300` and the variables above; a bad value names itself."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    schedule = env.get("POSTBACK_RETRY_SCHEDULE", "").strip()
    if schedule:
        values["retry_schedule_s"] = tuple(_number("POSTBACK_RETRY_SCHEDULE", s) for s in schedule.split(","))
    for name, attribute in _FLOATS.items():
        if env.get(name, "").strip():
            values[attribute] = _number(name, env[name])
    for name, attribute in _INTS.items():
        if env.get(name, "").strip():
            values[attribute] = int(_number(name, env[name]))
            if values[attribute] < 1:  # type: ignore[operator]
                raise ConfigError(f"{name} must be at least 1, got {env[name]!r}")
    settings = EngineSettings(**values)  # type: ignore[arg-type]
    if not settings.retry_schedule_s:
        raise ConfigError("POSTBACK_RETRY_SCHEDULE must list at least one delay, got ''")
    if settings.pump_heartbeat_ttl_s <= settings.pump_interval_s:  # the pump would look dead between passes
        raise ConfigError(
            f"POSTBACK_PUMP_HEARTBEAT_TTL_S must be longer than the pump interval "
            f"({settings.pump_interval_s:g} s), got {settings.pump_heartbeat_ttl_s}"
        )
    return settings


def _number(name: str, text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {text!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {text!r}")
    return value
