"""Whether an executor's image is here, pulling it once when allowed: never a hang, a clear reason instead.

Images known to be present are remembered, so the hot path costs no runtime call; a run that then fails
with "image not known" forgets it (:meth:`ImageCheck.forget`).
"""

from __future__ import annotations

import asyncio

from ktes.backends.local import argv
from ktes.backends.local.invoke import invoke
from ktes.backends.local.runtime import Runtime

CHECK_TIMEOUT_SECONDS = 60.0


class ImageCheck:
    def __init__(self, runtime: Runtime, pull: str, pull_timeout: float) -> None:
        self._runtime = runtime
        self._pull = pull
        self._pull_timeout = pull_timeout
        self._present: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    def forget(self, image: str) -> None:
        self._present.discard(image)

    async def missing_reason(self, image: str) -> str | None:
        """None when ``image`` is here (pulled if needed), else why it is not (for :func:`outcome.image_sentence`)."""
        if image in self._present:
            return None
        lock = self._locks.setdefault(image, asyncio.Lock())
        async with lock:
            if image in self._present:
                return None
            reason = await self._look(image)
            if reason is None:
                self._present.add(image)
            return reason

    async def _look(self, image: str) -> str | None:
        found = await invoke(argv.image_present_argv(self._runtime, image), CHECK_TIMEOUT_SECONDS)
        if found.ok:
            return None
        if self._pull == "never":
            return "not found on this machine (local_pull is 'never', so it was not pulled)"
        pulled = await invoke(argv.pull_argv(self._runtime, image), self._pull_timeout)
        if pulled.ok:
            return None
        return f"not found on this machine, and pulling it failed: {pulled.last_error_line()}"
