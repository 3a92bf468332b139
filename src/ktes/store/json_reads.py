"""An optional fast path a store may offer: reads that return response bodies as JSON bytes.

The SQL store keeps each task as JSON text, so it can answer GetTask and ListTasks by joining stored text,
without building Python objects. The API uses these methods when the store has them, and the plain
:class:`ktes.store.base.Store` methods otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from ktes.store.base import TaskFilter
from ktes.tes.models import View


@runtime_checkable
class JsonReads(Protocol):
    def get_view_json(self, task_id: str, view: View, owner: str | None = None) -> bytes:
        """The task shaped by ``view`` as a JSON body. Raises TaskNotFound (also for another ``owner``'s)."""
        ...

    def list_tasks_json(
        self, flt: TaskFilter, page_size: int, page_token: str | None, view: View, max_bytes: int | None = None
    ) -> bytes:
        """The whole ListTasks response body (``tasks`` and, when more match, ``next_page_token``)."""
        ...


@runtime_checkable
class JsonListParts(Protocol):
    def list_tasks_json_parts(
        self, flt: TaskFilter, page_size: int, page_token: str | None, view: View, max_bytes: int | None = None
    ) -> Iterator[tuple[list[bytes], str | None]]:
        """A ListTasks page of BASIC or FULL documents read in parts: ``(documents, None)`` per part but the
        last, ``(documents, next_page_token or "")`` for the last; no part holds a connection once it is handed
        over."""
        ...


class AwaitedJsonReads(Protocol):
    """:class:`JsonReads` that the event loop awaits, serving other requests until the database answers."""

    async def get_view_json_async(self, task_id: str, view: View, owner: str | None = None) -> bytes: ...

    async def list_tasks_json_async(
        self, flt: TaskFilter, page_size: int, page_token: str | None, view: View, max_bytes: int | None = None
    ) -> bytes: ...

    async def close_async_reads(self) -> None:
        """Close the running event loop's connections (at shutdown)."""
        ...


@runtime_checkable
class OffersAwaitedReads(Protocol):
    def awaited_reads(self) -> AwaitedJsonReads | None:
        """Reads to await when a read waits on another process (PostgreSQL, over a socket: a synchronous read
        would hold the event loop for its round trip); None when reads are answered in this process in
        microseconds (SQLite), where the API runs them on the loop itself."""
        ...
