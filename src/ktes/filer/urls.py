"""URL arithmetic shared by staging and the plugins."""

from __future__ import annotations

from urllib.parse import quote

from ktes.tes.urls import scheme_of

__all__ = ["join_url", "relative_parts_ok", "scheme_of"]

#: Schemes whose URL paths are percent-encoded; an S3 key is taken literally.
_ENCODED_PATH_SCHEMES = frozenset({"file", "http", "https", "ftp", "ftps"})


def join_url(base: str, relative: str) -> str:
    """``base`` (a directory URL) joined with the relative POSIX path ``relative``.

    ``s3://b/run1`` + ``out/a.txt`` is ``s3://b/run1/out/a.txt``; for schemes with percent-encoded paths the
    relative part is encoded (``a b.txt`` becomes ``a%20b.txt``). A query string on ``base`` stays last.
    """
    relative = relative.lstrip("/")
    if not relative:
        return base
    query = ""
    if scheme_of(base) in _ENCODED_PATH_SCHEMES and not base.startswith("/"):
        base, sep, rest = base.partition("?")
        query = sep + rest
        relative = quote(relative, safe="/")
    return base.rstrip("/") + "/" + relative + query


def relative_parts_ok(relative: str) -> bool:
    """Whether ``relative`` stays below its directory (no absolute path, no ``..``, not empty)."""
    parts = relative.split("/")
    return bool(relative) and not relative.startswith("/") and all(p not in ("", ".", "..") for p in parts)
