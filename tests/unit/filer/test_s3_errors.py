"""S3 errors become one plain reason, transient ones retried, and never the secret."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError

from ktes.errors import PermanentTransferError, TemporaryTransferError
from ktes.filer.s3 import split_url, translate

URL = "s3://bucket/dir/key.txt"


def _client_error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "Op")


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (_client_error("NoSuchKey", 404), PermanentTransferError, "no such key"),
        (_client_error("404", 404), PermanentTransferError, "no such key"),
        (_client_error("NoSuchBucket", 404), PermanentTransferError, "no such bucket"),
        (_client_error("AccessDenied", 403), PermanentTransferError, "access denied (AccessDenied)"),
        (_client_error("SignatureDoesNotMatch", 403), PermanentTransferError, "access denied (SignatureDoesNotMatch)"),
        (_client_error("SlowDown", 503), TemporaryTransferError, "the store is unavailable (SlowDown)"),
        (_client_error("InternalError", 500), TemporaryTransferError, "the store is unavailable (InternalError)"),
        (ReadTimeoutError(endpoint_url="http://x"), TemporaryTransferError, "timed out (no progress for 60 s)"),
        (EndpointConnectionError(endpoint_url="http://x"), TemporaryTransferError, "cannot connect to the S3 endpoint"),
        (NoCredentialsError(), PermanentTransferError, "no usable S3 credentials"),
    ],
)
def test_translate(error: Exception, kind: type[Exception], message: str) -> None:
    translated = translate(URL, error, 60)
    assert type(translated) is kind
    assert str(translated) == f"{URL}: {message}"


def test_split_url_takes_keys_literally() -> None:
    assert split_url("s3://b/a%20b/c d") == ("b", "a%20b/c d")
    assert split_url("s3://b") == ("b", "")
    with pytest.raises(PermanentTransferError, match="no bucket"):
        split_url("s3:///key")
