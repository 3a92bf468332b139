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

import ktes
from ktes.api import errors, guards
from ktes.api.extensions import extension_routes
from ktes.api.health import EngineStatus, health_routes
from ktes.api.metrics_http import HttpMetrics, metrics_route
from ktes.api.service_info import SECURITY_PATH, security_document, service_info
from ktes.api.tasks import JSON, task_routes
from ktes.auth.authenticator import Authenticator
from ktes.auth.middleware import AuthMiddleware
from ktes.backends.base import Backend, ReportsReadiness
from ktes.capabilities import Capabilities
from ktes.config import Settings
from ktes.store.base import Store
from ktes.web.pages import ui_routes
from ktes.web.signin import SignIn

PREFIX = "/ga4gh/tes/v1"


def create_app(
    settings: Settings,
    store: Store,
    capabilities: Capabilities,
    wake: Callable[[], None] = lambda: None,
    backend: Backend | None = None,
    engine_status: EngineStatus = lambda: None,
    authenticator: Authenticator | None = None,
    leadership: ReportsReadiness | None = None,
) -> FastAPI:
    """The API over ``store``. ``capabilities`` feeds both service-info and validation; ``wake`` is called
    after a task is created or cancelled, so the engine looks at it at once. ``backend`` (when this process
    has one) serves executors' live output under ``/ktes/v1`` and its capacity to the dashboard;
    ``engine_status`` tells ``/readyz`` how this process's engine is (None: no engine here), and
    ``leadership`` why it cannot lead, if it can say.
    ``authenticator`` (default: from ``settings``) guards every route but the public ones
    (``ktes.auth.middleware``)."""
    app = FastAPI(title="ktes", version=ktes.__version__, openapi_url=None, docs_url=None, redoc_url=None)
    errors.install(app)
    authenticator = authenticator or Authenticator(settings)
    app.add_middleware(AuthMiddleware, authenticator=authenticator)
    guards.install(app, settings)
    if settings.metrics_enabled:
        app.add_middleware(HttpMetrics, routes=app.router.routes)
    info = orjson.dumps(service_info(settings, capabilities))
    security = orjson.dumps(security_document(settings))

    async def get_service_info(_request: Request) -> Response:
        return Response(info, media_type=JSON)

    async def get_security(_request: Request) -> Response:
        return Response(security, media_type=JSON)

    app.router.routes.extend(
        [
            *task_routes(PREFIX, settings, store, capabilities, wake),
            Route(PREFIX + "/service-info", get_service_info, methods=["GET"], name="GetServiceInfo"),
            Route(SECURITY_PATH, get_security, methods=["GET"], name="KtesSecurity"),
            *health_routes(settings, store, engine_status, backend, leadership),
            *([metrics_route(store)] if settings.metrics_enabled else []),
            *extension_routes(store, backend),
            *ui_routes(SignIn(settings, authenticator.oidc)),
        ]
    )
    return app
