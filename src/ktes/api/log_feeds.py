"""Live executor output for many readers at the cost of one: a feed per (task, executor, stream).

The first follower of an executor's stdout starts the feed's one reader (``Backend.executor_output`` with
``follow``); every follower reads from the feed's window of the last ``window_bytes`` bytes, so memory is
bounded per feed and each follower holds one chunk. A follower that asks for bytes before the window (it
joined late, or fell behind) first catches up with a one-off read that does not follow. The feed ends when
the executor has ended; the last follower to leave stops it.

Where the bytes are is the backend's business. A follow ends when the backend says it read to the executor's
end (:data:`END_OF_OUTPUT`: on Kubernetes the Pod knows before the task's logs do) or when the task's logs say
the executor has ended. What is left once the bytes are gone (the task ended and its files or Pod were
removed) is the tail the task's logs hold, served from the same offsets; a follower that read the output live
gets nothing more from it, so no byte comes twice at the switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from ktes.backends.base import Backend, EndOfOutput, Stream
from ktes.store.base import Store
from ktes.tes.models import Task
from ktes.tes.states import TERMINAL

log = logging.getLogger(__name__)

#: Bytes of recent output a feed keeps for its followers.
WINDOW_BYTES = 256 * 1024
#: How often to look again for an executor that has not started (or whose output is not there yet).
POLL_SECONDS = 0.5

FeedKey = tuple[str, int, Stream]


def executor_over(task: Task, index: int) -> bool:
    """Whether executor ``index`` will write no more: it has an end time, or the task has ended."""
    if task.state in TERMINAL:
        return True
    attempt = task.logs[-1] if task.logs else None
    if attempt is None or len(attempt.logs) <= index:
        return False
    return attempt.logs[index].end_time is not None


def stored_tail(task: Task, index: int, stream: Stream) -> bytes:
    """The executor's output as the task's logs keep it (the last bytes only)."""
    attempt = task.logs[-1] if task.logs else None
    if attempt is None or len(attempt.logs) <= index:
        return b""
    text = attempt.logs[index].stdout if stream == "stdout" else attempt.logs[index].stderr
    return (text or "").encode()


@dataclass
class _Feed:
    #: absolute offset of window[0]
    start: int
    window: bytearray = field(default_factory=bytearray)
    done: bool = False
    followers: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    reader: asyncio.Task[None] | None = None

    @property
    def end(self) -> int:
        return self.start + len(self.window)


def _moved_past(feed: _Feed, position: int) -> bool:
    return feed.done or feed.end > position or position < feed.start


class LogFeeds:
    """Reads executors' output through ``backend``; ``store`` says when an executor is over."""

    def __init__(
        self,
        store: Store,
        backend: Backend,
        window_bytes: int = WINDOW_BYTES,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._store = store
        self._backend = backend
        self._window_bytes = window_bytes
        self._poll_seconds = poll_seconds
        self._feeds: dict[FeedKey, _Feed] = {}

    def feed_count(self) -> int:
        """Feeds with a reader now (one per executor stream being followed)."""
        return len(self._feeds)

    async def read(
        self, task_id: str, index: int, stream: Stream, offset: int, follow: bool
    ) -> AsyncGenerator[bytes, None]:
        """The output from ``offset``; with ``follow``, until the executor has ended, through the shared feed."""
        if not follow:
            async with contextlib.aclosing(self._source(task_id, index, stream, offset, follow=False)) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        key: FeedKey = (task_id, index, stream)
        feed = self._feeds.get(key)
        if feed is None:
            feed = _Feed(start=offset)
            feed.reader = asyncio.create_task(self._pump(key, feed), name=f"ktes-log-feed-{task_id}-{index}-{stream}")
            self._feeds[key] = feed
        feed.followers += 1
        try:
            async with contextlib.aclosing(self._follow(key, feed, offset)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            feed.followers -= 1
            if feed.followers == 0:
                if self._feeds.get(key) is feed:
                    del self._feeds[key]
                if feed.reader is not None:
                    feed.reader.cancel()

    async def _follow(self, key: FeedKey, feed: _Feed, offset: int) -> AsyncGenerator[bytes, None]:
        task_id, index, stream = key
        position = offset
        while True:
            if position < feed.start:  # before the window: catch up with a read of our own
                limit = feed.start
                async with contextlib.aclosing(self._source(task_id, index, stream, position, follow=False)) as chunks:
                    async for chunk in chunks:
                        part = chunk[: limit - position]
                        position += len(part)
                        if part:
                            yield part
                        if position >= limit:
                            break
                position = max(position, feed.start)
                continue
            if position < feed.end:
                data = bytes(feed.window[position - feed.start :])
                position = feed.end
                yield data
                continue
            if feed.done:
                return
            async with feed.changed:
                await feed.changed.wait_for(functools.partial(_moved_past, feed, position))

    async def _pump(self, key: FeedKey, feed: _Feed) -> None:
        task_id, index, stream = key
        try:
            async with contextlib.aclosing(self._source(task_id, index, stream, feed.start, follow=True)) as chunks:
                async for chunk in chunks:
                    async with feed.changed:
                        feed.window += chunk
                        excess = len(feed.window) - self._window_bytes
                        if excess > 0:
                            del feed.window[:excess]
                            feed.start += excess
                        feed.changed.notify_all()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reading the output of task %s executor %d (%s) failed", task_id, index, stream)
        finally:
            feed.done = True
            with contextlib.suppress(RuntimeError):
                async with feed.changed:
                    feed.changed.notify_all()

    async def _source(
        self, task_id: str, index: int, stream: Stream, offset: int, *, follow: bool
    ) -> AsyncGenerator[bytes, None]:
        """The one reading loop: the backend's bytes while it holds them; waits (following) for an executor
        that has not started; the stored tail when nothing live is left."""
        position = offset
        live = False
        while True:
            task = await asyncio.to_thread(self._store.get, task_id)
            over = executor_over(task, index)  # looked at before reading: no byte written before it is missed
            read_to_end = False
            async with contextlib.aclosing(
                self._backend.executor_output(task, index, stream, position, follow and not over)
            ) as chunks:
                async for chunk in chunks:
                    if isinstance(chunk, EndOfOutput):
                        read_to_end = True
                        continue
                    live = True
                    position += len(chunk)
                    yield chunk
            if read_to_end:  # every byte of the ended executor came live
                return
            if over or not follow:
                break
            if live:  # the backend followed to the executor's end
                task = await asyncio.to_thread(self._store.get, task_id)
                if executor_over(task, index):
                    return
            await asyncio.sleep(self._poll_seconds)
        if not live:
            tail = stored_tail(task, index, stream)
            if position < len(tail):
                yield tail[position:]
