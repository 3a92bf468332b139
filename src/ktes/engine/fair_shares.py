"""Fair shares: owners take turns at the backend, so one user's backlog never starves another user's task.

The store hands the engine QUEUED tasks in turns (each owner's oldest, then each owner's second oldest, ...);
within a turn the owner served longest ago goes first (then the oldest task). So when a slot frees up, a user
whose one task waits behind another user's 500 gets it.
"""

from __future__ import annotations

from ktes.tes.models import Task


class FairShares:
    def __init__(self) -> None:
        #: owner -> when (a serial number) a task of theirs was last dispatched.
        self._served: dict[str | None, int] = {}
        self._serial = 0

    def order(self, queued: list[Task]) -> list[Task]:
        """``queued`` (each owner's tasks oldest first) in the order to dispatch them."""
        turns: dict[str | None, int] = {}
        keyed = []
        for task in queued:
            turn = turns[task.owner] = turns.get(task.owner, 0) + 1
            keyed.append((turn, self._served.get(task.owner, 0), task.id or "", task))
        keyed.sort(key=lambda item: item[:3])
        return [item[3] for item in keyed]

    def served(self, owner: str | None) -> None:
        """A task of ``owner`` was just dispatched."""
        self._serial += 1
        self._served[owner] = self._serial
