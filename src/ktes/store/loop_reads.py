"""PostgreSQL reads that let the event loop go on: GetTask and ListTasks pages awaited, not waited for.

A read through a synchronous DBAPI connection holds the event loop for its whole round trip. On an idle
machine that is some 90 us, but when the CPUs are busy (a load generator, other processes) the PostgreSQL
backend process has to wait its turn to run each statement, and the loop sat idle meanwhile: under ``wrk
-c16`` ktes served 1,780 GetTasks a second with its process at 25 % of a CPU (docs/scale.md, "PostgreSQL at
1,000,000 tasks"). Here a read is sent on a psycopg ``AsyncConnection`` and the loop serves other requests
until the answer comes, several reads in flight at once on connections of their own.

A read is written once, as *steps*: a generator that yields each statement as ``(sql, params)`` and gets its
rows back (see :data:`Steps`). :func:`drive` runs steps on a synchronous cursor, :meth:`LoopReads.run` on
an asynchronous one, so :class:`ktes.store.sql.SqlStore` keeps one copy of each query's logic.

The connections are a free list per event loop (an ``AsyncConnection`` belongs to the loop it was made in).
Reads take turns in two lanes of ``size`` each: single tasks (GetTask, the request clients poll) and pages
(ListTasks), so pages that wait on the database (a costly filter, a lock) never hold up a poll. Written here
rather than taken from ``psycopg_pool``: its ``AsyncConnectionPool`` is bound to one loop and keeps
background tasks of its own, where a read needs only a connection from a list and back, as
:meth:`ktes.store.sql.SqlStore._sqlite_fetch_one` does for SQLite.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from contextlib import suppress
from typing import Any, TypeVar

from ktes.errors import StoreUnavailable

R = TypeVar("R")
#: One statement: SQL text (fixed shapes, only parameters from requests) and its parameters.
Query = tuple[str, Sequence[Any]]
#: A read: yields its statements one at a time, is sent each one's rows, and returns its result.
Steps = Generator[Query, Iterable[Any], R]


def drive(cursor: Any, steps: Steps[R], *, streamed: bool) -> R:
    """Run ``steps`` on a synchronous DBAPI ``cursor``. ``streamed``: each statement's rows are sent as the
    cursor itself, so a step that stops early (a page full of large documents on SQLite) reads no further
    rows; else as a list (``fetchall``: a client that has every row already hands them over at once)."""
    try:
        query = next(steps)
        while True:
            cursor.execute(query[0], query[1])
            query = steps.send(cursor if streamed else cursor.fetchall())
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


#: The lanes reads take turns in (see the module's docstring).
ONE_TASK = "one task"
PAGES = "pages"


class _Connections:
    """One event loop's connections: those not in use, and each lane's limit on those in use."""

    def __init__(self, size: int) -> None:
        self.idle: list[Any] = []
        self.lanes = {ONE_TASK: asyncio.Semaphore(size), PAGES: asyncio.Semaphore(size)}


class LoopReads:
    """Runs reads on asynchronous PostgreSQL connections of the running event loop.

    ``connect`` makes a new connection (psycopg ``AsyncConnection``, in autocommit mode). ``outage`` are the
    exceptions that mean the database is gone or busy: after a database restart every kept connection is
    dead, so the first read that meets one drops the loop's kept connections and tries once more on a new
    one (as ``SqlStore._raw_read``); one that still fails, or a connect that fails, is
    :class:`~ktes.errors.StoreUnavailable` (the API answers 503). Any other exception is the read's own (a
    task not found) and goes to the caller; the connection is kept, its statement having ended.
    """

    def __init__(self, connect: Callable[[], Awaitable[Any]], size: int, outage: tuple[type[Exception], ...]) -> None:
        self._connect = connect
        self._size = max(1, size)
        self._outage = outage
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Connections] = weakref.WeakKeyDictionary()

    def _of_this_loop(self) -> _Connections:
        loop = asyncio.get_running_loop()
        connections = self._loops.get(loop)
        if connections is None:
            connections = self._loops[loop] = _Connections(self._size)
        return connections

    async def run(self, steps: Callable[[], Steps[R]], lane: str) -> R:
        """The result of a fresh ``steps()`` run on a connection of this loop, in its turn in ``lane``."""
        connections = self._of_this_loop()
        async with connections.lanes[lane]:
            for attempt in (1, 2):
                connection = connections.idle.pop() if connections.idle else await self._new_connection()
                try:
                    result = await self._run_on(connection, steps())
                except self._outage as exc:
                    await _close(connection)
                    stale, connections.idle[:] = list(connections.idle), []
                    for other in stale:
                        await _close(other)
                    if attempt == 2:
                        raise StoreUnavailable(f"the database is unavailable: {first_line(exc)}") from exc
                    continue
                except _StepFailed as failed:  # the read's own error: the connection is fine
                    connections.idle.append(connection)
                    raise failed.error from None
                except BaseException:  # cancelled mid-statement: the connection's state is unknown
                    _close_later(connection)
                    raise
                connections.idle.append(connection)
                return result
        raise AssertionError("unreachable")

    async def _new_connection(self) -> Any:
        try:
            return await self._connect()
        except self._outage as exc:
            raise StoreUnavailable(f"the database is unavailable: {first_line(exc)}") from exc

    @staticmethod
    async def _run_on(connection: Any, steps: Steps[R]) -> R:
        async with connection.cursor() as cursor:
            try:
                query = next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            except Exception as exc:
                raise _StepFailed(exc) from exc
            while True:
                await cursor.execute(query[0], query[1])
                rows = await cursor.fetchall()
                try:
                    query = steps.send(rows)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
                except Exception as exc:
                    raise _StepFailed(exc) from exc

    async def close(self) -> None:
        """Close the running loop's kept connections (at shutdown; the loop's reads have ended)."""
        connections = self._loops.pop(asyncio.get_running_loop(), None)
        if connections is not None:
            for connection in connections.idle:
                await _close(connection)


class _StepFailed(Exception):
    """Carries an exception the read's own code raised, apart from those of the connection."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


async def _close(connection: Any) -> None:
    with suppress(Exception):
        await connection.close()


_closing: set[asyncio.Task[None]] = set()


def _close_later(connection: Any) -> None:
    """Close ``connection`` in a task of its own (the caller is being cancelled), kept until it is done."""
    with suppress(RuntimeError):  # the loop is closing: the connection goes with the process
        task = asyncio.get_running_loop().create_task(_close(connection))
        _closing.add(task)
        task.add_done_callback(_closing.discard)


def first_line(exc: BaseException) -> str:
    """The first line of what ``exc`` (or the DBAPI error it wraps) says, for a sentence to users."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
