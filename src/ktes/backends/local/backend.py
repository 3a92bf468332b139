"""The local backend: each task in a work directory on this machine, each executor one container run.

Per task: ``data_dir/work/<id>`` is the workspace (the filer prepares it and stages inputs into it; its
mount points are bound into every executor) and ``data_dir/run/<id>`` holds what a restarted ktes needs
(:mod:`ktes.backends.local.executions`). A finished task leaves neither behind: both are removed once the
engine has been told the end (if ktes dies in between, the task is final and the next start's sweep removes
them).

Restart: :meth:`LocalBackend.adopt` re-attaches. A task that had not started an executor starts over; one
whose executor was running waits for that executor's wrapper to record its exit code, then goes on with the
next executors. Only when an exit code is truly lost (the wrapper was killed too) is the task settled as
SYSTEM_ERROR, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import socket
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from ktes.backends.base import Stream
from ktes.backends.local import argv, executions, output
from ktes.backends.local.admission import Admission
from ktes.backends.local.images import ImageCheck
from ktes.backends.local.invoke import invoke
from ktes.backends.local.runtime import Runtime, detect_runtime
from ktes.backends.local.staging import FilerStaging, Staging
from ktes.config import Settings
from ktes.engine import clock
from ktes.engine.observations import (
    Ended,
    ExecutorFinished,
    ExecutorStarted,
    Initializing,
    OutputsUploaded,
    Reporter,
    SystemLog,
)
from ktes.errors import BackendError, KtesError
from ktes.tes.models import State, Task
from ktes.tes.outcome import executors_outcome, stops_run

if TYPE_CHECKING:
    from ktes.filer.registry import Filer

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Exit code with which podman and docker say that they (not the command) failed.
RUNTIME_FAILED = 125
REMOVE_TIMEOUT_SECONDS = 60.0
CANCEL_DEADLINE_SECONDS = 120.0


def instance_id(data_dir: Path) -> str:
    """Names this server's containers (label ``ktes.instance``): one per data directory."""
    return hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]


def runtime_failure(exit_code: int, stderr: str) -> str | None:
    """The runtime's own error when it, not the executor, failed (exit 125 with an "Error" line)."""
    if exit_code != RUNTIME_FAILED:
        return None
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("Error", "docker: Error"))]
    return errors[-1] if errors else None


def transfer_reason(context: str, exc: Exception) -> str:
    """The filer's own sentence (it names the URL and the reason); other errors get ``context``."""
    if isinstance(exc, KtesError):
        return str(exc)
    return f"{context}: {exc}"


class LocalBackend:
    name = "local"

    def __init__(self, settings: Settings, filer: Filer | None = None, staging: Staging | None = None) -> None:
        self._settings = settings
        if staging is None:
            if filer is None:
                raise ValueError("the local backend needs a filer (or a staging implementation)")
            staging = FilerStaging(filer)
        self._staging = staging
        self._work_root = settings.data_dir / "work"
        self._run_root = settings.data_dir / "run"
        self._instance = instance_id(settings.data_dir)
        self._admission = Admission.from_settings(settings)
        self._host = socket.gethostname()
        self._runtime: Runtime | None = None
        self._images: ImageCheck | None = None
        self._options: argv.RunOptions | None = None
        #: task id -> the coroutine doing the task's work (canceled by cancel()).
        self._work: dict[str, asyncio.Task[None]] = {}
        #: task id -> staging running in a worker thread (a cancel waits for it before removing the workspace).
        self._staging_now: dict[str, asyncio.Future[Any]] = {}
        self._canceled: set[str] = set()

    # --- protocol --------------------------------------------------------------------------------

    def backend_parameters(self) -> list[str]:
        return []

    async def start(self) -> None:
        runtime = await asyncio.to_thread(detect_runtime, self._settings)
        self._runtime = runtime
        self._images = ImageCheck(runtime, self._settings.local_pull, self._settings.local_pull_timeout_seconds)
        self._options = argv.RunOptions(
            instance=self._instance, network=self._settings.local_network, limits=runtime.limits_supported
        )
        self._work_root.mkdir(parents=True, exist_ok=True)
        self._run_root.mkdir(parents=True, exist_ok=True)
        log.info("local backend: %s (at most %g CPUs)", runtime.describe(), self._admission.max_cpus)

    async def close(self) -> None:
        """Nothing to stop: containers keep running, and a restart re-adopts them."""

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise BackendError("the local backend was not started")
        return self._runtime

    def capacity(self) -> dict[str, str]:
        runtime = self._runtime.describe() if self._runtime is not None else "not started"
        return {
            "runtime": runtime,
            "CPU cores for tasks": f"{self._admission.max_cpus:g}",
            "RAM for tasks (GB)": f"{self._admission.max_ram_gb:.1f}",
            "network": self._settings.local_network,
        }

    def admit(self, task: Task) -> bool:
        assert task.id is not None
        return self._admission.reserve(task.id, task)

    async def run(self, task: Task, report: Reporter) -> None:
        await self._supervise(task, self._from_start(task, report))

    async def adopt(self, task: Task, report: Reporter) -> None:
        assert task.id is not None
        self._admission.hold(task.id, task)
        await self._supervise(task, self._resume(task, report))

    async def cancel(self, task_id: str) -> None:
        self._canceled.add(task_id)
        work = self._work.get(task_id)
        if work is not None:
            work.cancel()
            await asyncio.wait({work})
        staging = self._staging_now.get(task_id)
        if staging is not None:  # a thread cannot be stopped: let it finish before its directory goes
            await asyncio.wait({staging})
        deadline = time.monotonic() + CANCEL_DEADLINE_SECONDS
        await self._remove_containers(task_id, deadline)
        run_dir = self._run_root / task_id
        for index, pid in self._wrapper_pids(run_dir):
            files = executions.ExecutorFiles(run_dir, index, run_dir / "-", run_dir / "-", None)
            await executions.kill_wrapper(pid, files, within_seconds=10.0)
        await self._remove_containers(task_id, deadline)  # one the CLI was creating when it was killed
        await asyncio.to_thread(self._remove_dirs, task_id, keep_workspace=False)
        self._admission.release(task_id)

    async def sweep(self, active_task_ids: Iterable[str]) -> list[str]:
        active = set(active_task_ids)
        listed = await invoke(argv.list_argv(self.runtime, self._instance), REMOVE_TIMEOUT_SECONDS)
        if not listed.ok:
            raise BackendError(f"could not list containers: {listed.last_error_line()}")
        names: list[str] = []
        cleaned: set[str] = set()
        for line in listed.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] not in active:
                names.append(parts[0])
                cleaned.add(parts[1])
        if names:
            await invoke(argv.remove_argv(self.runtime, names), REMOVE_TIMEOUT_SECONDS)
        for root in (self._work_root, self._run_root):
            if root == self._work_root and self._settings.local_keep_workdirs:
                continue
            for path in root.iterdir() if root.is_dir() else []:
                if path.name not in active:
                    await asyncio.to_thread(shutil.rmtree, path, True)
                    cleaned.add(path.name)
        return sorted(cleaned)

    def executor_output(
        self, task: Task, index: int, stream: Stream, offset: int, follow: bool
    ) -> AsyncGenerator[bytes, None]:
        """The executor's file (its own stdout/stderr path in the workspace, else ours in the run directory),
        followed until the wrapper has recorded the exit code or the run directory is gone."""
        assert task.id is not None
        workspace, run_dir = self._dirs(task.id)
        files = executions.executor_files(task, index, workspace, run_dir)
        path = files.stdout if stream == "stdout" else files.stderr
        root = workspace if path.is_relative_to(workspace) else run_dir
        relative = PurePosixPath(path.relative_to(root).as_posix())

        def ended() -> bool:
            return files.rc_file.exists() or not run_dir.is_dir()

        return output.read_file(root, relative, offset, follow, ended)

    # --- supervision -----------------------------------------------------------------------------

    async def _supervise(self, task: Task, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` so that cancel() can stop it, and the engine's stop leaves the containers running."""
        assert task.id is not None
        task_id = task.id
        if task_id in self._canceled:
            work.close()
            self._admission.release(task_id)
            return
        job = asyncio.ensure_future(work)
        self._work[task_id] = job
        try:
            await asyncio.wait({job})
        except asyncio.CancelledError:  # the engine is stopping: leave the task to the next engine
            job.cancel()
            with contextlib.suppress(BaseException):
                await job
            raise
        finally:
            self._work.pop(task_id, None)
            self._admission.release(task_id)
        if job.cancelled():
            return
        error = job.exception()
        if error is not None:
            with contextlib.suppress(Exception):
                await self._remove_containers(task_id, time.monotonic() + REMOVE_TIMEOUT_SECONDS)
                await asyncio.to_thread(self._remove_dirs, task_id, keep_workspace=False)
            raise error

    # --- a run from the start --------------------------------------------------------------------

    def _dirs(self, task_id: str) -> tuple[Path, Path]:
        return self._work_root / task_id, self._run_root / task_id

    async def _from_start(self, task: Task, report: Reporter) -> None:
        assert task.id is not None
        task_id = task.id
        workspace, run_dir = self._dirs(task_id)
        runtime = self.runtime
        await report(
            task_id, Initializing(start_time=clock.now(), metadata={"host": self._host, "runtime": runtime.kind})
        )
        too_big = self._admission.too_big(task)
        if too_big is not None:
            await self._end(task, report, State.SYSTEM_ERROR, too_big)
            return
        if not runtime.limits_supported and task.resources and (task.resources.cpu_cores or task.resources.ram_gb):
            await report(
                task_id,
                SystemLog(f"cpu_cores and ram_gb are not enforced: {runtime.kind} cannot set limits on this machine"),
            )
        assert self._images is not None
        for image in dict.fromkeys(executor.image for executor in task.executors):
            missing = await self._images.missing_reason(image)
            if missing is not None:
                await self._end(task, report, State.SYSTEM_ERROR, missing)
                return
        try:
            await self._in_thread(task_id, self._prepare, task, workspace, run_dir)
        except (KtesError, OSError) as exc:
            await self._end(task, report, State.SYSTEM_ERROR, transfer_reason("staging the inputs failed", exc))
            return
        await self._execute(task, report, first=0, exit_codes=[])

    async def _in_thread(self, task_id: str, call: Callable[..., T], *args: Any) -> T:
        """Run blocking staging in a worker thread, in a way cancel() can wait for."""
        future = asyncio.ensure_future(asyncio.to_thread(call, *args))
        self._staging_now[task_id] = future
        try:
            return await asyncio.shield(future)
        finally:
            if future.done():
                self._staging_now.pop(task_id, None)
            else:
                future.add_done_callback(lambda _: self._staging_now.pop(task_id, None))

    def _prepare(self, task: Task, workspace: Path, run_dir: Path) -> None:
        """Fresh work and run directories, the workspace prepared, the inputs staged."""
        for path in (workspace, run_dir):
            if path.exists():
                shutil.rmtree(path)
            path.mkdir(parents=True)
        self._staging.prepare_workspace(task, workspace)
        self._staging.stage_inputs(task, workspace)

    async def _execute(self, task: Task, report: Reporter, first: int, exit_codes: list[int]) -> None:
        """Run executors ``first``.. in order, then finish the task."""
        assert task.id is not None and self._options is not None
        task_id = task.id
        workspace, run_dir = self._dirs(task_id)
        tail = self._settings.local_log_tail_bytes
        for index in range(first, len(task.executors)):
            if task_id in self._canceled:
                return
            executor = task.executors[index]
            files = executions.executor_files(task, index, workspace, run_dir)
            command = argv.run_argv(self.runtime, task, index, workspace, self._options)
            start_time = clock.now()
            try:
                pid = executions.start(command, files, start_time)
            except FileNotFoundError:
                reason = f"executor {index}'s stdin file {executor.stdin} does not exist"
                await self._end(task, report, State.SYSTEM_ERROR, reason)
                return
            await report(task_id, ExecutorStarted(index=index, start_time=start_time))
            exit_code = await executions.wait_child(pid)
            await report(task_id, ExecutorFinished(index=index, log=files.log(exit_code, clock.now(), tail)))
            if await self._runtime_failed(task, report, index, exit_code, files):
                return
            exit_codes.append(exit_code)
            if stops_run(executor, exit_code):
                break
        await self._finish(task, report, exit_codes)

    async def _runtime_failed(
        self, task: Task, report: Reporter, index: int, exit_code: int, files: executions.ExecutorFiles
    ) -> bool:
        failure = runtime_failure(exit_code, executions.read_tail(files.stderr, 4096))
        if failure is None:
            return False
        image = task.executors[index].image
        if "image not known" in failure or "No such image" in failure:
            assert self._images is not None
            self._images.forget(image)
            reason = f"image {image} not found on this machine ({failure})"
        else:
            reason = f"the container runtime could not run executor {index} (image {image}): {failure}"
        await self._end(task, report, State.SYSTEM_ERROR, reason)
        return True

    async def _finish(self, task: Task, report: Reporter, exit_codes: list[int]) -> None:
        assert task.id is not None
        state = executors_outcome(task.executors, exit_codes)
        if state == State.COMPLETE and task.outputs:
            workspace, _ = self._dirs(task.id)
            try:
                outputs = await self._in_thread(task.id, self._staging.stage_outputs, task, workspace)
            except (KtesError, OSError) as exc:
                await self._end(task, report, State.SYSTEM_ERROR, transfer_reason("uploading the outputs failed", exc))
                return
            await report(task.id, OutputsUploaded(outputs=outputs))
        await self._end(task, report, state, None)

    async def _end(self, task: Task, report: Reporter, state: State, reason: str | None) -> None:
        """Tell the engine, then remove the work and run directories (its containers are gone already).

        Reporting first keeps the removal off the user's wait; if ktes dies in between, the task is final
        and the next start's sweep removes the directories.
        """
        assert task.id is not None
        await report(task.id, Ended(state=state, end_time=clock.now(), reason=reason))
        await asyncio.to_thread(self._remove_dirs, task.id, keep_workspace=self._settings.local_keep_workdirs)

    def _remove_dirs(self, task_id: str, *, keep_workspace: bool) -> None:
        workspace, run_dir = self._dirs(task_id)
        if not keep_workspace:
            shutil.rmtree(workspace, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)

    # --- restart ---------------------------------------------------------------------------------

    async def _resume(self, task: Task, report: Reporter) -> None:
        assert task.id is not None
        task_id = task.id
        workspace, run_dir = self._dirs(task_id)
        files = [executions.executor_files(task, i, workspace, run_dir) for i in range(len(task.executors))]
        started = [f for f in files if f.started()]
        if not started:  # it stopped while staging: start over
            await self._remove_containers(task_id, time.monotonic() + REMOVE_TIMEOUT_SECONDS)
            await report(task_id, SystemLog("ktes restarted before the first executor started; staging again"))
            await self._from_start(task, report)
            return
        last = started[-1].index
        await report(task_id, SystemLog(f"ktes restarted during executor {last}; re-attached to the task"))
        await report(task_id, ExecutorStarted(index=last, start_time=started[-1].start_time() or clock.now()))
        exit_codes: list[int] = []
        tail = self._settings.local_log_tail_bytes
        for record in files[: last + 1]:
            recorded = record.recorded_exit()
            if recorded is None and record.index == last:
                pid = record.pid()
                if pid is not None and executions.is_wrapper_of(pid, record):
                    await executions.wait_gone(pid)
                recorded = record.recorded_exit()
            if recorded is None:
                await self._remove_containers(task_id, time.monotonic() + REMOVE_TIMEOUT_SECONDS)
                reason = (
                    f"ktes restarted while executor {record.index} was running, and its exit code was lost "
                    "(its container runtime process was stopped too); the task was stopped"
                )
                await self._end(task, report, State.SYSTEM_ERROR, reason)
                return
            exit_code, end_time = recorded
            await report(task_id, ExecutorFinished(index=record.index, log=record.log(exit_code, end_time, tail)))
            if await self._runtime_failed(task, report, record.index, exit_code, record):
                return
            exit_codes.append(exit_code)
            if stops_run(task.executors[record.index], exit_code):
                await self._finish(task, report, exit_codes)
                return
        await self._execute(task, report, first=last + 1, exit_codes=exit_codes)

    # --- containers ------------------------------------------------------------------------------

    async def _remove_containers(self, task_id: str, deadline: float) -> None:
        """Remove the task's containers and return once none is left (BackendError past ``deadline``)."""
        runtime = self.runtime
        while True:
            listed = await invoke(argv.list_argv(runtime, self._instance, task_id), REMOVE_TIMEOUT_SECONDS)
            names = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()] if listed.ok else []
            if listed.ok and not names:
                return
            if time.monotonic() > deadline:
                raise BackendError(f"the containers of task {task_id} could not be removed: {listed.last_error_line()}")
            if names:
                await invoke(argv.remove_argv(runtime, names), REMOVE_TIMEOUT_SECONDS)
            else:
                await asyncio.sleep(0.5)

    def _wrapper_pids(self, run_dir: Path) -> list[tuple[int, int]]:
        pids: list[tuple[int, int]] = []
        for path in run_dir.glob("*.pid") if run_dir.is_dir() else []:
            with contextlib.suppress(ValueError, OSError):
                pids.append((int(path.stem), int(path.read_text().strip())))
        return pids
