"""The feed clients' shared fan-out: input order kept, the bound held, nothing started for no request."""

from __future__ import annotations

import threading
import time

from orchestration.sources.fetch_pool import fetch_all


def test_results_keep_input_order_and_in_flight_stays_within_the_bound():
    lock, running, peak = threading.Lock(), [0], [0]
    first_three = threading.Barrier(3, timeout=10)  # passes only if three fetches are in flight together

    def fetch(n: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if n < 3:
            first_three.wait()
        time.sleep(0.02 * (n % 3))  # later requests finish first sometimes: order must not follow completion
        with lock:
            running[0] -= 1
        return n * 10

    assert fetch_all(fetch, iter(range(9)), max_in_flight=3, thread_name_prefix="t") == [n * 10 for n in range(9)]
    assert peak[0] == 3


def test_no_request_is_no_result_and_no_thread():
    def fetch(_):
        raise AssertionError("nothing to fetch")

    before = threading.active_count()
    assert fetch_all(fetch, [], max_in_flight=4, thread_name_prefix="t") == []
    assert threading.active_count() == before
