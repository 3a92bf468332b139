"""``s3://bucket/key``: AWS S3 and S3-compatible stores, through boto3 (the only module that imports it).

Downloads are one streamed GET written in 1 MiB chunks; uploads go through boto3's transfer manager
(multipart above ``s3_multipart_threshold_mb``, ``s3_max_concurrency`` parts in flight), so memory stays
flat whatever the size. boto3's own retries are off: the registry's retry wrapper is the only one.
Credentials: the ``s3_*`` settings, else the standard AWS chain (environment, profile, instance or pod
role); with none at all requests go unsigned, which is what public buckets want.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions as bexc
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config

from ktes.config import Settings
from ktes.errors import PermanentTransferError, TemporaryTransferError, TransferError
from ktes.filer.redact import redact

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
MIB = 1024 * 1024

_MISSING = {
    "NoSuchKey": "no such key",
    "404": "no such key",
    "NotFound": "no such key",
    "NoSuchBucket": "no such bucket",
}
_DENIED = frozenset(
    {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}
)
_TRANSIENT = frozenset(
    {"500", "502", "503", "504", "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "Throttling"}
)


def split_url(url: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``; the key is taken literally (no percent-decoding)."""
    rest = url.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise PermanentTransferError(f"{redact(url)}: no bucket in the URL")
    return bucket, key


class S3Plugin:
    schemes: tuple[str, ...] = ("s3",)

    def __init__(self, settings: Settings) -> None:
        session = boto3.session.Session(
            aws_access_key_id=_secret(settings.s3_access_key_id),
            aws_secret_access_key=_secret(settings.s3_secret_access_key),
            region_name=settings.s3_region,
        )
        options: dict[str, Any] = {
            "s3": {"addressing_style": "path" if settings.s3_path_style else "auto"},
            "retries": {"total_max_attempts": 1},
            "connect_timeout": settings.http_timeout_seconds,
            "read_timeout": settings.http_timeout_seconds,
            "max_pool_connections": max(10, settings.s3_max_concurrency * 2),
        }
        if session.get_credentials() is None:
            options["signature_version"] = UNSIGNED
        self.timeout_seconds = settings.http_timeout_seconds
        self.client: S3Client = session.client("s3", endpoint_url=settings.s3_endpoint_url, config=Config(**options))
        self.transfer = TransferConfig(
            multipart_threshold=settings.s3_multipart_threshold_mb * MIB,
            multipart_chunksize=settings.s3_multipart_chunk_mb * MIB,
            max_concurrency=settings.s3_max_concurrency,
            use_threads=settings.s3_max_concurrency > 1,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Plugin:
        return cls(settings)

    def download_file(self, url: str, dest: Path) -> None:
        bucket, key = split_url(url)
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                with dest.open("wb") as writer:
                    for chunk in body.iter_chunks(CHUNK_BYTES):
                        writer.write(chunk)
            finally:
                body.close()
        except (bexc.BotoCoreError, bexc.ClientError) as err:
            raise self._translate(url, err) from err

    def list_dir(self, url: str) -> Iterator[tuple[str, str]]:
        bucket, key = split_url(url)
        prefix = key.rstrip("/") + "/" if key.strip("/") else ""
        found = False
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"]
                    if name.endswith("/"):
                        continue  # a "folder" marker made by consoles, not a file
                    found = True
                    yield f"s3://{bucket}/{name}", name[len(prefix) :]
        except (bexc.BotoCoreError, bexc.ClientError) as err:
            raise self._translate(url, err) from err
        if not found:
            raise PermanentTransferError(f"{redact(url)}: no objects under this prefix")

    def upload_file(self, src: Path, url: str) -> None:
        bucket, key = split_url(url)
        if not key or key.endswith("/"):
            raise PermanentTransferError(f"{redact(url)}: no object key to upload to")
        try:
            self.client.upload_file(str(src), bucket, key, Config=self.transfer)
        except S3UploadFailedError as err:
            cause = err.__context__
            if isinstance(cause, bexc.BotoCoreError | bexc.ClientError):
                raise self._translate(url, cause) from err
            raise TemporaryTransferError(f"{redact(url)}: upload failed") from err
        except (bexc.BotoCoreError, bexc.ClientError) as err:
            raise self._translate(url, err) from err

    def _translate(self, url: str, err: Exception) -> TransferError:
        return translate(url, err, self.timeout_seconds)


def translate(url: str, err: Exception, timeout_seconds: float) -> TransferError:
    """A boto3/botocore exception as a transfer error naming the URL without its secrets, and the reason."""
    where = redact(url)
    if isinstance(err, bexc.ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _MISSING:
            return PermanentTransferError(f"{where}: {_MISSING[code]}")
        if code in _DENIED or status == 403:
            return PermanentTransferError(f"{where}: access denied ({code})")
        if code in _TRANSIENT or status >= 500:
            return TemporaryTransferError(f"{where}: the store is unavailable ({code or status})")
        return PermanentTransferError(f"{where}: {code or status}")
    if isinstance(err, bexc.ConnectTimeoutError | bexc.ReadTimeoutError):
        return TemporaryTransferError(f"{where}: timed out (no progress for {timeout_seconds:g} s)")
    if isinstance(err, bexc.EndpointConnectionError):
        return TemporaryTransferError(f"{where}: cannot connect to the S3 endpoint")
    if isinstance(err, bexc.NoCredentialsError | bexc.PartialCredentialsError):
        return PermanentTransferError(f"{where}: no usable S3 credentials")
    if isinstance(err, bexc.ResponseStreamingError | bexc.ConnectionClosedError | bexc.HTTPClientError):
        return TemporaryTransferError(f"{where}: the connection broke")
    return PermanentTransferError(f"{where}: {type(err).__name__}")


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None
