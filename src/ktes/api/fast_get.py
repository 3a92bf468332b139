"""GetTask answered in front of the application's layers: the request clients poll most, at the least cost.

A plain ``GET /ga4gh/tes/v1/tasks/{id}`` (no query but ``view=MINIMAL|BASIC|FULL``, no ``Origin``) is answered
here, before FastAPI's and ktes's middleware and the router: on a 2-CPU machine those layers cost about a third
of such a request (docs/scale.md, "GetTask throughput"). It does what they would do for that request, through the
same code:

- the Host check of :mod:`ktes.api.guards` (``serves_host``; a GET without ``Origin`` meets no other guard);
- authentication by the same :class:`~ktes.auth.authenticator.Authenticator`;
- the answer from :class:`~ktes.api.tasks.TaskReader`, which the route uses too (owner scope, owner tag for
  admins, redaction, TES 1.0 states; FULL in a worker thread);
- the headers the route and the CORS middleware send when there is no ``Origin`` (``vary: Origin``);
- the request counted in ``/metrics`` under the route's template.

Anything else goes to the application as before, which answers it as it always did: another method or query,
an ``Origin`` (CORS headers), a Host not served (400), failed authentication (401), an unknown id (404; the
read is repeated there, cheap for an id that is not found). A store that cannot answer is a 503 here, as
there, without asking the database twice.
"""

from __future__ import annotations

import time

from starlette.types import Receive, Scope, Send

from ktes.api.errors import store_unavailable_response
from ktes.api.guards import host_name, serves_host
from ktes.api.metrics_http import RequestCounts
from ktes.api.tasks import JSON, TaskReader
from ktes.auth.authenticator import Authenticator
from ktes.auth.principal import AuthFailed
from ktes.errors import StoreUnavailable
from ktes.tes.ids import is_id
from ktes.tes.models import View

#: The query strings answered here, and the view each asks for (any other goes to the application).
_VIEWS = {b"": View.MINIMAL, **{b"view=" + view.value.encode(): view for view in View}}
_HEADERS = [(b"content-type", JSON.encode()), (b"vary", b"Origin")]


class FastGetTask:
    """Answers the GetTask requests described above; :meth:`answer` says whether it did."""

    def __init__(
        self,
        prefix: str,
        reader: TaskReader,
        authenticator: Authenticator,
        hosts: frozenset[str] | None,
        counts: RequestCounts | None,
    ) -> None:
        self._path = prefix + "/tasks/"
        self._route = prefix + "/tasks/{task_id}"  # the route's template, as HttpMetrics labels it
        self._reader = reader
        self._authenticator = authenticator
        self._hosts = hosts
        self._counts = counts

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer ``scope`` if it is a plain GetTask; False (nothing sent) when the application must."""
        started = time.perf_counter()
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            return False
        path: str = scope["path"]
        if not path.startswith(self._path):
            return False
        task_id = path[len(self._path) :]
        view = _VIEWS.get(scope["query_string"])
        if view is None or not is_id(task_id):
            return False
        host = authorization = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = host if host is not None else value.decode("latin-1")
            elif key == b"authorization":
                authorization = authorization if authorization is not None else value.decode("latin-1")
            elif key == b"origin":  # the CORS middleware answers those
                return False
        if host is not None and not serves_host(self._hosts, host_name(host)):
            return False
        principal = None
        if self._authenticator.enabled:
            try:
                principal = await self._authenticator.authenticate(authorization)
            except AuthFailed:
                return False
        try:
            body = await self._reader.get(principal, task_id, view)
        except StoreUnavailable as exc:
            response = store_unavailable_response("GET", path, exc)
            response.headers["vary"] = "Origin"
            await response(scope, receive, send)
            self._note(503, started)
            return True
        except Exception:  # not found, or unexpected: the application answers it (and logs what it must)
            return False
        headers = [(b"content-length", str(len(body)).encode()), *_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self._note(200, started)
        return True

    def _note(self, status: int, started: float) -> None:
        if self._counts is not None:
            self._counts.note(self._route, "GET", status, time.perf_counter() - started)
