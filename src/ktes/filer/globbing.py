"""POSIX pattern matching of output paths (Shell Command Language §2.13), one path component at a time.

``*``, ``?``, bracket expressions (``[abc]``, ``[a-z]``, ``[!x]``, ``[[:digit:]]``) and backslash quoting.
As in filename expansion, a wildcard never matches ``/`` nor a leading ``.``. There is no ``**`` (two
stars are one star) and no brace expansion.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ktes.filer import container_paths

_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "\\x21-\\x7e",
    "lower": "a-z",
    "print": "\\x20-\\x7e",
    "punct": "!-/:-@\\[-`{-~",
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}


@dataclass(frozen=True)
class ComponentPattern:
    """One path component of a pattern: a literal name, or a compiled regular expression."""

    literal: str | None
    regex: re.Pattern[str] | None
    #: The pattern starts with a literal dot, so it may match names that start with one.
    leading_dot: bool

    def matches(self, name: str) -> bool:
        if self.literal is not None:
            return name == self.literal
        assert self.regex is not None
        if name.startswith(".") and not self.leading_dot:
            return False
        return self.regex.fullmatch(name) is not None


def _bracket(pattern: str, start: int) -> tuple[str, int] | None:
    """The regex of the bracket expression opening at ``start``, and the index after it; None if unclosed."""
    i = start + 1
    negate = i < len(pattern) and pattern[i] in "!^"
    if negate:
        i += 1
    items: list[str] = []
    first = True
    while i < len(pattern):
        char = pattern[i]
        if char == "]" and not first:
            body = "".join(items)
            return ("[^" + body + "]" if negate else "[" + body + "]"), i + 1
        first = False
        if char == "[" and pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            if end != -1 and pattern[i + 2 : end] in _CLASSES:
                items.append(_CLASSES[pattern[i + 2 : end]])
                i = end + 2
                continue
        if char == "\\" and i + 1 < len(pattern):
            i += 1
            char = pattern[i]
        if i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            high = pattern[i + 2]
            if high == "\\" and i + 3 < len(pattern):
                high = pattern[i + 3]
                i += 1
            items.append(re.escape(char) + "-" + re.escape(high))
            i += 3
            continue
        items.append(re.escape(char))
        i += 1
    return None


def compile_component(component: str) -> ComponentPattern:
    """Compile one path component of a pattern."""
    regex: list[str] = []
    literal: list[str] = []
    wild = False
    i = 0
    while i < len(component):
        char = component[i]
        if char == "\\":
            char = component[i + 1] if i + 1 < len(component) else "\\"
            regex.append(re.escape(char))
            literal.append(char)
            i += 2
            continue
        if char == "*":
            wild = True
            if not regex or regex[-1] != ".*":
                regex.append(".*")
            i += 1
            continue
        if char == "?":
            wild = True
            regex.append(".")
            i += 1
            continue
        if char == "[":
            bracket = _bracket(component, i)
            if bracket is not None:
                wild = True
                regex.append(bracket[0])
                i = bracket[1]
                continue
        regex.append(re.escape(char))
        literal.append(char)
        i += 1
    if not wild:
        return ComponentPattern(literal="".join(literal), regex=None, leading_dot=True)
    leading_dot = component.startswith(".") or component.startswith("\\.")
    return ComponentPattern(literal=None, regex=re.compile("".join(regex), re.DOTALL), leading_dot=leading_dot)


def expand(pattern: str, workspace: Path) -> list[str]:
    """The container paths (files and directories) in ``workspace`` that match ``pattern``, sorted.

    ``pattern`` is an absolute container path. A pattern that matches nothing gives ``[]``.
    """
    components = [compile_component(c) for c in pattern.split("/") if c]
    found = ["/"]
    for depth, component in enumerate(components):
        last = depth == len(components) - 1
        following: list[str] = []
        for directory in found:
            host = container_paths.resolve(workspace, directory)
            if component.literal is not None:
                names = [component.literal] if component.literal not in ("", ".", "..") else []
            else:
                try:
                    names = sorted(n for n in os.listdir(host) if component.matches(n))
                except (FileNotFoundError, NotADirectoryError, PermissionError):
                    continue
            for name in names:
                child = container_paths.join(directory, name)
                target = container_paths.resolve(workspace, child)
                if target.is_dir() or (last and target.exists()):
                    following.append(child)
        found = following
    return sorted(found) if components else []
