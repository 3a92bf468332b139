"""The opaque ``page_token`` of ListTasks: a keyset cursor (the last id returned), not an offset.

Ids grow with creation time, so the next page is "ids below the cursor": tasks created meanwhile have larger
ids and never shift later pages.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import TypeVar

from ktes.errors import InvalidTask
from ktes.tes.ids import is_id

_VERSION = "1."
T = TypeVar("T")


def encode(last_id: str) -> str:
    return base64.urlsafe_b64encode((_VERSION + last_id).encode()).decode().rstrip("=")


def decode(token: str) -> str:
    """The id after which the next page starts. Raises InvalidTask (``page_token``) for a foreign token."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    last_id = text.removeprefix(_VERSION)
    if not text.startswith(_VERSION) or not is_id(last_id):
        raise InvalidTask("page_token", "is not a token this server issued (use next_page_token as given)")
    return last_id


def take_page(
    rows: Iterable[T],
    page_size: int,
    max_bytes: int | None,
    size_of: Callable[[T], int],
    first_max: int | None = None,
) -> tuple[list[T], bool]:
    """The leading ``rows`` one page holds, and whether more follow: at most ``page_size`` rows, and no more
    than ``max_bytes`` together (by ``size_of``), yet always the first row (a page is never empty while tasks
    match) unless ``first_max`` is given and it is larger. Reads ``rows`` only as far as needed, so a lazy
    cursor never loads the rest.

    A page cut short by the budget still hands out a token after its last row, so paging stays correct.
    """
    kept: list[T] = []
    total = 0
    for row in rows:
        if len(kept) == page_size:
            return kept, True
        total += size_of(row)
        if not kept and first_max is not None and total > first_max:
            return kept, True
        if kept and max_bytes is not None and total > max_bytes:
            return kept, True
        kept.append(row)
    return kept, False
