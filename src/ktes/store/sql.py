"""The task store on SQLAlchemy 2 Core: SQLite (WAL) by default, PostgreSQL (psycopg 3) for several replicas.

Each task is a narrow row of the columns listing filters on (id, state, name), its document as JSON text in
``task_docs``, and its tags in ``task_tags``. Reads are single statements without a transaction; every
write is one transaction that locks the row first (``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE``
on PostgreSQL) and then updates it with a compare-and-set on the state.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ktes import metrics
from ktes.errors import OverUserLimit, StoreUnavailable, TaskNotFound
from ktes.store import pagination
from ktes.store.base import Edit, TaskFilter, TaskPage
from ktes.store.loop_reads import ONE_TASK, PAGES, LoopReads, Steps, drive
from ktes.store.loop_reads import first_line as _first_line
from ktes.store.migrate import upgrade
from ktes.store.tables import task_docs, task_tags, tasks
from ktes.tes import views
from ktes.tes.ids import is_id, new_id, rfc3339
from ktes.tes.models import State, Task, View
from ktes.tes.states import ALLOWED_FROM, TERMINAL

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA cache_size=-16384",  # 16 MiB per connection
    "PRAGMA temp_store=MEMORY",
)

P = ParamSpec("P")
R = TypeVar("R")

#: ListTasks pages of documents are read and sent in parts of about this many bytes (list_tasks_json_parts).
PART_BYTES = 1 << 20

#: SQLite connections kept for single-row reads (see SqlStore._sqlite_fetch_one): the event loop needs one,
#: FULL reads in worker threads one each (at most 2 at once).
_SPARE_READERS = 4

#: PostgreSQL reads the API awaits in flight at once, in each of two lanes (single tasks, pages:
#: ktes.store.loop_reads) (``database_reads_at_once``). More than 2 made the tail
#: worse with PostgreSQL on the same 2 CPUs as ktes: 16 clients reading MINIMAL pages at 1,000,000 tasks had a
#: p99 of 7-12 ms with 2, and 64-106 ms in about half the runs with 3, 4 or 8, as the busy database processes
#: took the CPU from the event loop (docs/scale.md); throughput was the same from 2 up.
READS_AT_ONCE = 2

#: After a bulk import this large, PostgreSQL vacuums and analyzes the tables (see SqlStore.import_tasks).
_ANALYZE_AFTER_ROWS = 1000


def open_store(url: str, *, pool_size: int = 8, reads_at_once: int = READS_AT_ONCE) -> SqlStore:
    """Connect to ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``), bring the schema up to date
    (Alembic migrations), and return the store. ``reads_at_once``: see :class:`SqlStore`."""
    try:
        engine = make_engine(url, pool_size=pool_size)
        upgrade(engine)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise StoreUnavailable(f"the database URL {_safe_url(url)} is not one ktes can use ({exc})") from exc
    except (sa.exc.DBAPIError, OSError) as exc:
        cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
        reason = " ".join(line.strip() for line in str(cause).splitlines() if line.strip())
        raise StoreUnavailable(f"could not open the database {_safe_url(url)} ({reason})") from exc
    return SqlStore(engine, reads_at_once)


def _safe_url(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparsable)"


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError("the SQLite store needs a file: sqlite:///path/to/ktes.db")
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, connect_args={"check_same_thread": False}, pool_size=pool_size, max_overflow=pool_size
        )
        _sqlite_transactions(engine)
        return engine
    return sa.create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _sqlite_transactions(engine: Engine) -> None:
    """Take transaction control from the sqlite3 module: no BEGIN for reads (each SELECT is atomic), and
    ``BEGIN IMMEDIATE`` for writes, so a read-modify-write never fails on a stale snapshot."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("ktes_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


#: Set on every read connection: see _autocommit_twin.
_PLAN_EACH_QUERY = "SET plan_cache_mode = force_custom_plan"


def _autocommit_twin(engine: Engine) -> Engine:
    """A second engine on the same PostgreSQL database for reads: autocommit, one plan per query."""
    size = engine.pool.size() if isinstance(engine.pool, sa.QueuePool) else 5
    twin = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_size=size, max_overflow=size)

    @event.listens_for(twin, "connect")
    def _plan_each_query(dbapi_connection: Any, _record: Any) -> None:
        # psycopg prepares statements it sees often, and PostgreSQL may then reuse a generic plan, which
        # cannot know how selective this name prefix or tag is: plan every list query for its values.
        with dbapi_connection.cursor() as cursor:
            cursor.execute(_PLAN_EACH_QUERY)

    return twin


def _async_connector(engine: Engine) -> Callable[[], Awaitable[Any]]:
    """Makes a psycopg ``AsyncConnection`` to ``engine``'s database, set up as the read twin's connections."""
    import psycopg  # PostgreSQL stores only

    _args, params = engine.dialect.create_connect_args(engine.url)
    params = {key: value for key, value in params.items() if key != "context"}  # SQLAlchemy's own adapters

    async def connect() -> Any:
        connection = await psycopg.AsyncConnection.connect(**params, autocommit=True)
        await connection.execute(_PLAN_EACH_QUERY)
        return connection

    return connect


def _outage_is_unavailable(method: Callable[P, R]) -> Callable[P, R]:
    """Turn "the database cannot answer now" (connection refused or lost, pool exhausted, SQLite busy past
    its timeout) into :class:`StoreUnavailable`: the API answers 503, the engine retries its state change."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError) as exc:
            raise StoreUnavailable(f"the database is unavailable: {_first_line(exc)}") from exc

    return call


def _prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix`` (code point order), if any."""
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code == 0xD800:
            code = 0xE000  # skip the surrogates, which UTF-8 cannot encode
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def _documents(task: Task) -> dict[str, Any]:
    """The ``task_docs`` values of ``task``: its document, and its BASIC view if that differs."""
    doc = orjson.dumps(views.document(task))
    basic = views.basic_json(doc)
    return {"doc": doc.decode(), "basic": None if basic is doc else basic.decode()}


def _view_body(row: Any, view: View) -> bytes:
    """GetTask's body from a row of :meth:`SqlStore._view_sql`: (id, state) for MINIMAL, else the document."""
    if view is View.MINIMAL:
        return orjson.dumps({"id": row[0], "state": row[1]})
    return str(row[0]).encode()


def _page_body(rows: Sequence[Any], token: str | None, view: View) -> bytes:
    """ListTasks' body from a page's rows: (id, state) for MINIMAL, else (id, document)."""
    if view is View.MINIMAL:
        body: dict[str, Any] = {"tasks": [{"id": row[0], "state": row[1]} for row in rows]}
        if token:
            body["next_page_token"] = token
        return orjson.dumps(body)
    end = b'],"next_page_token":' + orjson.dumps(token) + b"}" if token else b"]}"
    return b'{"tasks":[' + b",".join(row[1].encode() for row in rows) + end


def _next_token(rows: Sequence[Any], more: bool) -> str | None:
    """The page token after ``rows`` (id first), when more tasks match."""
    return pagination.encode(rows[-1][0]) if more and rows else None


def _fetchone(cursor: Any, sql: str, params: tuple[Any, ...]) -> Any:
    cursor.execute(sql, params)
    return cursor.fetchone()


def _task(doc: str, owner: str | None) -> Task:
    task = Task.model_validate_json(doc)
    task.owner = owner
    return task


def _doc_size(row: Sequence[Any]) -> int:
    """A listed document's size: its length in characters, as good as bytes for a budget (mostly ASCII)."""
    return len(row[1])


Rows = list[dict[str, Any]]


def _new(task: Task) -> Task:
    """``task`` as a new QUEUED task with a fresh id and creation time."""
    task_id, ms = new_id()
    return task.model_copy(update={"id": task_id, "state": State.QUEUED, "creation_time": rfc3339(ms)})


def _rows(stored: Iterable[Task]) -> tuple[Rows, Rows, Rows]:
    """The ``tasks``, ``task_docs`` and ``task_tags`` rows of complete tasks (id, state, creation_time set)."""
    rows: Rows = []
    doc_rows: Rows = []
    tag_rows: Rows = []
    for task in stored:
        if task.id is None or task.state is None or task.creation_time is None:
            raise ValueError("an imported task needs its id, state and creation_time")
        if not is_id(task.id):
            raise ValueError(f"{task.id!r} is not a ktes task id")
        rows.append(
            {
                "id": task.id,
                "state": task.state.value,
                "name": task.name,
                "creation_time": task.creation_time,
                "owner": task.owner,
            }
        )
        doc_rows.append({"task_id": task.id, **_documents(task)})
        tag_rows.extend({"task_id": task.id, "key": k, "value": v} for k, v in (task.tags or {}).items())
    return rows, doc_rows, tag_rows


def _insert(conn: Connection, rows: Rows, doc_rows: Rows, tag_rows: Rows) -> None:
    conn.execute(tasks.insert(), rows)
    conn.execute(task_docs.insert(), doc_rows)
    if tag_rows:
        conn.execute(task_tags.insert(), tag_rows)


#: States of tasks not yet ended (what the per-user limit counts).
_ACTIVE = [s.value for s in State if s not in TERMINAL and s is not State.UNKNOWN]


def _count_active(owner: str, at_most: int | None = None) -> sa.Select[int]:
    """How many of ``owner``'s tasks have not ended (ix_tasks_state_owner_id: one range per state), counting no
    further than ``at_most`` (so a limited create reads a bounded number of index entries)."""
    active = sa.select(tasks.c.id).where(tasks.c.owner == owner, tasks.c.state.in_(_ACTIVE))
    if at_most is None:
        return sa.select(sa.func.count()).select_from(active.subquery())
    return sa.select(sa.func.count()).select_from(active.limit(at_most).subquery())


def _owner_key(owner: str | None) -> str:
    """The owner as ``owner_dispatches`` keys it: "" for tasks of no owner (no user has that name)."""
    return owner or ""


#: One more dispatch for :owner: one above the highest serial so far (only the engine holding the lead
#: dispatches, so two never race for a number; a tie would only let two owners share a place).
_RECORD_DISPATCH_SQL = (
    "INSERT INTO owner_dispatches (owner, last_dispatch)"
    " VALUES ({mark}, (SELECT coalesce(max(last_dispatch), 0) + 1 FROM owner_dispatches))"
    " ON CONFLICT (owner) DO UPDATE SET last_dispatch = excluded.last_dispatch"
)


#: PostgreSQL advisory locks of ktes live in this key space (the first key; "ktes" in ASCII), apart from
#: those of any other application sharing the database.
_LOCKS = 0x6B746573


def _key(owner: str) -> int:
    """The second advisory lock key of ``owner``: a stable 32-bit hash of the name."""
    return int.from_bytes(hashlib.blake2b(owner.encode(), digest_size=4).digest(), "big", signed=True)


class SqlStore:
    """:class:`ktes.store.base.Store` on a SQLAlchemy engine (see :func:`open_store`)."""

    #: On SQLite, a name prefix with at least this many matches counts as common (see _name_column).
    common_prefix_rows = 5000

    def __init__(self, engine: Engine, reads_at_once: int = READS_AT_ONCE) -> None:
        """``reads_at_once``: on PostgreSQL, the reads the API awaits that may be in flight at once (see
        :attr:`loop_reads`)."""
        self.engine = engine
        self.dialect = engine.dialect.name
        #: PostgreSQL: reads the API awaits on the event loop's own connections (see ktes.store.loop_reads);
        #: None on SQLite, whose reads are answered in this process in microseconds, on the loop itself
        self.loop_reads: LoopReads | None = None
        dbapi = engine.dialect.loaded_dbapi
        #: what a raw DBAPI call raises when the database is gone or busy (see _raw_read)
        self._dbapi_outage: tuple[type[Exception], ...] = (dbapi.OperationalError, dbapi.InterfaceError)
        self._connect_failed: tuple[type[Exception], ...] = (sa.exc.DBAPIError, *self._dbapi_outage)
        self._writer: Engine = engine
        self._write_lock: AbstractContextManager[Any] = threading.Lock() if self.dialect == "sqlite" else nullcontext()
        #: reads run in autocommit mode: no BEGIN/ROLLBACK round trips around a single SELECT
        self._reader: Engine = engine
        #: SQLite connections for single-row reads, out of the pool (see _sqlite_fetch_one)
        self._spare_readers: list[Any] = []
        self._closed = False
        if self.dialect == "sqlite":
            self._writer = engine.execution_options(ktes_write=True)
        else:
            self._reader = _autocommit_twin(engine)
            self.loop_reads = LoopReads(_async_connector(engine), reads_at_once, self._dbapi_outage)
        # The hot single-row reads skip SQLAlchemy's execution layer (about 100 us a call) and run a fixed
        # statement on a pooled DBAPI connection.
        mark = self._mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sql_minimal = f"SELECT id, state FROM tasks WHERE id = {mark}"
        self._sql_doc = f"SELECT doc FROM task_docs WHERE task_id = {mark}"
        self._sql_basic = f"SELECT coalesce(basic, doc) FROM task_docs WHERE task_id = {mark}"
        self._sql_doc_owner = (
            f"SELECT task_docs.doc, tasks.owner FROM tasks JOIN task_docs ON task_docs.task_id = tasks.id "
            f"WHERE tasks.id = {mark}"
        )
        # The same reads limited to one owner's tasks: another user's id is not found, like an unknown one.
        self._sql_minimal_of = f"SELECT id, state FROM tasks WHERE id = {mark} AND owner = {mark}"
        joined = f"FROM tasks JOIN task_docs ON task_docs.task_id = tasks.id WHERE tasks.id = {mark} AND tasks.owner"
        self._sql_doc_of = f"SELECT task_docs.doc {joined} = {mark}"
        self._sql_basic_of = f"SELECT coalesce(task_docs.basic, task_docs.doc) {joined} = {mark}"
        # The engine's writes (five a task) likewise: lock the row, then update it.
        lock = "" if self.dialect == "sqlite" else " FOR UPDATE"
        #: task id -> (document, task) of the last queued batch (see queued_in_turns)
        self._queued_parsed: dict[str, tuple[str, Task]] = {}
        self._sql_lock = (
            f"SELECT tasks.state, task_docs.doc, tasks.owner FROM tasks JOIN task_docs ON task_docs.task_id = tasks.id "
            f"WHERE tasks.id = {mark}{lock}"
        )
        self._sql_set_name = f"UPDATE tasks SET name = {mark} WHERE id = {mark}"
        self._sql_set_doc = f"UPDATE task_docs SET doc = {mark}, basic = {mark} WHERE task_id = {mark}"
        self._sql_drop_tags = f"DELETE FROM task_tags WHERE task_id = {mark}"
        self._sql_add_tag = f"INSERT INTO task_tags (task_id, key, value) VALUES ({mark}, {mark}, {mark})"

    # --- writes -------------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        # SQLite has one writer at a time; queueing our own threads here is much cheaper than letting them
        # collide in BEGIN IMMEDIATE, whose busy handler sleeps.
        with self._write_lock, self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _pooled_cursor(self, engine: Engine) -> Iterator[tuple[Any, Any]]:
        """(connection, cursor) on a pooled DBAPI connection of ``engine``: the cursor is closed and the connection
        returned to the pool when the block ends. A failed connect raises :class:`StoreUnavailable`; when the
        block raises the DBAPI's "database gone or busy" errors, the connection is thrown away (not pooled again)
        and the error goes on to the caller, which retries or reports it."""
        try:
            raw = engine.raw_connection()
        except self._connect_failed as exc:  # the pool does not wrap a failed connect
            raise StoreUnavailable(f"the database is unavailable: {_first_line(exc)}") from exc
        try:
            cursor = raw.cursor()
            try:
                yield raw, cursor
            finally:
                with suppress(Exception):
                    cursor.close()
        except self._dbapi_outage as exc:
            raw.invalidate(exc)
            raise
        finally:
            raw.close()

    @contextmanager
    def _raw_write(self) -> Iterator[Any]:
        """A DBAPI cursor in one write transaction (``BEGIN IMMEDIATE`` on SQLite), committed when the block
        ends and rolled back when it raises. The engine's state changes use it: through SQLAlchemy's execution
        layer, building and running their three statements cost more CPU than the database spent on them."""
        with self._write_lock:
            try:
                with self._pooled_cursor(self._writer) as (raw, cursor):
                    try:
                        if self.dialect == "sqlite":
                            cursor.execute("BEGIN IMMEDIATE")
                        yield cursor
                        raw.commit()
                    except BaseException:
                        with suppress(Exception):
                            raw.rollback()
                        raise
            except self._dbapi_outage as exc:
                raise StoreUnavailable(f"the database is unavailable: {_first_line(exc)}") from exc

    def create(self, task: Task, max_active: int | None = None) -> str:
        if max_active is None or task.owner is None:
            return self.create_many([task])[0]
        return self._create_within(_new(task), task.owner, max_active)

    def create_many(self, new_tasks: Iterable[Task]) -> list[str]:
        """Store several new tasks in one transaction (bulk loading)."""
        return self.import_tasks([_new(task) for task in new_tasks])

    @_outage_is_unavailable
    def _create_within(self, stored: Task, owner: str, limit: int) -> str:
        """Count the owner's tasks not yet ended and insert, in one transaction that no other create for the
        same owner can interleave with (see :meth:`_one_create_at_a_time`)."""
        rows = _rows([stored])
        with self._write() as conn:
            self._one_create_at_a_time(conn, owner)
            if conn.execute(_count_active(owner, limit)).scalar_one() >= limit:
                raise OverUserLimit(limit)
            _insert(conn, *rows)
        return str(stored.id)

    def _one_create_at_a_time(self, conn: Connection, owner: str) -> None:
        """Make the owner's limited creates take turns until this transaction ends.

        SQLite: nothing to do. ``_write`` began with ``BEGIN IMMEDIATE``, which takes the database's one write
        lock (across processes, not only this one's threads) before the count, and keeps it to the commit.

        PostgreSQL: a transaction-scoped advisory lock keyed by the owner. At READ COMMITTED each statement
        sees what was committed before it started, so once the lock is ours the count includes the insert of
        the create that held it before (committed before its lock was released). Only the same user's creates
        wait for each other (two names whose 32-bit keys collide merely take turns too). Chosen over a
        per-owner counter row, which would need a table kept in step by every transition to a final state,
        by retention's deletes and by imports, and mended whenever it drifted; the lock needs nothing kept.
        """
        if self.dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": _LOCKS, "key": _key(owner)})

    @_outage_is_unavailable
    def import_tasks(self, stored: Iterable[Task]) -> list[str]:
        """Store tasks exactly as given, with their own id, state and creation_time (restoring a backup,
        moving between databases, benchmarks), in one transaction. Ids must come from :mod:`ktes.tes.ids`."""
        rows, doc_rows, tag_rows = _rows(stored)
        if rows:
            with self._write() as conn:
                _insert(conn, rows, doc_rows, tag_rows)
            if len(rows) >= _ANALYZE_AFTER_ROWS and self.dialect == "postgresql":
                # Give the planner statistics, and mark the new pages all-visible (index-only scans need no
                # heap visit), at once rather than at autovacuum's next pass, which would otherwise land on
                # the reads that follow a bulk import. VACUUM skips pages already all-visible, so repeated
                # imports cost only their own pages.
                with self._reader.connect() as conn:
                    conn.execute(sa.text("VACUUM (ANALYZE) tasks, task_docs, task_tags"))
        return [row["id"] for row in rows]

    @_outage_is_unavailable
    def transition(self, task_id: str, target: State, edit: Edit | None = None) -> Task | None:
        allowed = ALLOWED_FROM[target]
        with self._raw_write() as cursor:
            current, task = self._locked(cursor, task_id)
            if current not in allowed:
                return None
            before_tags = dict(task.tags or {})
            if edit is not None:
                edit(task)
            task.state = target
            states = [s.value for s in allowed]
            cursor.execute(
                f"UPDATE tasks SET state = {self._mark}, name = {self._mark} WHERE id = {self._mark} "
                f"AND state IN ({', '.join([self._mark] * len(states))})",
                (target.value, task.name, task_id, *states),
            )
            if cursor.rowcount != 1:  # cannot happen under the row lock; kept as the compare-and-set guard
                return None
            self._write_docs(cursor, task, before_tags)
            if target is State.INITIALIZING:  # only ever from QUEUED: the engine dispatched it
                cursor.execute(_RECORD_DISPATCH_SQL.format(mark=self._mark), (_owner_key(task.owner),))
        metrics.transition(current, target)
        return task

    @_outage_is_unavailable
    def edit(self, task_id: str, edit: Edit) -> Task:
        with self._raw_write() as cursor:
            current, task = self._locked(cursor, task_id)
            before_tags = dict(task.tags or {})
            edit(task)
            task.state = current  # only transition() changes the state
            cursor.execute(self._sql_set_name, (task.name, task_id))
            self._write_docs(cursor, task, before_tags)
            return task

    def _locked(self, cursor: Any, task_id: str) -> tuple[State, Task]:
        if not is_id(task_id):
            raise TaskNotFound(task_id)
        row = _fetchone(cursor, self._sql_lock, (task_id,))
        if row is None:
            raise TaskNotFound(task_id)
        return State(row[0]), _task(row[1], row[2])

    def _write_docs(self, cursor: Any, task: Task, before_tags: dict[str, str]) -> None:
        """Store ``task``'s document (and BASIC view), and its tags when an edit changed them."""
        assert task.id is not None
        docs = _documents(task)
        cursor.execute(self._sql_set_doc, (docs["doc"], docs["basic"], task.id))
        after = task.tags or {}
        if after != before_tags:
            cursor.execute(self._sql_drop_tags, (task.id,))
            if after:
                cursor.executemany(self._sql_add_tag, [(task.id, k, v) for k, v in after.items()])

    # --- reads --------------------------------------------------------------------------------------

    def _fetch_one(self, sql: str, task_id: str, *more: str) -> Any:
        if not is_id(task_id):  # not one of ours: no need to ask the database
            raise TaskNotFound(task_id)
        if self.dialect == "sqlite":
            row = self._sqlite_fetch_one(sql, (task_id, *more))
        else:
            row = self._raw_read(lambda cursor: _fetchone(cursor, sql, (task_id, *more)))
        if row is None:
            raise TaskNotFound(task_id)
        return row

    def _sqlite_fetch_one(self, sql: str, params: tuple[str, ...]) -> Any:
        """One row on SQLite, on a connection of the store's own free list rather than the pool: the pool's
        checkout and return (a rollback, events, weak references) cost about as much as the statement, and
        GetTask is the request clients repeat most. The connections are made by the engine (its pragmas and
        transaction control) and taken out of its pool (``detach``); at most :data:`_SPARE_READERS` are kept.
        A ``list.pop``/``append`` needs no lock: each connection is used by one thread at a time."""
        try:
            connection = self._spare_readers.pop()
        except IndexError:
            connection = self._detached_reader()
        try:
            cursor = connection.execute(sql, params)
            row = cursor.fetchone()
            cursor.close()  # the statement ends here, not whenever the cursor is collected (a checkpoint waits for it)
        except self._dbapi_outage as exc:
            with suppress(Exception):
                connection.close()
            raise StoreUnavailable(f"the database is unavailable: {_first_line(exc)}") from exc
        if len(self._spare_readers) < _SPARE_READERS and not self._closed:
            self._spare_readers.append(connection)
        else:
            connection.close()
        return row

    def _detached_reader(self) -> Any:
        try:
            fairy = self.engine.raw_connection()
        except self._connect_failed as exc:
            raise StoreUnavailable(f"the database is unavailable: {_first_line(exc)}") from exc
        fairy.detach()
        return fairy.dbapi_connection

    def _raw_read(self, read: Callable[[Any], R]) -> R:
        """Run ``read(cursor)`` on a pooled DBAPI connection of the read engine.

        After a database restart every pooled connection is dead. The first read to meet one throws the whole
        pool away (the next checkouts connect afresh) and tries once more, so a restart costs no request an
        error; while the database is down, the read raises :class:`StoreUnavailable`. (A pre-ping on every
        checkout would cost a round trip on every read instead.)
        """
        for attempt in (1, 2):
            try:
                with self._pooled_cursor(self._reader) as (_raw, cursor):
                    return read(cursor)
            except self._dbapi_outage as exc:
                if self.dialect == "sqlite" or attempt == 2:
                    raise StoreUnavailable(f"the database is unavailable: {_first_line(exc)}") from exc
                self._reader.dispose()
        raise AssertionError("unreachable")

    @_outage_is_unavailable
    def get(self, task_id: str) -> Task:
        doc, owner = self._fetch_one(self._sql_doc_owner, task_id)
        return _task(doc, owner)

    def get_view(self, task_id: str, view: View, owner: str | None = None) -> dict[str, Any]:
        return dict(orjson.loads(self.get_view_json(task_id, view, owner)))

    @_outage_is_unavailable
    def get_view_json(self, task_id: str, view: View, owner: str | None = None) -> bytes:
        sql = self._view_sql(view, owner)
        row = self._fetch_one(sql, task_id) if owner is None else self._fetch_one(sql, task_id, owner)
        return _view_body(row, view)

    def awaited_reads(self) -> SqlStore | None:
        """This store, for its ``*_async`` reads, on PostgreSQL (see :attr:`loop_reads`); None on SQLite."""
        return self if self.loop_reads is not None else None

    async def close_async_reads(self) -> None:
        if self.loop_reads is not None:
            await self.loop_reads.close()

    async def get_view_json_async(self, task_id: str, view: View, owner: str | None = None) -> bytes:
        """:meth:`get_view_json` on the event loop's own connections (PostgreSQL: see :attr:`loop_reads`)."""
        assert self.loop_reads is not None
        if not is_id(task_id):
            raise TaskNotFound(task_id)
        sql = self._view_sql(view, owner)
        params = (task_id,) if owner is None else (task_id, owner)

        def read() -> Steps[bytes]:
            row = next(iter((yield sql, params)), None)
            if row is None:
                raise TaskNotFound(task_id)
            return _view_body(row, view)

        return await self.loop_reads.run(read, ONE_TASK)

    def _view_sql(self, view: View, owner: str | None) -> str:
        """The statement of a task's ``view`` by id (and owner, when given)."""
        if owner is not None:
            if view is View.MINIMAL:
                return self._sql_minimal_of
            return self._sql_doc_of if view is View.FULL else self._sql_basic_of
        if view is View.MINIMAL:
            return self._sql_minimal
        return self._sql_doc if view is View.FULL else self._sql_basic

    @_outage_is_unavailable
    def owners(self, task_ids: Collection[str]) -> dict[str, str | None]:
        ids = [task_id for task_id in task_ids if is_id(task_id)]
        if not ids:
            return {}
        with self._reader.connect() as conn:
            rows = conn.execute(sa.select(tasks.c.id, tasks.c.owner).where(tasks.c.id.in_(ids))).all()
        return {row.id: row.owner for row in rows}

    @_outage_is_unavailable
    def count_active(self, owner: str) -> int:
        with self._reader.connect() as conn:
            return int(conn.execute(_count_active(owner)).scalar_one())

    @_outage_is_unavailable
    def queued_in_turns(self, limit: int) -> list[Task]:
        # The owners with QUEUED tasks, by a skip scan of ix_tasks_state_owner_id (one index seek per owner,
        # however many tasks each has queued), then each owner's oldest few: a look costs about the same with
        # 100 or 100,000 queued tasks. The engine looks after every start and end, and usually admits one
        # task: the documents of the tasks that wait are parsed once, not at every look (_queued_parsed).
        m = self._mark
        queued = State.QUEUED.value
        owners_sql = (
            "WITH RECURSIVE o(owner) AS ("
            f" SELECT min(owner) FROM tasks WHERE state = {m}"
            " UNION ALL"
            f" SELECT (SELECT min(owner) FROM tasks WHERE state = {m} AND owner > o.owner) FROM o"
            " WHERE o.owner IS NOT NULL"
            ") SELECT owner FROM o WHERE owner IS NOT NULL"
        )
        oldest_sql = f"SELECT id FROM tasks WHERE state = {m} AND owner = {m} AND id > {m} ORDER BY id LIMIT {m}"
        unowned_sql = f"SELECT id FROM tasks WHERE state = {m} AND owner IS NULL AND id > {m} ORDER BY id LIMIT {m}"

        def read(cursor: Any) -> list[tuple[str, str, str | None]]:
            cursor.execute(owners_sql, (queued, queued))
            owners: list[str | None] = [row[0] for row in cursor.fetchall()]
            owners.append(None)  # tasks stored while auth was off
            got: dict[str | None, list[str]] = {owner: [] for owner in owners}
            active = list(owners)
            # Rounds: each owner still with tasks fetches its share of what is missing, until the batch is
            # full or every owner has given all it has (so a full batch means more may be waiting).
            while active and sum(len(ids) for ids in got.values()) < limit:
                share = -(-(limit - sum(len(ids) for ids in got.values())) // len(active))
                still = []
                for owner in active:
                    after = got[owner][-1] if got[owner] else ""
                    if owner is None:
                        cursor.execute(unowned_sql, (queued, after, share))
                    else:
                        cursor.execute(oldest_sql, (queued, owner, after, share))
                    rows = [row[0] for row in cursor.fetchall()]
                    got[owner].extend(rows)
                    if len(rows) == share:
                        still.append(owner)
                active = still
            # Within a turn, the owner served longest ago first (remembered in the database, so a restart
            # keeps whose turn it is), then the oldest task.
            keys = [_owner_key(owner) for owner, ids in got.items() if ids]
            if not keys:
                return []
            cursor.execute(
                f"SELECT owner, last_dispatch FROM owner_dispatches WHERE owner IN ({', '.join([m] * len(keys))})",
                tuple(keys),
            )
            served = dict(cursor.fetchall())
            ranked = [
                (turn, served.get(_owner_key(owner), 0), task_id)
                for owner, ids in got.items()
                for turn, task_id in enumerate(ids, start=1)
            ]
            ranked.sort()
            chosen = [task_id for _, _, task_id in ranked[:limit]]
            cursor.execute(
                f"SELECT tasks.id, task_docs.doc, tasks.owner FROM tasks JOIN task_docs ON task_docs.task_id = "
                f"tasks.id WHERE tasks.id IN ({', '.join([m] * len(chosen))})",
                tuple(chosen),
            )
            found = {row[0]: row for row in cursor.fetchall()}
            return [found[task_id] for task_id in chosen if task_id in found]

        rows = self._raw_read(read)
        before, parsed = self._queued_parsed, {}
        for task_id, doc, owner in rows:
            known = before.get(task_id)
            parsed[task_id] = known if known is not None and known[0] == doc else (doc, _task(doc, owner))
        self._queued_parsed = parsed  # only this batch: what the next look most likely finds again
        return [parsed[task_id][1].model_copy() for task_id, _, _ in rows]

    @_outage_is_unavailable
    def list_tasks(
        self, flt: TaskFilter, page_size: int, page_token: str | None, view: View, max_bytes: int | None = None
    ) -> TaskPage:
        rows, token = self._page(flt, page_size, page_token, view, max_bytes)
        if view is View.MINIMAL:
            found = [{"id": row[0], "state": row[1]} for row in rows]
        else:
            found = [orjson.loads(row[1]) for row in rows]
        return TaskPage(tasks=found, next_page_token=token)

    @_outage_is_unavailable
    def list_tasks_json(
        self, flt: TaskFilter, page_size: int, page_token: str | None, view: View, max_bytes: int | None = None
    ) -> bytes:
        rows, token = self._page(flt, page_size, page_token, view, max_bytes)
        return _page_body(rows, token, view)

    async def list_tasks_json_async(
        self, flt: TaskFilter, page_size: int, page_token: str | None, view: View, max_bytes: int | None = None
    ) -> bytes:
        """:meth:`list_tasks_json` on the event loop's own connections (PostgreSQL: see :attr:`loop_reads`)."""
        assert self.loop_reads is not None
        rows, more = await self.loop_reads.run(self._page_steps(flt, page_size, page_token, view, max_bytes), PAGES)
        return _page_body(rows, _next_token(rows, more), view)

    def list_tasks_json_parts(
        self,
        flt: TaskFilter,
        page_size: int,
        page_token: str | None,
        view: View,
        max_bytes: int | None = None,
        part_bytes: int = PART_BYTES,
    ) -> Iterator[tuple[list[bytes], str | None]]:
        """A ListTasks page of BASIC or FULL documents in parts: ``(documents, None)`` for each part but the
        last, and ``(documents, next_page_token or "")`` for the last (so a page of one part is one read, and
        the caller needs no further call to learn it is done). Each part is one read of about ``part_bytes`` of
        documents (or one larger document), so a page of huge tasks is never whole in memory, holds no
        connection while the caller sends a part, and each part can be read in a worker thread of its own. The
        parts make the same page as :meth:`list_tasks_json` (same rows, same budget), unless tasks change
        between two parts."""
        after = page_token
        sent = used = 0
        last: str | None = None
        while True:
            left = None if max_bytes is None else max_bytes - used
            budget = part_bytes if left is None else min(part_bytes, left)
            # the page's first document is always sent; a later one only within what the page has left
            try:
                rows, more = self._page(
                    flt, page_size - sent, after, view, budget, first_max=None if sent == 0 else left, as_bytes=True
                )
            except sa.exc.TimeoutError as exc:  # the pool is exhausted (a generator cannot take the decorator)
                raise StoreUnavailable(f"the database is unavailable: {_first_line(exc)}") from exc
            if rows:
                sent += len(rows)
                used += sum(len(row[1]) for row in rows)
                last = rows[-1][0]
                after = pagination.encode(last)
            docs = [row[1] for row in rows]
            if sent >= page_size or not more or not rows or (max_bytes is not None and used >= max_bytes):
                yield docs, (pagination.encode(last) if more and last is not None else "")
                return
            yield docs, None

    def _page(
        self,
        flt: TaskFilter,
        page_size: int,
        page_token: str | None,
        view: View,
        max_bytes: int | None = None,
        *,
        first_max: int | None = None,
        as_bytes: bool = False,
    ) -> Any:
        """One page of rows and the next page's token (see :meth:`_page_steps`), read on a pooled connection."""
        read = self._page_steps(flt, page_size, page_token, view, max_bytes, first_max=first_max, as_bytes=as_bytes)
        rows, more = self._raw_read(lambda cursor: drive(cursor, read(), streamed=self.dialect == "sqlite"))
        if as_bytes:
            return rows, more
        return rows, _next_token(rows, more)

    def _page_steps(
        self,
        flt: TaskFilter,
        page_size: int,
        page_token: str | None,
        view: View,
        max_bytes: int | None = None,
        *,
        first_max: int | None = None,
        as_bytes: bool = False,
    ) -> Callable[[], Steps[tuple[Sequence[Any], bool]]]:
        """The read of one page of (id, state) or (id, JSON shaped by view) rows, newest first.

        BASIC and FULL pages stop at ``max_bytes`` of documents (:func:`pagination.take_page`), and memory stays
        flat however large the tasks are: SQLite's cursor steps through the rows, so reading stops where the
        page does; PostgreSQL's would hand over every row at once, so there the page reads the ids and the
        documents' sizes (from the TOAST header, without reading them) first, then only the documents it keeps.

        The statement is written out here and run on a pooled DBAPI connection, like the single-row reads:
        building, compiling and executing it through SQLAlchemy cost more than the database spends on it.
        Only parameters come from the request; the SQL text takes one of a few fixed shapes. The read is
        returned as :data:`~ktes.store.loop_reads.Steps` (rows, and whether more match), run on a synchronous
        cursor or on the event loop's connections (:meth:`list_tasks_json_async`). A bad ``page_token`` raises
        here, before any read.
        """
        after = pagination.decode(page_token) if page_token else None
        mark = self._mark
        if view is View.MINIMAL:
            sql = "SELECT tasks.id, tasks.state FROM tasks"
        else:
            doc = "task_docs.doc" if view is View.FULL else "coalesce(task_docs.basic, task_docs.doc)"
            if self.dialect == "sqlite":  # as bytes: what is sent, without decoding and encoding it again
                column = f"CAST({doc} AS BLOB)" if as_bytes else doc
            else:
                column = f"octet_length({doc})"
            sql = f"SELECT tasks.id, {column} FROM tasks JOIN task_docs ON task_docs.task_id = tasks.id"
        params: list[Any] = []
        order = "tasks.id"
        tag_filters = list(flt.tags.items())
        if tag_filters:
            # Drive the query from the most selective tag (one with a value) through the tag indexes, which
            # hold task ids in order: the page is read in id order without a sort, however rare the tag.
            tag_filters.sort(key=lambda kv: kv[1] == "")
            key, value = tag_filters.pop(0)
            sql += f" JOIN task_tags AS driver ON driver.task_id = tasks.id AND driver.key = {mark}"
            params.append(key)
            if value:
                sql += f" AND driver.value = {mark}"
                params.append(value)
            order = "driver.task_id"
        conditions: list[str] = []
        if after is not None:
            conditions.append(f"{order} < {mark}")
            params.append(after)
        if flt.owner is not None:
            # ix_tasks_owner_id_state holds one owner's ids in order: the page is read without a sort.
            conditions.append(f"tasks.owner = {mark}")
            params.append(flt.owner)
        if flt.state is not None and flt.also_states:
            states = [flt.state.value, *(s.value for s in flt.also_states)]
            conditions.append(f"tasks.state IN ({', '.join([mark] * len(states))})")
            params.extend(states)
        elif flt.state is not None:
            conditions.append(f"tasks.state = {mark}")
            params.append(flt.state.value)
        for key, value in tag_filters:
            tag = f"SELECT 1 FROM task_tags WHERE task_tags.task_id = tasks.id AND task_tags.key = {mark}"
            params.append(key)
            if value:
                tag += f" AND task_tags.value = {mark}"
                params.append(value)
            conditions.append(f"EXISTS ({tag})")

        def read() -> Steps[tuple[Sequence[Any], bool]]:
            where = list(conditions)
            args = list(params)
            if flt.name_prefix:
                name = yield from self._name_column(flt.name_prefix, after, by_index=not flt.tags)
                where.append(f"{name} >= {mark}")
                args.append(flt.name_prefix)
                upper = _prefix_upper_bound(flt.name_prefix)
                if upper is not None:
                    where.append(f"{name} < {mark}")
                    args.append(upper)
            text = sql + (" WHERE " + " AND ".join(where) if where else "")
            text += f" ORDER BY {order} DESC LIMIT {mark}"
            args.append(page_size + 1)
            found = yield text, tuple(args)
            rows: Sequence[Any]
            if view is View.MINIMAL:
                rows, more = pagination.take_page(found, page_size, None, len)
            elif self.dialect == "sqlite":  # the cursor's rows one at a time: reading stops where the page does
                rows, more = pagination.take_page(found, page_size, max_bytes, _doc_size, first_max)
            else:
                sized, more = pagination.take_page(found, page_size, max_bytes, lambda r: r[1] or 0, first_max)
                rows = yield from self._docs([row[0] for row in sized], view)
                if as_bytes:
                    rows = [(task_id, doc.encode()) for task_id, doc in rows]
            return rows, more

        return read

    def _docs(self, ids: list[str], view: View) -> Steps[list[tuple[str, str]]]:  # PostgreSQL
        """(id, document shaped by view) of ``ids``, in that order."""
        if not ids:
            return []
        doc = "doc" if view is View.FULL else "coalesce(basic, doc)"
        # One array parameter, not one per id: a statement of 256 placeholders cost psycopg more to convert
        # and bind than PostgreSQL spent running it.
        found = dict((yield f"SELECT task_id, {doc} FROM task_docs WHERE task_id = ANY({self._mark})", (ids,)))
        return [(task_id, found[task_id]) for task_id in ids if task_id in found]

    def _name_column(self, prefix: str, after: str | None, *, by_index: bool) -> Steps[str]:
        """The expression a name prefix filter compares as a range on the byte-ordered name.

        PostgreSQL's planner knows from its statistics whether the name index (then a sort) or the id order
        (then a filter) is cheaper. SQLite does not, so we look: a prefix with fewer than
        ``common_prefix_rows`` matches uses the name index; a common one walks the id order (the no-op ``+``
        keeps SQLite off the name index), where a page is found after a bounded number of rows. The look
        steps over the covering name index and stops at that row, which costs far less than counting.

        Measured on 1,000,000 tasks, a prefix of 10,000 (1 %): the name index and a sort of the matches by id
        took 4.0 ms, the walk 1.0 ms (2.8 ms with ``name || ''``, which builds a string for every row). With
        a walk of about 40 ns a row against a sort of about 370 ns a match, the two cost the same at about
        5,000 matches in 1,000,000 tasks.
        """
        if self.dialect != "sqlite" or not by_index:
            return "tasks.name"
        where = "name >= ?"
        params: list[str] = [prefix]
        upper = _prefix_upper_bound(prefix)
        if upper is not None:
            where += " AND name < ?"
            params.append(upper)
        if after is not None:
            where += " AND id < ?"
            params.append(after)
        found = yield f"SELECT 1 FROM tasks WHERE {where} LIMIT 1 OFFSET {int(self.common_prefix_rows) - 1}", params
        common = next(iter(found), None) is not None
        return "+tasks.name" if common else "tasks.name"

    @_outage_is_unavailable
    def count_by_state(self, owner: str | None = None) -> dict[State, int]:
        # Answered from ix_tasks_state_id (one owner's: ix_tasks_owner_id_state) alone, never the documents.
        query = sa.select(tasks.c.state, sa.func.count()).group_by(tasks.c.state)
        if owner is not None:
            query = query.where(tasks.c.owner == owner)
        with self._reader.connect() as conn:
            rows = conn.execute(query).all()
        return {State(state): int(count) for state, count in rows}

    @_outage_is_unavailable
    def tasks_in(self, states: Collection[State], limit: int | None = None) -> list[Task]:
        values = [s.value for s in states]
        if not values:
            return []
        sql = (
            "SELECT task_docs.doc, tasks.owner FROM tasks JOIN task_docs ON task_docs.task_id = tasks.id "
            f"WHERE tasks.state IN ({', '.join([self._mark] * len(values))}) ORDER BY tasks.id"
        )
        params: tuple[Any, ...] = tuple(values)
        if limit is not None:
            sql += f" LIMIT {self._mark}"
            params += (limit,)

        def read(cursor: Any) -> list[Any]:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

        return [_task(doc, owner) for doc, owner in self._raw_read(read)]

    # --- operations ---------------------------------------------------------------------------------

    def ping(self) -> None:
        with self._reader.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def finished_before(self, creation_time: str, limit: int) -> list[str]:
        query = (
            sa.select(tasks.c.id)
            .where(tasks.c.state.in_([s.value for s in TERMINAL]), tasks.c.creation_time < creation_time)
            .order_by(tasks.c.id.asc())
            .limit(limit)
        )
        with self._reader.connect() as conn:
            return list(conn.execute(query).scalars())

    def delete_finished(self, task_ids: Collection[str]) -> int:
        ids = [task_id for task_id in task_ids if is_id(task_id)]
        if not ids:
            return 0
        finished = [s.value for s in TERMINAL]
        with self._write() as conn:
            doomed = sa.select(tasks.c.id).where(tasks.c.id.in_(ids), tasks.c.state.in_(finished))
            gone = list(conn.execute(doomed.with_for_update()).scalars())
            if gone:
                conn.execute(task_tags.delete().where(task_tags.c.task_id.in_(gone)))
                conn.execute(task_docs.delete().where(task_docs.c.task_id.in_(gone)))
                conn.execute(tasks.delete().where(tasks.c.id.in_(gone)))
            return len(gone)

    def close(self) -> None:
        self._closed = True
        while self._spare_readers:
            with suppress(Exception):
                self._spare_readers.pop().close()
        self.engine.dispose()
        if self._reader is not self.engine:
            self._reader.dispose()
