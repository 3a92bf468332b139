"""The ASGI middleware that guards every route but the public ones, and how routes learn who is asking.

Everything is protected unless listed in :data:`PUBLIC_PATHS` / :data:`PUBLIC_PREFIXES` (reads only), so a
route added later (live logs, ...) is protected without doing anything. Public: service-info, the security
schemes (``/ktes/v1/security``), the health and readiness probes, metrics, and the dashboard's pages and assets
under ``/ui/`` (shells: what they show comes from the protected API). One write is public: the dashboard's
sign-in posts its authorization code to ``/ui/signin/token`` (the user has no token yet). CORS preflight
requests (OPTIONS) pass: browsers send them without credentials.

Routes read the caller with :func:`principal_of` (None when auth is off), or, in FastAPI routes, depend on
:func:`require_principal`.
"""

from __future__ import annotations

import orjson
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from ktes.auth.authenticator import Authenticator
from ktes.auth.principal import AuthFailed, Principal

TES_PREFIX = "/ga4gh/tes/v1"
PUBLIC_PATHS = frozenset(
    {TES_PREFIX + "/service-info", "/ktes/v1/security", "/", "/healthz", "/readyz", "/metrics", "/ui"}
)
#: The dashboard's pages and assets (read-only shells: what they show comes from the protected API).
PUBLIC_PREFIXES = ("/ui/",)
#: Writes that need no credentials: the dashboard's sign-in hands its code to ktes (the user has no token yet).
PUBLIC_POSTS = frozenset({"/ui/signin/token"})
_READS = frozenset({"GET", "HEAD"})
_STATE_KEY = "ktes_principal"


def is_public(path: str, method: str = "GET") -> bool:
    if method == "POST":
        return path in PUBLIC_POSTS
    return method in _READS and (path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES))


class AuthMiddleware:
    """Authenticates each non-public HTTP request; answers 401 with ``WWW-Authenticate`` when it cannot."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.authenticator.enabled:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method = scope.get("method", "GET")
        if is_public(path, method) or method == "OPTIONS":
            await self.app(scope, receive, send)
            return
        authorization = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                authorization = value.decode("latin-1")
                break
        try:
            principal = await self.authenticator.authenticate(authorization)
        except AuthFailed as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": exc.reason})
            else:
                await self._refuse(send, exc.reason, tried=authorization is not None)
            return
        scope.setdefault("state", {})[_STATE_KEY] = principal
        await self.app(scope, receive, send)

    async def _refuse(self, send: Send, reason: str, *, tried: bool) -> None:
        body = orjson.dumps({"msg": f"authentication failed: {reason}"})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(b"www-authenticate", v.encode()) for v in self.authenticator.challenges(reason if tried else None)]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def principal_of(connection: HTTPConnection) -> Principal | None:
    """Who is asking: None when auth is off (everyone may do everything, as on a laptop)."""
    state = connection.scope.get("state")
    return state.get(_STATE_KEY) if state else None


async def require_principal(connection: HTTPConnection) -> Principal | None:
    """A FastAPI dependency for routes outside the TES API: the caller (the middleware already refused a
    request without credentials; None means auth is off)."""
    return principal_of(connection)
