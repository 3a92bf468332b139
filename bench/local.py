"""Benchmark of the local backend against bare podman runs. Prints figures; asserts nothing.

1. Latency: POST -> COMPLETE of a one-executor ``echo`` task through ``ktes serve``, against a bare
   ``podman run --rm`` of the same command (same global and run arguments, the same default network as ktes's
   default ``local_network``), interleaved;
   medians and their ratio (target <= 1.2).
2. Throughput: 50 trivial tasks submitted at once, against the same 50 bare runs at parallelism 4
   (ktes is given local_max_cpus=4, so it also runs 4 at once); medians and ratio (target <= 1.3).

Usage: python bench/local.py [--rounds 15] [--batches 3] [--poll-ms 10] [--image localhost/ktes-test/busybox:1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.images import build_busybox_image
from tests.fixtures.ktes_server import KtesServer, start_server

from ktes.backends.local.runtime import detect_runtime
from ktes.config import Settings

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}
#: How often the benchmark client asks for the task's state (each GET costs ~1 ms of CPU in the client and
#: in the server: on a 2-core machine, polling much faster slows the container it is waiting for).
POLL_SECONDS = 0.01
BATCH = 50
PARALLELISM = 4


def bare_command(image: str) -> list[str]:
    runtime = detect_runtime(Settings())
    return runtime.command("run", "--rm", *runtime.run_args, image, "echo", "hi")


def bare_run(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - began


def echo_task(image: str) -> dict[str, object]:
    return {"executors": [{"image": image, "command": ["echo", "hi"]}]}


def ktes_run(client: httpx.Client, base: str, image: str, poll: float = POLL_SECONDS) -> float:
    began = time.perf_counter()
    task_id = client.post(f"{base}/tasks", json=echo_task(image)).json()["id"]
    while True:
        state = client.get(f"{base}/tasks/{task_id}").json()["state"]
        if state in TERMINAL:
            break
        time.sleep(poll)
    elapsed = time.perf_counter() - began
    if state != "COMPLETE":
        raise RuntimeError(f"task {task_id} ended {state}")
    return elapsed


def ktes_batch(client: httpx.Client, base: str, image: str) -> float:
    began = time.perf_counter()
    ids = [client.post(f"{base}/tasks", json=echo_task(image)).json()["id"] for _ in range(BATCH)]
    pending = set(ids)
    while pending:
        for task_id in list(pending):
            state = client.get(f"{base}/tasks/{task_id}").json()["state"]
            if state in TERMINAL:
                if state != "COMPLETE":
                    raise RuntimeError(f"task {task_id} ended {state}")
                pending.discard(task_id)
        if pending:
            time.sleep(0.02)
    return time.perf_counter() - began


def bare_batch(command: list[str]) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(PARALLELISM) as pool:
        list(pool.map(lambda _: bare_run(command), range(BATCH)))
    return time.perf_counter() - began


def report(title: str, ktes_times: list[float], bare_times: list[float], target: float) -> None:
    k, b = statistics.median(ktes_times), statistics.median(bare_times)
    print(f"{title}")
    print(f"  ktes  median {k * 1000:8.1f} ms   (min {min(ktes_times) * 1000:.1f}, max {max(ktes_times) * 1000:.1f})")
    print(f"  bare  median {b * 1000:8.1f} ms   (min {min(bare_times) * 1000:.1f}, max {max(bare_times) * 1000:.1f})")
    print(f"  ratio {k / b:.2f}   (target <= {target})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--image", default=None)
    parser.add_argument("--poll-ms", type=float, default=POLL_SECONDS * 1000)
    options = parser.parse_args()
    image = options.image or build_busybox_image()
    command = bare_command(image)
    runtime = detect_runtime(Settings())
    print(f"podman args here: {runtime.describe()}")
    print(f"bare command: {' '.join(command)}")
    print(f"client polls the task every {options.poll_ms:g} ms; load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="ktes-bench-") as tmp:
        server: KtesServer = start_server(Path(tmp) / "data", {"KTES_LOCAL_MAX_CPUS": str(PARALLELISM)})
        try:
            base = server.tes_url
            with httpx.Client(timeout=60) as client:
                ktes_run(client, base, image)  # warm up: image check, connections, caches
                bare_run(command)
                ktes_times: list[float] = []
                bare_times: list[float] = []
                for _ in range(options.rounds):
                    ktes_times.append(ktes_run(client, base, image, options.poll_ms / 1000))
                    bare_times.append(bare_run(command))
                report(f"1. one echo task, {options.rounds} rounds interleaved", ktes_times, bare_times, 1.2)
                ktes_batches: list[float] = []
                bare_batches: list[float] = []
                for _ in range(options.batches):
                    ktes_batches.append(ktes_batch(client, base, image))
                    bare_batches.append(bare_batch(command))
                report(
                    f"2. {BATCH} echo tasks at once (parallelism {PARALLELISM}), {options.batches} batches",
                    ktes_batches,
                    bare_batches,
                    1.3,
                )
        finally:
            server.stop()
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
