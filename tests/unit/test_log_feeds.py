"""Live executor output: many followers of one executor cost one reader, memory stays bounded, a late
follower catches up, and once the task's files are gone its stored tail is what is served."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from ktes.api.log_feeds import LogFeeds
from ktes.backends.base import END_OF_OUTPUT, EndOfOutput, Stream
from ktes.store.memory import MemoryStore
from ktes.tes.models import Executor, ExecutorLog, State, Task, TaskLog


class GrowingOutput:
    """A fake backend holding one executor's stdout, written by the test; counts its readers."""

    name = "fake"

    def __init__(self) -> None:
        self.data = bytearray()
        self.ended = False
        self.gone = False
        self.written = asyncio.Event()
        self.followers_now = 0
        self.followers_most = 0
        self.reads = 0
        #: say when a follow has read to the executor's end (as the Kubernetes backend does)
        self.says_end = False

    def capacity(self) -> dict[str, str]:
        return {"readers": str(self.followers_now)}

    def write(self, chunk: bytes) -> None:
        self.data += chunk
        self.written.set()

    async def executor_output(
        self, task: Task, index: int, stream: Stream, offset: int, follow: bool
    ) -> AsyncGenerator[bytes | EndOfOutput, None]:
        if self.gone or stream != "stdout":
            return
        self.reads += 1
        if follow:
            self.followers_now += 1
            self.followers_most = max(self.followers_most, self.followers_now)
        try:
            position = offset
            while True:
                if position < len(self.data):
                    chunk = bytes(self.data[position:])
                    position += len(chunk)
                    yield chunk
                    continue
                if not follow or self.ended:
                    if follow and self.says_end:
                        yield END_OF_OUTPUT
                    return
                self.written.clear()
                await self.written.wait()
        finally:
            if follow:
                self.followers_now -= 1


def running_task(store: MemoryStore) -> str:
    task_id = store.create(Task(executors=[Executor(image="busybox", command=["true"])]))
    store.transition(task_id, State.INITIALIZING)
    store.transition(task_id, State.RUNNING)
    return task_id


def finish(store: MemoryStore, backend: GrowingOutput, task_id: str, stored_stdout: str) -> None:
    def edit(task: Task) -> None:
        task.logs = [TaskLog(logs=[ExecutorLog(exit_code=0, end_time="2026-01-01T00:00:00Z", stdout=stored_stdout)])]

    store.transition(task_id, State.COMPLETE, edit)
    backend.ended = True
    backend.written.set()


async def collect(chunks: AsyncGenerator[bytes, None]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_many_followers_cost_one_reader_and_all_see_every_byte() -> None:
    store, backend = MemoryStore(), GrowingOutput()
    task_id = running_task(store)
    feeds = LogFeeds(store, backend, poll_seconds=0.01)  # type: ignore[arg-type]
    followers = [asyncio.create_task(collect(feeds.read(task_id, 0, "stdout", 0, True))) for _ in range(50)]
    backend.write(b"one\n")
    await asyncio.sleep(0.05)
    backend.write(b"two\n")
    await asyncio.sleep(0.05)
    assert feeds.feed_count() == 1
    finish(store, backend, task_id, "one\ntwo\n")
    results = await asyncio.wait_for(asyncio.gather(*followers), 5)
    assert results == [b"one\ntwo\n"] * 50
    assert backend.followers_most == 1
    assert feeds.feed_count() == 0  # the last follower to leave stops the reader


async def test_a_late_follower_before_the_window_catches_up_with_its_own_read() -> None:
    store, backend = MemoryStore(), GrowingOutput()
    task_id = running_task(store)
    feeds = LogFeeds(store, backend, window_bytes=8, poll_seconds=0.01)  # type: ignore[arg-type]
    first = asyncio.create_task(collect(feeds.read(task_id, 0, "stdout", 0, True)))
    for i in range(10):
        backend.write(f"line {i}\n".encode())
        await asyncio.sleep(0.01)
    late = asyncio.create_task(collect(feeds.read(task_id, 0, "stdout", 0, True)))
    await asyncio.sleep(0.05)
    backend.write(b"last\n")
    await asyncio.sleep(0.05)
    finish(store, backend, task_id, "")
    expected = b"".join(f"line {i}\n".encode() for i in range(10)) + b"last\n"
    assert await asyncio.wait_for(first, 5) == expected
    assert await asyncio.wait_for(late, 5) == expected


async def test_an_offset_skips_what_the_client_has() -> None:
    store, backend = MemoryStore(), GrowingOutput()
    task_id = running_task(store)
    feeds = LogFeeds(store, backend, poll_seconds=0.01)  # type: ignore[arg-type]
    backend.write(b"0123456789")
    assert await collect(feeds.read(task_id, 0, "stdout", 4, False)) == b"456789"


async def test_once_the_files_are_gone_the_stored_tail_is_served_from_the_offset() -> None:
    store, backend = MemoryStore(), GrowingOutput()
    task_id = running_task(store)
    finish(store, backend, task_id, "kept tail\n")
    backend.gone = True
    feeds = LogFeeds(store, backend, poll_seconds=0.01)  # type: ignore[arg-type]
    assert await collect(feeds.read(task_id, 0, "stdout", 0, True)) == b"kept tail\n"
    assert await collect(feeds.read(task_id, 0, "stdout", 5, False)) == b"tail\n"


async def test_following_an_executor_that_has_not_started_waits_for_it() -> None:
    store, backend = MemoryStore(), GrowingOutput()
    task_id = store.create(Task(executors=[Executor(image="busybox", command=["true"])]))
    backend.gone = True  # nothing there yet
    feeds = LogFeeds(store, backend, poll_seconds=0.01)  # type: ignore[arg-type]
    follower = asyncio.create_task(collect(feeds.read(task_id, 0, "stdout", 0, True)))
    await asyncio.sleep(0.05)
    assert not follower.done()
    store.transition(task_id, State.INITIALIZING)
    store.transition(task_id, State.RUNNING)
    backend.gone = False
    backend.write(b"started\n")
    await asyncio.sleep(0.05)
    finish(store, backend, task_id, "started\n")
    assert await asyncio.wait_for(follower, 5) == b"started\n"


async def test_a_follower_that_leaves_early_stops_the_reader() -> None:
    store, backend = MemoryStore(), GrowingOutput()
    task_id = running_task(store)
    feeds = LogFeeds(store, backend, poll_seconds=0.01)  # type: ignore[arg-type]
    backend.write(b"x")
    reading = feeds.read(task_id, 0, "stdout", 0, True)
    assert await reading.__anext__() == b"x"
    await reading.aclose()
    await asyncio.sleep(0.01)
    assert feeds.feed_count() == 0
    assert backend.followers_now == 0


async def test_a_follow_ends_when_the_backend_read_to_the_executors_end_before_the_logs_say_so() -> None:
    """On Kubernetes the Pod knows an executor has ended well before the task's logs do (they are written
    when the whole Pod has ended): the follow ends then, with every byte once and nothing from the store."""
    store, backend = MemoryStore(), GrowingOutput()
    backend.says_end = True
    task_id = running_task(store)
    feeds = LogFeeds(store, backend, poll_seconds=0.01)  # type: ignore[arg-type]
    follower = asyncio.create_task(collect(feeds.read(task_id, 0, "stdout", 0, True)))
    backend.write(b"one\n")
    await backend.written.wait()
    backend.write(b"two\n")
    backend.ended = True
    backend.written.set()
    assert await asyncio.wait_for(follower, 5) == b"one\ntwo\n"
    assert store.get(task_id).state == State.RUNNING
    assert feeds.feed_count() == 0


async def test_an_executor_that_printed_nothing_ends_its_follow_too() -> None:
    store, backend = MemoryStore(), GrowingOutput()
    backend.says_end, backend.ended = True, True
    task_id = running_task(store)
    feeds = LogFeeds(store, backend, poll_seconds=0.01)  # type: ignore[arg-type]
    assert await asyncio.wait_for(collect(feeds.read(task_id, 0, "stdout", 0, True)), 5) == b""
