"""The delivery sensor's listings of outputs: several at a time, and a tick never held by
an output that does not answer.

A bucket that accepts connections and never answers would hold a listing for its
client's read timeout and retries (minutes), longer than a sensor evaluation may last:
the tick would fail, its cursor would not move, and every tenant's deliveries would wait
for that one bucket. So outputs are listed on daemon threads, and a tick waits for them
only until its limit: an output still listing then counts as down (its hints are looked
at again), and its thread is left to end alone. Until that thread ends, later ticks of
the same sensor start no second listing of that output, so a bucket that never answers
holds one thread, not one a tick.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


class _Call:
    """One call's outputs: those no thread has taken yet, when each taken one began, and
    what each answered."""

    def __init__(self, outputs: Sequence[str]) -> None:
        self.outputs = list(outputs)
        self.todo = list(enumerate(outputs))
        self.began: dict[str, float] = {}
        self.answers: dict[str, object] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()

    def take(self) -> tuple[int, str] | None:
        with self.lock:
            if not self.todo:
                return None
            index, output = self.todo.pop(0)
            self.began[output] = time.monotonic()
            return index, output

    def answer(self, output: str, value: object) -> None:
        with self.lock:
            self.answers[output] = value
            if len(self.answers) == len(self.outputs):
                self.done.set()

    def outcome(self) -> dict[str, object]:
        """What each output answered by now; a `TimeoutError` for one still listing, None
        for one not started (and now never started by this call)."""
        with self.lock:
            self.todo.clear()
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
    """One sensor's listings, and the outputs whose listing, begun by an earlier tick,
    still runs."""

    def __init__(self) -> None:
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
        started before `start_before` (monotonic; the first output always is). `threads`
        at a time, in the order given. An output still listing at `wait_until`, or since
        an earlier call, gets a `TimeoutError`."""
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
        return call.outcome()  # type: ignore[return-value]

    def _work(self, call: _Call, list_one: Callable[[str], object], start_before: float) -> None:
        while (item := call.take()) is not None:
            index, output = item
            if index and time.monotonic() > start_before:
                call.answer(output, None)
            elif not self._claim(output):
                call.answer(output, TimeoutError("its listing begun by an earlier tick still runs"))
            else:
                try:
                    call.answer(output, list_one(output))
                except Exception as error:  # the output's alone; it never ends the tick
                    call.answer(output, error)
                finally:
                    self._release(output)

    def _claim(self, output: str) -> bool:
        with self._lock:
            if output in self._running:
                return False
            self._running.add(output)
            return True

    def _release(self, output: str) -> None:
        with self._lock:
            self._running.discard(output)
