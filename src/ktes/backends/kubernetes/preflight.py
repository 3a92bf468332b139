"""Before ``ktes serve`` accepts a task: can the Kubernetes backend run one at all?

Each check fails with a :class:`StartupError` of one sentence naming what is wrong and what to do, so the
server exits at start instead of accepting work it cannot run:

- the settings it derives (installation id, shared file volume and roots) are sound;
- the executors' helper can be read (it goes into the namespace's ConfigMap);
- there is a Kubernetes configuration, and its API answers and accepts the credentials;
- the namespace exists (the helper's ConfigMap is made there now, which is needed anyway);
- the credentials allow every verb ktes uses (:data:`REQUIRED`, one SelfSubjectAccessReview each); without
  ``pods/exec`` (:data:`LIVE_OUTPUT`) it only warns: executors' output then shows when each ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from ktes.backends.kubernetes import filevolume, podspec
from ktes.backends.kubernetes.backend import read_entrypoint
from ktes.backends.kubernetes.client import AlreadyExists, Kube, KubeError, NotFound
from ktes.backends.kubernetes.installation import with_installation
from ktes.config import Settings
from ktes.errors import StartupError

log = logging.getLogger(__name__)

#: (API group, resource, verb) for every call ktes makes in its namespace (deploy/base/rbac.yaml grants them).
REQUIRED: tuple[tuple[str, str, str], ...] = (
    *(("batch", "jobs", verb) for verb in ("create", "get", "list", "watch", "delete")),
    *(("", "pods", verb) for verb in ("list", "watch", "delete")),
    ("", "pods/log", "get"),
    *(("", "secrets", verb) for verb in ("create", "list", "patch", "delete")),
    ("", "configmaps", "create"),
    *(("coordination.k8s.io", "leases", verb) for verb in ("get", "create", "update")),
)
#: Wanted, not required: without them executors' output is shown when each ends instead of live. An exec over
#: a WebSocket is a GET: older API servers (1.20) authorize it as "get", newer ones also want "create".
LIVE_OUTPUT: tuple[tuple[str, str, str], ...] = (("", "pods/exec", "get"), ("", "pods/exec", "create"))


def _unreachable(kube: Kube, exc: KubeError) -> StartupError:
    if exc.status == 401:
        return StartupError(
            f"the Kubernetes API at {kube.host} refused ktes's credentials ({exc}): check the kubeconfig "
            "(k8s_kubeconfig or KUBECONFIG) or the ServiceAccount"
        )
    found = re.search(r"\[Errno -?\d+\] [^\"')]+", str(exc))
    reason = found.group(0).strip() if found else str(exc)
    return StartupError(
        f"could not reach the Kubernetes API server at {kube.host} ({reason}): check that the cluster is up and "
        "that KTES_K8S_KUBECONFIG (or KUBECONFIG) points at it"
    )


async def _make_helper_config_map(kube: Kube, binary: bytes) -> None:
    """The helper's ConfigMap, made now: proves the API answers and the namespace exists."""
    try:
        with contextlib.suppress(AlreadyExists):
            await kube.create_config_map(podspec.entrypoint_config_map(binary))
    except NotFound as exc:
        raise StartupError(
            f"the namespace {kube.namespace} does not exist ({exc}): create it "
            f"(kubectl create namespace {kube.namespace}) or set k8s_namespace"
        ) from None
    except KubeError as exc:
        if exc.status == 403:
            return  # the access reviews below say exactly which permission is missing
        raise _unreachable(kube, exc) from None


async def _missing_permissions(kube: Kube) -> tuple[list[str], bool]:
    """The required permissions ktes lacks, and whether it may show executors' output live."""

    async def denied(group: str, resource: str, verb: str) -> str | None:
        name, _, sub = resource.partition("/")
        allowed = await kube.may(verb, name, group, sub)
        return None if allowed else f"{verb} {resource}"

    try:
        found = await asyncio.gather(*(denied(*item) for item in (*REQUIRED, *LIVE_OUTPUT)))
    except KubeError as exc:
        raise _unreachable(kube, exc) from None
    required, wanted = found[: len(REQUIRED)], found[len(REQUIRED) :]
    return [item for item in required if item is not None], all(item is None for item in wanted)


async def check(settings: Settings) -> None:
    """Raise :class:`StartupError` if the backend cannot run tasks (see the module's docstring)."""
    settings = with_installation(settings)
    filevolume.allowed_roots(settings)
    try:
        binary = await asyncio.to_thread(read_entrypoint, settings)
    except KubeError as exc:
        raise StartupError(str(exc)) from None
    try:
        kube = await asyncio.to_thread(Kube, settings)
    except KubeError as exc:
        raise StartupError(f"{exc}; set k8s_kubeconfig or KUBECONFIG, or run ktes in the cluster") from None
    try:
        await _make_helper_config_map(kube, binary)
        missing, live_output = await _missing_permissions(kube)
    finally:
        kube.close()
    if missing:
        raise StartupError(
            f"ktes may not {', '.join(missing)} in the namespace {kube.namespace}: grant its ServiceAccount or "
            "user the Role in deploy/base/rbac.yaml"
        )
    if not live_output:
        log.warning(
            "kubernetes: ktes may not get and create pods/exec in the namespace %s, so executors' output is "
            "shown when each ends, not live: grant them (deploy/base/rbac.yaml)",
            kube.namespace,
        )
    log.info("kubernetes: namespace %s at %s is ready for tasks", kube.namespace, kube.host)
