"""Timestamps as TES writes them: RFC 3339, UTC, microseconds."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(moment: datetime) -> str:
    """``2024-05-01T12:00:00.123456Z`` for an aware or naive-UTC ``moment``."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> str:
    """The current time in RFC 3339 UTC."""
    return rfc3339(datetime.now(UTC))


def from_timestamp(seconds: float) -> str:
    """A POSIX timestamp (e.g. a file's mtime) in RFC 3339 UTC."""
    return rfc3339(datetime.fromtimestamp(seconds, UTC))
