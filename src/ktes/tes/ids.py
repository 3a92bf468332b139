"""Task ids: sortable by creation time, lowercase, usable as Kubernetes names.

An id is ``t`` followed by 26 characters of lowercase Crockford base32 (a ULID): 10 for the creation time
in milliseconds, 16 random. Within one process ids are strictly increasing even when several are made in the
same millisecond (the random part is incremented), so "newest first" is "largest id first". The leading
letter makes it a valid DNS-1035 label (Services, some CRDs) as well as a DNS-1123 name; 27 characters leave
room for suffixes within Kubernetes' 63-character limit.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime

PREFIX = "t"
LENGTH = 27
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_RANDOM_BITS = 80


def _encode(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + ALPHABET.index(char)
    return value


class IdMaker:
    """Makes strictly increasing ids (a clock that steps back, or several ids in one millisecond, cannot
    reorder them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def __call__(self, now_ms: int | None = None) -> tuple[str, int]:
        """A fresh id and the millisecond timestamp it encodes (use it for ``creation_time``)."""
        ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        with self._lock:
            if ms <= self._last_ms:
                ms = self._last_ms
                random_part = self._last_random + 1
                if random_part >= 1 << _RANDOM_BITS:  # practically never: spill into the next millisecond
                    ms, random_part = ms + 1, secrets.randbits(_RANDOM_BITS - 1)
            else:
                random_part = secrets.randbits(_RANDOM_BITS - 1)  # leave headroom for increments
            self._last_ms, self._last_random = ms, random_part
        return PREFIX + _encode(ms, 10) + _encode(random_part, 16), ms


#: The process's id maker.
new_id = IdMaker()


def is_id(text: str) -> bool:
    """Whether ``text`` has the shape of an id this module makes."""
    return len(text) == LENGTH and text[0] == PREFIX and all(c in ALPHABET for c in text[1:])


def id_time_ms(task_id: str) -> int:
    """The creation time (ms since the epoch) encoded in an id."""
    return _decode(task_id[1:11])


def rfc3339(ms: int) -> str:
    """``ms`` since the epoch as an RFC 3339 UTC timestamp with milliseconds, e.g. 2024-05-01T12:00:00.123Z."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
