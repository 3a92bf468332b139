"""What keeps a web page in the user's browser from driving a ktes it can reach (``localhost`` above all).

A page on ``https://evil.example`` can make the browser send requests to ``http://127.0.0.1:8000``: "simple"
ones without asking first (a ``text/plain`` POST carrying JSON, a form post, a bodiless POST), others after a
CORS preflight; and through DNS rebinding (``evil.example`` resolving to 127.0.0.1) even same-origin ones with
``Host: evil.example``. So, before any route runs:

- **Host names** (DNS rebinding): while ktes listens on a loopback address, only loopback names
  (``localhost``, ``127.0.0.1``, ``[::1]``, any port) are served, unless ``allowed_hosts`` lists others; on any
  other address every name is served unless ``allowed_hosts`` is set. Else 400.
- **Writes** (POST, PUT, PATCH, DELETE) that a browser marks with an ``Origin`` are refused (403) unless the
  origin is ktes's own or listed in ``cors_write_origins``: reads may come from any page
  (``cors_origins``), writes only from the configured web clients. Workflow engines send no ``Origin``.
- A write's body must be declared ``Content-Type: application/json`` (415 otherwise); a bodiless cancel may
  omit the header. A browser cannot send that type across origins without a preflight, and the preflight of
  a write is answered only for ``cors_write_origins``.

CORS headers themselves come from Starlette's middleware, inside this one.
"""

from __future__ import annotations

import ipaddress

import orjson
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from ktes.config import Settings

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:8000`` → ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def served_hosts(settings: Settings) -> frozenset[str] | None:
    """The Host names served (None: any)."""
    if settings.allowed_hosts is not None:
        return frozenset(host_name(h) for h in settings.allowed_hosts) | frozenset(LOOPBACK_NAMES)
    if is_loopback(settings.host):
        return frozenset(LOOPBACK_NAMES)
    return None


def serves_host(hosts: frozenset[str] | None, name: str) -> bool:
    """Whether a request for the host ``name`` (see :func:`host_name`) is served, given :func:`served_hosts`."""
    return hosts is None or name in hosts or is_loopback(name)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class RequestGuard:
    """Pure ASGI middleware: the checks above, each answered with a JSON error naming what to change."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = served_hosts(settings)
        self.write_origins = frozenset(o.rstrip("/") for o in settings.cors_write_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message, field = refusal
        body = orjson.dumps({"msg": message, "field": field})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        headers = Headers(scope=scope)
        host = headers.get("host")
        if host is not None and self.hosts is not None and not self._serves(host_name(host)):
            return 400, f"this server does not answer to the host name {host_name(host)!r} (see allowed_hosts)", "host"
        method = scope["method"]
        origin = headers.get("origin")
        if method == "OPTIONS" and origin is not None:
            requested = headers.get("access-control-request-method", "").upper()
            if requested in WRITE_METHODS and not self._may_write(origin, host):
                return 403, f"origin {origin} may not send {requested} requests (see cors_write_origins)", "origin"
            return None
        if method not in WRITE_METHODS:
            return None
        if origin is not None and not self._may_write(origin, host):
            return 403, f"origin {origin} may not change tasks here (see cors_write_origins)", "origin"
        content_type = headers.get("content-type")
        bodiless = content_type is None and headers.get("content-length", "0") == "0"
        bodiless = bodiless and "transfer-encoding" not in headers
        if not bodiless and not _is_json(content_type or ""):
            return 415, "a request with a body must be sent as Content-Type: application/json", "content-type"
        return None

    def _serves(self, name: str) -> bool:
        return serves_host(self.hosts, name)

    def _may_write(self, origin: str, host: str | None) -> bool:
        origin = origin.rstrip("/")
        if "*" in self.write_origins or origin in self.write_origins:
            return True
        # ktes's own pages (same origin): the Origin names the host the request went to.
        return host is not None and origin.split("://", 1)[-1].lower() == host.strip().lower()


def install(app: Starlette, settings: Settings) -> None:
    """CORS headers (reads from ``cors_origins``, writes from ``cors_write_origins``) inside the guard."""
    origins = list(dict.fromkeys([*settings.cors_origins, *settings.cors_write_origins]))
    app.add_middleware(
        CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "DELETE"], allow_headers=["*"]
    )
    app.add_middleware(RequestGuard, settings=settings)  # added last: the outermost
