"""Retention: finished tasks older than an age leave the store (with whatever they left outside it).

"Older" is by creation time, and only tasks in a final state go; active tasks are never touched. The server
purges every :data:`PURGE_INTERVAL_SECONDS` when ``retention_days`` is set; ``ktes admin purge`` does it by
hand. The caller gives ``remove_leftovers``, which removes the purged tasks' work directories (local) or
Kubernetes objects.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ktes.run.clock import rfc3339
from ktes.store.base import Store

log = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 3600.0
#: Tasks deleted per transaction.
BATCH = 500
#: A dry run lists at most this many.
DRY_RUN_LIMIT = 1_000_000

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``3600s`` as a duration. Raises ValueError naming the format."""
    match = _AGE.match(text.lower())
    if not match:
        raise ValueError(f"{text!r} is not an age: use a number and a unit, e.g. 30d, 12h, 90m, 2w")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


@dataclass
class Purged:
    cutoff: str
    dry_run: bool
    task_ids: list[str] = field(default_factory=list)

    def sentence(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return f"{verb} {len(self.task_ids)} finished tasks created before {self.cutoff}"


async def purge(
    store: Store,
    older_than: timedelta,
    *,
    dry_run: bool = False,
    remove_leftovers: Callable[[list[str]], Awaitable[None]] | None = None,
    now: datetime | None = None,
) -> Purged:
    cutoff = rfc3339((now or datetime.now(UTC)) - older_than)
    result = Purged(cutoff=cutoff, dry_run=dry_run)
    if dry_run:
        result.task_ids = store.finished_before(cutoff, DRY_RUN_LIMIT)
        return result
    while True:
        batch = store.finished_before(cutoff, BATCH)
        if not batch:
            return result
        store.delete_finished(batch)
        result.task_ids += batch
        if remove_leftovers is not None:
            await remove_leftovers(batch)
        if len(batch) < BATCH:
            return result


async def purge_forever(
    store: Store,
    older_than: timedelta,
    remove_leftovers: Callable[[list[str]], Awaitable[None]],
    interval: float = PURGE_INTERVAL_SECONDS,
) -> None:
    """The server's retention: purge now and every ``interval`` seconds, until cancelled."""
    while True:
        try:
            purged = await purge(store, older_than, remove_leftovers=remove_leftovers)
            if purged.task_ids:
                log.info("retention: %s", purged.sentence())
        except Exception:  # a store outage: try again at the next interval
            log.exception("retention: purging old tasks failed")
        await asyncio.sleep(interval)
