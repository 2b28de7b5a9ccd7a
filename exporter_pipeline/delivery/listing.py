"""The delivery sensor's listings of outputs: several at a time, and a tick never held by
an output that does not answer.

A bucket that accepts connections and never answers would hold a listing for its
client's read timeout and retries (minutes), longer than a sensor evaluation may last:
the tick would fail, its cursor would not move, and every tenant's deliveries would wait
for that one bucket. So outputs are listed on daemon threads, and a tick waits for them
only until its limit: an output still listing then counts as down (its hints are looked
at again), and its thread is left to end alone. Until that thread ends, later ticks of
the same sensor start no second listing of that output; and while `max_running`
listings run (those left by earlier ticks included), a tick starts no further one: its
outputs wait for the next ticks. So outputs that stop answering all at once (a region's
outage) cost at most that many threads, each until its client gives up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
STILL_RUNNING = "its listing begun by an earlier tick still runs"


class _Call:
    """One call's outputs: those not taken yet, when each taken one began, what each
    answered. Once closed (the call has returned), no output of it is started."""

    def __init__(self, outputs: Sequence[str]) -> None:
        self.outputs = list(outputs)
        self.todo = list(enumerate(outputs))
        self.began: dict[str, float] = {}
        self.answers: dict[str, object] = {}
        self.closed = False
        self.lock = threading.Lock()
        self.done = threading.Event()

    def set(self, output: str, value: object) -> None:
        """Record an answer; the caller holds `lock`."""
        self.answers[output] = value
        if len(self.answers) == len(self.outputs):
            self.done.set()

    def answer(self, output: str, value: object) -> None:
        with self.lock:
            self.set(output, value)

    def outcome(self) -> dict[str, object]:
        """Close the call: what each output answered by now, a `TimeoutError` for one
        still listing, None for one not started."""
        with self.lock:
            self.closed = True
            now = time.monotonic()
            return {
                output: self.answers[output]
                if output in self.answers
                else TimeoutError(f"no answer in {now - self.began[output]:.1f} s")
                if output in self.began
                else None
                for output in self.outputs
            }


class OutputListings:
    """One sensor's listings, and the outputs whose listing (begun by this tick or an
    earlier one) still runs."""

    def __init__(self, max_running: int = 32) -> None:
        self.max_running = max_running
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def still_running(self) -> set[str]:
        with self._lock:
            return set(self._running)

    def list(
        self,
        list_one: Callable[[str], T],
        outputs: Sequence[str],
        threads: int,
        start_before: float,
        wait_until: float,
    ) -> dict[str, T | Exception | None]:
        """By output: what `list_one` returned, what it raised, or None when it was not
        started: not before `start_before` (monotonic; the first output always is), or
        while `max_running` listings ran. `threads` at a time, in the order given. An
        output still listing at `wait_until`, or since an earlier call, gets a
        `TimeoutError`. Anything else a listing raises (an interrupt) is raised here."""
        if not outputs:
            return {}
        call = _Call(outputs)
        for _ in range(max(1, min(threads, len(outputs)))):
            threading.Thread(
                target=self._work,
                args=(call, list_one, start_before),
                daemon=True,
                name="delivery-listing",
            ).start()
        call.done.wait(max(0.0, wait_until - time.monotonic()))
        found = call.outcome()
        for value in found.values():
            if isinstance(value, BaseException) and not isinstance(value, Exception):
                raise value
        return found  # type: ignore[return-value]

    def _work(self, call: _Call, list_one: Callable[[str], object], start_before: float) -> None:
        while (output := self._next(call, start_before)) is not None:
            try:
                value: object = list_one(output)
            except BaseException as error:  # an Exception is the output's alone
                value = error
            finally:
                self._release(output)
            call.answer(output, value)

    def _next(self, call: _Call, start_before: float) -> str | None:
        """The next output of `call` to list, claimed; those it must not list are
        answered on the way. None once the call is closed or has no output left."""
        with call.lock:
            while call.todo and not call.closed:
                index, output = call.todo.pop(0)
                with self._lock:
                    if output in self._running:
                        call.set(output, TimeoutError(STILL_RUNNING))
                        continue
                    if (index and time.monotonic() > start_before) or (
                        len(self._running) >= self.max_running
                    ):
                        call.set(output, None)
                        continue
                    self._running.add(output)
                call.began[output] = time.monotonic()
                return output
        return None

    def _release(self, output: str) -> None:
        with self._lock:
            self._running.discard(output)
