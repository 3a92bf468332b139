"""Reading a request body with a size limit (413 past it), and JSON responses without pydantic."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from ktes.api.errors import BodyTooLarge
from ktes.errors import InvalidTask


async def read_json(request: Request, limit: int) -> Any:
    """The decoded JSON body. Raises BodyTooLarge past ``limit`` bytes, InvalidTask when it is not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise InvalidTask("body", f"is not valid JSON ({exc})") from None


def json_response(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")
