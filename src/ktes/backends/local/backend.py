"""The local backend: each task in a work directory on this machine, each executor one container run.

Per task: ``data_dir/work/<id>`` is the workspace (the filer prepares it and stages inputs into it; its
mount points are bound into every executor) and ``data_dir/run/<id>`` holds what a restarted ktes needs
(:mod:`ktes.backends.local.executions`). A finished task leaves neither behind: both are removed once the
engine has been told the end (if ktes dies in between, the task is final and the next start's sweep removes
them).

Every executor runs through the executors' helper, as on Kubernetes; its result line becomes the executor's
log and :mod:`ktes.run.outcome` decides what the run means (the same sentences on both backends).

Restart: :meth:`LocalBackend.adopt` re-attaches. A task that had not started an executor starts over; one
whose executor was running waits for that executor's container to end (``wait``), reads its result (from
the CLI's output, else the container's log, else the helper's result file in the executor's state directory:
containers run with ``--rm``), then goes on with the next executors. Only when the result is
truly lost (the container is gone without one) is the task settled as SYSTEM_ERROR, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import posixpath
import shutil
import signal
import socket
import time
from collections.abc import AsyncGenerator, Callable, Collection, Coroutine, Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from ktes.backends.base import Stream
from ktes.backends.local import argv, executions, output
from ktes.backends.local.admission import Admission
from ktes.backends.local.images import ImageCheck
from ktes.backends.local.invoke import invoke
from ktes.backends.local.network import describe as describe_network
from ktes.backends.local.runtime import Runtime, detect_runtime
from ktes.backends.local.staging import FilerStaging, Staging
from ktes.config import Settings
from ktes.errors import BackendError, KtesError
from ktes.run import clock, entrypoint, outcome
from ktes.run.observations import Ended, ExecutorStarted, Initializing, Observation, Reporter, SystemLog
from ktes.run.result import ExecutorReport, ExecutorResult, parse_result, result_file
from ktes.tes.models import State, Task

if TYPE_CHECKING:
    from ktes.filer.registry import Filer

log = logging.getLogger(__name__)
T = TypeVar("T")

REMOVE_TIMEOUT_SECONDS = 60.0
#: the most of a helper's result file ktes reads (its JSON is a few hundred bytes).
RESULT_FILE_BYTES = 64 * 1024
CANCEL_DEADLINE_SECONDS = 120.0


def instance_id(data_dir: Path) -> str:
    """Names this server's containers (label ``ktes.instance``): one per data directory."""
    return hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]


def runtime_failure(stderr: str) -> str | None:
    """The runtime's own error (its last "Error" line), else the helper's, else the last line of stderr."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("Error", "docker: Error", "ktes-entrypoint:"))]
    found = errors or lines
    return found[-1] if found else None


def installed_helper(settings: Settings) -> Path:
    """The executors' helper to bind-mount: ``entrypoint_path`` or the package's, as an executable file
    (a copy under ``data_dir/bin`` when the installation lost its mode bits)."""
    path = entrypoint.entrypoint_path(settings.entrypoint_path)
    if os.access(path, os.X_OK):
        return path
    data = path.read_bytes()
    copy = settings.data_dir / "bin" / f"ktes-entrypoint-{hashlib.sha256(data).hexdigest()[:12]}"
    if not copy.exists():
        copy.parent.mkdir(parents=True, exist_ok=True)
        partial = copy.with_suffix(".partial")
        partial.write_bytes(data)
        partial.chmod(0o555)
        partial.replace(copy)
    return copy


def transfer_reason(context: str, exc: Exception) -> str:
    """The filer's own sentence (it names the URL and the reason); other errors get ``context``."""
    if isinstance(exc, KtesError):
        return str(exc)
    return f"{context}: {exc}"


#: A work directory's file system with less free space than this counts as full.
DISK_FULL_BYTES = 1 << 20


def disk_full(path: Path) -> str | None:
    """A sentence when the file system holding ``path`` is full (so a task's failure is explained)."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    if usage.free >= DISK_FULL_BYTES:
        return None
    return f"the file system of the task's work directory full ({usage.free} bytes free of {usage.total})"


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
        #: tasks admitted that hold no CPU/RAM yet: they stage their inputs, or wait for room to run.
        self._staging_tasks: set[str] = set()
        #: set (and replaced) whenever CPU/RAM is released, so tasks waiting for room try again.
        self._room = asyncio.Event()
        self._host = socket.gethostname()
        self._runtime: Runtime | None = None
        self._images: ImageCheck | None = None
        self._options: argv.RunOptions | None = None
        #: task id -> the coroutine doing the task's work (canceled by cancel()).
        self._work: dict[str, asyncio.Task[None]] = {}
        #: task id -> staging running in a worker thread (a cancel waits for it before removing the workspace).
        self._staging_now: dict[str, asyncio.Future[Any]] = {}
        self._canceled: set[str] = set()
        #: directory removals scheduled for after a canceled task's staging thread ends.
        self._cleanups: set[asyncio.Future[None]] = set()
        #: task id -> the pid of the container CLI running its current executor (our child).
        self._clis: dict[str, int] = {}
        #: finished containers waiting for the reaper (removed in batches).
        self._to_remove: list[str] = []
        self._reaper: asyncio.Task[None] | None = None

    # --- protocol --------------------------------------------------------------------------------

    def backend_parameters(self) -> list[str]:
        return []

    async def start(self) -> None:
        runtime = await asyncio.to_thread(detect_runtime, self._settings)
        self._runtime = runtime
        self._images = ImageCheck(runtime, self._settings.local_pull, self._settings.local_pull_timeout_seconds)
        try:
            helper = await asyncio.to_thread(installed_helper, self._settings)
        except entrypoint.EntrypointMissing as exc:
            raise BackendError(str(exc)) from None
        self._options = argv.RunOptions(
            instance=self._instance,
            helper=helper,
            network=self._settings.local_network,
            limits=runtime.limits_supported,
            tail_bytes=self._settings.local_log_tail_bytes,
        )
        self._work_root.mkdir(parents=True, exist_ok=True)
        self._run_root.mkdir(parents=True, exist_ok=True)
        network = describe_network(self._settings.local_network, runtime.kind)
        log.info(
            "local backend: %s (at most %g CPUs); task containers on %s",
            runtime.describe(),
            self._admission.max_cpus,
            network,
        )

    async def close(self) -> None:
        """Running containers keep running, and a restart re-adopts them; finished ones are removed."""
        if self._reaper is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._reaper), REMOVE_TIMEOUT_SECONDS)

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
        """Room to start: at most ``local_max_staging`` tasks stage (or wait for CPU/RAM) at once. CPU and RAM
        are reserved only for running containers (:meth:`_wait_for_room`), so a slow download holds none."""
        assert task.id is not None
        if task.id not in self._staging_tasks:
            if len(self._staging_tasks) >= self._settings.local_max_staging:
                return False
            self._staging_tasks.add(task.id)
        return True

    async def _wait_for_room(self, task: Task) -> None:
        """Reserve the task's CPU and RAM, waiting (oldest waiter first) until a run releases enough."""
        assert task.id is not None
        while not self._admission.reserve(task.id, task):
            await self._room.wait()
        self._staging_tasks.discard(task.id)

    def _release(self, task_id: str) -> None:
        self._staging_tasks.discard(task_id)
        self._admission.release(task_id)
        self._room.set()
        self._room = asyncio.Event()

    async def run(self, task: Task, report: Reporter) -> None:
        await self._supervise(task, self._from_start(task, report), report)

    async def adopt(self, task: Task, report: Reporter) -> None:
        assert task.id is not None
        self._admission.hold(task.id, task)
        await self._supervise(task, self._resume(task, report), report)

    async def cancel(self, task_id: str) -> None:
        self._canceled.add(task_id)
        work = self._work.get(task_id)
        if work is not None:
            work.cancel()
            await asyncio.wait({work})
        staging = self._staging_now.get(task_id)
        if staging is not None:  # a thread cannot be stopped: its directories go again once it has finished,
            staging.add_done_callback(lambda _: self._remove_dirs_soon(task_id))  # and the cancel waits for none
        deadline = time.monotonic() + CANCEL_DEADLINE_SECONDS
        await self._remove_containers(task_id, deadline)
        cli = self._clis.pop(task_id, None)
        if cli is not None:  # a CLI still creating its container when it was removed
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(cli, signal.SIGKILL)
            await self._remove_containers(task_id, deadline)
        await asyncio.to_thread(self._remove_dirs, task_id, keep_workspace=False)
        self._release(task_id)

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
        """The file the helper writes the stream to: the executor's own path in the workspace when it names
        one, else the helper's default in the executor's state directory. Both are places a task can plant
        links in, so the file is opened beneath its root without following any (:mod:`.output`). Followed
        until the helper's result line is there (it comes after the last byte) or the run directory is gone."""
        assert task.id is not None
        _, run_dir = self._dirs(task.id)
        files = executions.ExecutorFiles(run_dir, index)
        root, relative = self._stream_file(task, index, stream)

        def ended() -> bool:
            return not run_dir.is_dir() or files.result() is not None

        return output.read_file(root, relative, offset, follow, ended)

    def _stream_file(self, task: Task, index: int, stream: Stream) -> tuple[Path, PurePosixPath]:
        """Where the helper writes executor ``index``'s ``stream``: a root of ktes's and a path beneath it."""
        assert task.id is not None
        workspace, run_dir = self._dirs(task.id)
        executor = task.executors[index]
        named = executor.stdout if stream == "stdout" else executor.stderr
        if named:
            return workspace, PurePosixPath(posixpath.normpath(named).lstrip("/"))
        return executions.ExecutorFiles(run_dir, index).state_dir, PurePosixPath(f"{index}.{stream}")

    # --- supervision -----------------------------------------------------------------------------

    async def _supervise(self, task: Task, work: Coroutine[Any, Any, None], report: Reporter) -> None:
        """Run ``work`` so that cancel() can stop it, and the engine's stop leaves the containers running.

        If ``work`` fails unexpectedly, the task ends as SYSTEM_ERROR saying why, and only once that is
        recorded are its containers and directories removed (if it cannot be recorded, they stay for the
        next start's sweep)."""
        assert task.id is not None
        task_id = task.id
        if task_id in self._canceled:
            work.close()
            self._release(task_id)
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
            self._release(task_id)
        if job.cancelled():
            return
        error = job.exception()
        if error is not None:
            log.error("local backend: running task %s failed", task_id, exc_info=error)
            reason = f"ktes failed while running the task: {error}"
            await report(task_id, Ended(state=State.SYSTEM_ERROR, end_time=clock.now(), reason=reason))
            with contextlib.suppress(Exception):
                await self._remove_containers(task_id, time.monotonic() + REMOVE_TIMEOUT_SECONDS)
                await asyncio.to_thread(self._remove_dirs, task_id, keep_workspace=False)

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
            await self._fail(task, report, State.SYSTEM_ERROR, too_big)
            return
        if not runtime.limits_supported and task.resources and (task.resources.cpu_cores or task.resources.ram_gb):
            await report(
                task_id,
                SystemLog(f"cpu_cores and ram_gb are not enforced: {runtime.kind} cannot set limits on this machine"),
            )
        assert self._images is not None
        first_use = {executor.image: index for index, executor in reversed(list(enumerate(task.executors)))}
        for image, index in sorted(first_use.items(), key=lambda item: item[1]):
            missing = await self._images.missing_reason(image)
            if missing is not None:
                await self._fail(task, report, State.SYSTEM_ERROR, outcome.image_sentence(image, index, missing))
                return
        try:
            await self._in_thread(task_id, self._prepare, task, workspace, run_dir)
        except (KtesError, OSError) as exc:
            await self._fail(task, report, State.SYSTEM_ERROR, transfer_reason("staging the inputs failed", exc))
            return
        await self._wait_for_room(task)
        await self._execute(task, report, first=0, results=[])

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

    async def _execute(self, task: Task, report: Reporter, first: int, results: list[ExecutorReport]) -> None:
        """Run executors ``first``.. in order, then finish the task."""
        assert task.id is not None and self._options is not None
        task_id = task.id
        workspace, run_dir = self._dirs(task_id)
        #: executors whose container the runtime removed itself (``--rm``: their CLI ended with the result).
        removed: set[int] = set()
        for index in range(first, len(task.executors)):
            if task_id in self._canceled:
                return
            files = executions.ExecutorFiles(run_dir, index)
            start_time = clock.now()
            command = argv.run_argv(self.runtime, task, index, workspace, files.state_dir, self._options)
            pid = executions.start(command, files, start_time)
            log.debug("executor %d started: its CLI is pid %d", index, pid)
            self._clis[task_id] = pid
            await report(task_id, ExecutorStarted(index=index, start_time=start_time))
            try:
                exit_code = await executions.wait_child(pid)
            finally:
                self._clis.pop(task_id, None)
            log.debug("executor %d CLI ended with %d", index, exit_code)
            result = files.result()
            if result is None:
                # The runtime's output can lose the helper's result line: 3 of 10,000 short tasks under podman
                # 4.3 ended with the CLI's exit code 0 and no line (docs/scale.md). The helper left the same
                # result in the state directory, read as a restarted ktes reads it (no link followed).
                result = await asyncio.to_thread(self._result_left_behind, task, index)
                if result is not None:
                    log.info(
                        "executor %d of %s: its result line was missing from the runtime's output; "
                        "read it from the state directory",
                        index,
                        task_id,
                    )
            last = index == len(task.executors) - 1
            if result is None or last or outcome.stops_run(task.executors[index], result.exit_code):
                # No container of the task runs any more: its CPU and RAM go to the next task now, and that
                # task starts its container (the yield) before this one's end is recorded (the store's
                # writes run on the loop) and its directories removed: these took a slot's dispatch gap.
                self._release(task_id)
                await asyncio.sleep(0)
            if result is None:  # its result could not be written either when the disk is full
                full = disk_full(workspace)
                reason = f"executor {index} failed with {full}" if full else None
                await self._no_result(
                    task, report, index, reason or self._runtime_sentence(task, index, files, exit_code), removed
                )
                return
            removed.add(index)
            goes_on = await self._executor_ended(task, report, result, results)
            if result.exit_code != 0 and (full := disk_full(workspace)) is not None:
                await report(task_id, SystemLog(f"executor {index} failed with {full}"))
            if not goes_on:
                break
        await self._finish(task, report, results, removed)

    async def _executor_ended(
        self, task: Task, report: Reporter, result: ExecutorReport, results: list[ExecutorReport]
    ) -> bool:
        """Report one executor's end; whether the run goes on."""
        assert task.id is not None
        for observation in outcome.executor_finished(task, result):
            await report(task.id, observation)
        results.append(result)
        return not outcome.stops_run(task.executors[result.index], result.exit_code)

    def _runtime_sentence(self, task: Task, index: int, files: executions.ExecutorFiles, exit_code: int | None) -> str:
        """Why executor ``index`` left no result: the runtime (or the helper) failed before the command ran."""
        image = task.executors[index].image
        failure = runtime_failure(files.runtime_error())
        if failure is not None and ("image not known" in failure or "No such image" in failure):
            assert self._images is not None
            self._images.forget(image)
            return outcome.image_sentence(image, index, f"not found on this machine ({failure})")
        why = failure or (f"it exited with code {exit_code}" if exit_code is not None else "no reason was given")
        return f"the container runtime could not run executor {index} (image {image}): {why}"

    async def _no_result(
        self, task: Task, report: Reporter, index: int, reason: str, removed: Collection[int] = ()
    ) -> None:
        ended = Ended(state=State.SYSTEM_ERROR, end_time=clock.now(), reason=reason)
        await self._end(task, report, [ended], removed)

    async def _finish(
        self, task: Task, report: Reporter, results: list[ExecutorReport], removed: Collection[int] = ()
    ) -> None:
        assert task.id is not None
        uploads: outcome.Uploads | None = None
        if task.outputs and outcome.should_upload(task, results):
            workspace, _ = self._dirs(task.id)
            try:
                outputs = await self._in_thread(task.id, self._staging.stage_outputs, task, workspace)
                uploads = outcome.Uploads(uploaded=True, outputs=outputs)
            except (KtesError, OSError) as exc:
                uploads = outcome.Uploads(uploaded=True, error=transfer_reason("uploading the outputs failed", exc))
        await self._end(task, report, outcome.run_ended(task, results, uploads, clock.now()), removed)

    async def _fail(self, task: Task, report: Reporter, state: State, reason: str) -> None:
        await self._end(task, report, [Ended(state=state, end_time=clock.now(), reason=reason)])

    async def _end(self, task: Task, report: Reporter, final: list[Observation], removed: Collection[int] = ()) -> None:
        """Tell the engine (``final`` ends with Ended), then remove the containers (but those of the executors
        in ``removed``: ``run --rm`` removed them as they ended) and the work and run directories.

        Reporting first keeps the removal off the user's wait; if ktes dies in between, the task is final
        and the next start's sweep removes what is left.
        """
        assert task.id is not None
        for observation in final:
            await report(task.id, observation)
        _, run_dir = self._dirs(task.id)
        started = [
            i for i in range(len(task.executors)) if i not in removed and executions.ExecutorFiles(run_dir, i).started()
        ]
        self._remove_later([argv.container_name(task.id, i) for i in started])
        await asyncio.to_thread(self._remove_dirs, task.id, keep_workspace=self._settings.local_keep_workdirs)

    def _remove_dirs_soon(self, task_id: str) -> None:
        """Remove the task's directories in a worker thread, from a callback (the task is kept until done)."""
        job = asyncio.ensure_future(asyncio.to_thread(self._remove_dirs, task_id, keep_workspace=False))
        self._cleanups.add(job)
        job.add_done_callback(self._cleanups.discard)

    def _remove_dirs(self, task_id: str, *, keep_workspace: bool) -> None:
        workspace, run_dir = self._dirs(task_id)
        if not keep_workspace:
            shutil.rmtree(workspace, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)

    # --- restart ---------------------------------------------------------------------------------

    async def _resume(self, task: Task, report: Reporter) -> None:
        assert task.id is not None
        task_id = task.id
        _, run_dir = self._dirs(task_id)
        files = [executions.ExecutorFiles(run_dir, i) for i in range(len(task.executors))]
        started = [f for f in files if f.started()]
        if not started and task.state == State.RUNNING:  # an executor ran, but its record is gone
            await self._remove_containers(task_id, time.monotonic() + REMOVE_TIMEOUT_SECONDS)
            reason = (
                "ktes restarted and found no record of the task's executors (its run directory is gone); "
                "the task was stopped rather than run a second time"
            )
            await self._end(task, report, [Ended(state=State.SYSTEM_ERROR, end_time=clock.now(), reason=reason)])
            return
        if not started:  # it stopped while staging: start over
            await self._remove_containers(task_id, time.monotonic() + REMOVE_TIMEOUT_SECONDS)
            await report(task_id, SystemLog("ktes restarted before the first executor started; staging again"))
            await self._from_start(task, report)
            return
        last = started[-1].index
        await report(task_id, SystemLog(f"ktes restarted during executor {last}; re-attached to the task"))
        await report(task_id, ExecutorStarted(index=last, start_time=started[-1].start_time() or clock.now()))
        results: list[ExecutorReport] = []
        for record in files[: last + 1]:
            result = record.result()
            cli = record.running_cli() if result is None else None
            if cli is not None:  # the CLI outlived the killed ktes: it may not have made the container yet
                await executions.wait_gone(cli)
                result = record.result()
            result = result or await self._result_of_container(task, record.index)
            if result is None:
                reason = (
                    f"ktes restarted while executor {record.index} was running, and its result was lost "
                    "(its container is gone)"
                )
                failure = runtime_failure(record.runtime_error())
                if failure is not None:
                    reason = self._runtime_sentence(task, record.index, record, None)
                await self._remove_containers(task_id, time.monotonic() + REMOVE_TIMEOUT_SECONDS)
                await self._fail(task, report, State.SYSTEM_ERROR, reason)
                return
            if not await self._executor_ended(task, report, result, results):
                await self._finish(task, report, results)
                return
        await self._execute(task, report, first=last + 1, results=results)

    async def _result_of_container(self, task: Task, index: int) -> ExecutorReport | None:
        """Wait for executor ``index``'s container to end and read the result from its log; else (``run
        --rm`` removed the container as it ended) from what the helper left in the state directory. None when
        neither holds one: the container ended before the helper could write it, or it never ran."""
        assert task.id is not None
        name = argv.container_name(task.id, index)
        waited = await invoke(argv.wait_argv(self.runtime, name), None)
        if waited.ok:
            logs = await invoke(argv.logs_argv(self.runtime, name), REMOVE_TIMEOUT_SECONDS)
            found = parse_result(logs.stdout) if logs.ok else None
            if found is not None:
                return found
        return await asyncio.to_thread(self._result_left_behind, task, index)

    def _result_left_behind(self, task: Task, index: int) -> ExecutorReport | None:
        """The helper's result file and the tails of both streams, as its result line would hold them. The
        task can write to all of these: each is opened beneath its root without following links, and a
        result that names another executor is refused. (What a task could forge here is its own exit code,
        times and output, which it decides anyway.)"""
        assert task.id is not None
        _, run_dir = self._dirs(task.id)
        state_dir = executions.ExecutorFiles(run_dir, index).state_dir
        data = output.read_tail(state_dir, PurePosixPath(result_file(index)), RESULT_FILE_BYTES)
        try:
            found = ExecutorResult.model_validate_json(data) if data else None
        except ValueError:
            return None
        if found is None or found.index != index:
            return None
        tails: dict[str, str] = {}
        for stream in ("stdout", "stderr"):
            root, relative = self._stream_file(task, index, stream)
            limit = self._settings.local_log_tail_bytes
            tail = output.read_tail(root, relative, limit) or b""
            cut = 0
            while len(tail) == limit and cut < 3 and cut < len(tail) and tail[cut] & 0xC0 == 0x80:
                cut += 1  # as the helper does: no half of a character cut at the start
            tails[stream] = tail[cut:].decode("utf-8", errors="replace")
        return ExecutorReport(**found.model_dump(), stdout=tails["stdout"], stderr=tails["stderr"])

    # --- containers ------------------------------------------------------------------------------

    def _remove_later(self, names: list[str]) -> None:
        """Remove these finished containers soon, many in one runtime call (a ``podman rm`` costs as much CPU
        as a small task: one per task would slow a burst by a third). A restart's sweep removes any left."""
        self._to_remove += names
        if names and (self._reaper is None or self._reaper.done()):
            self._reaper = asyncio.get_running_loop().create_task(self._reap(), name="ktes-local-reaper")

    async def _reap(self) -> None:
        while self._to_remove:
            names, self._to_remove = self._to_remove, []
            removed = await invoke(argv.remove_argv(self.runtime, names), REMOVE_TIMEOUT_SECONDS)
            if not removed.ok:
                log.warning("could not remove containers %s: %s", names, removed.last_error_line())

    async def _remove_containers(self, task_id: str, deadline: float) -> None:
        """Remove the task's containers and return once none is left (BackendError past ``deadline``)."""
        runtime = self.runtime
        by_label = argv.remove_task_argv(runtime, self._instance, task_id)
        if by_label is not None and (await invoke(by_label, REMOVE_TIMEOUT_SECONDS)).ok:
            return  # one call (a cancel's CANCELING window is mostly these calls); else list and remove
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
