"""Task responses never show credentials: the URLs of inputs and outputs pass through the one redact function.

The store keeps the URLs as submitted (the backends need the credentials to stage files); only what the API
answers is redacted. Most documents hold no URL with user information or a query string: those are returned
as they are, without parsing.
"""

from __future__ import annotations

from typing import Any

import orjson

from ktes.filer.redact import redact

_MAYBE_SECRET = (b"@", b"?")


def redact_task(doc: dict[str, Any]) -> bool:
    """Redact ``doc``'s input and output URLs in place; True when anything changed."""
    changed = False
    for key in ("inputs", "outputs"):
        for item in doc.get(key) or ():
            url = item.get("url")
            if isinstance(url, str):
                clean = redact(url)
                if clean != url:
                    item["url"] = clean
                    changed = True
    return changed


def redact_task_json(body: bytes) -> bytes:
    """A task document (GetTask) with its URLs redacted."""
    if not any(marker in body for marker in _MAYBE_SECRET):
        return body
    doc = orjson.loads(body)
    return orjson.dumps(doc) if redact_task(doc) else body


def redact_list_json(body: bytes) -> bytes:
    """A ListTasks answer with every task's URLs redacted."""
    if not any(marker in body for marker in _MAYBE_SECRET):
        return body
    page = orjson.loads(body)
    changed = False
    for doc in page.get("tasks") or ():
        changed = redact_task(doc) or changed
    return orjson.dumps(page) if changed else body
