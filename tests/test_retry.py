"""The retry policy, rule by rule, on a fake clock (nothing here really sleeps)."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from cua.providers.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    RateLimitError,
    ResponseFailedError,
    StreamError,
)
from cua.providers.retry import RetryPolicy

NOW = 1_750_000_000.0


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.time = now
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds


def policy(*, jitter_draw: float = 0.0, **kwargs) -> RetryPolicy:
    return RetryPolicy(clock=kwargs.pop("clock", FakeClock()), random=lambda: jitter_draw, **kwargs)


def status_error(status: int, code: str | None = None, **headers: str) -> APIStatusError:
    return APIStatusError(
        "boom",
        status=status,
        code=code,
        headers=httpx.Headers({k.replace("_", "-"): v for k, v in headers.items()}),
    )


# --- what is retried ------------------------------------------------------------------------------


def test_defaults_match_the_official_sdk() -> None:
    p = RetryPolicy()
    assert (p.max_retries, p.initial_delay, p.max_delay, p.jitter) == (2, 0.5, 8.0, 0.25)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529, 599])
def test_retryable_statuses(status: int) -> None:
    assert policy().is_retryable(status_error(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_other_statuses_are_final(status: int) -> None:
    assert not policy().is_retryable(status_error(status))


def test_rate_limit_is_retried_but_insufficient_quota_is_not() -> None:
    p = policy()
    assert p.is_retryable(RateLimitError("slow down", status=429, code="rate_limit_exceeded"))
    assert not p.is_retryable(RateLimitError("no money", status=429, code="insufficient_quota"))


def test_x_should_retry_overrides_the_status() -> None:
    p = policy()
    assert p.is_retryable(status_error(400, x_should_retry="true"))
    assert not p.is_retryable(status_error(500, x_should_retry="false"))
    assert p.is_retryable(status_error(429, "insufficient_quota", x_should_retry="true"))
    # Any other value is no override.
    assert p.is_retryable(status_error(503, x_should_retry="maybe"))


def test_headers_are_matched_in_any_case_even_in_a_plain_dict() -> None:
    err = APIStatusError("boom", status=500, headers={"X-Should-Retry": "false"})
    assert not policy().is_retryable(err)
    assert policy().delay(0, {"Retry-After-Ms": "1500"}) == 1.5


def test_connection_errors_timeouts_and_cut_streams_are_retried() -> None:
    p = policy()
    assert p.is_retryable(APIConnectionError("unreachable"))
    assert p.is_retryable(APITimeoutError("too slow"))
    assert p.is_retryable(StreamError("cut", interrupted=True))


def test_answers_that_are_not_transient_are_final() -> None:
    p = policy()
    assert not p.is_retryable(StreamError("error event", interrupted=False, code="server_error"))
    assert not p.is_retryable(ResponseFailedError("failed", code="server_error", status=200))
    assert not p.is_retryable(AuthenticationError("bad key", status=401))
    assert not p.is_retryable(APIError("not json", status=200))


# --- how long to wait -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retries_done", "expected"), [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (50, 8.0)]
)
def test_exponential_backoff_without_jitter(retries_done: int, expected: float) -> None:
    assert policy(jitter_draw=0.0).delay(retries_done) == expected


def test_jitter_takes_off_at_most_a_quarter() -> None:
    assert policy(jitter_draw=1.0).delay(0) == pytest.approx(0.375)
    assert policy(jitter_draw=0.5).delay(1) == pytest.approx(0.875)
    assert policy(jitter_draw=1.0).delay(9) == pytest.approx(6.0)


def test_retry_after_ms_comes_first() -> None:
    p = policy()
    assert p.delay(0, {"retry-after-ms": "250"}) == 0.25
    assert p.delay(3, {"retry-after-ms": "1200", "retry-after": "7"}) == 1.2


@pytest.mark.parametrize(("value", "expected"), [("3", 3.0), ("0.5", 0.5), ("60", 60.0)])
def test_retry_after_seconds(value: str, expected: float) -> None:
    assert policy().delay(2, {"retry-after": value}) == expected


@pytest.mark.parametrize("value", ["0", "-4", "61", "3600", "soon", ""])
def test_retry_after_outside_zero_to_sixty_seconds_falls_back_to_backoff(value: str) -> None:
    assert policy().delay(1, {"retry-after": value}) == 1.0


def test_retry_after_ms_out_of_range_is_not_replaced_by_retry_after() -> None:
    # As in the SDK: a parsable retry-after-ms is the service's answer, even when it is unusable.
    assert policy().delay(0, {"retry-after-ms": "120000", "retry-after": "2"}) == 0.5
    assert policy().delay(0, {"retry-after-ms": "0", "retry-after": "2"}) == 0.5


def test_unparsable_retry_after_ms_falls_through_to_retry_after() -> None:
    assert policy().delay(0, {"retry-after-ms": "n/a", "retry-after": "2"}) == 2.0


def test_retry_after_as_http_date() -> None:
    clock = FakeClock()
    p = policy(clock=clock)
    in_five = email.utils.formatdate(NOW + 5, usegmt=True)
    assert p.delay(0, {"retry-after": in_five}) == pytest.approx(5.0)
    in_an_hour = email.utils.formatdate(NOW + 3600, usegmt=True)
    assert p.delay(0, {"retry-after": in_an_hour}) == 0.5
    in_the_past = email.utils.formatdate(NOW - 30, usegmt=True)
    assert p.delay(1, {"retry-after": in_the_past}) == 1.0


# --- the loop -------------------------------------------------------------------------------------


class Script:
    """An attempt function that raises the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: APIError) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def test_run_retries_until_success_and_waits_between_attempts() -> None:
    clock = FakeClock()
    attempt = Script(status_error(503), APIConnectionError("unreachable"))
    assert await policy(clock=clock).run(attempt) == "ok"
    assert attempt.calls == 3
    assert clock.sleeps == [0.5, 1.0]


async def test_run_honours_the_servers_wait() -> None:
    clock = FakeClock()
    attempt = Script(status_error(429, "rate_limit_exceeded", retry_after_ms="20"))
    await policy(clock=clock).run(attempt)
    assert clock.sleeps == [0.02]


async def test_run_gives_up_after_max_retries_with_the_last_error() -> None:
    clock = FakeClock()
    last = status_error(500)
    attempt = Script(status_error(502), status_error(503), last, status_error(504))
    with pytest.raises(APIStatusError) as caught:
        await policy(clock=clock).run(attempt)
    assert caught.value is last
    assert caught.value.attempts == 3
    assert attempt.calls == 3
    assert clock.sleeps == [0.5, 1.0]


async def test_run_does_not_retry_a_final_error() -> None:
    clock = FakeClock()
    attempt = Script(RateLimitError("quota", status=429, code="insufficient_quota"))
    with pytest.raises(RateLimitError) as caught:
        await policy(clock=clock).run(attempt)
    assert caught.value.attempts == 1
    assert clock.sleeps == []


async def test_zero_retries_means_one_attempt() -> None:
    clock = FakeClock()
    attempt = Script(APITimeoutError("slow"))
    with pytest.raises(APITimeoutError):
        await policy(clock=clock, max_retries=0).run(attempt)
    assert attempt.calls == 1 and clock.sleeps == []


async def test_on_retry_sees_each_error_and_wait() -> None:
    seen: list[tuple[int | None, float]] = []
    attempt = Script(status_error(409), status_error(408, retry_after="3"))
    await policy().run(attempt, on_retry=lambda err, wait: seen.append((err.status, wait)))
    assert seen == [(409, 0.5), (408, 3.0)]


async def test_errors_that_are_not_api_errors_pass_straight_through() -> None:
    async def attempt() -> None:
        raise KeyError("bug")

    clock = FakeClock()
    with pytest.raises(KeyError):
        await policy(clock=clock).run(attempt)
    assert clock.sleeps == []


def test_negative_max_retries_is_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
