"""The lab cluster for the Kubernetes fault tests: ktes's settings for it, what is left in a namespace, and
stopping and restarting its kube-apiserver.

The lab (shared/k8s-lab/cluster) records each component as ``PID STARTTIME`` in
``$K8S_LAB_HOME/run/<name>.pid``; :func:`stop_apiserver` kills only that process (checking its start time,
as the script does, so a reused PID is never hit), and :func:`start_apiserver` runs ``cluster up``, which
starts what is not running (only the apiserver here: the controller-manager and scheduler run without leader
election, so they outlive an apiserver outage) and waits until it is healthy. :func:`apiserver_down` does
both around an outage, holding the lab's own lock (``$K8S_LAB_HOME/.lock``, which every ``cluster up``
takes) meanwhile, so another session's ``cluster up`` waits instead of ending the outage early.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.fixtures.k8s import REPO, kubectl, lab_cluster_script, lab_ktes_env

LAB_HOME = Path(os.environ.get("K8S_LAB_HOME", "/var/cache/k8s-lab"))
#: where sessions sharing the lab note what disrupts it: each outage is written there first, if the file exists.
LAB_LOG = REPO.parent / "LAB-LOG"
#: kinds a task could leave behind.
KINDS = "jobs,pods,secrets,configmaps,persistentvolumeclaims"


def ktes_env(kubeconfig: Path, ktes_image: str, namespace: str, storage_env: dict[str, str]) -> dict[str, str]:
    """``ktes serve --backend kubernetes`` on the lab, in ``namespace``, reaching the test's storage servers."""
    return {**storage_env, **lab_ktes_env(kubeconfig, namespace, ktes_image)}


def _kept(obj: dict[str, Any]) -> bool:
    """What stays by design: the namespace's own token Secret and CA ConfigMap, and ktes's helper ConfigMap
    (one per namespace, shared by every task, never deleted: docs/kubernetes.md)."""
    metadata = obj["metadata"]
    if obj["kind"] == "Secret" and obj.get("type") == "kubernetes.io/service-account-token":
        return True
    if obj["kind"] == "ConfigMap":
        return metadata["name"] == "kube-root-ca.crt" or "ktes.entrypoint" in (metadata.get("labels") or {})
    return False


def leftovers(namespace: str) -> list[str]:
    """``Kind/name`` of every Job, Pod, Secret, ConfigMap and PVC in the namespace but those kept by design."""
    items = json.loads(kubectl("-n", namespace, "get", KINDS, "-o", "json"))["items"]
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in items if not _kept(o))


def wait_nothing_left(namespace: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while left := leftovers(namespace):
        assert time.monotonic() < deadline, f"still in the namespace {timeout:g} s after the end: {left}"
        time.sleep(1)


# --- the apiserver ----------------------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time), None for a process that is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def apiserver_pid() -> tuple[int, str] | None:
    """The lab's kube-apiserver as its PID file records it, if that process still runs."""
    try:
        pid_text, start = (LAB_HOME / "run" / "kube-apiserver.pid").read_text().split()
    except (OSError, ValueError):
        return None
    pid = int(pid_text)
    return (pid, start) if _start_time(pid) == start else None


def note_in_lab_log(what: str) -> None:
    if LAB_LOG.is_file():
        with LAB_LOG.open("a") as log:
            log.write(f"{time.strftime('%H:%M:%S')} ktes tests ({os.getpid()}): {what}\n")


def stop_apiserver(seconds: float) -> None:
    """SIGKILL the lab's kube-apiserver (a crash: with SIGTERM it refuses new connections but serves open
    watches 30 s more here) and wait until it is gone."""
    found = apiserver_pid()
    assert found is not None, "the lab's kube-apiserver is not running"
    pid, start = found
    note_in_lab_log(f"killing the lab's kube-apiserver (pid {pid}) for {seconds:g} s, then cluster up")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _start_time(pid) == start:
        assert time.monotonic() < deadline, f"the kube-apiserver (pid {pid}) outlived SIGKILL"
        time.sleep(0.1)


def start_apiserver() -> None:
    """``cluster up``: starts the apiserver again and waits until it (and the node) is healthy."""
    subprocess.run([str(lab_cluster_script()), "up"], check=True, timeout=900, capture_output=True)
    note_in_lab_log("the lab's kube-apiserver is back")


@contextlib.contextmanager
def apiserver_down(seconds: float) -> Iterator[float]:
    """Kill the apiserver while holding the lab's lock; yield when the outage is to end (time.monotonic());
    afterwards release the lock and ``cluster up``."""
    with (LAB_HOME / ".lock").open("a") as lock:
        deadline = time.monotonic() + 600  # another session's `cluster up` or build holds it meanwhile
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, f"the lab's lock {lock.name} was held for 600 s"
                time.sleep(1)
        try:
            stop_apiserver(seconds)
            yield time.monotonic() + seconds
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            start_apiserver()
