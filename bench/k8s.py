"""Kubernetes backend figures on the lab cluster. Prints them; asserts nothing.

1. submit → COMPLETE of a one-executor task through ``ktes serve --backend kubernetes`` against a bare Job
   running the same command in the same image (created → Complete, watched), interleaved, medians; for a
   trivial command (``echo``) and one that runs ``--seconds`` (the overhead is a constant: see
   docs/kubernetes.md);
2. the objects one task makes (Jobs, Pods, Secrets, ConfigMaps, PVCs), and those shared by the namespace's
   tasks (the executors' helper, one ConfigMap per helper version);
3. 20 tasks submitted at once: the time until all are COMPLETE (and 20 bare Jobs the same way).

Run from the repository root: ``python bench/k8s.py [--rounds 7] [--concurrent 20]``. It starts the lab,
builds and loads the ktes image, and uses a namespace of its own (deleted at the end).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from kubernetes import client as k8s  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402
from kubernetes import watch as k8s_watch  # noqa: E402
from tests.fixtures.images import build_busybox_image  # noqa: E402
from tests.fixtures.k8s import LAB_KUBECONFIG, kubectl, lab_cluster_script, load_into_lab  # noqa: E402
from tests.fixtures.ktes_server import KtesServer, start_server  # noqa: E402

SHORT = ["sh", "-c", "echo hello"]


def ktes_image() -> str:
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-image.sh")], check=True, capture_output=True, text=True
    )
    image = proc.stdout.strip().splitlines()[-1]
    load_into_lab(image)
    return image


def submit_and_wait(
    http: httpx.Client, server: KtesServer, image: str, command: list[str] = SHORT
) -> tuple[float, str]:
    body = {"executors": [{"image": image, "command": command}]}
    started = time.perf_counter()
    task_id = http.post(f"{server.tes_url}/tasks", json=body).json()["id"]
    while True:
        state = http.get(f"{server.tes_url}/tasks/{task_id}").json()["state"]
        if state in ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"):
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if state != "COMPLETE":
        raise SystemExit(
            f"task {task_id} ended {state}: {http.get(f'{server.tes_url}/tasks/{task_id}?view=FULL').text}"
        )
    return elapsed, task_id


def bare_job(image: str, name: str, command: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"bench": "bare"}},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 30,
            "template": {
                "metadata": {"labels": {"bench": "bare"}},
                "spec": {
                    "restartPolicy": "Never",
                    "dnsPolicy": "Default",
                    "automountServiceAccountToken": False,
                    "containers": [
                        {"name": "main", "image": image, "imagePullPolicy": "IfNotPresent", "command": command}
                    ],
                },
            },
        },
    }


def run_bare_jobs(batch: Any, namespace: str, image: str, count: int, command: list[str] = SHORT) -> float:
    """Create ``count`` bare Jobs at once; seconds until every one is Complete (watched)."""
    names = {f"bare-{uuid.uuid4().hex[:10]}" for _ in range(count)}
    stream = k8s_watch.Watch()
    started = time.perf_counter()
    for name in names:
        batch.create_namespaced_job(namespace, bare_job(image, name, command))
    left = set(names)
    for event in stream.stream(batch.list_namespaced_job, namespace, label_selector="bench=bare", timeout_seconds=300):
        job = event["object"]
        if job.metadata.name in left and (job.status.succeeded or 0) > 0:
            left.discard(job.metadata.name)
            if not left:
                break
        if job.metadata.name in left and (job.status.failed or 0) > 0:
            raise SystemExit(f"bare job {job.metadata.name} failed")
    stream.stop()
    elapsed = time.perf_counter() - started
    for name in names:
        batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
    return elapsed


def shared_objects(namespace: str) -> list[str]:
    out = kubectl("-n", namespace, "get", "configmaps", "-l", "ktes.entrypoint", "-o", "json")
    return [f"{item['kind']}/{item['metadata']['name']}" for item in json.loads(out)["items"]]


def count_objects(namespace: str, task_id: str) -> dict[str, int]:
    out = kubectl(
        "-n", namespace, "get", "jobs,pods,secrets,configmaps,pvc", "-l", f"ktes.task-id={task_id}", "-o", "json"
    )
    counts: dict[str, int] = {}
    for item in json.loads(out)["items"]:
        counts[item["kind"]] = counts.get(item["kind"], 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=15, help="how long the longer command runs")
    args = parser.parse_args()

    subprocess.run([str(lab_cluster_script()), "up"], check=True, stdout=subprocess.DEVNULL)
    image = ktes_image()
    busybox = build_busybox_image()
    load_into_lab(busybox)
    namespace = f"ktes-bench-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    k8s_config.load_kube_config(str(LAB_KUBECONFIG))
    batch = k8s.BatchV1Api()
    env = {
        "KUBECONFIG": str(LAB_KUBECONFIG),
        "KTES_BACKEND": "kubernetes",
        "KTES_K8S_NAMESPACE": namespace,
        "KTES_K8S_IMAGE": image,
        "KTES_K8S_DNS_POLICY": "Default",
        "KTES_K8S_LEASE_NAME": f"bench-{uuid.uuid4().hex[:6]}",
    }
    servers: list[KtesServer] = []
    try:
        data = Path(tempfile.mkdtemp(prefix="ktes-bench-"))
        # the executors' helper comes from the ktes package (no path to set)
        server = start_server(data / "a", env)
        servers.append(server)
        with httpx.Client(timeout=30) as http:
            submit_and_wait(http, server, busybox)  # warm up: the engine's Lease, the first pod
            run_bare_jobs(batch, namespace, busybox, 1)
            long = ["sh", "-c", f"sleep {args.seconds}; echo hello"]
            for label, command, rounds in (("echo hello", SHORT, args.rounds), (f"sleep {args.seconds}", long, 3)):
                ktes_times: list[float] = []
                bare_times: list[float] = []
                for _ in range(rounds):
                    ktes_times.append(submit_and_wait(http, server, busybox, command)[0])
                    bare_times.append(run_bare_jobs(batch, namespace, busybox, 1, command))
                ktes_med, bare_med = statistics.median(ktes_times), statistics.median(bare_times)
                print(f"one task `{label}`, submit -> COMPLETE (median of {rounds}): ktes {ktes_med:.2f} s", end="")
                print(f"  bare Job {bare_med:.2f} s  ratio {ktes_med / bare_med:.2f}")
                print(f"  ktes runs: {' '.join(f'{t:.2f}' for t in ktes_times)}")
                print(f"  bare runs: {' '.join(f'{t:.2f}' for t in bare_times)}")

            keeper = start_server(
                data / "b", {**env, "KTES_K8S_KEEP_FINISHED_JOBS": "true", "KTES_K8S_LEASE_NAME": "bench-keep"}
            )
            servers.append(keeper)
            _, task_id = submit_and_wait(http, keeper, busybox)
            counts = count_objects(namespace, task_id)
            print(f"objects one task made: {counts} (total {sum(counts.values())})")
            print(f"objects shared by the namespace's tasks: {', '.join(shared_objects(namespace))}")
            keeper.stop()

            started = time.perf_counter()
            results: list[float] = []

            def one() -> None:
                results.append(submit_and_wait(http, server, busybox)[0])

            threads = [threading.Thread(target=one) for _ in range(args.concurrent)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            total = time.perf_counter() - started
            bare_total = run_bare_jobs(batch, namespace, busybox, args.concurrent)
            print(f"{args.concurrent} tasks at once: all COMPLETE in {total:.2f} s (bare Jobs: {bare_total:.2f} s)")
    finally:
        for server in servers:
            server.stop()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


if __name__ == "__main__":
    main()
