"""One executor run, recorded on disk so a restarted ktes can pick it up.

Each executor is one ``run`` of the container CLI, started in its own session (terminal signals and the end
of ktes leave it alone), through the executors' helper (:mod:`ktes.run.entrypoint`) as on Kubernetes: the
helper handles the executor's stdin/stdout/stderr files inside the container and prints its result line
(:class:`ktes.run.result.ExecutorReport`: exit code, times, OOM kill, "could not exec", the tails of both
streams) on the container's stdout. The task's run directory (``data_dir/run/<id>``, never mounted into a
container) keeps, per executor:

``<i>.start``   when ktes started it (so a restarted ktes knows it ran).
``<i>.log``     the CLI's stdout: the helper's result line.
``<i>.err``     the CLI's stderr: the runtime's own error when it (not the command) failed.
``<i>.cli``     the CLI's pid and start time, so a restarted ktes can wait for a CLI that outlived it.
``state-<i>/``  mounted at ``/ktes/state`` into executor ``i`` only: the helper's state directory (its result
                file, the default stdout/stderr files). A task could plant links there, so ktes opens what
                is in it only beneath it without following any (:mod:`ktes.backends.local.output`).

After ``kill -9`` of ktes the container and the CLI go on; the next ktes reads the same result from
``<i>.log``. Only if the CLI did not live to write it does it look further: the container's log, else (the
container ran with ``--rm`` and is gone once ended) the helper's result file in ``state-<i>/``; see
:mod:`ktes.backends.local.backend`.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from ktes.run.result import ExecutorReport, parse_result

#: How often to look when pidfd_open is unavailable.
POLL_SECONDS = 0.1
#: the most of the CLI's output ktes reads (the result line comes last).
LOG_READ_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ExecutorFiles:
    """Where executor ``index`` of a task keeps its records (all made by ktes in the run directory)."""

    run_dir: Path
    index: int

    @property
    def start_file(self) -> Path:
        return self.run_dir / f"{self.index}.start"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.index}.log"

    @property
    def err_file(self) -> Path:
        return self.run_dir / f"{self.index}.err"

    @property
    def cli_file(self) -> Path:
        return self.run_dir / f"{self.index}.cli"

    @property
    def state_dir(self) -> Path:
        return self.run_dir / f"state-{self.index}"

    def started(self) -> bool:
        return self.start_file.exists()

    def start_time(self) -> str | None:
        try:
            return self.start_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def result(self) -> ExecutorReport | None:
        """The helper's result line, once the CLI has written it."""
        return parse_result(read_tail(self.log_file, LOG_READ_BYTES))

    def runtime_error(self) -> str:
        return read_tail(self.err_file, 8192)

    def running_cli(self) -> int | None:
        """The pid of this executor's CLI if it is still running (it outlived a ktes killed with -9: it may not
        have made its container yet, or not yet written the result line). The start time recorded beside the
        pid tells a reused pid apart."""
        try:
            pid_text, started = self.cli_file.read_text().split()
            pid = int(pid_text)
        except (FileNotFoundError, ValueError):
            return None
        return pid if process_start(pid) == started else None


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19] if len(fields) > 19 and fields[0] != "Z" else None


def read_tail(path: Path, limit: int) -> str:
    """The last ``limit`` bytes of ``path`` (a file ktes made) as text ("" if it is missing)."""
    try:
        with path.open("rb") as stream:
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(0, size - limit))
            return stream.read().decode("utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return ""


def start(argv: list[str], files: ExecutorFiles, start_time: str) -> int:
    """Start ``argv`` (the CLI's ``run``) in a session of its own and return its pid. posix_spawn (vfork)
    keeps this cheap however large ktes is."""
    files.start_file.write_text(start_time)
    files.state_dir.mkdir(mode=0o777, exist_ok=True)
    files.state_dir.chmod(0o777)  # the executor may run as any user
    write = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(files.log_file), write, 0o600),
        (os.POSIX_SPAWN_OPEN, 2, str(files.err_file), write, 0o600),
    ]
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions, setsid=True)
    files.cli_file.write_text(f"{pid} {process_start(pid)}")
    return pid


#: Reapers of children whose waiter was canceled (a reference keeps each alive until it is done).
_reapers: set[asyncio.Task[None]] = set()


async def wait_child(pid: int) -> int:
    """The exit code of our child ``pid`` (negative: killed by that signal), waited for without a thread.

    If the wait is canceled, the child is still collected once it ends, so no zombie is left behind.
    """
    try:
        await wait_gone(pid)
    except asyncio.CancelledError:
        reaper = asyncio.get_running_loop().create_task(_reap_when_gone(pid))
        _reapers.add(reaper)
        reaper.add_done_callback(_reapers.discard)
        raise
    return reap(pid) or 0


async def _reap_when_gone(pid: int) -> None:
    await wait_gone(pid)
    reap(pid)


def reap(pid: int) -> int | None:
    """Collect an exited child's status: its exit code, or None if it is not (or no longer) our child."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if done == pid else None


async def wait_gone(pid: int) -> None:
    """Until our child ``pid`` has exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):
        while _alive(pid):  # noqa: ASYNC110 (no pidfd here: nothing to wait on but the pid)
            await asyncio.sleep(POLL_SECONDS)
        return
    loop = asyncio.get_running_loop()
    gone = loop.create_future()

    def readable() -> None:
        if not gone.done():
            gone.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await gone
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        exited = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return exited is None
