"""``/metrics`` in Prometheus' text format, and the middleware that counts and times every HTTP request.

Requests are labelled by route *template* (``/ga4gh/tes/v1/tasks/{id}``), never by the raw path, so task ids
cannot blow up the number of series; a path no route matches is ``unmatched``. ``ktes_tasks{state}`` is
counted in the database when scraped, at most once per :data:`TASK_COUNT_SECONDS` (a ``GROUP BY`` over the
state index), so a scrape every few seconds costs the database next to nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ktes.metrics import HTTP_DURATION, HTTP_REQUESTS
from ktes.store.base import Store
from ktes.tes.models import State

log = logging.getLogger(__name__)

TASK_COUNT_SECONDS = 5.0
UNMATCHED = "unmatched"
#: Methods counted by name; any other is OTHER (clients choose methods, series must stay few).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class TaskCounts(Collector):
    """``ktes_tasks{state}``: the last count, refreshed by :meth:`refresh` when older than the cache time."""

    def __init__(self, store: Store, max_age: float = TASK_COUNT_SECONDS) -> None:
        self._store = store
        self._max_age = max_age
        self._counts: dict[State, int] | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            if self._counts is not None and time.monotonic() - self._at < self._max_age:
                return
            try:
                self._counts = await asyncio.to_thread(self._store.count_by_state)
                self._at = time.monotonic()
            except Exception as exc:  # the database is away: leave the gauge out rather than lie
                log.warning("metrics: counting tasks failed: %s", exc)
                self._counts = None

    def collect(self) -> Iterable[Metric]:
        if self._counts is None:
            return []
        family = GaugeMetricFamily("ktes_tasks", "Tasks in each state (counted in the database)", labels=["state"])
        for state in State:
            family.add_metric([state.value], self._counts.get(state, 0))
        return [family]


def metrics_route(store: Store) -> Route:
    counts = TaskCounts(store)
    own = CollectorRegistry(auto_describe=False)
    own.register(counts)

    async def metrics(_request: Request) -> Response:
        await counts.refresh()
        return Response(generate_latest(REGISTRY) + generate_latest(own), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"], name="metrics")


class RequestCounts:
    """``ktes_http_requests_total`` and ``ktes_http_request_duration_seconds``, with the labelled series kept in
    dicts, so a request costs two dict lookups, a counter increment and a histogram observation. Shared by
    :class:`HttpMetrics` and the GetTask fast path (``api/fast_get.py``), which answers before the middleware."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._timers: dict[str, Histogram] = {}

    def note(self, route: str, method: str, status: int, elapsed: float) -> None:
        method = method if method in METHODS else "OTHER"
        key = (route, method, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = HTTP_REQUESTS.labels(route, method, str(status))
        timer = self._timers.get(route)
        if timer is None:
            timer = self._timers[route] = HTTP_DURATION.labels(route)
        counter.inc()
        timer.observe(elapsed)


class HttpMetrics:
    """Pure ASGI middleware: counts and times every HTTP request into ``counts``, labelled by the template of
    the route the router put in the scope."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute], counts: RequestCounts) -> None:
        self.app = app
        self._routes = routes
        self._templates: dict[object, str] | None = None
        self._counts = counts

    def _template(self, endpoint: object) -> str:
        if self._templates is None or (endpoint is not None and endpoint not in self._templates):
            self._templates = dict(_templates(self._routes))
        return self._templates.get(endpoint, UNMATCHED)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed = time.perf_counter() - started
            self._counts.note(self._template(scope.get("endpoint")), scope["method"], status, elapsed)


def _templates(routes: list[BaseRoute]) -> Iterator[tuple[object, str]]:
    for route in routes:
        if isinstance(route, Route):
            yield route.endpoint, route.path
