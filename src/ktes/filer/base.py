"""The interface of a filer plugin: one per URL scheme, selected by :mod:`ktes.filer.registry`.

Plugins are synchronous and stream with constant memory; backends call them in threads (local) or inside
the task's pod (``ktes filer``). They raise :class:`ktes.errors.TransferError` subclasses whose message
names the URL without its secrets and the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol


class FilerPlugin(Protocol):
    #: URL schemes served, lowercase, e.g. ("http", "https").
    schemes: tuple[str, ...]

    def download_file(self, url: str, dest: Path) -> None:
        """Fetch one object to ``dest`` (parents exist)."""
        ...

    def list_dir(self, url: str) -> Iterator[tuple[str, str]]:
        """For a DIRECTORY input: yield (url of each file below ``url``, its path relative to ``url``)."""
        ...

    def upload_file(self, src: Path, url: str) -> None:
        """Store the local file ``src`` at ``url``."""
        ...
