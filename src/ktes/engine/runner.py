"""How the engine runs for the life of ``ktes serve``: always (one process owns the tasks), or only while
this replica leads (:class:`ktes.backends.base.Leadership`, e.g. the Kubernetes Lease)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from ktes.backends.base import Leadership, ReportsReadiness
from ktes.engine.engine import Engine

log = logging.getLogger(__name__)

#: after the engine failed to start, how long the leader waits (without leading) before trying again.
RETRY_SECONDS = 15.0
#: while waiting to lead, how often the QUEUED tasks are told why no engine runs (when the leadership knows).
NOTE_SECONDS = 5.0


@contextlib.asynccontextmanager
async def run_engine(engine: Engine, leadership: Leadership | None) -> AsyncIterator[None]:
    """Start the engine now (no ``leadership``) or whenever this replica leads; stop it on exit."""
    if leadership is None:
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()
        return
    leading = asyncio.create_task(lead(engine, leadership), name="ktes-leadership")
    try:
        yield
    finally:
        leading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leading
        await leadership.close()


async def lead(engine: Engine, leadership: Leadership, retry_seconds: float = RETRY_SECONDS) -> None:
    """Forever: wait to lead, run the engine while leading, stop it when leadership is lost."""
    while True:
        await _acquire(engine, leadership)
        try:
            await engine.start()
        except Exception as exc:
            log.exception("the engine did not start; no longer leading, trying again in %g s", retry_seconds)
            await engine.note_queued(f"the engine could not start: {exc}")
            with contextlib.suppress(Exception):
                await engine.stop()
            await leadership.release()
            await asyncio.sleep(retry_seconds)
            continue
        log.info("leading: the engine runs")
        try:
            await leadership.hold()
            log.warning("no longer leading: stopping the engine")
        finally:
            await engine.stop()


async def _acquire(engine: Engine, leadership: Leadership) -> None:
    """``leadership.acquire()``; meanwhile, if the leadership can say why it cannot lead (the Kubernetes API
    does not answer), the QUEUED tasks are told (once each: :meth:`Engine.note_queued` does not repeat)."""
    acquiring = asyncio.ensure_future(leadership.acquire())
    try:
        while True:
            done, _ = await asyncio.wait({acquiring}, timeout=NOTE_SECONDS)
            if done:
                acquiring.result()
                return
            why = leadership.not_ready_reason() if isinstance(leadership, ReportsReadiness) else None
            if why is not None:
                await engine.note_queued(why)
    finally:
        acquiring.cancel()
