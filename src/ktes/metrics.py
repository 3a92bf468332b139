"""What ktes counts for Prometheus, and the few calls that count it.

Every metric of the process lives here (in ``prometheus_client``'s default registry); the engine, the store,
the filer and the Kubernetes client call the small functions below, so their own code stays about their job.
``/metrics`` (:mod:`ktes.api.metrics_http`) serves them together with ``ktes_tasks``, which is counted in the
database at scrape time. ``docs/operations.md`` describes each one.

ktes serves from one process (uvicorn without workers), so the default registry is the whole picture.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from ktes.tes.models import State, Task

disable_created_metrics()  # type: ignore[no-untyped-call] # no ``*_created`` series: they double the output and nobody graphs them

#: Waiting and running times: a second to a day.
_TASK_BUCKETS: Final = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
#: API latency: 1 ms to 10 s.
_HTTP_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)

TASK_TRANSITIONS: Final = Counter("ktes_task_transitions", "Task state changes made by this process", ["from", "to"])
TASK_QUEUE_SECONDS: Final = Histogram(
    "ktes_task_queue_seconds", "Time from creation to INITIALIZING", ["backend"], buckets=_TASK_BUCKETS
)
TASK_RUN_SECONDS: Final = Histogram(
    "ktes_task_run_seconds", "Time from the start of a task to its final state", ["backend"], buckets=_TASK_BUCKETS
)
HTTP_REQUESTS: Final = Counter(
    "ktes_http_requests", "HTTP requests answered, by route template", ["route", "method", "status"]
)
HTTP_DURATION: Final = Histogram(
    "ktes_http_request_duration_seconds", "Time to answer an HTTP request", ["route"], buckets=_HTTP_BUCKETS
)
BACKEND_ERRORS: Final = Counter(
    "ktes_backend_errors",
    "Failures of the backend: tasks it ended in SYSTEM_ERROR, runs that raised, failed Kubernetes API calls",
    ["reason"],
)
KUBERNETES_REQUESTS: Final = Counter(
    "ktes_kubernetes_requests",
    "Requests sent to the Kubernetes API server, by verb (get, list, watch, create, patch, ...) and resource",
    ["verb", "resource"],
)
FILER_BYTES: Final = Counter("ktes_filer_bytes", "Bytes moved by this process's filer", ["scheme", "direction"])
DISPATCH_LAG: Final = Gauge(
    "ktes_engine_dispatch_lag_seconds",
    "How long the oldest task the engine could not start yet has waited (0: every QUEUED task started)",
)


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return None


def transition(before: State, after: State) -> None:
    TASK_TRANSITIONS.labels(before.value, after.value).inc()


def task_dispatched(backend: str, task: Task) -> None:
    """``task`` just moved to INITIALIZING: how long it waited."""
    waited = _seconds(task.creation_time, datetime.now().astimezone().isoformat())
    if waited is not None:
        TASK_QUEUE_SECONDS.labels(backend).observe(max(0.0, waited))


def task_ended(backend: str, task: Task) -> None:
    """``task`` reached its final state: how long it ran; a system error or preemption counts as a failure."""
    log = task.logs[0] if task.logs else None
    ran = _seconds(log.start_time, log.end_time) if log is not None else None
    if ran is not None:
        TASK_RUN_SECONDS.labels(backend).observe(max(0.0, ran))
    if task.state in (State.SYSTEM_ERROR, State.PREEMPTED):
        BACKEND_ERRORS.labels(f"task_{task.state.value.lower()}").inc()


def backend_error(reason: str) -> None:
    """One failure of ``reason`` (a short fixed word: ``run_raised``, ``kubernetes_api``, ...)."""
    BACKEND_ERRORS.labels(reason).inc()


def kubernetes_request(verb: str, resource: str) -> None:
    """One request to the Kubernetes API server (:mod:`ktes.backends.kubernetes.api_requests` names it)."""
    KUBERNETES_REQUESTS.labels(verb, resource).inc()


def filer_bytes(scheme: str, direction: str, count: int) -> None:
    """``count`` bytes moved over ``scheme`` (``download`` or ``upload``)."""
    FILER_BYTES.labels(scheme or "file", direction).inc(count)


def dispatch_lag(oldest_waiting_creation: str | None) -> None:
    """The oldest task still QUEUED after a dispatch pass (None: none waits)."""
    if oldest_waiting_creation is None:
        DISPATCH_LAG.set(0)
        return
    waited = _seconds(oldest_waiting_creation, datetime.now().astimezone().isoformat())
    DISPATCH_LAG.set(max(0.0, waited or 0.0))
