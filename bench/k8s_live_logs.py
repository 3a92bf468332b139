"""Live executor output on the Kubernetes backend (the lab cluster). Prints figures; asserts nothing.

1. latency: an executor prints the node's uptime (``/proc/uptime``, the same clock as this host's
   CLOCK_BOOTTIME: the lab's node is this machine) every ``--interval`` s; a follower of
   ``GET /ktes/v1/tasks/{id}/logs?follow=true`` notes when each line arrives. Median and worst of
   arrival - print (10 ms resolution);
2. volume: an executor writes ``--mib`` MiB as fast as it can while ``--followers`` followers read the same
   stream: bytes each received (all must have all of them), the follow's rate, and the server's RSS growth.

Run from the repository root: ``python bench/k8s_live_logs.py``. It starts the lab, loads the busybox test
image and uses a namespace of its own (deleted at the end).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from tests.fixtures.images import build_busybox_image  # noqa: E402
from tests.fixtures.k8s import LAB_KUBECONFIG, kubectl, lab_cluster_script, load_into_lab  # noqa: E402
from tests.fixtures.ktes_server import KtesServer, start_server  # noqa: E402


def create(server: KtesServer, image: str, script: str) -> str:
    body = {"executors": [{"image": image, "command": ["sh", "-c", script]}]}
    task_id: str = httpx.post(f"{server.tes_url}/tasks", json=body, timeout=30).json()["id"]
    return task_id


def follow(server: KtesServer, task_id: str, on_chunk: object = None) -> bytes:
    received = bytearray()
    params = {"stream": "stdout", "follow": "true"}
    url = f"{server.url}/ktes/v1/tasks/{task_id}/logs"
    with httpx.stream("GET", url, params=params, timeout=httpx.Timeout(30, read=None)) as response:
        for chunk in response.iter_raw():
            received += chunk
            if callable(on_chunk):
                on_chunk(chunk)
    return bytes(received)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def latency(server: KtesServer, image: str, lines: int, interval: float) -> None:
    script = f"i=0; while [ $i -lt {lines} ]; do cat /proc/uptime; sleep {interval}; i=$((i+1)); done"
    task_id = create(server, image, script)
    delays: list[float] = []
    pending = b""

    def on_chunk(chunk: bytes) -> None:
        nonlocal pending
        now = time.clock_gettime(time.CLOCK_BOOTTIME)
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            if line.strip():
                delays.append(now - float(line.split()[0]))

    follow(server, task_id, on_chunk)
    shown = sorted(delays)
    print(
        f"line latency, print -> API follower ({len(shown)} lines, {interval} s apart): "
        f"median {statistics.median(shown) * 1000:.0f} ms, worst {shown[-1] * 1000:.0f} ms"
    )


def volume(server: KtesServer, image: str, mib: int, followers: int) -> None:
    task_id = create(server, image, f"sleep 2; head -c {mib * 1024 * 1024} /dev/zero; sleep 1")
    before = rss_kib(server.proc.pid)
    most = before
    sizes: list[int] = []
    firsts: list[float] = []
    lasts: list[float] = []

    def one() -> None:
        first: list[float] = []

        def note(_chunk: bytes) -> None:
            if not first:
                first.append(time.perf_counter())

        got = follow(server, task_id, note)
        sizes.append(len(got))
        firsts.append(first[0] if first else time.perf_counter())
        lasts.append(time.perf_counter())

    threads = [threading.Thread(target=one) for _ in range(followers)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        most = max(most, rss_kib(server.proc.pid))
        time.sleep(0.05)
    seconds = max(lasts) - min(firsts)
    print(
        f"{mib} MiB written at full speed, {followers} followers of the same stream: each received "
        f"{sorted(set(sizes))} bytes (expected {mib * 1024 * 1024}); first byte to last {seconds:.2f} s "
        f"({mib / seconds:.1f} MiB/s per follower); server RSS {before // 1024} MiB -> peak {most // 1024} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--followers", type=int, default=20)
    args = parser.parse_args()

    import subprocess

    subprocess.run([str(lab_cluster_script()), "up"], check=True, stdout=subprocess.DEVNULL)
    busybox = build_busybox_image()
    load_into_lab(busybox)
    namespace = f"ktes-bench-logs-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    env = {
        "KUBECONFIG": str(LAB_KUBECONFIG),
        "KTES_BACKEND": "kubernetes",
        "KTES_K8S_NAMESPACE": namespace,
        "KTES_K8S_DNS_POLICY": "Default",
        "KTES_K8S_IMAGE_PULL_POLICY": "IfNotPresent",
        "KTES_K8S_LEASE_NAME": f"bench-{uuid.uuid4().hex[:6]}",
    }
    server = start_server(Path(tempfile.mkdtemp(prefix="ktes-bench-logs-")), env)
    try:
        latency(server, busybox, args.lines, args.interval)
        volume(server, busybox, args.mib, args.followers)
    finally:
        server.stop()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


if __name__ == "__main__":
    main()
