"""The time by which the current check must end, for every helper it runs (git, the
notify command): a check sets it once, and each helper's own timeout is cut to it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("heartbeat_deadline", default=None)


@contextlib.contextmanager
def within(deadline: float) -> Iterator[None]:
    """Run the block under a deadline on the monotonic clock (or the one already set,
    when that is nearer)."""
    current = _deadline.get()
    token = _deadline.set(deadline if current is None else min(current, deadline))
    try:
        yield
    finally:
        _deadline.reset(token)


def timeout(seconds: float) -> float:
    """`seconds`, or less when the deadline is nearer; 0 when it has passed."""
    deadline = _deadline.get()
    if deadline is None:
        return seconds
    return max(0.0, min(seconds, deadline - time.monotonic()))
