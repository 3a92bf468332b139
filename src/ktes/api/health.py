"""``/healthz`` (the process answers) and ``/readyz`` (this replica can do its part now).

Ready means: the store answers a trivial query within :data:`STORE_TIMEOUT_SECONDS`, and the engine is
where it should be: running in this process (local backend), running or waiting for the Lease (Kubernetes
backend: a replica that does not lead still serves the API, so it stays ready), or off on purpose
(``engine_enabled: false``, an API-only replica), and the backend the engine runs can take tasks (the
Kubernetes API answers). A replica that does not lead because the Lease cannot be read (the Kubernetes API
does not answer: no replica can lead) is not ready either, as the leader would not be. Both answer JSON;
``/readyz`` names what is wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ktes.backends.base import Backend, ReportsReadiness
from ktes.config import Settings
from ktes.filer.redact import redact_text
from ktes.store.base import Store

JSON = "application/json"
STORE_TIMEOUT_SECONDS = 3.0

#: The engine's status (:attr:`ktes.engine.engine.Engine.status`), or None without an engine in this process.
EngineStatus = Callable[[], str | None]


async def store_check(store: Store) -> tuple[bool, str]:
    try:
        await asyncio.wait_for(asyncio.to_thread(store.ping), STORE_TIMEOUT_SECONDS)
    except TimeoutError:
        return False, f"the database did not answer within {STORE_TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # any driver error: say it, without secrets
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return False, redact_text(f"the database is unreachable: {first_line}")
    return True, "ok"


def engine_check(
    settings: Settings, status: str | None, leadership: ReportsReadiness | None = None
) -> tuple[bool, str]:
    if status is None:
        return True, "off in this replica (engine_enabled: false): it serves the API only"
    if settings.backend == "kubernetes":
        if status == "running":
            return True, "leading: this replica runs the engine"
        why = leadership.not_ready_reason() if leadership is not None else None
        if why is not None:
            return False, why
        return True, f"standby: another replica leads the engine (here: {status})"
    if status == "running":
        return True, "running"
    return False, f"the engine is {status}"


def backend_check(backend: Backend | None, status: str | None) -> tuple[bool, str]:
    """The backend can take tasks now (it says why not: e.g. the Kubernetes API does not answer)."""
    if backend is None or status != "running" or not isinstance(backend, ReportsReadiness):
        return True, "ok"
    why = backend.not_ready_reason()
    return (True, "ok") if why is None else (False, why)


def health_routes(
    settings: Settings,
    store: Store,
    engine_status: EngineStatus,
    backend: Backend | None = None,
    leadership: ReportsReadiness | None = None,
) -> list[BaseRoute]:
    async def healthz(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    async def readyz(_request: Request) -> Response:
        store_ok, store_says = await store_check(store)
        status = engine_status()
        engine_ok, engine_says = engine_check(settings, status, leadership)
        backend_ok, backend_says = backend_check(backend, status)
        ready = store_ok and engine_ok and backend_ok
        checks = {"store": store_says, "engine": engine_says, "backend": backend_says}
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        return Response(orjson.dumps(body), status_code=200 if ready else 503, media_type=JSON)

    return [
        Route("/healthz", healthz, methods=["GET"], name="healthz"),
        Route("/readyz", readyz, methods=["GET"], name="readyz"),
    ]
