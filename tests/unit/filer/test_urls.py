from __future__ import annotations

import pytest

from ktes.filer.urls import join_url, relative_parts_ok, scheme_of


@pytest.mark.parametrize(
    ("base", "relative", "joined"),
    [
        ("s3://b/run1", "out/a.txt", "s3://b/run1/out/a.txt"),  # DIGEST §6
        ("s3://b/run1/", "out/a.txt", "s3://b/run1/out/a.txt"),
        ("s3://b/run1", "/out/a b.txt", "s3://b/run1/out/a b.txt"),  # S3 keys are literal
        ("https://h/put/", "a b#.txt", "https://h/put/a%20b%23.txt"),
        ("https://h/put?sig=1", "x.txt", "https://h/put/x.txt?sig=1"),
        ("file:///tmp/o", "d/x", "file:///tmp/o/d/x"),
        ("/tmp/o", "d/x y", "/tmp/o/d/x y"),  # a plain path stays a plain path
        ("ftp://h/o", "", "ftp://h/o"),
    ],
)
def test_join_url(base: str, relative: str, joined: str) -> None:
    assert join_url(base, relative) == joined


def test_scheme_of() -> None:
    assert scheme_of("/abs/path") == "file"
    assert scheme_of("HTTPS://x/y") == "https"
    assert scheme_of("relative/path") == ""


@pytest.mark.parametrize(
    ("relative", "ok"), [("a/b", True), ("../a", False), ("/a", False), ("a//b", False), ("", False)]
)
def test_relative_parts_ok(relative: str, ok: bool) -> None:
    assert relative_parts_ok(relative) is ok
