"""The one way ktes reads a URL's scheme: validation at POST and the filer at staging agree on it."""

from __future__ import annotations

import re

#: RFC 3986 scheme, followed by "://": ktes serves only URLs with an authority part (``file:/tmp/x``,
#: ``s3:bucket/key`` and ``drs:x`` are not URLs it can stage, so they are refused at POST).
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme_of(url: str) -> str:
    """The lowercase scheme of ``url``; ``file`` for a plain absolute path; ``""`` when it is neither."""
    if url.startswith("/"):
        return "file"
    match = _URL.match(url)
    return match.group(1).lower() if match else ""
