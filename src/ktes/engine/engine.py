"""The engine: the only writer of task state.

It hands QUEUED tasks to the backend while the backend has room, owners taking turns (oldest first within a
turn); turns what the backend reports into state and logs; tears down tasks the API marked CANCELING; and
after a restart re-adopts the tasks that were in flight. It wakes on :meth:`Engine.wake` (the API calls it
after a create or a cancel) and also looks for work every ``settings.engine_poll_seconds``, because the API
may run in another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ktes import metrics
from ktes.backends.base import Backend, ReportsReadiness
from ktes.config import Settings
from ktes.engine import recording
from ktes.errors import StoreUnavailable
from ktes.logs import TASK_ID
from ktes.run import clock
from ktes.run.observations import Ended, ExecutorStarted, Observation
from ktes.store.base import Edit, Store
from ktes.tes.models import State, Task

log = logging.getLogger(__name__)

T = TypeVar("T")

#: States a restarted engine finds in flight and hands to ``Backend.adopt``.
ADOPTABLE = frozenset({State.INITIALIZING, State.RUNNING, State.PAUSED})
#: QUEUED tasks read from the store per look; the look repeats while all of them were admitted.
DISPATCH_BATCH = 64
#: While the store is unavailable, a state change is tried again after these many seconds (doubling).
STORE_RETRY_FIRST_SECONDS = 0.2
STORE_RETRY_MAX_SECONDS = 5.0


class Engine:
    """Runs tasks from ``store`` on ``backend``. Owns the backend's lifetime (start/close)."""

    def __init__(self, settings: Settings, store: Store, backend: Backend) -> None:
        self._settings = settings
        self._store = store
        self._backend = backend
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._main: asyncio.Task[None] | None = None
        self._stopping = False
        #: task id -> the coroutine running (or adopting) it.
        self._running: dict[str, asyncio.Task[None]] = {}
        #: task id -> the coroutine canceling it.
        self._canceling: dict[str, asyncio.Task[None]] = {}
        #: tasks whose backend reported Ended (so a run that returns without it is noticed).
        self._ended: set[str] = set()
        #: for readiness: "stopped", "starting", "running" or "stopping".
        self.status = "stopped"

    # --- lifetime --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the backend, recover the tasks a previous engine left in flight, and start the loop."""
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._stopping = False
        self.status = "starting"
        try:
            await self._backend.start()
            await self._recover()
        except BaseException:
            self.status = "stopped"
            raise
        self._main = asyncio.create_task(self._loop_forever(), name="ktes-engine")
        self.status = "running"

    async def stop(self) -> None:
        """Stop dispatching and watching. Tasks keep running in their containers; a restart re-adopts them."""
        self._stopping = True
        self.status = "stopping"
        self.wake()
        if self._main is not None:
            await self._main
            self._main = None
        pending = [*self._running.values(), *self._canceling.values()]
        for job in pending:
            job.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._running.clear()
        self._canceling.clear()
        await self._backend.close()
        self.status = "stopped"

    def wake(self) -> None:
        """Ask the engine to look for work now. Cheap, and safe to call from any thread."""
        loop, event = self._loop, self._event
        if loop is None or event is None:
            return
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is loop:
            event.set()
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to wake
            loop.call_soon_threadsafe(event.set)

    # --- the loop --------------------------------------------------------------------------------

    async def _loop_forever(self) -> None:
        assert self._event is not None
        while not self._stopping:
            self._event.clear()
            try:
                await self._look()
            except StoreUnavailable as exc:  # an outage must not end the engine: look again later
                log.warning("engine: looking for work failed: %s", exc)
            except Exception:
                log.exception("engine: looking for work failed")
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), self._settings.engine_poll_seconds)

    async def _look(self) -> None:
        await self._start_cancels()
        await self._dispatch()

    async def _db(self, call: Callable[..., T], *args: Any) -> T:
        """Call the store. Its calls are short (one indexed statement or transaction), so they run on the
        loop itself: a hop to a worker thread and back costs more than the call on a busy machine."""
        return call(*args)

    async def _stored(self, call: Callable[..., T], *args: Any, give_up_on_stop: bool = False) -> T:
        """Call the store until it answers: a state change is never dropped because the database is down
        (the backend waits here, so it removes nothing before the result is recorded). With
        ``give_up_on_stop``, a stopping engine raises :class:`StoreUnavailable` instead of waiting on."""
        delay = STORE_RETRY_FIRST_SECONDS
        while True:
            try:
                return await self._db(call, *args)
            except StoreUnavailable as exc:
                if give_up_on_stop and self._stopping:
                    raise
                log.warning("engine: %s; trying again in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, STORE_RETRY_MAX_SECONDS)

    async def _transition(
        self, task_id: str, target: State, edit: Edit | None = None, *, give_up_on_stop: bool = False
    ) -> Task | None:
        """:meth:`Store.transition`, retried while the store is unavailable. A try whose answer was lost with
        the connection may have committed: if the task already is in ``target`` after a retry, that was ours."""
        try:
            return await self._db(self._store.transition, task_id, target, edit)
        except StoreUnavailable as exc:
            if give_up_on_stop and self._stopping:
                raise
            log.warning("engine: %s; trying again", exc)
        moved = await self._stored(self._store.transition, task_id, target, edit, give_up_on_stop=give_up_on_stop)
        if moved is not None:
            return moved
        now = await self._stored(self._store.get, task_id, give_up_on_stop=give_up_on_stop)
        return now if now.state == target else None

    # --- dispatch --------------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while not self._stopping:
            queued = await self._db(self._store.queued_in_turns, DISPATCH_BATCH)
            for task in queued:  # owners in turns (Store.queued_in_turns)
                if task.id is None or task.id in self._running:
                    continue
                if not self._backend.admit(task):
                    metrics.dispatch_lag(task.creation_time)
                    if isinstance(self._backend, ReportsReadiness):
                        why = self._backend.not_ready_reason()
                        if why is not None:
                            await self.note_queued(why)
                    return  # oldest first: wait for room (a run ending wakes us)
                started = await self._transition(task.id, State.INITIALIZING, give_up_on_stop=True)
                if started is None:  # canceled meanwhile: give the room back
                    await self._backend.cancel(task.id)
                    continue
                metrics.task_dispatched(self._backend.name, started)
                log.info(
                    "engine: task %s handed to the %s backend", task.id, self._backend.name, extra={"task_id": task.id}
                )
                self._launch(started, adopt=False)
            if len(queued) < DISPATCH_BATCH:
                metrics.dispatch_lag(None)
                return

    def _launch(self, task: Task, *, adopt: bool) -> None:
        assert task.id is not None
        work = self._backend.adopt if adopt else self._backend.run
        job = asyncio.create_task(self._drive(task.id, work(task, self._report)), name=f"ktes-task-{task.id}")
        self._running[task.id] = job

    async def _drive(self, task_id: str, work: Coroutine[Any, Any, None]) -> None:
        TASK_ID.set(task_id)  # this asyncio task's own context: every log line below names the task
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            metrics.backend_error("run_raised")
            log.exception("engine: the backend failed running task %s", task_id)
            if task_id not in self._ended:
                await self._finish(task_id, State.SYSTEM_ERROR, f"ktes failed while running the task: {exc}")
        else:
            if task_id not in self._ended and task_id not in self._canceling:
                # Run returned without a final state and nobody canceled it: never leave it hanging.
                await self._finish(task_id, State.SYSTEM_ERROR, "the backend stopped the task without a final state")
        finally:
            self._running.pop(task_id, None)
            self._ended.discard(task_id)
            self.wake()  # room was freed

    async def _finish(self, task_id: str, state: State, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self._report(task_id, Ended(state=state, end_time=clock.now(), reason=reason))

    # --- observations ----------------------------------------------------------------------------

    async def _report(self, task_id: str, obs: Observation, /) -> None:
        """The :class:`~ktes.run.observations.Reporter` given to the backend."""
        if isinstance(obs, ExecutorStarted):
            await self._transition(task_id, State.RUNNING)
            self.wake()  # a task that starts running may leave room for the next one to stage
            return
        if isinstance(obs, Ended):
            self._ended.add(task_id)
            ended = await self._transition(task_id, obs.state, recording.ended(obs))
            if ended is not None:
                metrics.task_ended(self._backend.name, ended)
                log.info("engine: task %s ended %s", task_id, obs.state.value)
            return
        edit = recording.edit_for(obs)
        if edit is not None:
            await self._stored(self._store.edit, task_id, edit)

    async def note_queued(self, reason: str) -> None:
        """Tell the QUEUED tasks why they wait (the backend cannot take tasks): one system log line each,
        not added again while it is their last one. Best effort: a store outage is only logged."""
        line = f"waiting to start: {reason}"
        try:
            for task in await self._db(self._store.tasks_in, {State.QUEUED}, DISPATCH_BATCH):
                if task.id is not None and recording.last_system_log(task) != line:
                    await self._db(self._store.edit, task.id, recording.add_system_log(line))
        except Exception:
            log.exception("engine: noting why the queued tasks wait failed")

    # --- cancel ----------------------------------------------------------------------------------

    async def _start_cancels(self) -> None:
        for task in await self._db(self._store.tasks_in, {State.CANCELING}):
            if task.id is not None and task.id not in self._canceling:
                self._canceling[task.id] = asyncio.create_task(self._cancel(task.id), name=f"ktes-cancel-{task.id}")

    async def _cancel(self, task_id: str) -> None:
        TASK_ID.set(task_id)
        try:
            await self._backend.cancel(task_id)
            running = self._running.get(task_id)
            if running is not None:
                await asyncio.wait({running})
            await self._transition(task_id, State.CANCELED, recording.ended_at(clock.now()), give_up_on_stop=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("engine: canceling task %s failed; trying again later", task_id)
        finally:
            self._canceling.pop(task_id, None)

    # --- restart ---------------------------------------------------------------------------------

    async def _recover(self) -> None:
        """Re-adopt what a previous engine left in flight; clean up what belongs to no active task."""
        active = await self._db(self._store.tasks_in, ADOPTABLE | {State.CANCELING})
        cleaned = await self._backend.sweep([task.id for task in active if task.id is not None])
        if cleaned:
            log.info("engine: removed leftovers of %d finished tasks", len(cleaned))
        for task in active:
            if task.id is not None and task.state in ADOPTABLE:
                self._launch(task, adopt=True)
