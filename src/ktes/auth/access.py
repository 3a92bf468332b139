"""Whose tasks a caller sees, and how admins see each task's owner.

- Auth off (no principal): everyone sees every task, as before.
- A user sees only their own tasks; another user's task id answers exactly like an unknown one (404).
- An admin sees every task (also those stored while auth was off, which belong to no one), may list one
  user's with the ``owner`` query parameter (a ktes extension), and sees each task's owner as the tag
  ``ktes.owner``: tags are a free map in TES, so strict clients accept it, where an extra top-level field
  would break clients that refuse unknown fields (py-tes does). The owner is never stored in the task's tags,
  and users cannot set that tag themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import orjson

from ktes.auth.principal import Principal
from ktes.errors import InvalidTask
from ktes.tes.models import Task

OWNER_TAG = "ktes.owner"
OWNER_PARAM = "owner"


def owner_scope(principal: Principal | None) -> str | None:
    """The only owner whose tasks ``principal`` may touch, or None for every task."""
    if principal is None or principal.admin:
        return None
    return principal.name


def list_owner(principal: Principal | None, requested: str | None) -> str | None:
    """The owner a listing is limited to: the user's own; for admins, the ``owner`` parameter if given."""
    scope = owner_scope(principal)
    if scope is not None:
        return scope
    return requested or None


def shows_owner(principal: Principal | None) -> bool:
    return principal is not None and principal.admin


def refuse_owner_tag(task: Task) -> None:
    if task.tags and OWNER_TAG in task.tags:
        raise InvalidTask(f"tags.{OWNER_TAG}", "is set by ktes (the task's owner, shown to admins)")


def _tag(doc: dict[str, Any], owner: str | None) -> None:
    if owner is not None:
        doc["tags"] = {**(doc.get("tags") or {}), OWNER_TAG: owner}


def task_with_owner(body: bytes, owners: Callable[[Collection[str]], dict[str, str | None]]) -> bytes:
    """A GetTask body (BASIC or FULL) with the owner tag added."""
    doc = orjson.loads(body)
    _tag(doc, owners([doc["id"]]).get(doc["id"]))
    return orjson.dumps(doc)


def list_with_owner(body: bytes, owners: Callable[[Collection[str]], dict[str, str | None]]) -> bytes:
    """A ListTasks body (BASIC or FULL) with each task's owner tag added (one look-up for the page)."""
    page = orjson.loads(body)
    tasks = page.get("tasks") or []
    found = owners([doc["id"] for doc in tasks])
    for doc in tasks:
        _tag(doc, found.get(doc["id"]))
    return orjson.dumps(page)
