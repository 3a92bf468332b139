"""A request to the Kubernetes API server named as the server itself names it: a verb and a resource. Pure.

:mod:`.client` counts every request it sends by these names (``ktes_kubernetes_requests_total``), so an
operator sees the load ktes puts on the API server, and the benchmark reads it per task. The names are those
of the API server's own audit log and ``apiserver_request_total``: ``get``, ``list``, ``watch``, ``create``,
``update``, ``patch``, ``delete``, ``deletecollection``; the resource is plural, with its subresource
(``pods/log``).
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qs, urlsplit

#: verbs that change something (the rest read or watch).
WRITES: Final = frozenset({"create", "update", "patch", "delete", "deletecollection"})
READS: Final = frozenset({"get", "list"})
WATCHES: Final = frozenset({"watch"})
#: a path this module does not recognise (the label stays bounded).
OTHER: Final = "other"

_VERBS: Final = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def _resource_parts(path: str) -> list[str]:
    """The segments after ``/api/v1`` or ``/apis/GROUP/VERSION`` (empty: not an API path)."""
    parts = [part for part in path.split("/") if part]
    if parts[:1] == ["api"] and len(parts) >= 2:
        return parts[2:]
    if parts[:1] == ["apis"] and len(parts) >= 3:
        return parts[3:]
    return []


def request_kind(method: str, url: str) -> tuple[str, str]:
    """``(verb, resource)`` of a request: ``("list", "pods")``, ``("get", "pods/log")``, ``("create", "jobs")``."""
    split = urlsplit(url)
    parts = _resource_parts(split.path)
    if len(parts) >= 3 and parts[0] == "namespaces":
        parts = parts[2:]  # a namespaced resource; ["namespaces", NAME] alone is the namespace itself
    if not parts:
        return method.lower() or OTHER, OTHER
    resource = parts[0]
    named = len(parts) >= 2
    if len(parts) >= 3:
        resource = f"{resource}/{parts[2]}"
    method = method.upper()
    if method == "GET":
        if named:
            return "get", resource
        watch = (parse_qs(split.query).get("watch") or [""])[0]
        return ("watch" if watch.lower() in ("true", "1") else "list"), resource
    if method == "DELETE":
        return ("delete" if named else "deletecollection"), resource
    return _VERBS.get(method, method.lower()), resource
