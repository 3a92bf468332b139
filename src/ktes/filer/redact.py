"""Secrets out of URLs: the one function used wherever a URL is shown (messages, logs, task logs)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: Query parameter names (lowercase) that carry a signature, a token or a key: S3 presigned URLs
#: (X-Amz-*), CloudFront/GCS (Signature, GoogleAccessId), Azure SAS (sig), OAuth (access_token), ...
_SECRET_PARAM = re.compile(
    r"(signature|sig|token|credential|secret|password|passwd|pwd|key|auth|googleaccessid|x-amz-|x-goog-)",
    re.IGNORECASE,
)


def redact(url: str) -> str:
    """``url`` without user information (``user:password@``) and without signature-like query parameters.

    Anything that is not a URL (a plain path) comes back unchanged.
    """
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("://", 1)[0] + "://<unparsable URL>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, v) for k, v in pairs if not _SECRET_PARAM.search(k)], safe="/:")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


#: A URL inside free text: a scheme, ``://``, and everything up to white space or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_text(text: str) -> str:
    """``text`` (a log line, a message) with every URL in it passed through :func:`redact`."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda match: redact(match.group(0)), text)
