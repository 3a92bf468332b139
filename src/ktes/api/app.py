"""The FastAPI application: TES 1.1 under ``/ga4gh/tes/v1``, ktes's own ``/ktes/v1``, the dashboard at ``/ui/``,
probes, ``/metrics``, guards and CORS, and the error mapping.

The contract is the TES 1.1.0 OpenAPI document itself, so FastAPI's generated schema and docs pages are off.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

import ktes
from ktes.api import errors, guards
from ktes.api.extensions import extension_routes
from ktes.api.fast_get import FastGetTask
from ktes.api.health import EngineStatus, health_routes
from ktes.api.metrics_http import HttpMetrics, RequestCounts, metrics_route
from ktes.api.service_info import SECURITY_PATH, security_document, service_info
from ktes.api.tasks import JSON, LARGE_READS_AT_ONCE, OffLoop, TaskReader, task_routes
from ktes.auth.authenticator import Authenticator
from ktes.auth.middleware import AuthMiddleware
from ktes.backends.base import Backend, ReportsReadiness
from ktes.capabilities import Capabilities
from ktes.config import Settings
from ktes.store.base import Store
from ktes.web.pages import ui_routes
from ktes.web.signin import SignIn

PREFIX = "/ga4gh/tes/v1"


class KtesApp(FastAPI):
    """The FastAPI application with the GetTask fast path (``api/fast_get.py``) in front of its layers."""

    fast_get: FastGetTask | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast_get is not None and await self.fast_get.answer(scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings,
    store: Store,
    capabilities: Capabilities,
    wake: Callable[[], None] = lambda: None,
    backend: Backend | None = None,
    engine_status: EngineStatus = lambda: None,
    authenticator: Authenticator | None = None,
    leadership: ReportsReadiness | None = None,
) -> KtesApp:
    """The API over ``store``. ``capabilities`` feeds both service-info and validation; ``wake`` is called
    after a task is created or cancelled, so the engine looks at it at once. ``backend`` (when this process
    has one) serves executors' live output under ``/ktes/v1`` and its capacity to the dashboard;
    ``engine_status`` tells ``/readyz`` how this process's engine is (None: no engine here), and
    ``leadership`` why it cannot lead, if it can say.
    ``authenticator`` (default: from ``settings``) guards every route but the public ones
    (``ktes.auth.middleware``)."""
    app = KtesApp(title="ktes", version=ktes.__version__, openapi_url=None, docs_url=None, redoc_url=None)
    errors.install(app)
    authenticator = authenticator or Authenticator(settings)
    app.add_middleware(AuthMiddleware, authenticator=authenticator)
    guards.install(app, settings)
    counts = RequestCounts() if settings.metrics_enabled else None
    if counts is not None:
        app.add_middleware(HttpMetrics, routes=app.router.routes, counts=counts)
    reader = TaskReader(settings, store, OffLoop(LARGE_READS_AT_ONCE))
    app.fast_get = FastGetTask(PREFIX, reader, authenticator, guards.served_hosts(settings), counts)
    info = orjson.dumps(service_info(settings, capabilities))
    security = orjson.dumps(security_document(settings))

    async def get_service_info(_request: Request) -> Response:
        return Response(info, media_type=JSON)

    async def get_security(_request: Request) -> Response:
        return Response(security, media_type=JSON)

    app.router.routes.extend(
        [
            *task_routes(PREFIX, settings, store, capabilities, wake, reader),
            Route(PREFIX + "/service-info", get_service_info, methods=["GET"], name="GetServiceInfo"),
            Route(SECURITY_PATH, get_security, methods=["GET"], name="KtesSecurity"),
            *health_routes(settings, store, engine_status, backend, leadership),
            *([metrics_route(store)] if settings.metrics_enabled else []),
            *extension_routes(store, backend),
            *ui_routes(SignIn(settings, authenticator.oidc)),
        ]
    )
    return app
