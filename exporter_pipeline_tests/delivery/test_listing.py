"""The delivery sensor's listings (delivery/listing.py): outputs listed on threads, a call
never held past its limit by an output that does not answer, no second listing of an
output while an earlier one still runs, no listing started once its call has returned,
hanging listings capped, and an interrupt raised by the call."""

from __future__ import annotations

import re
import threading
import time

import pytest

from exporter_pipeline.defs.delivery_sensor import tick_limit_seconds
from exporter_pipeline.delivery.listing import OutputListings


def test_an_output_that_never_answers_is_down_and_not_listed_again_until_it_ends() -> None:
    listings, release, calls = OutputListings(), threading.Event(), []

    def list_one(output: str) -> list[str]:
        calls.append(output)
        if output == "hung":
            release.wait(60)
        return [output]

    began = time.monotonic()
    first = listings.list(list_one, ["hung", "a", "b"], 2, began + 30, began + 2)
    # Waited for the limit, not for the listing: the others answered meanwhile.
    assert time.monotonic() - began < 10
    assert first["a"] == ["a"] and first["b"] == ["b"]
    assert isinstance(first["hung"], TimeoutError)
    assert re.fullmatch(r"no answer in \d+\.\d s", str(first["hung"]))
    assert listings.still_running() == {"hung"}

    now = time.monotonic()
    second = listings.list(list_one, ["hung", "a"], 2, now + 30, now + 30)
    assert time.monotonic() - now < 5  # nothing to wait for
    assert str(second["hung"]) == "its listing begun by an earlier tick still runs"
    assert second["a"] == ["a"] and calls.count("hung") == 1

    release.set()
    wait_until_idle(listings)
    now = time.monotonic()
    assert listings.list(list_one, ["hung"], 2, now, now + 30) == {"hung": ["hung"]}
    assert calls.count("hung") == 2


def test_outputs_not_started_in_time_are_left_for_the_next_tick() -> None:
    def slow(output: str) -> list[str]:
        time.sleep(0.3)
        return [output]

    now = time.monotonic()
    got = OutputListings().list(slow, ["a", "b", "c"], 1, now + 0.1, now + 30)
    assert got == {"a": ["a"], "b": None, "c": None}
    # Out of time from the start: the oldest output is still looked at.
    now = time.monotonic()
    assert OutputListings().list(slow, ["a", "b"], 2, now - 1, now + 30) == {"a": ["a"], "b": None}


def test_one_thread_held_by_a_silent_output_leaves_the_next_unstarted_not_down() -> None:
    release = threading.Event()

    def list_one(output: str) -> list[str]:
        release.wait(60)
        return [output]

    now = time.monotonic()
    got = OutputListings().list(list_one, ["hung", "a"], 1, now + 30, now + 1)
    release.set()
    assert isinstance(got["hung"], TimeoutError) and got["a"] is None


def test_a_call_that_returned_starts_nothing_more() -> None:
    release, calls = threading.Event(), []

    def list_one(output: str) -> list[str]:
        calls.append(output)
        release.wait(60)
        return [output]

    listings, now = OutputListings(), time.monotonic()
    got = listings.list(list_one, ["hung", "a"], 1, now + 30, now + 1)
    assert isinstance(got["hung"], TimeoutError) and got["a"] is None
    release.set()  # the thread is free again, but its call is over: `a` is not listed
    wait_until_idle(listings)
    assert calls == ["hung"]


def test_hanging_listings_are_capped_and_their_outputs_wait() -> None:
    release, calls = threading.Event(), []

    def list_one(output: str) -> list[str]:
        calls.append(output)
        if output.startswith("hung"):
            release.wait(60)
        return [output]

    listings, now = OutputListings(max_running=2), time.monotonic()
    got = listings.list(list_one, ["hung1", "hung2"], 2, now + 30, now + 1)
    assert all(isinstance(v, TimeoutError) for v in got.values())
    # Two listings hang: a healthy output is not started either, and waits (None).
    now = time.monotonic()
    assert listings.list(list_one, ["a"], 2, now + 30, now + 30) == {"a": None}
    assert sorted(calls) == ["hung1", "hung2"]
    release.set()
    wait_until_idle(listings)
    now = time.monotonic()
    assert listings.list(list_one, ["a"], 2, now + 30, now + 30) == {"a": ["a"]}


def test_an_interrupt_in_a_listing_is_raised_by_the_call() -> None:
    def list_one(output: str) -> list[str]:
        if output == "stop":
            raise KeyboardInterrupt
        return [output]

    now = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        OutputListings().list(list_one, ["a", "stop"], 2, now + 30, now + 30)


def wait_until_idle(listings: OutputListings) -> None:
    deadline = time.monotonic() + 10
    while listings.still_running() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # a freed thread looks for its call's next output
    assert listings.still_running() == set()


def test_what_an_output_raises_is_its_answer_alone() -> None:
    def list_one(output: str) -> list[str]:
        if output == "bad":
            raise ValueError("Invalid endpoint: htp://x")
        return [output]

    now = time.monotonic()
    got = OutputListings().list(list_one, ["bad", "good"], 2, now + 30, now + 30)
    assert isinstance(got["bad"], ValueError) and str(got["bad"]) == "Invalid endpoint: htp://x"
    assert got["good"] == ["good"]
    assert OutputListings().list(list_one, [], 2, now, now) == {}


def test_the_tick_limit_stays_within_dagster_s_limit_on_a_sensor_evaluation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS", raising=False)
    assert tick_limit_seconds() == 20.0  # Dagster's default limit: 60 s
    monkeypatch.setenv("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS", "30")
    assert tick_limit_seconds() == 15.0
    monkeypatch.setenv("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS", "300")
    assert tick_limit_seconds() == 20.0
