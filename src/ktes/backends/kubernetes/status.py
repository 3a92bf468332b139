"""What a task's Job and Pod say, as observations and decisions. Pure: no I/O, time passed in.

:func:`assess` looks at the latest Job and Pod (API JSON dicts) and says which executors started and whether
the task is still going, has failed (and why, in a sentence a user understands), or has reached the end of
stage-out (then the backend reads the report from its log and :func:`report_observations` turns it into
the final observations). Conditions that only become failures after a while (an image that cannot be
pulled, a Pod nobody can schedule) are timed in :class:`Progress`, which the caller keeps between calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ktes.backends.kubernetes.podspec import STAGE_IN, STAGE_OUT, executor_container_name
from ktes.backends.kubernetes.report import REPORT_MARKER, PodReport
from ktes.config import Settings
from ktes.engine.clock import rfc3339 as _rfc3339
from ktes.engine.observations import (
    Ended,
    ExecutorFinished,
    ExecutorStarted,
    Observation,
    OutputsUploaded,
    SystemLog,
)
from ktes.tes.models import ExecutorLog, State, Task
from ktes.tes.outcome import executors_outcome, stops_run

#: container waiting reasons that mean the image will not come; the pull is retried for a while first.
PULL_RETRIED = frozenset({"ErrImagePull", "ImagePullBackOff"})
#: ... and those that will never change.
PULL_FINAL = frozenset({"ErrImageNeverPull", "InvalidImageName"})
#: the kubelet cannot create or start the container (retried by the kubelet; timed like a pull).
CREATE_FAILED = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
#: a failed Pod with one of these reasons was taken away by the cluster, not ended by the task.
PREEMPTION_REASONS = frozenset({"Evicted", "Preempting", "Shutdown", "NodeShutdown", "Terminated", "NodeLost"})
#: the kubelet's eviction messages for a Pod over its own disk limits (not for node pressure).
_OVER_DISK_LIMIT = ("exceeds the limit", "exceeded its local ephemeral storage limit", "exceeds the total limit")
#: how long a Pod deleted by someone else is given for the Job to say why (e.g. its deadline).
LOST_GRACE_SECONDS = 5.0


@dataclass
class Observed:
    """What the watch knows about one task's objects (API JSON)."""

    job: dict[str, Any] | None = None
    #: the Job was seen deleted, or is known not to exist.
    job_gone: bool = False
    #: live Pods of the task (a deleting Pod has ``metadata.deletionTimestamp``).
    pods: list[dict[str, Any]] = field(default_factory=list)
    #: the last state of Pods that were deleted.
    deleted_pods: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Progress:
    """What earlier assessments of the task noticed (kept by the caller)."""

    started: set[int] = field(default_factory=set)
    node: str | None = None
    #: condition key -> when it was first seen (reset when it clears).
    since: dict[str, datetime] = field(default_factory=dict)
    #: condition key -> its most telling message so far (ErrImagePull says more than ImagePullBackOff).
    messages: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Going:
    """Still going. Look again at the next change, or after ``recheck_after`` seconds."""

    recheck_after: float | None = None


@dataclass(frozen=True)
class Failed:
    """The task is over without a report: ``observations`` end with :class:`Ended`."""

    observations: list[Observation]


@dataclass(frozen=True)
class StageOutEnded:
    """stage-out has ended: read its log for the report."""

    pod_name: str
    exit_code: int
    message: str


Verdict = Going | Failed | StageOutEnded


@dataclass(frozen=True)
class Assessment:
    #: executors seen starting since the last assessment.
    started: list[ExecutorStarted]
    #: the node, when first known.
    node: str | None
    verdict: Verdict


# --- reading the API's shapes -----------------------------------------------------------------------


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = obj.get("metadata") or {}
    return meta


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = obj.get("status") or {}
    return status


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in _status(obj).get("conditions") or []:
        if cond.get("type") == kind:
            found: dict[str, Any] = cond
            return found
    return None


def _container_statuses(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    status = _status(pod)
    found: dict[str, dict[str, Any]] = {}
    for item in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        found[item.get("name", "")] = item
    return found


def _container_images(pod: dict[str, Any]) -> dict[str, str]:
    spec = pod.get("spec") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    return {c["name"]: c.get("image", "") for c in containers}


def _creation(obj: dict[str, Any]) -> str:
    return str(_meta(obj).get("creationTimestamp") or "")


def _executor_index(name: str) -> int | None:
    prefix = executor_container_name(0)[:-1]
    if name.startswith(prefix) and name[len(prefix) :].isdigit():
        return int(name[len(prefix) :])
    return None


def _describe(container: str) -> str:
    index = _executor_index(container)
    return f"executor {index}" if index is not None else container


def _ram(task: Task) -> str:
    ram = task.resources.ram_gb if task.resources else None
    return f"ram_gb={ram:g}" if ram else "no ram_gb set; the namespace's default limit applies"


def _clean(message: str | None) -> str:
    return " ".join((message or "").split())


# --- the verdict ------------------------------------------------------------------------------------


class _Clock:
    """Times conditions across assessments; says when to look again."""

    def __init__(self, progress: Progress, now: datetime) -> None:
        self.progress = progress
        self.now = now
        self.seen: set[str] = set()
        self.recheck: float | None = None

    def lasted(self, key: str, limit: float) -> bool:
        """Whether condition ``key`` (present now) has lasted ``limit`` seconds."""
        self.seen.add(key)
        since = self.progress.since.setdefault(key, self.now)
        left = limit - (self.now - since).total_seconds()
        if left <= 0:
            return True
        self.recheck = left if self.recheck is None else min(self.recheck, left)
        return False

    def forget_cleared(self) -> None:
        for key in [k for k in self.progress.since if k not in self.seen]:
            del self.progress.since[key]
            self.progress.messages.pop(key, None)


def _fail(state: State, reason: str, now: str, before: list[Observation] | None = None) -> Failed:
    return Failed([*(before or []), Ended(state=state, end_time=now, reason=reason)])


def _started(pod: dict[str, Any], progress: Progress) -> list[ExecutorStarted]:
    """Executors whose container is running (or ended on its own with an error) and not reported yet."""
    found: list[ExecutorStarted] = []
    for name, cstatus in _container_statuses(pod).items():
        index = _executor_index(name)
        if index is None or index in progress.started:
            continue
        state = cstatus.get("state") or {}
        running = state.get("running")
        ended = state.get("terminated")
        if running is not None:
            found.append(ExecutorStarted(index, running.get("startedAt") or ""))
        elif ended is not None and ended.get("exitCode", 0) != 0:
            found.append(ExecutorStarted(index, ended.get("startedAt") or ""))
    found.sort(key=lambda s: s.index)
    for item in found:
        progress.started.add(item.index)
    return found


def _is_deleted(pod: dict[str, Any], observed: Observed) -> bool:
    return any(p is pod for p in observed.deleted_pods) or bool(_meta(pod).get("deletionTimestamp"))


def _pick_pod(observed: Observed) -> dict[str, Any] | None:
    """The Pod to judge: the task's first one. If it is deleted, the Job may have made another; that one
    does not count (the task ran in the first, and the Job is deleted when the task ends)."""
    every = [*observed.pods, *observed.deleted_pods]
    if not every:
        return None
    return min(every, key=lambda p: (_creation(p), _meta(p).get("name", "")))


def _job_failure(job: dict[str, Any] | None) -> dict[str, Any] | None:
    if job is None:
        return None
    cond = _condition(job, "Failed")
    if cond is not None and cond.get("status") == "True":
        return cond
    return None


def _deadline_failure(job: dict[str, Any] | None, end: str) -> Failed | None:
    cond = _job_failure(job)
    if cond is None or cond.get("reason") != "DeadlineExceeded" or job is None:
        return None
    seconds = (job.get("spec") or {}).get("activeDeadlineSeconds")
    limit = f"its deadline of {seconds} s" if seconds else "its deadline"
    return _fail(State.SYSTEM_ERROR, f"the task ran longer than {limit} (deadline_seconds) and was stopped", end)


def _failed_pod(task: Task, pod: dict[str, Any], end: str) -> Failed:
    """Why a Pod in phase Failed failed (stage-out has not ended: its report would say more)."""
    status = _status(pod)
    reason, message = status.get("reason") or "", _clean(status.get("message"))
    node = (pod.get("spec") or {}).get("nodeName") or "its node"
    if reason == "Evicted" and any(words in message for words in _OVER_DISK_LIMIT):
        disk = task.resources.disk_gb if task.resources else None
        asked = f"disk_gb={disk:g}" if disk else "no disk_gb set"
        return _fail(State.EXECUTOR_ERROR, f"the task used more disk than it asked for ({asked}): {message}", end)
    if reason in PREEMPTION_REASONS:
        return _fail(State.PREEMPTED, f"the pod was taken off {node} ({reason}): {message}".rstrip(": "), end)
    statuses = _container_statuses(pod)
    stage_in = ((statuses.get(STAGE_IN) or {}).get("state") or {}).get("terminated")
    if stage_in is not None and stage_in.get("exitCode", 0) != 0:
        if stage_in.get("reason") == "OOMKilled":
            return _fail(State.SYSTEM_ERROR, "staging the inputs ran out of memory (k8s_stage_limits)", end)
        why = _clean(stage_in.get("message")) or f"exit code {stage_in.get('exitCode')}"
        return _fail(State.SYSTEM_ERROR, f"staging the inputs failed: {why}", end)
    for index in range(len(task.executors)):
        ended = ((statuses.get(executor_container_name(index)) or {}).get("state") or {}).get("terminated")
        if ended is None or ended.get("exitCode", 0) == 0:
            continue
        code = int(ended.get("exitCode", 1))
        log = ExecutorLog(start_time=ended.get("startedAt"), end_time=ended.get("finishedAt"), exit_code=code)
        before: list[Observation] = [ExecutorFinished(index, log)]
        if ended.get("reason") == "OOMKilled":
            why = f"executor {index} was killed for exceeding its memory limit ({_ram(task)})"
            return _fail(State.EXECUTOR_ERROR, why, end, before)
        detail = _clean(ended.get("message")) or ended.get("reason") or ""
        why = f"executor {index} (image {task.executors[index].image}) could not be run: exit code {code}"
        return _fail(State.SYSTEM_ERROR, f"{why}: {detail}" if detail else why, end, before)
    why = f"the pod failed: {reason or 'no reason given'}"
    return _fail(State.SYSTEM_ERROR, f"{why}: {message}" if message else why, end)


def _stuck_container(task: Task, pod: dict[str, Any], clock: _Clock, settings: Settings, end: str) -> Failed | None:
    """A container that cannot be pulled or created, once that has lasted long enough."""
    images = _container_images(pod)
    for name, cstatus in _container_statuses(pod).items():
        waiting = (cstatus.get("state") or {}).get("waiting")
        if not waiting:
            continue
        reason, message = waiting.get("reason") or "", _clean(waiting.get("message"))
        image = images.get(name) or cstatus.get("image") or "?"
        who = _describe(name)
        if reason in PULL_FINAL:
            return _fail(State.SYSTEM_ERROR, f"image {image} ({who}) could not be pulled: {reason}: {message}", end)
        if reason in PULL_RETRIED:
            key = f"pull:{name}"
            if reason == "ErrImagePull" or key not in clock.progress.messages:
                clock.progress.messages[key] = message or reason
            if clock.lasted(key, settings.k8s_image_pull_timeout_seconds):
                told = clock.progress.messages[key]
                return _fail(State.SYSTEM_ERROR, f"image {image} ({who}) could not be pulled: {told}", end)
        elif reason in CREATE_FAILED:
            key = f"create:{name}"
            clock.progress.messages[key] = message or reason
            if clock.lasted(key, settings.k8s_image_pull_timeout_seconds):
                why = f"the container of {who} (image {image}) could not be started: {reason}: {message}"
                return _fail(State.SYSTEM_ERROR, why, end)
    return None


def _unschedulable(pod: dict[str, Any], clock: _Clock, settings: Settings, end: str) -> Failed | None:
    cond = _condition(pod, "PodScheduled")
    if cond is None or cond.get("status") != "False" or cond.get("reason") != "Unschedulable":
        return None
    limit = settings.k8s_unschedulable_timeout_seconds
    if not clock.lasted("unschedulable", limit):
        return None
    why = f"no node could run the task's pod for {limit:g} s: {_clean(cond.get('message'))}"
    return _fail(State.SYSTEM_ERROR, why.rstrip(": "), end)


def _without_pod(observed: Observed, clock: _Clock, settings: Settings, end: str) -> Verdict:
    job = observed.job
    if job is None and observed.job_gone:
        return _fail(State.SYSTEM_ERROR, "the task's Job was deleted before the task finished", end)
    cond = _job_failure(job)
    if cond is not None:
        why = f"the task's Job failed: {cond.get('reason')}: {_clean(cond.get('message'))}"
        return _fail(State.SYSTEM_ERROR, why.rstrip(": "), end)
    if job is not None and (_status(job).get("succeeded") or 0) > 0:
        return _fail(State.SYSTEM_ERROR, "the task's pod finished but was gone before its report could be read", end)
    limit = settings.k8s_unschedulable_timeout_seconds
    if clock.lasted("no-pod", limit):
        why = f"Kubernetes made no pod for the task's Job in {limit:g} s (a quota or an admission policy?)"
        return _fail(State.SYSTEM_ERROR, why, end)
    return Going(clock.recheck)


def assess(task: Task, observed: Observed, progress: Progress, settings: Settings, now: datetime) -> Assessment:
    """Judge the task's Job and Pod now. ``progress`` is updated (started executors, timers)."""
    end = _rfc3339(now)
    clock = _Clock(progress, now)
    pod = _pick_pod(observed)
    started = _started(pod, progress) if pod is not None else []
    node = None
    if pod is not None:
        pod_node = (pod.get("spec") or {}).get("nodeName")
        if pod_node and pod_node != progress.node:
            progress.node = node = pod_node
    verdict = _verdict(task, observed, pod, clock, settings, end)
    clock.forget_cleared()
    return Assessment(started=started, node=node, verdict=verdict)


def _verdict(
    task: Task,
    observed: Observed,
    pod: dict[str, Any] | None,
    clock: _Clock,
    settings: Settings,
    end: str,
) -> Verdict:
    deadline = _deadline_failure(observed.job, end)
    if deadline is not None:
        return deadline
    if pod is None:
        return _without_pod(observed, clock, settings, end)
    stage_out = ((_container_statuses(pod).get(STAGE_OUT) or {}).get("state") or {}).get("terminated")
    if stage_out is not None:
        code = int(stage_out.get("exitCode", 0))
        return StageOutEnded(_meta(pod).get("name", ""), code, _clean(stage_out.get("message")))
    phase = _status(pod).get("phase")
    if phase == "Failed":
        return _failed_pod(task, pod, end)
    if _is_deleted(pod, observed):
        if clock.lasted("lost", LOST_GRACE_SECONDS):
            name = _meta(pod).get("name", "")
            why = f"the task's pod {name} was deleted before the task finished (preempted, drained or evicted)"
            return _fail(State.PREEMPTED, why, end)
        return Going(clock.recheck)
    if phase == "Succeeded":  # stage-out's status not there: still read the report
        return StageOutEnded(_meta(pod).get("name", ""), 0, "")
    stuck = _stuck_container(task, pod, clock, settings, end)
    if stuck is not None:
        return stuck
    unschedulable = _unschedulable(pod, clock, settings, end)
    if unschedulable is not None:
        return unschedulable
    not_starting = _not_starting(pod, clock, settings, end)
    if not_starting is not None:
        return not_starting
    return Going(clock.recheck)


def _not_starting(pod: dict[str, Any], clock: _Clock, settings: Settings, end: str) -> Failed | None:
    """A scheduled Pod whose first container never starts (a volume that cannot be mounted, ...)."""
    scheduled = _condition(pod, "PodScheduled")
    if scheduled is None or scheduled.get("status") != "True":
        return None
    stage_in = (_container_statuses(pod).get(STAGE_IN) or {}).get("state") or {}
    if "running" in stage_in or "terminated" in stage_in:
        return None
    limit = settings.k8s_unschedulable_timeout_seconds
    if not clock.lasted("not-starting", limit):
        return None
    waiting = stage_in.get("waiting") or {}
    detail = _clean(f"{waiting.get('reason') or ''}: {waiting.get('message') or ''}").strip(": ")
    node = (pod.get("spec") or {}).get("nodeName") or "its node"
    why = f"the task's pod did not start on {node} within {limit:g} s"
    return _fail(State.SYSTEM_ERROR, f"{why} ({detail})" if detail else why, end)


# --- the report -------------------------------------------------------------------------------------


def parse_report(log: str) -> PodReport | None:
    """stage-out's report: the last line of ``log`` that starts with the marker (None if there is none)."""
    for line in reversed(log.splitlines()):
        line = line.strip()
        if line.startswith(REPORT_MARKER):
            try:
                return PodReport.model_validate(json.loads(line[len(REPORT_MARKER) :]))
            except (ValueError, ValidationError):
                return None
    return None


def no_report(ended: StageOutEnded, log: str, now: datetime) -> list[Observation]:
    """stage-out ended without a readable report."""
    tail = _clean(ended.message) or _clean("\n".join(log.splitlines()[-5:]))
    why = f"stage-out ended (exit code {ended.exit_code}) without a report"
    reason = f"{why}: {tail}" if tail else why
    return [Ended(state=State.SYSTEM_ERROR, end_time=_rfc3339(now), reason=reason)]


def report_observations(task: Task, report: PodReport, progress: Progress, now: datetime) -> list[Observation]:
    """The final observations from stage-out's report: each executor's log, the outputs, the end."""
    found: list[Observation] = []
    codes: list[int] = []
    reason: str | None = None
    for item in sorted(report.executors, key=lambda e: e.result.index):
        result = item.result
        index = result.index
        if index >= len(task.executors):
            continue
        if index not in progress.started:
            progress.started.add(index)
            found.append(ExecutorStarted(index, result.start_time))
        log = ExecutorLog(
            start_time=result.start_time,
            end_time=result.end_time,
            stdout=item.stdout,
            stderr=item.stderr,
            exit_code=result.exit_code,
        )
        found.append(ExecutorFinished(index, log))
        codes.append(result.exit_code)
        why: str | None = None
        if result.oom_killed:
            why = f"executor {index} was killed for exceeding its memory limit ({_ram(task)})"
        elif result.error:
            why = f"executor {index} could not start its command: {result.error}"
        elif result.exit_code != 0:
            why = f"executor {index} exited with code {result.exit_code}"
        if why is None:
            continue
        if stops_run(task.executors[index], result.exit_code):
            reason = reason or why
        else:
            found.append(SystemLog(f"{why} (ignored: ignore_error is set)"))
    state = executors_outcome(task.executors, codes)
    if state == State.EXECUTOR_ERROR and reason is None:
        reason = "the executors did not all run"
    if state == State.COMPLETE:
        if report.outputs or task.outputs:
            found.append(OutputsUploaded(list(report.outputs)))
        if report.error:
            state, reason = State.SYSTEM_ERROR, report.error
    found.append(Ended(state=state, end_time=_rfc3339(now), reason=reason))
    return found
