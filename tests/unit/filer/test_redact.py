from __future__ import annotations

import pytest

from ktes.filer.redact import redact


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ftp://user:hunter2@host/x", "ftp://host/x"),
        ("https://token@host:8443/x", "https://host:8443/x"),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F&X-Amz-Signature=abc&v=1",
            "https://b.s3.amazonaws.com/k?v=1",
        ),
        (
            "https://acct.blob.core.windows.net/c/b?sv=2020&sig=SECRET&sp=r",
            "https://acct.blob.core.windows.net/c/b?sv=2020&sp=r",
        ),
        ("https://h/x?access_token=SECRET&Signature=S&Expires=1", "https://h/x?Expires=1"),
        ("s3://bucket/key", "s3://bucket/key"),
        ("/plain/path", "/plain/path"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown
    for secret in ("hunter2", "SECRET", "abc", "token@"):
        assert secret not in redact(url) or secret in shown
