"""Output wildcards follow POSIX filename expansion, one path component at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktes.filer.globbing import compile_component, expand


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("*.txt", "a.txt", True),
        ("*.txt", "a.csv", False),
        ("*.txt", ".hidden.txt", False),  # a wildcard never matches a leading dot
        (".*.txt", ".hidden.txt", True),
        ("?.txt", "a.txt", True),
        ("?.txt", "ab.txt", False),
        ("?txt", ".txt", False),
        ("[ab].txt", "b.txt", True),
        ("[ab].txt", "c.txt", False),
        ("[!ab].txt", "c.txt", True),
        ("[!ab].txt", "a.txt", False),
        ("[^ab].txt", "c.txt", True),
        ("[a-c]x", "bx", True),
        ("[a-c]x", "dx", False),
        ("[]]x", "]x", True),
        ("[!]]x", "ax", True),
        ("[[:digit:]]*", "7up", True),
        ("[[:digit:]]*", "up", False),
        ("[.]x", ".x", False),  # even a bracket that names the dot cannot match a leading one
        ("\\*.txt", "*.txt", True),
        ("\\*.txt", "a.txt", False),
        ("a\\?", "a?", True),
        ("a\\?", "ab", False),
        ("[abc", "[abc", True),  # an unclosed bracket is literal
        ("**", "abc", True),  # two stars are one star; there is no recursive **
        ("*", "", True),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "aXXbYY", False),
        ("file(1).txt", "file(1).txt", True),  # regex metacharacters are literal
        ("x+y*", "x+yz", True),
    ],
)
def test_component_matching(pattern: str, name: str, matches: bool) -> None:
    assert compile_component(pattern).matches(name) is matches


def _tree(root: Path, *files: str) -> None:
    for name in files:
        path = root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_star_does_not_cross_slash(tmp_path: Path) -> None:
    _tree(tmp_path, "/data/out/a.txt", "/data/out/sub/b.txt", "/data/out/.h.txt", "/data/out/c.csv")
    assert expand("/data/out/*.txt", tmp_path) == ["/data/out/a.txt"]
    assert expand("/data/*/*.txt", tmp_path) == ["/data/out/a.txt"]
    assert expand("/data/out/*/*.txt", tmp_path) == ["/data/out/sub/b.txt"]
    assert expand("/data/**/b.txt", tmp_path) == []  # ** is *, it matches one component
    assert expand("/data/out/.*", tmp_path) == ["/data/out/.h.txt"]


def test_directories_match_too_and_nothing_is_empty(tmp_path: Path) -> None:
    _tree(tmp_path, "/w/run1/x", "/w/run2/y", "/w/other/z")
    assert expand("/w/run?", tmp_path) == ["/w/run1", "/w/run2"]
    assert expand("/w/none*", tmp_path) == []
    assert expand("/nowhere/*", tmp_path) == []


def test_links_are_followed_inside_the_workspace_only(tmp_path: Path) -> None:
    _tree(tmp_path, "/data/real/a.txt")
    (tmp_path / "data" / "abs").symlink_to("/data/real")  # the container's view: /data/real
    (tmp_path / "data" / "escape").symlink_to("/etc")  # /etc of the container: not in the workspace
    assert expand("/data/*/a.txt", tmp_path) == ["/data/abs/a.txt", "/data/real/a.txt"]
    assert expand("/data/escape/*", tmp_path) == []
