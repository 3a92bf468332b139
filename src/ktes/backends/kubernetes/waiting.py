"""What a task that is not done yet waits for, as a sentence for its ``system_logs``. Pure.

No task should sit in INITIALIZING or RUNNING for long with nothing said: after ``k8s_wait_note_seconds``
in one kind of wait (the Job has no Pod yet, no node for the Pod, an image not pulled, inputs still
staging, outputs still uploading) the backend adds one line saying so, once per kind of wait. The failures
those waits can end in (:mod:`.status`) come later, with their own sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ktes.backends.kubernetes.podspec import STAGE_IN, STAGE_OUT, executor_container_name
from ktes.backends.kubernetes.status import PULL_RETRIED, Observed

#: what a stage container logs when a transfer failed and will be tried again (ktes.filer.retry).
RETRY_WORDS = "; retrying in "


@dataclass(frozen=True)
class Wait:
    #: the kind of wait (one note per kind and task)
    key: str
    sentence: str
    #: a stage container whose last retry line would say more (its log is read before the note is made)
    container: str | None = None


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = obj.get("status") or {}
    return found


def _states(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    status = _status(pod)
    items = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    return {item.get("name", ""): item.get("state") or {} for item in items}


def _clean(text: Any) -> str:
    return " ".join(str(text or "").split())


def waiting_for(observed: Observed, executors: int) -> Wait | None:
    """The task's wait now, or None when nothing is waited for that a user would not see from its state."""
    pods = [p for p in observed.pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    if not pods:
        if observed.job is None:
            return None
        return Wait("no-pod", "waiting for Kubernetes to make the task's pod (a quota or an admission policy?)")
    pod = min(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
    for cond in _status(pod).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            message = _clean(cond.get("message"))
            return Wait("scheduling", f"waiting for a node to run the task's pod: {message}".rstrip(": "))
    states = _states(pod)
    spec = pod.get("spec") or {}
    every = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    images = {c["name"]: c.get("image", "") for c in every}
    for name, state in states.items():
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in PULL_RETRIED:
            message = _clean(waiting.get("message")) or str(waiting.get("reason"))
            return Wait(f"pull:{name}", f"waiting for image {images.get(name, '?')} ({name}) to be pulled: {message}")
    if states and all("waiting" in state for state in states.values()):
        return Wait("starting", "waiting for the task's pod to start on its node (pulling images, mounting volumes)")
    if STAGE_IN in states and "running" in states[STAGE_IN]:
        return Wait("stage-in", "still staging the inputs", STAGE_IN)
    last = executor_container_name(executors - 1)
    if STAGE_OUT in states and "running" in states[STAGE_OUT] and "terminated" in states.get(last, {}):
        return Wait("stage-out", "still uploading the outputs", STAGE_OUT)
    return None


def last_retry(log: str) -> str | None:
    """The last "... failed (URL: reason); retrying in N s" line of a stage container's log, without the
    logger's prefix (URLs in it are already without their secrets: the filer's messages are)."""
    for line in reversed(log.splitlines()):
        if RETRY_WORDS in line:
            text = line.strip()
            for prefix in ("WARNING:ktes.filer.retry:", "WARNING:"):
                text = text.removeprefix(prefix)
            return text
    return None
