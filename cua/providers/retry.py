"""The one retry policy of the model API clients, the same as the official SDKs' (OpenAI's and Anthropic's agree).

Retried: HTTP 408, 409, 429 and every 5xx, timeouts, connection errors and streams that broke off
before their final event. Not retried: a 429 whose error code is ``insufficient_quota`` (waiting
does not add quota). A response header ``x-should-retry: true|false`` overrides all of that.

The wait before retry ``n`` (0-based) is the service's ``retry-after-ms``, else its
``retry-after`` (seconds or an HTTP date) when that lies in (0, 60] seconds; otherwise
``min(0.5 * 2**n, 8)`` seconds minus up to 25 % random jitter.

Time and randomness come from an injectable ``Clock`` and ``random`` so that tests can check
every wait on a fake clock without sleeping.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from .errors import APIConnectionError, APIError, APIStatusError, StreamError

T = TypeVar("T")

logger = logging.getLogger("cua.providers")

RETRYABLE_STATUSES = frozenset({408, 409, 429})
MAX_RETRY_AFTER = 60.0


class Clock(Protocol):
    """Wall-clock time (for ``retry-after`` HTTP dates) and sleeping."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    # Plain dicts are case-sensitive; httpx.Headers is not.
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return None


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    clock: Clock = field(default_factory=SystemClock, repr=False, compare=False)
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")

    def is_retryable(self, err: APIError) -> bool:
        """Whether sending the same request again may succeed."""
        if isinstance(err, APIConnectionError):
            return True
        if isinstance(err, StreamError):
            return err.interrupted
        if not isinstance(err, APIStatusError) or err.status is None:
            return False
        override = (_header(err.headers, "x-should-retry") or "").strip().lower()
        if override == "true":
            return True
        if override == "false":
            return False
        if err.status == 429 and err.code == "insufficient_quota":
            return False
        return err.status in RETRYABLE_STATUSES or err.status >= 500

    def retry_after(self, headers: Mapping[str, str]) -> float | None:
        """The wait the service asked for, in seconds, or None when it asked for none."""
        millis = _header(headers, "retry-after-ms")
        if millis is not None:
            try:
                return float(millis) / 1000
            except ValueError:
                pass
        value = _header(headers, "retry-after")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            pass
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return float(email.utils.mktime_tz(parsed) - self.clock.now())

    def delay(self, retries_done: int, headers: Mapping[str, str] | None = None) -> float:
        """Seconds to wait before the retry that follows ``retries_done`` earlier retries."""
        asked = self.retry_after(headers or {})
        if asked is not None and 0 < asked <= MAX_RETRY_AFTER:
            return asked
        backoff = min(self.initial_delay * 2.0 ** min(retries_done, 1000), self.max_delay)
        return max(backoff * (1 - self.jitter * self.random()), 0.0)

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        on_retry: Callable[[APIError, float], None] | None = None,
    ) -> T:
        """Await ``attempt()`` until it succeeds, fails for good, or the retries are spent.

        The error that ends the run carries ``attempts``, the number of requests made.
        """
        retries = 0
        while True:
            try:
                return await attempt()
            except APIError as err:
                err.attempts = retries + 1
                if retries >= self.max_retries or not self.is_retryable(err):
                    raise
                wait = self.delay(retries, err.headers)
                logger.warning(
                    "Retrying in %.2f s (retry %d of %d): %s", wait, retries + 1, self.max_retries, err
                )
                if on_retry is not None:
                    on_retry(err, wait)
                await self.clock.sleep(wait)
                retries += 1
