"""The check's time bound: a whole check ends within it, even when a tmux server hangs."""

from __future__ import annotations

import time

from heartbeat.records import frozen

RESTART_TIME_NEEDED = 5.0  # seconds of the check's budget a restart may take


@frozen(eq=False, repr=False)
class Budget:
    """The monotonic time by which the check ends."""

    deadline: float  # on the monotonic clock
    seconds: float = 30.0  # the whole bound

    @classmethod
    def of(cls, seconds: float) -> Budget:
        return cls(time.monotonic() + seconds, seconds)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def restart_reserve(self) -> float:
        """What a restart needs of the budget: a short bound (a few seconds) keeps half
        of itself for it, or no restart would ever fit."""
        return min(RESTART_TIME_NEEDED, self.seconds / 2)

    def has_room_for_a_restart(self) -> bool:
        return self.left() >= self.restart_reserve
