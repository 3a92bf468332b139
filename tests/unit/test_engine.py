"""The engine with the in-memory store and a scripted fake backend."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import pytest

from ktes.config import Settings
from ktes.engine.commands import request_cancel
from ktes.engine.engine import Engine
from ktes.run.observations import (
    Ended,
    ExecutorFinished,
    ExecutorStarted,
    Initializing,
    OutputsUploaded,
    Reporter,
    SystemLog,
)
from ktes.store.memory import MemoryStore
from ktes.tes.models import Executor, ExecutorLog, OutputFileLog, Resources, State, Task

Script = Callable[[Task, Reporter], "asyncio.Future[None] | object"]


def a_task(name: str = "t", cpu: int = 1) -> Task:
    return Task(name=name, executors=[Executor(image="busybox", command=["true"])], resources=Resources(cpu_cores=cpu))


class FakeBackend:
    """Admits up to ``slots`` tasks; each run reports Initializing/started/finished, then waits for its release."""

    name = "fake"

    def __init__(self, slots: int = 10) -> None:
        self.slots = slots
        self.used: set[str] = set()
        self.admit_calls = 0
        self.runs: list[str] = []
        self.adopted: list[str] = []
        self.canceled: list[str] = []
        self.swept_with: list[str] | None = None
        self.releases: dict[str, asyncio.Event] = {}
        self.final: dict[str, State] = {}
        self.raise_in_run: str | None = None
        self.no_ended = False
        self.started = False
        self.closed = False

    def backend_parameters(self) -> list[str]:
        return []

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    def admit(self, task: Task) -> bool:
        self.admit_calls += 1
        if len(self.used) >= self.slots:
            return False
        assert task.id is not None
        self.used.add(task.id)
        return True

    def release(self, task_id: str) -> asyncio.Event:
        return self.releases.setdefault(task_id, asyncio.Event())

    async def _work(self, task: Task, report: Reporter) -> None:
        assert task.id is not None
        try:
            await report(task.id, Initializing(start_time="2024-01-01T00:00:00Z", metadata={"host": "h"}))
            await report(task.id, ExecutorStarted(index=0, start_time="2024-01-01T00:00:01Z"))
            if self.raise_in_run == task.id:
                raise RuntimeError("the disk is full")
            await self.release(task.id).wait()
            if task.id in self.canceled:
                return
            log = ExecutorLog(exit_code=0, stdout="hi\n", start_time="a", end_time="b")
            await report(task.id, ExecutorFinished(index=0, log=log))
            if self.no_ended:
                return
            await report(task.id, Ended(state=self.final.get(task.id, State.COMPLETE), end_time="2024-01-01T00:00:02Z"))
        finally:
            self.used.discard(task.id)

    async def run(self, task: Task, report: Reporter) -> None:
        assert task.id is not None
        self.runs.append(task.id)
        await self._work(task, report)

    async def adopt(self, task: Task, report: Reporter) -> None:
        assert task.id is not None
        self.adopted.append(task.id)
        self.used.add(task.id)
        await self._work(task, report)

    async def cancel(self, task_id: str) -> None:
        self.canceled.append(task_id)
        self.release(task_id).set()
        self.used.discard(task_id)

    async def sweep(self, active_task_ids: Iterable[str]) -> list[str]:
        self.swept_with = sorted(active_task_ids)
        return []


async def until(check: Callable[[], bool], within_seconds: float = 5.0) -> None:
    """Wait for the engine (which writes through worker threads) to reach ``check``."""
    deadline = time.monotonic() + within_seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


def state_of(store: MemoryStore, task_id: str) -> State | None:
    return store.get(task_id).state


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # A long poll: the tests prove that wake() is what makes the engine act.
    return Settings(data_dir=tmp_path, engine_poll_seconds=60)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
async def engine(settings: Settings, store: MemoryStore, backend: FakeBackend) -> AsyncIterator[Engine]:
    eng = Engine(settings, store, backend)
    await eng.start()
    yield eng
    await eng.stop()


async def test_dispatches_oldest_first_as_room_frees(
    settings: Settings, store: MemoryStore, backend: FakeBackend
) -> None:
    backend.slots = 1
    ids = [store.create(a_task(f"t{i}")) for i in range(3)]
    eng = Engine(settings, store, backend)
    await eng.start()
    try:
        await until(lambda: backend.runs == ids[:1] and state_of(store, ids[0]) == State.RUNNING)
        assert [state_of(store, i) for i in ids] == [State.RUNNING, State.QUEUED, State.QUEUED]
        backend.release(ids[0]).set()
        await until(lambda: backend.runs == ids[:2])
        backend.release(ids[1]).set()
        backend.release(ids[2]).set()
        await until(lambda: all(state_of(store, i) == State.COMPLETE for i in ids))
        assert backend.runs == ids
    finally:
        await eng.stop()


async def test_a_full_backend_is_not_asked_in_a_loop(engine: Engine, store: MemoryStore, backend: FakeBackend) -> None:
    backend.slots = 0
    task_id = store.create(a_task())
    engine.wake()
    await until(lambda: backend.admit_calls >= 1)
    await asyncio.sleep(0.05)
    assert backend.admit_calls <= 2
    assert state_of(store, task_id) == State.QUEUED


async def test_every_observation_lands_in_the_task(engine: Engine, store: MemoryStore, backend: FakeBackend) -> None:
    task_id = store.create(a_task())
    engine.wake()
    await until(lambda: state_of(store, task_id) == State.RUNNING)
    task = store.get(task_id)
    assert task.logs and task.logs[0].start_time == "2024-01-01T00:00:00Z"
    assert task.logs[0].metadata == {"host": "h"}
    report = engine._report  # the reporter the backend is given
    await report(task_id, SystemLog(line="pulled image busybox"))
    await report(task_id, OutputsUploaded(outputs=[OutputFileLog(url="file:///o", path="/o", size_bytes="3")]))
    backend.final[task_id] = State.EXECUTOR_ERROR
    backend.release(task_id).set()
    await until(lambda: state_of(store, task_id) == State.EXECUTOR_ERROR)
    log = store.get(task_id).logs[0]  # type: ignore[index]
    assert log.logs[0].exit_code == 0 and log.logs[0].stdout == "hi\n"
    assert log.outputs[0].size_bytes == "3"
    assert log.system_logs == ["pulled image busybox"]
    assert log.end_time == "2024-01-01T00:00:02Z"


async def test_ended_reason_goes_to_system_logs(engine: Engine, store: MemoryStore) -> None:
    task_id = store.create(a_task())
    await engine._report(task_id, Ended(state=State.SYSTEM_ERROR, end_time="e", reason="image x not found"))
    task = store.get(task_id)
    assert task.state == State.SYSTEM_ERROR
    assert task.logs and task.logs[0].system_logs == ["image x not found"]


async def test_a_failing_run_is_a_system_error_with_the_message(
    engine: Engine, store: MemoryStore, backend: FakeBackend
) -> None:
    task_id = store.create(a_task())
    backend.raise_in_run = task_id
    engine.wake()
    await until(lambda: state_of(store, task_id) == State.SYSTEM_ERROR)
    assert any("the disk is full" in line for line in store.get(task_id).logs[0].system_logs or [])  # type: ignore[index]


async def test_a_run_without_a_final_state_is_not_left_running(
    engine: Engine, store: MemoryStore, backend: FakeBackend
) -> None:
    backend.no_ended = True
    task_id = store.create(a_task())
    engine.wake()
    await until(lambda: state_of(store, task_id) == State.RUNNING)
    backend.release(task_id).set()
    await until(lambda: state_of(store, task_id) == State.SYSTEM_ERROR)


async def test_cancel_tears_down_then_canceled(engine: Engine, store: MemoryStore, backend: FakeBackend) -> None:
    task_id = store.create(a_task())
    engine.wake()
    await until(lambda: state_of(store, task_id) == State.RUNNING)
    assert request_cancel(store, task_id).state == State.CANCELING
    engine.wake()
    await until(lambda: state_of(store, task_id) == State.CANCELED)
    assert backend.canceled == [task_id]
    assert not backend.used


async def test_cancel_of_a_queued_task_never_reaches_the_backend(
    engine: Engine, store: MemoryStore, backend: FakeBackend
) -> None:
    backend.slots = 0
    task_id = store.create(a_task())
    assert request_cancel(store, task_id).state == State.CANCELED
    backend.slots = 1
    engine.wake()
    await asyncio.sleep(0.05)
    assert backend.runs == [] and state_of(store, task_id) == State.CANCELED


async def test_wake_from_another_thread(engine: Engine, store: MemoryStore, backend: FakeBackend) -> None:
    task_id = store.create(a_task())
    thread = threading.Thread(target=engine.wake)
    thread.start()
    thread.join()
    await until(lambda: backend.runs == [task_id])


async def test_stop_leaves_running_tasks_alone(settings: Settings, store: MemoryStore, backend: FakeBackend) -> None:
    task_id = store.create(a_task())
    eng = Engine(settings, store, backend)
    await eng.start()
    await until(lambda: state_of(store, task_id) == State.RUNNING)
    await eng.stop()
    assert state_of(store, task_id) == State.RUNNING
    assert backend.closed and not backend.canceled


async def test_restart_adopts_cancels_and_sweeps(settings: Settings, store: MemoryStore) -> None:
    running, initializing, canceling, queued, done = (store.create(a_task(n)) for n in "abcde")
    for task_id in (running, initializing, canceling, done):
        store.transition(task_id, State.INITIALIZING)
    store.transition(running, State.RUNNING)
    store.transition(canceling, State.CANCELING)
    store.transition(done, State.COMPLETE)
    backend = FakeBackend()
    eng = Engine(settings, store, backend)
    await eng.start()
    try:
        assert backend.swept_with == sorted([running, initializing, canceling])
        await until(lambda: state_of(store, canceling) == State.CANCELED)
        await until(lambda: sorted(backend.adopted) == sorted([running, initializing]))
        await until(lambda: backend.runs == [queued])
        for task_id in (running, initializing, queued):
            backend.release(task_id).set()
        await until(lambda: all(state_of(store, t) == State.COMPLETE for t in (running, initializing, queued)))
        assert backend.canceled == [canceling]
    finally:
        await eng.stop()


async def test_polling_finds_work_without_a_wake(store: MemoryStore, backend: FakeBackend, tmp_path: Path) -> None:
    eng = Engine(Settings(data_dir=tmp_path, engine_poll_seconds=0.02), store, backend)
    await eng.start()
    try:
        task_id = store.create(a_task())  # as an API replica in another process would
        await until(lambda: backend.runs == [task_id])
    finally:
        await eng.stop()


class UnreadyBackend(FakeBackend):
    """A backend that can say why it takes no task (the Kubernetes API does not answer)."""

    def __init__(self) -> None:
        super().__init__()
        self.why: str | None = "the Kubernetes API at https://k does not answer"

    def not_ready_reason(self) -> str | None:
        return self.why

    def admit(self, task: Task) -> bool:
        return self.why is None and super().admit(task)


def system_logs(store: MemoryStore, task_id: str) -> list[str]:
    logs = store.get(task_id).logs
    return list((logs[0].system_logs if logs else None) or [])


async def test_queued_tasks_say_once_why_an_unready_backend_takes_none(settings: Settings, store: MemoryStore) -> None:
    backend = UnreadyBackend()
    task_id = store.create(a_task())
    eng = Engine(settings, store, backend)
    await eng.start()
    try:
        line = "waiting to start: the Kubernetes API at https://k does not answer"
        await until(lambda: system_logs(store, task_id) == [line])
        await eng.note_queued("the Kubernetes API at https://k does not answer")
        assert system_logs(store, task_id) == [line]  # said again: not repeated
        assert state_of(store, task_id) == State.QUEUED
        backend.why = None
        eng.wake()
        await until(lambda: state_of(store, task_id) == State.RUNNING)
        backend.release(task_id).set()
        await until(lambda: state_of(store, task_id) == State.COMPLETE)
    finally:
        await eng.stop()
