"""Running one short command of the container CLI (image checks, listing, removal) with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Invocation:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def last_error_line(self) -> str:
        """The most telling line of stderr (the CLI's "Error: ..." when there is one)."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.lower().startswith("error")]
        return (errors or lines or [f"exit code {self.returncode}"])[-1]


async def invoke(argv: list[str], within_seconds: float | None) -> Invocation:
    """Run ``argv`` to its end, or kill it after ``within_seconds`` (None: no limit; returncode -9, stderr says so)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within_seconds)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return Invocation(-9, "", f"Error: gave up after {within_seconds:g} seconds")
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    return Invocation(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))
