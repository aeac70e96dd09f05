"""Fetching many charts at once, for every feed client: one call per chart on a bounded thread pool.

Apple's client and Play's both fan a run's charts out this way; each keeps its own bound (``max_in_flight``) and
its own ``fetch``, which never raises, so one failed chart is a failed result in its place, not a lost batch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

R = TypeVar("R")
T = TypeVar("T")


def fetch_all(fetch: Callable[[R], T], requests: Iterable[R], *, max_in_flight: int,
              thread_name_prefix: str) -> list[T]:
    """``fetch`` each request, at most ``max_in_flight`` at a time; results come back in input order."""
    reqs = list(requests)
    if not reqs:
        return []
    with ThreadPoolExecutor(max_workers=min(max_in_flight, len(reqs)), thread_name_prefix=thread_name_prefix) as pool:
        return list(pool.map(fetch, reqs))
