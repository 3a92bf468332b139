"""What a task's Job and Pod say, as observations and decisions. Pure: no I/O, time passed in.

:func:`assess` looks at the latest Job and Pod (API JSON dicts) and says which executors started and whether
the task is still going, has failed (and why, in a sentence a user understands), or every container of the
Pod has ended (then the backend reads each executor's result line and stage-out's report from their logs,
and :func:`final_observations` turns them into the final observations). Conditions that only become
failures after a while (an image that cannot be pulled, a Pod nobody can schedule) are timed in
:class:`Progress`, which the caller keeps between calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ktes.backends.kubernetes.podspec import STAGE_IN, STAGE_OUT, WORKSPACE_VOLUME, executor_container_name
from ktes.config import Settings
from ktes.run import outcome
from ktes.run.clock import rfc3339 as _rfc3339
from ktes.run.observations import Ended, ExecutorFinished, ExecutorStarted, Observation
from ktes.run.result import ExecutorReport, StageOutReport
from ktes.tes.models import ExecutorLog, State, Task

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
class PodEnded:
    """Every container has ended: take the executors' results and stage-out's report from the containers'
    termination messages, or from their logs where a message does not hold them."""

    pod_name: str
    #: stage-out's exit code and termination message (None: the task has no stage-out).
    stage_out_code: int | None = None
    stage_out_message: str = ""
    #: container name -> its termination message as the kubelet recorded it (not cleaned), when it has one.
    messages: dict[str, str] = field(default_factory=dict)


Verdict = Going | Failed | PodEnded


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


def job_finished(job: dict[str, Any] | None) -> bool:
    """The Job controller has recorded the Job as done (Complete or Failed), or the Job is gone: it makes no
    new Pod for it any more."""
    if job is None:
        return True
    return any((_condition(job, kind) or {}).get("status") == "True" for kind in ("Complete", "Failed"))


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


def _image_sentence(image: str, container: str, detail: str) -> str:
    index = _executor_index(container)
    if index is None:
        return f"image {image} ({container}) could not be pulled: {detail}"
    return outcome.image_sentence(image, index, detail)


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


def _terminated(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    ended: dict[str, Any] | None = ((_container_statuses(pod).get(name) or {}).get("state") or {}).get("terminated")
    return ended


def _started(pod: dict[str, Any], progress: Progress) -> list[ExecutorStarted]:
    """Executor 0, once its container runs and stage-in (if any) has finished, if not reported yet.

    Every executor container starts with the Pod and waits for its turn inside, so a running container
    does not mean a running command; the later executors' start times come with their results.
    """
    if 0 in progress.started:
        return []
    statuses = _container_statuses(pod)
    cstate = (statuses.get(executor_container_name(0)) or {}).get("state") or {}
    begun = cstate.get("running") or cstate.get("terminated")
    if begun is None:
        return []
    when = str(begun.get("startedAt") or "")
    if STAGE_IN in statuses:
        stage_in = _terminated(pod, STAGE_IN)
        if stage_in is None or stage_in.get("exitCode", 0) != 0:
            return []
        when = max(when, str(stage_in.get("finishedAt") or ""))
    progress.started.add(0)
    return [ExecutorStarted(0, when)]


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


def _pod_failure(task: Task, pod: dict[str, Any], end: str) -> Failed | None:
    """Why a Pod in phase Failed was failed by the cluster (evicted, preempted), if it was."""
    status = _status(pod)
    reason, message = status.get("reason") or "", _clean(status.get("message"))
    node = (pod.get("spec") or {}).get("nodeName") or "its node"
    if reason == "Evicted" and any(words in message for words in _OVER_DISK_LIMIT):
        return _fail(State.EXECUTOR_ERROR, _over_disk_sentence(task, message), end)
    if reason in PREEMPTION_REASONS:
        return _fail(State.PREEMPTED, f"the pod was taken off {node} ({reason}): {message}".rstrip(": "), end)
    return None


def _over_disk_sentence(task: Task, message: str) -> str:
    """The kubelet evicted the Pod for going over its own disk limits: the workspace's ``sizeLimit``
    (``disk_gb``), or a container's or the Pod's ``ephemeral-storage`` limit (set by a LimitRange)."""
    if f'EmptyDir volume "{WORKSPACE_VOLUME}"' in message:
        return outcome.disk_limit_sentence(task, f"Kubernetes stopped the task: {message}")
    disk = task.resources.disk_gb if task.resources else None
    asked = f"disk_gb={disk:g}" if disk else "no disk_gb set"
    return f"the task used more disk than it asked for ({asked}) and Kubernetes stopped the task: {message}"


def _stage_in_reason(message: str) -> str:
    """stage-in's own sentence names the input when the filer wrote it ("input s3://...: no such key"), as the
    local backend says it; anything else gets the context."""
    if message.startswith(("input ", "inputs ")):
        return message
    return f"staging the inputs failed: {message}"


def _failed_container(task: Task, pod: dict[str, Any], end: str) -> Failed | None:
    """stage-in or an executor's container that ended with an error: the run cannot go on."""
    statuses = _container_statuses(pod)
    stage_in = _terminated(pod, STAGE_IN)
    if stage_in is not None and stage_in.get("exitCode", 0) != 0:
        if stage_in.get("reason") == "OOMKilled":
            return _fail(State.SYSTEM_ERROR, "staging the inputs ran out of memory (k8s_stage_limits)", end)
        why = _clean(stage_in.get("message")) or f"exit code {stage_in.get('exitCode')}"
        return _fail(State.SYSTEM_ERROR, _stage_in_reason(why), end)
    for index in range(len(task.executors)):
        ended = ((statuses.get(executor_container_name(index)) or {}).get("state") or {}).get("terminated")
        if ended is None or ended.get("exitCode", 0) == 0:
            continue
        code = int(ended.get("exitCode", 1))
        log = ExecutorLog(start_time=ended.get("startedAt"), end_time=ended.get("finishedAt"), exit_code=code)
        before: list[Observation] = [ExecutorFinished(index, log)]
        if ended.get("reason") == "OOMKilled":
            return _fail(State.EXECUTOR_ERROR, outcome.oom_sentence(task, index), end, before)
        detail = _clean(ended.get("message")) or ended.get("reason") or ""
        why = f"executor {index} (image {task.executors[index].image}) could not be run: exit code {code}"
        return _fail(State.SYSTEM_ERROR, f"{why}: {detail}" if detail else why, end, before)
    return None


def _ended(pod: dict[str, Any]) -> PodEnded | None:
    """Every container of the Pod has ended (or the Pod has): time to read the logs."""
    statuses = _container_statuses(pod)
    names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    phase = _status(pod).get("phase")
    if phase not in ("Succeeded", "Failed") and not all(_terminated(pod, name) is not None for name in names):
        return None
    pod_name = _meta(pod).get("name", "")
    messages = {name: str(message) for name in names if (message := (_terminated(pod, name) or {}).get("message"))}
    if STAGE_OUT not in names:
        return PodEnded(pod_name, messages=messages)
    stage_out = _terminated(pod, STAGE_OUT) or {}
    code = int(stage_out.get("exitCode", 0)) if STAGE_OUT in statuses else 0
    return PodEnded(pod_name, code, _clean(stage_out.get("message")), messages)


def _failed_pod(task: Task, pod: dict[str, Any], end: str) -> Failed:
    """A Pod in phase Failed that none of the above explains."""
    status = _status(pod)
    reason, message = status.get("reason") or "", _clean(status.get("message"))
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
            return _fail(State.SYSTEM_ERROR, _image_sentence(image, name, f"{reason}: {message}"), end)
        if reason in PULL_RETRIED:
            key = f"pull:{name}"
            if reason == "ErrImagePull" or key not in clock.progress.messages:
                clock.progress.messages[key] = message or reason
            if clock.lasted(key, settings.k8s_image_pull_timeout_seconds):
                told = clock.progress.messages[key]
                return _fail(State.SYSTEM_ERROR, _image_sentence(image, name, told), end)
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
    phase = _status(pod).get("phase")
    if phase == "Failed":
        taken = _pod_failure(task, pod, end)
        if taken is not None:
            return taken
    if _is_deleted(pod, observed):
        if clock.lasted("lost", LOST_GRACE_SECONDS):
            name = _meta(pod).get("name", "")
            why = f"the task's pod {name} was deleted before the task finished (preempted, drained or evicted)"
            return _fail(State.PREEMPTED, why, end)
        return Going(clock.recheck)
    failed = _failed_container(task, pod, end)
    if failed is not None:
        return failed
    ended = _ended(pod)
    if ended is not None:
        return ended
    if phase == "Failed":
        return _failed_pod(task, pod, end)
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
    states = [(c.get("state") or {}) for c in _container_statuses(pod).values()]
    if any("running" in state or "terminated" in state for state in states):
        return None
    if any((state.get("waiting") or {}).get("reason") in PULL_RETRIED | CREATE_FAILED for state in states):
        return None  # timed by _stuck_container, which names the image
    limit = settings.k8s_unschedulable_timeout_seconds
    if not clock.lasted("not-starting", limit):
        return None
    waiting: dict[str, Any] = next((state["waiting"] for state in states if state.get("waiting")), {})
    detail = _clean(f"{waiting.get('reason') or ''}: {waiting.get('message') or ''}").strip(": ")
    node = (pod.get("spec") or {}).get("nodeName") or "its node"
    why = f"the task's pod did not start on {node} within {limit:g} s"
    return _fail(State.SYSTEM_ERROR, f"{why} ({detail})" if detail else why, end)


# --- the logs -------------------------------------------------------------------------------------


def no_report(ended: PodEnded, log: str, now: datetime) -> list[Observation]:
    """stage-out ended without a readable report."""
    tail = _clean(ended.stage_out_message) or _clean("\n".join(log.splitlines()[-5:]))
    why = f"stage-out ended (exit code {ended.stage_out_code}) without a report"
    reason = f"{why}: {tail}" if tail else why
    return [Ended(state=State.SYSTEM_ERROR, end_time=_rfc3339(now), reason=reason)]


def final_observations(
    task: Task,
    results: list[ExecutorReport],
    report: StageOutReport | None,
    progress: Progress,
    now: datetime,
) -> list[Observation]:
    """The final observations (:func:`ktes.run.outcome.run_observations`), after the start of each executor
    not seen starting yet. ``report`` is stage-out's (None when the task has no outputs, hence no stage-out).
    """
    uploads = None if report is None else outcome.Uploads(report.uploaded, list(report.outputs), report.error)
    found: list[Observation] = []
    for observation in outcome.run_observations(task, results, uploads, _rfc3339(now)):
        if isinstance(observation, ExecutorFinished) and observation.index not in progress.started:
            progress.started.add(observation.index)
            found.append(ExecutorStarted(observation.index, observation.log.start_time or _rfc3339(now)))
        found.append(observation)
    return found
