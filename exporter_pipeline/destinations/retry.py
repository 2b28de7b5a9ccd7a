"""Retries with exponential backoff and full jitter, for retryable destination errors only."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from exporter_pipeline.errors import RetryableDestinationError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 20.0

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**attempt)]."""
        return random.uniform(0, min(self.max_seconds, self.base_seconds * 2**attempt))


def call_with_retries(call: Callable[[], T], policy: RetryPolicy) -> T:
    """Run `call`; on a RetryableDestinationError wait and try again, up to the policy's
    attempts, then raise the last error with the number of attempts in its message."""
    for attempt in range(policy.attempts):
        try:
            return call()
        except RetryableDestinationError as error:
            if attempt + 1 >= policy.attempts:
                raise RetryableDestinationError(
                    f"{error} (gave up after {policy.attempts} attempts)"
                ) from None
            time.sleep(policy.delay(attempt))
    raise AssertionError("unreachable")
