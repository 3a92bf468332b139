"""The Kubernetes backend: each task is one Job (``ktes-<id>``) with one Pod, and a Secret with its document
when it stages inputs or outputs.

One list-then-watch per kind (Pods, Jobs; label ``app.kubernetes.io/managed-by=ktes``) keeps
:class:`ObjectCache` current, with a full relist every ``k8s_resync_seconds``. Each running task waits on its
own entry and judges it with :func:`status.assess`; once every container of the Pod has ended it takes each
executor's result line and stage-out's report from the containers' termination messages (which the watch
brought with the Pod), reading the log only of a container whose message does not hold them. Then the Job
is deleted (its Pod and Secret go with it) unless ``k8s_keep_finished_jobs``. The executors' helper is a
ConfigMap per namespace (``ktes-entrypoint-<sha12>``), made on the first task from the binary in the ktes
package (:mod:`ktes.run.entrypoint`) and left in place.

While the API server does not answer (or answers 429/5xx), every call a task needs (making its objects,
reading its logs, deleting them) is tried again until it does (:meth:`KubernetesBackend._answered`): an
outage delays tasks, it neither fails them nor leaves their objects behind. The watches list again by
themselves; meanwhile the backend is not ready, so it takes no new task.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from ktes.backends.base import END_OF_OUTPUT, EndOfOutput, Stream
from ktes.backends.kubernetes import podspec, status, waiting
from ktes.backends.kubernetes.client import (
    NO_ANSWER,
    AlreadyExists,
    ExecFailed,
    Kind,
    Kube,
    KubeError,
    Watcher,
    WatchEvent,
    transient,
)
from ktes.backends.kubernetes.installation import with_installation
from ktes.backends.kubernetes.objects import ObjectCache, TaskObjects, task_id_of
from ktes.backends.kubernetes.podspec import STAGE_OUT, TASK_ID_LABEL, executor_container_name, job_name
from ktes.config import Settings
from ktes.run import clock, entrypoint
from ktes.run.observations import Ended, Initializing, Observation, Reporter, SystemLog
from ktes.run.result import (
    ExecutorReport,
    StageOutReport,
    parse_report,
    parse_report_message,
    parse_result,
    parse_result_message,
)
from ktes.tes.models import State, Task

log = logging.getLogger(__name__)

T = TypeVar("T")

#: seconds a canceled or finished task's Pod is given to stop.
GRACE_SECONDS = 5
#: how long start() waits for the first lists before going on (the watches keep trying).
FIRST_SYNC_SECONDS = 30.0
#: the helper's reader (``--read``) exit codes for "nothing to read now": not started, or leaving.
READER_NOTHING_NOW = (3, 4)
#: how long cancel() waits for the Pod to be gone.
GONE_TIMEOUT_SECONDS = 120.0
#: while the API does not answer, a call is tried again after these many seconds (doubling).
API_RETRY_FIRST_SECONDS = 0.5
API_RETRY_MAX_SECONDS = 5.0
#: how long a task whose pod ended waits for the Job controller to mark its Job done before deleting it.
JOB_FINISH_SECONDS = 120.0
#: how long reading an ended pod's logs is retried while the API answers 5xx (its kubelet may be gone).
LOG_ERRORS_SECONDS = 60.0


def read_entrypoint(settings: Settings) -> bytes:
    """The executors' helper for the ConfigMap: ``k8s_entrypoint_path``, else ``entrypoint_path``, else the
    one in the ktes package for this machine's architecture (:mod:`ktes.run.entrypoint`)."""
    try:
        return entrypoint.read_entrypoint(settings.k8s_entrypoint_path or settings.entrypoint_path)
    except entrypoint.EntrypointMissing as exc:
        raise KubeError(str(exc)) from None


class KubernetesBackend:
    name = "kubernetes"

    def __init__(self, settings: Settings) -> None:
        #: with k8s_installation_id resolved: every object carries it, and only those are watched and swept.
        self._settings = with_installation(settings)
        self._selector = podspec.installation_selector(self._settings)
        self._kube: Kube | None = None
        self._cache = ObjectCache()
        self._watchers: list[Watcher] = []
        #: tasks admitted, running or being adopted (bounded by k8s_max_running_tasks).
        self._reserved: set[str] = set()
        #: tasks whose run/adopt is in progress.
        self._following: set[str] = set()
        self._canceled: set[str] = set()
        #: tasks whose Secret ktes deletes itself when they finish: made but not owned by the Job (else the
        #: garbage collector deletes it with the Job), or not known (adopted after a restart).
        self._secrets_to_delete: set[str] = set()
        #: the helper's ConfigMap (made from its file at start), and whether it is known to exist.
        self._entrypoint_config_map: dict[str, Any] = {}
        self._entrypoint_ready = False
        self._entrypoint_lock = asyncio.Lock()
        #: whether pods/exec (live executor output) is allowed; False after the first 403.
        self._exec_allowed = True

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            raise KubeError("the Kubernetes backend was not started")
        return self._kube

    def backend_parameters(self) -> list[str]:
        return sorted(podspec.BACKEND_PARAMETERS)

    def _task_selector(self, task_id: str) -> str:
        return f"{self._selector},{TASK_ID_LABEL}={task_id}"

    def not_ready_reason(self) -> str | None:
        """Why the backend cannot take tasks now (None: it can): not started, or the API does not answer."""
        if self._kube is None or not self._watchers:
            return "the Kubernetes backend has not started"
        for watcher in self._watchers:
            if watcher.problem == NO_ANSWER:
                return f"the Kubernetes API at {self._kube.host} does not answer"
            if watcher.problem is not None:
                return f"the Kubernetes API at {self._kube.host} refuses to list {watcher.kind}: {watcher.problem}"
        return None

    def ready(self) -> bool:
        return self.not_ready_reason() is None

    # --- lifetime --------------------------------------------------------------------------------

    async def start(self) -> None:
        binary = await asyncio.to_thread(read_entrypoint, self._settings)
        self._entrypoint_config_map = podspec.entrypoint_config_map(binary)
        self._entrypoint_ready = False
        self._entrypoint_lock = asyncio.Lock()
        if self._kube is not None:  # made for live output while this replica stood by
            self._kube.close()
        self._kube = await asyncio.to_thread(Kube, self._settings)
        self._cache = ObjectCache()
        loop = asyncio.get_running_loop()

        def feeder(kind: str) -> Callable[[WatchEvent], None]:
            def deliver(event: WatchEvent) -> None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: we are shutting down
                    loop.call_soon_threadsafe(self._on_event, kind, event)

            return deliver

        kinds: tuple[Kind, ...] = ("pods", "jobs")
        for kind in kinds:
            watcher = self._kube.watcher(kind, self._selector, feeder(kind), self._settings.k8s_resync_seconds)
            watcher.start()
            self._watchers.append(watcher)
        synced = [asyncio.create_task(event.wait()) for event in self._cache.synced.values()]
        _, pending = await asyncio.wait(synced, timeout=FIRST_SYNC_SECONDS)
        for waiter in pending:
            waiter.cancel()
        if pending:
            log.warning(
                "kubernetes: no list of pods/jobs after %.0f s; going on, the watches keep trying", FIRST_SYNC_SECONDS
            )

    async def close(self) -> None:
        watchers, self._watchers = self._watchers, []
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in watchers))
        if self._kube is not None:
            self._kube.close()

    def _on_event(self, kind: str, event: WatchEvent) -> None:
        what, payload = event
        if what == "SYNC":
            self._cache.sync(kind, payload)
        else:
            self._cache.apply(kind, what, payload)

    # --- admission -------------------------------------------------------------------------------

    def capacity(self) -> dict[str, str]:
        return {
            "namespace": self._settings.k8s_namespace,
            "tasks running at most": str(self._settings.k8s_max_running_tasks),
            "tasks admitted now": str(len(self._reserved)),
        }

    async def executor_output(
        self, task: Task, index: int, stream: Stream, offset: int, follow: bool
    ) -> AsyncGenerator[bytes | EndOfOutput, None]:
        """The executor's own stream, read inside its running container by its helper (``--read``, through
        pods/exec): the file the helper holds open for the command, so nothing a task did to the path
        changes what is read, and ktes opens no path at all. A follow that reaches the executor's end says
        so (:data:`END_OF_OUTPUT`); the helper waits for it before its container ends. Nothing when the
        container is not running (not started, or ended: the task's logs then hold the tail) or ktes may not
        exec (see docs/kubernetes.md)."""
        container = executor_container_name(index)
        if not self._exec_allowed or task.id is None:
            return
        pod = await self._pod_running(task.id, container)
        if pod is None:
            return
        command = [podspec.ENTRYPOINT, "--read", stream, "--index", str(index), "--state-dir", podspec.STATE_DIR]
        command += ["--offset", str(offset), *(["--follow"] if follow else [])]
        try:
            async with contextlib.aclosing(self.kube.exec_output(pod, container, command)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except KubeError as exc:
            if exc.status == 403:
                self._exec_allowed = False
                log.warning("kubernetes: %s; executors' output is shown when each ends (grant pods/exec)", exc)
            elif exc.status == 400 or (isinstance(exc, ExecFailed) and exc.code in READER_NOTHING_NOW):
                log.debug("kubernetes: no live output of %s/%s now: %s", pod, container, exc)
            else:  # it ended meanwhile, or the stream broke: the caller looks again
                log.info("kubernetes: live output of %s/%s: %s", pod, container, exc)
            return
        if follow:
            yield END_OF_OUTPUT

    async def _pod_running(self, task_id: str, container: str) -> str | None:
        """The task's Pod in which ``container`` runs now: from the watches' cache where this replica runs the
        engine, else (a replica serving only the API, or standing by for the Lease) from a list of the task's
        Pods, through a client of its own made on first use."""
        if self._watchers:
            return self._cache.pod_running(task_id, container)
        try:
            if self._kube is None:
                made = await asyncio.to_thread(Kube, self._settings)
                if self._kube is None:
                    self._kube = made
                else:  # another reader made one meanwhile
                    made.close()
            pods = await self._kube.list_objects("pods", self._task_selector(task_id))
        except KubeError as exc:
            log.debug("kubernetes: cannot look for the pod of task %s: %s", task_id, exc)
            return None
        listed = ObjectCache()
        for pod in pods:
            listed.apply("pods", "ADDED", pod)
        return listed.pod_running(task_id, container)

    def admit(self, task: Task) -> bool:
        if task.id is None:
            return False
        if task.id in self._reserved:
            return True
        if len(self._reserved) >= self._settings.k8s_max_running_tasks or not self.ready():
            return False
        self._reserved.add(task.id)
        return True

    # --- running ---------------------------------------------------------------------------------

    async def run(self, task: Task, report: Reporter) -> None:
        assert task.id is not None
        task_id = task.id
        self._reserved.add(task_id)
        self._following.add(task_id)
        entry = self._cache.follow(task_id)
        try:
            started = clock.now()
            name = job_name(task_id)
            await report(task_id, Initializing(started, {"namespace": self.kube.namespace, "job": name}))
            try:
                needed = podspec.needs_secret(task, self._settings)
                secret_body = podspec.secret(task, self._settings) if needed else None
                job_body = podspec.job(task, self._settings, self._entrypoint_name())
            except podspec.PodSpecError as exc:
                await report(task_id, Ended(State.SYSTEM_ERROR, clock.now(), str(exc)))
                return
            failure = await self._create(task_id, secret_body, job_body)
            if failure is not None:
                await report(task_id, Ended(State.SYSTEM_ERROR, clock.now(), failure))
                await self._remove(task_id)
                return
            if task_id in self._canceled:  # canceled while we were creating: cancel may have missed them
                await self._remove(task_id)
                return
            await self._follow(task, entry, report, started)
        finally:
            self._cache.unfollow(task_id)
            self._following.discard(task_id)
            self._reserved.discard(task_id)
            self._canceled.discard(task_id)
            self._secrets_to_delete.discard(task_id)

    def _entrypoint_name(self) -> str:
        return str(self._entrypoint_config_map["metadata"]["name"])

    async def _ensure_entrypoint(self) -> None:
        """The helper's ConfigMap exists in the namespace (made once; "already exists" is fine)."""
        if self._entrypoint_ready:
            return
        async with self._entrypoint_lock:
            if not self._entrypoint_ready:
                with contextlib.suppress(AlreadyExists):
                    await self.kube.create_config_map(self._entrypoint_config_map)
                self._entrypoint_ready = True

    async def _create(self, task_id: str, secret_body: dict[str, Any] | None, job_body: dict[str, Any]) -> str | None:
        """Create the Secret (if the task has one), then the Job, then make the Job own the Secret. A failure
        as a sentence."""
        name = job_name(task_id)
        if secret_body is not None:
            self._secrets_to_delete.add(task_id)
        try:
            created = await self._answered(f"creating Job {name}", lambda: self._make(name, secret_body, job_body))
        except KubeError as exc:
            return str(exc) if isinstance(exc, _JobVanished) else f"Kubernetes refused the task: {exc}"
        try:
            if secret_body is not None:
                await self.kube.set_secret_owner(name, podspec.owner_reference(created))
                self._secrets_to_delete.discard(task_id)
        except KubeError as exc:  # not fatal: the Secret is still deleted with the task, only not by the GC
            log.warning("kubernetes: could not make Job %s own its Secret: %s", name, exc)
        entry = self._cache.entry(task_id)
        if entry.job is None:
            entry.job, entry.job_deleted = created, False
        return None

    async def _make(self, name: str, secret_body: dict[str, Any] | None, job_body: dict[str, Any]) -> dict[str, Any]:
        """The task's Secret (if it has one) and Job (each "already exists" is an earlier try's: carry on with
        it); the Job."""
        await self._ensure_entrypoint()
        if secret_body is not None:
            with contextlib.suppress(AlreadyExists):
                await self.kube.create_secret(secret_body)
        try:
            return await self.kube.create_job(job_body)
        except AlreadyExists:
            found = await self.kube.read_job(name)
            if found is None:
                raise _JobVanished(f"could not create the task's Job {name}: it exists and does not") from None
            return found

    async def _answered(
        self, what: str, call: Callable[[], Awaitable[T]], *, answered_errors_for: float | None = None
    ) -> T:
        """``call()``, again and again while the API does not answer it (no connection, 429, 5xx), until it
        does; other errors are raised. The caller's task waits meanwhile, as the engine waits for the store.
        With ``answered_errors_for``, a 5xx the API keeps answering (e.g. the node's kubelet does not answer
        it) is raised once that many seconds have passed since the first; no answer at all is waited out."""
        delay = API_RETRY_FIRST_SECONDS
        first_answered_error: float | None = None
        while True:
            try:
                return await call()
            except KubeError as exc:
                if not transient(exc):
                    raise
                if exc.status and answered_errors_for is not None:
                    first_answered_error = first_answered_error or time.monotonic()
                    if time.monotonic() - first_answered_error >= answered_errors_for:
                        raise
                log.warning("kubernetes: %s failed (%s); trying again in %.1f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, API_RETRY_MAX_SECONDS)

    async def adopt(self, task: Task, report: Reporter) -> None:
        assert task.id is not None
        task_id = task.id
        name = job_name(task_id)
        if task.state == State.INITIALIZING and await self._read_job(name) is None:
            # The last engine stopped (a rolling upgrade, a crash) after taking the task and before its Job
            # existed: nothing of it ran, so it starts now.
            await report(task_id, SystemLog("ktes restarted before the task's Job was made; making it now"))
            await self.run(task, report)
            return
        self._reserved.add(task_id)
        self._following.add(task_id)
        self._secrets_to_delete.add(task_id)
        entry = self._cache.follow(task_id)
        try:
            job = await self._read_job(name)
            if job is None:
                why = f"its Job {name} was gone when ktes restarted, so the task could not be followed"
                await report(task_id, Ended(State.SYSTEM_ERROR, clock.now(), why))
                await self._remove(task_id)
                return
            pods = await self._list("pods", self._task_selector(task_id))
            entry.job, entry.job_deleted = job, False
            for pod in pods:
                entry.pods.setdefault(str(pod["metadata"]["name"]), pod)
            started = (task.logs[0].start_time if task.logs else None) or clock.now()
            await report(task_id, Initializing(started, {"namespace": self.kube.namespace, "job": name}))
            await self._follow(task, entry, report, started)
        finally:
            self._cache.unfollow(task_id)
            self._following.discard(task_id)
            self._reserved.discard(task_id)
            self._canceled.discard(task_id)
            self._secrets_to_delete.discard(task_id)

    async def _read_job(self, name: str) -> dict[str, Any] | None:
        return await self._answered(f"reading Job {name}", lambda: self.kube.read_job(name))

    async def _list(self, kind: Literal["pods", "jobs", "secrets"], selector: str) -> list[dict[str, Any]]:
        return await self._answered(f"listing {kind}", lambda: self.kube.list_objects(kind, selector))

    async def _follow(self, task: Task, entry: TaskObjects, report: Reporter, started: str) -> None:
        """Judge the task at each change of its objects until it ends; then report and clean up."""
        assert task.id is not None
        task_id = task.id
        progress = status.Progress()
        notes = _WaitNotes(self._settings.k8s_wait_note_seconds)
        while True:
            if task_id in self._canceled:
                return
            entry.changed.clear()
            now = datetime.now(UTC)
            observed = entry.observed()
            judged = status.assess(task, observed, progress, self._settings, now)
            for started_now in judged.started:
                await report(task_id, started_now)
            if judged.node is not None:
                pods = entry.pods or entry.deleted_pods
                metadata = {"node": judged.node, "pod": min(pods) if pods else ""}
                await report(task_id, Initializing(started, metadata))
            verdict = judged.verdict
            if isinstance(verdict, status.Going):
                timeout = self._settings.k8s_resync_seconds
                if verdict.recheck_after is not None:
                    timeout = min(timeout, verdict.recheck_after + 0.05)
                wait = waiting.waiting_for(observed, len(task.executors))
                due = notes.due(wait, time.monotonic())
                if due is not None:
                    await report(task_id, SystemLog(await self._wait_sentence(due, observed)))
                if notes.recheck_after is not None:
                    timeout = min(timeout, notes.recheck_after + 0.05)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(entry.changed.wait(), timeout)
                continue
            if isinstance(verdict, status.Failed):
                final = verdict.observations
            else:
                final = await self._read_logs(task, verdict, progress)
            if task_id in self._canceled:
                return
            for observation in final:
                await report(task_id, observation)
            if not isinstance(verdict, status.Failed) and not self._settings.k8s_keep_finished_jobs:
                await self._job_finished(task_id, entry)
            await self._finished(task_id, entry)
            return

    async def _wait_sentence(self, wait: waiting.Wait, observed: status.Observed) -> str:
        """The note's sentence, with a stage container's last retry (why a transfer is slow) when it has one."""
        if wait.container is None or not observed.pods:
            return wait.sentence
        pod = min(observed.pods, key=lambda p: str(p["metadata"].get("creationTimestamp") or ""))
        try:
            log_text = await self.kube.pod_log(str(pod["metadata"]["name"]), wait.container)
        except KubeError:
            return wait.sentence
        retry = waiting.last_retry(log_text)
        return f"{wait.sentence}; the last attempt: {retry}" if retry else wait.sentence

    async def _read_logs(self, task: Task, ended: status.PodEnded, progress: status.Progress) -> list[Observation]:
        """Each executor's result line and stage-out's report: from the containers' termination messages when
        they hold them (no request: the watch brought them), else from the container logs (read together)."""
        results: dict[int, ExecutorReport | None] = {}
        for index in range(len(task.executors)):
            message = ended.messages.get(executor_container_name(index), "")
            results[index] = parse_result_message(message, index) if message else None
        report: StageOutReport | None = None
        if ended.stage_out_code is not None:
            report = parse_report_message(ended.messages.get(STAGE_OUT, ""))
        names = [executor_container_name(i) for i, found in results.items() if found is None]
        if ended.stage_out_code is not None and report is None:
            names.append(STAGE_OUT)
        logs: dict[str, str] = {}
        if names:
            try:
                texts = await self._answered(
                    f"reading the logs of pod {ended.pod_name}",
                    lambda: asyncio.gather(*(self.kube.pod_log(ended.pod_name, name) for name in names)),
                    answered_errors_for=LOG_ERRORS_SECONDS,
                )
            except KubeError as exc:
                why = f"the task's pod ended but its logs could not be read: {exc}"
                return [Ended(State.SYSTEM_ERROR, clock.now(), why)]
            logs = dict(zip(names, texts, strict=True))
        for index, found in results.items():
            if found is None and executor_container_name(index) in logs:
                parsed = parse_result(logs[executor_container_name(index)])
                results[index] = parsed if parsed is not None and parsed.index == index else None
        now = datetime.now(UTC)
        if STAGE_OUT in logs:
            report = parse_report(logs[STAGE_OUT])
            if report is None:
                return status.no_report(ended, logs[STAGE_OUT], now)
        ran = [found for found in results.values() if found is not None]
        return status.final_observations(task, ran, report, progress, now)

    async def _job_finished(self, task_id: str, entry: TaskObjects) -> None:
        """Wait (at most :data:`JOB_FINISH_SECONDS`) until the watch shows the Job controller has recorded the
        task's Job as done. Deleting the ended Pod of a Job it has not seen finish makes it start a new Pod,
        which runs the executors a second time: seen after an API server outage, when the controller-manager's
        view of the Pods lags tens of seconds behind."""
        deadline = time.monotonic() + JOB_FINISH_SECONDS
        while not status.job_finished(entry.job):
            left = deadline - time.monotonic()
            if left <= 0:
                name = job_name(task_id)
                log.warning("kubernetes: Job %s not seen finished in %g s; deleting it", name, JOB_FINISH_SECONDS)
                return
            entry.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry.changed.wait(), left)

    async def _finished(self, task_id: str, entry: TaskObjects) -> None:
        """The task's report is read: nothing of it needs to stay (unless configured to keep Jobs).

        One write in the usual case: the Job is deleted and the garbage collector takes its Pod and the
        Secret it owns. A Pod still running (a failure ended the task early) is deleted too, with a short
        grace period, and a Secret the Job does not own. What to delete comes from the watch's cache, not
        from a list per task (API load: see docs/scale.md)."""
        if self._settings.k8s_keep_finished_jobs:
            return
        name = job_name(task_id)
        running = [pod_name for pod_name, pod in entry.pods.items() if not _pod_over(pod)]
        try:
            await self._answered(f"deleting Job {name}", lambda: self.kube.delete_job(name))
            for pod_name in running:
                await self._answered(
                    f"deleting Pod {pod_name}", functools.partial(self.kube.delete_pod, pod_name, GRACE_SECONDS)
                )
            if task_id in self._secrets_to_delete:
                await self._answered(f"deleting Secret {name}", lambda: self.kube.delete_secret(name))
        except KubeError as exc:  # sweep and ttlSecondsAfterFinished catch what is left
            log.warning("kubernetes: cleaning up task %s failed: %s", task_id, exc)

    async def _remove(self, task_id: str) -> None:
        """Delete the task's Job, Pods and Secret (each "not found" is fine)."""
        name = job_name(task_id)
        await self._answered(f"deleting Job {name}", lambda: self.kube.delete_job(name))
        selector = self._task_selector(task_id)
        await self._answered(f"deleting the pods of {name}", lambda: self.kube.delete_pods(selector, GRACE_SECONDS))
        await self._answered(f"deleting Secret {name}", lambda: self.kube.delete_secret(name))

    # --- cancel and sweep ------------------------------------------------------------------------

    async def cancel(self, task_id: str) -> None:
        self._canceled.add(task_id)
        entry = self._cache.follow(task_id)
        try:
            entry.changed.set()  # the task's follower sees the cancel at once
            await self._remove(task_id)
            await self._wait_pods_gone(task_id)
        finally:
            self._cache.unfollow(task_id)
            if task_id not in self._following:
                self._canceled.discard(task_id)
                self._reserved.discard(task_id)

    async def _wait_pods_gone(self, task_id: str) -> None:
        selector = self._task_selector(task_id)
        deadline = time.monotonic() + GONE_TIMEOUT_SECONDS
        delay = 0.2
        while True:
            pods = await self._list("pods", selector)
            if not pods:
                return
            if time.monotonic() > deadline:
                raise KubeError(
                    f"the pods of task {task_id} were still there {GONE_TIMEOUT_SECONDS:g} s after a cancel"
                )
            entry = self._cache.entry(task_id)
            entry.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry.changed.wait(), delay)
            delay = min(2.0, delay * 1.5)

    async def sweep(self, active_task_ids: Iterable[str]) -> list[str]:
        active = set(active_task_ids) | self._following
        found: set[str] = set()
        kinds: tuple[Literal["jobs", "pods", "secrets"], ...] = ("jobs", "pods", "secrets")
        for kind in kinds:
            for obj in await self._list(kind, self._selector):
                task_id = task_id_of(obj)
                if task_id is not None and task_id not in active:
                    found.add(task_id)
        for task_id in sorted(found):
            try:
                await self._remove(task_id)
            except KubeError as exc:
                log.warning("kubernetes: sweeping task %s failed: %s", task_id, exc)
        return sorted(found)


class _JobVanished(KubeError):
    """The task's Job was said to exist, and then could not be read."""


def _pod_over(pod: dict[str, Any]) -> bool:
    """Every container of the Pod has stopped (its phase or each container's state says so), or it is being
    deleted already."""
    pod_status = pod.get("status") or {}
    if pod_status.get("phase") in ("Succeeded", "Failed") or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return True
    states = [(c.get("state") or {}) for c in pod_status.get("containerStatuses") or []]
    return bool(states) and all("terminated" in state for state in states)


class _WaitNotes:
    """Times each kind of wait of one task; one note per kind, once it has lasted ``after`` seconds."""

    def __init__(self, after: float) -> None:
        self.after = after
        self._since: dict[str, float] = {}
        self._noted: set[str] = set()
        self.recheck_after: float | None = None

    def due(self, wait: waiting.Wait | None, now: float) -> waiting.Wait | None:
        self.recheck_after = None
        if wait is None or wait.key in self._noted:
            return None
        since = self._since.setdefault(wait.key, now)
        left = self.after - (now - since)
        if left > 0:
            self.recheck_after = left
            return None
        self._noted.add(wait.key)
        return wait
