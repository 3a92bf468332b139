"""One executor run, recorded on disk so a restarted ktes can pick it up.

Each executor is one ``run`` of the container CLI, started through a tiny ``sh`` wrapper in its own session:
the CLI's stdout and stderr go straight to files (the executor's own ``stdout``/``stderr`` paths in the
workspace when it names them, else files in the task's run directory), stdin comes from the executor's stdin
file, and the wrapper writes the real exit code to ``<index>.rc`` when the CLI returns. None of this depends
on the ktes process: after ``kill -9`` of ktes the container, the CLI and the wrapper go on, and the next
ktes finds the start time, the wrapper's pid, the output files and finally the exit code in the run
directory (see :mod:`ktes.backends.local.backend`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from ktes import fsafe
from ktes.engine.clock import from_timestamp
from ktes.tes import layout
from ktes.tes.models import ExecutorLog, Task

#: $1 is the exit-code file; the rest is the command. The code is written only once the command returned.
WRAPPER = 'rc="$1"; shift; "$@"; code=$?; echo "$code" > "$rc"; exit "$code"'
WRAPPER_NAME = "ktes-executor"
SHELL = "/bin/sh"
#: How often to look when pidfd_open is unavailable.
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class ExecutorFiles:
    """Where executor ``index`` of a task keeps its records."""

    run_dir: Path
    index: int
    stdout: Path
    stderr: Path
    stdin: Path | None
    #: The task's workspace: files in it were reachable by the task, so they are opened with :mod:`ktes.fsafe`.
    workspace: Path | None = None

    def root_of(self, path: Path) -> Path:
        return self.workspace if self.workspace is not None and path.is_relative_to(self.workspace) else self.run_dir

    @property
    def start_file(self) -> Path:
        return self.run_dir / f"{self.index}.start"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.index}.pid"

    @property
    def rc_file(self) -> Path:
        return self.run_dir / f"{self.index}.rc"

    def started(self) -> bool:
        return self.start_file.exists()

    def start_time(self) -> str | None:
        try:
            return self.start_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def recorded_exit(self) -> tuple[int, str] | None:
        """(exit code, end time) once the wrapper recorded them, else None."""
        try:
            text = self.rc_file.read_text().strip()
            mtime = self.rc_file.stat().st_mtime
        except FileNotFoundError:
            return None
        try:
            return int(text), from_timestamp(mtime)
        except ValueError:
            return None  # the wrapper was killed while writing it

    def log(self, exit_code: int, end_time: str, tail_bytes: int) -> ExecutorLog:
        return ExecutorLog(
            start_time=self.start_time(),
            end_time=end_time,
            stdout=read_tail(self.stdout, tail_bytes, self.root_of(self.stdout)),
            stderr=read_tail(self.stderr, tail_bytes, self.root_of(self.stderr)),
            exit_code=exit_code,
        )


def executor_files(task: Task, index: int, workspace: Path, run_dir: Path) -> ExecutorFiles:
    executor = task.executors[index]
    return ExecutorFiles(
        run_dir=run_dir,
        index=index,
        stdout=layout.host_path(workspace, executor.stdout) if executor.stdout else run_dir / f"{index}.out",
        stderr=layout.host_path(workspace, executor.stderr) if executor.stderr else run_dir / f"{index}.err",
        stdin=layout.host_path(workspace, executor.stdin) if executor.stdin else None,
        workspace=workspace,
    )


def read_tail(path: Path, limit: int, root: Path) -> str:
    """The last ``limit`` bytes of ``path`` below ``root`` as text ("" if it is missing, a link or not a file)."""
    return fsafe.read_tail(root, path, limit).decode("utf-8", errors="replace")


def start(argv: list[str], files: ExecutorFiles, start_time: str) -> int:
    """Start the wrapper running ``argv`` in a session of its own (terminal signals and the end of ktes leave
    it alone) and return its pid. posix_spawn (vfork) keeps this cheap however large ktes is.

    The stdio files are opened here, beneath their root and following no link (:mod:`ktes.fsafe`). Raises
    FileNotFoundError when the executor's stdin file does not exist, :class:`ktes.fsafe.UnsafePath` when a
    stdio path is a link or not a regular file.
    """
    write = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fds: list[int] = []
    try:
        if files.stdin is None:
            fds.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        else:
            fds.append(fsafe.open_beneath(files.root_of(files.stdin), files.stdin, os.O_RDONLY))
        for path in (files.stdout, files.stderr):
            fds.append(fsafe.open_beneath(files.root_of(path), path, write, make_parents=True))
        files.start_file.write_text(start_time)
        actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(fds)]
        command = [SHELL, "-c", WRAPPER, WRAPPER_NAME, str(files.rc_file), *argv]
        pid = os.posix_spawn(SHELL, command, os.environ, file_actions=actions, setsid=True)
    finally:
        for fd in fds:
            os.close(fd)
    files.pid_file.write_text(str(pid))
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


def is_wrapper_of(pid: int, files: ExecutorFiles) -> bool:
    """Whether ``pid`` is still the wrapper of this executor (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(files.rc_file).encode() in cmdline


async def wait_gone(pid: int) -> None:
    """Until process ``pid`` has exited (it need not be our child)."""
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
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False


async def kill_wrapper(pid: int, files: ExecutorFiles, within_seconds: float) -> None:
    """Kill the wrapper's whole session (wrapper and CLI) and wait until the wrapper is gone."""
    if not is_wrapper_of(pid, files):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wait_gone(pid), within_seconds)
