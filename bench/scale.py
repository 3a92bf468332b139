"""Scale benchmark: ``ktes serve`` as shipped, loaded as users load it. Prints figures; not a test.

Parts (``--parts``, comma separated; sizes are flags, so a quick run is possible):

- ``local``: ``--tasks`` tasks of ``true`` submitted by ``--clients`` concurrent clients as fast as they can:
  submit rate, dispatch rate, p50/p99 submit→RUNNING and submit→COMPLETE, the server's own CPU per task
  (``/proc/<pid>/stat``: the engine and the API, not the containers), its RSS and the database size.
- ``podman``: ``--ratio-tasks`` tasks through ktes against as many bare ``podman run`` s at the same
  parallelism (``--parallel``): wall times side by side.
- ``large``: ``--large-tasks`` stored tasks with ``--large-mib`` MiB of input ``content`` each: BASIC list
  page latency, GET BASIC latency, service-info latency while FULL pages are read, and ``--large-lists``
  concurrent BASIC lists.
- ``poll``: ``--stored`` stored tasks (bulk import), ``--pollers`` clients each polling one task once a
  second for ``--seconds``: p50/p99 of the polls, then wrk on a get and list pages. ``--poll-database
  postgresql`` runs it on a throw-away PostgreSQL 15 (Debian's) instead of SQLite.
- ``k8s``: on the lab cluster, ``--k8s-tasks`` tasks of ``sleep --k8s-sleep`` submitted at once to
  ``ktes serve --backend kubernetes``, against as many bare Jobs (same image and command, one container)
  created at once, ``--k8s-rounds`` times each, alternating: wall times side by side, p50/p99
  submit→COMPLETE, and ktes's requests to the API server per task (its own ``ktes_kubernetes_requests_total``
  from ``/metrics``: writes, reads, log reads, watches). ``--lab-log FILE`` gets a line before each run (the
  lab is shared).

    python bench/scale.py --parts local,podman,large,poll [--tasks 10000 --clients 32 ...]

Figures depend on the machine: the run prints its CPU count and load average first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fixtures and bench.api

from bench.api import free_port, rss_mib, synthetic_task, wrk
from tests.fixtures.images import build_busybox_image

from ktes.backends.local import argv, executions
from ktes.backends.local.runtime import Runtime, detect_runtime
from ktes.config import Settings
from ktes.run import entrypoint
from ktes.store.sql import open_store
from ktes.tes.ids import new_id, rfc3339
from ktes.tes.models import Executor, Input, Resources, State, Task

BASE = "/ga4gh/tes/v1"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@contextmanager
def ktes_serve(
    data_dir: Path, env: dict[str, str], src: str | None = None, profile: Path | None = None
) -> Iterator[tuple[str, int]]:
    """``ktes serve`` on ``data_dir``; with ``src``, the ``ktes`` package found there (another version); with
    ``profile``, under ``py-spy record`` (samples while holding the interpreter lock) writing there."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KTES_")}
    full_env.update({"KTES_DATA_DIR": str(data_dir), "KTES_LOG_LEVEL": "warning", **env})
    if src:
        full_env["PYTHONPATH"] = src
    command = ["ktes", "serve", "--backend", "local", "--host", "127.0.0.1", "--port", str(port)]
    log = (data_dir / "server.log").open("wb")
    if profile is not None:
        spy = ["py-spy", "record", "--gil", "--rate", "250", "--format", "raw", "--output", str(profile), "--"]
        command = [*spy, shutil.which("python3") or "python3", shutil.which("ktes") or "ktes", *command[1:]]
    server = subprocess.Popen(command, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server_pid = server.pid
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if profile is not None and server_pid == server.pid:
            children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
            server_pid = int(children[0]) if children else server_pid
        if server.poll() is not None or time.monotonic() > deadline:
            tail = (data_dir / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"ktes serve did not start:\n{tail}")
        time.sleep(0.1)
    try:
        yield base, server_pid
    finally:
        if server_pid != server.pid:
            os.kill(server_pid, signal.SIGTERM)  # py-spy writes its profile once the server has ended
            server.wait(timeout=120)
        server.terminate()
        server.wait(timeout=60)
        log.close()


def db_size_mib(data_dir: Path) -> float:
    return sum(p.stat().st_size for p in data_dir.glob("ktes.db*")) / 2**20


# --- local: many `true` tasks ------------------------------------------------------------------------


async def submit_all(base: str, bodies: list[dict[str, Any]], clients: int) -> tuple[list[str], float]:
    ids: list[str] = [""] * len(bodies)
    queue = list(enumerate(bodies))
    retried = 0
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base + BASE, timeout=120, limits=limits) as client:

        async def worker() -> None:
            nonlocal retried
            while queue:
                i, body = queue.pop()
                for attempt in range(3):
                    try:
                        response = await client.post("/tasks", json=body)
                        break
                    except httpx.TransportError:  # a keep-alive connection the server closed as it was reused
                        if attempt == 2:
                            raise
                        retried += 1
                response.raise_for_status()
                ids[i] = response.json()["id"]

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        if retried:
            print(f"({retried} submissions retried after a lost connection: a task may have been made twice)")
        return ids, time.perf_counter() - began


def wait_all_terminal(base: str, count: int, within: float) -> int:
    """Wait until no task is QUEUED, INITIALIZING or RUNNING; returns how many list requests that took.
    Each poll asks for one task per state, so the polling itself costs the server next to nothing."""
    deadline = time.monotonic() + within
    requests = 0
    with httpx.Client(base_url=base + BASE, timeout=60) as client:
        while True:
            left = 0
            for state in ("QUEUED", "INITIALIZING", "RUNNING"):
                left += len(client.get("/tasks", params={"state": state, "page_size": 1}).json()["tasks"])
                requests += 1
            if left == 0:
                return requests
            if time.monotonic() > deadline:
                raise RuntimeError(f"tasks of {count} not finished in {within:.0f} s")
            time.sleep(0.5)


def full_tasks(base: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token = None
    with httpx.Client(base_url=base + BASE, timeout=120) as client:
        while True:
            params: dict[str, Any] = {"view": "FULL", "page_size": 2047}
            if token:
                params["page_token"] = token
            page = client.get("/tasks", params=params).json()
            found += page["tasks"]
            token = page.get("next_page_token")
            if not token:
                return found


def local_part(args: argparse.Namespace, image: str) -> None:
    """On Ctrl-C (SIGINT to this process only) the figures are printed over the tasks finished so far."""
    n = args.tasks
    body = {"executors": [{"image": image, "command": ["true"]}], "resources": {"cpu_cores": 1}}
    submit_s = float("nan")
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="ktes-scale-") as tmp:
        data = Path(tmp)
        env = {"KTES_LOCAL_MAX_CPUS": str(args.parallel)}
        with ktes_serve(data, env) as (base, pid):
            cpu0 = cpu_seconds(pid)
            began = time.time()
            try:
                _, submit_s = asyncio.run(submit_all(base, [body] * n, args.clients))
                wait_all_terminal(base, n, within=max(600, n * 0.5))
            except KeyboardInterrupt:
                interrupted = True
            wall = time.time() - began
            cpu = cpu_seconds(pid) - cpu0
            rss = rss_mib(pid)
            tasks = full_tasks(base)
            size = db_size_mib(data)
        if args.keep_log:
            shutil.copy(data / "server.log", args.keep_log)
    states: dict[str, int] = {}
    to_running: list[float] = []
    to_complete: list[float] = []
    starts: list[float] = []
    created_all: list[float] = []
    for task in tasks:
        states[task["state"]] = states.get(task["state"], 0) + 1
        created = ts(task["creation_time"])
        created_all.append(created)
        log = (task.get("logs") or [{}])[0]
        if log.get("start_time"):
            starts.append(ts(log["start_time"]))
        executors = log.get("logs") or []
        if executors and executors[0].get("start_time"):
            to_running.append(ts(executors[0]["start_time"]) - created)
        if log.get("end_time"):
            to_complete.append(ts(log["end_time"]) - created)
    dispatch_span = (max(starts) - min(starts)) if len(starts) > 1 else float("nan")
    done = sum(states.get(s, 0) for s in ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"))
    if interrupted:
        print(f"\n## local: INTERRUPTED after {wall:.0f} s: {len(tasks):,} of {n:,} submitted, {done:,} finished")
        if len(created_all) > 1:
            span = max(created_all) - min(created_all)
            print(f"submit: {len(created_all) / span:,.0f} tasks/s (first to last creation, {span:.1f} s)")
    else:
        print(f"\n## local: {n:,} tasks of `true`, {args.clients} clients, at most {args.parallel} at once")
        print(f"submit: {n / submit_s:,.0f} tasks/s ({submit_s:.1f} s)")
    print(f"states: {states}")
    for task in tasks:
        if task["state"] in ("SYSTEM_ERROR", "EXECUTOR_ERROR"):
            print(f"  {task['state']} {task['id']}: {(task.get('logs') or [{}])[0].get('system_logs')}")
    print(f"dispatch: {len(starts) / dispatch_span:,.1f} tasks/s (first to last start, {dispatch_span:.1f} s)")
    print(f"submit→RUNNING  p50 {pct(to_running, 50):8.2f} s  p99 {pct(to_running, 99):8.2f} s  ({len(to_running):,})")
    print(
        f"submit→COMPLETE p50 {pct(to_complete, 50):8.2f} s  p99 {pct(to_complete, 99):8.2f} s  ({len(to_complete):,})"
    )
    print(f"wall: {wall:.1f} s, {done / wall:.1f} tasks/s end to end")
    per = max(done, 1)
    print(
        f"ktes serve CPU: {cpu:.1f} s in all, {cpu / per * 1000:.1f} ms per finished task "
        "(API + engine, not containers)"
    )
    print(f"ktes serve RSS at the end: {rss:.0f} MiB; database: {size:.1f} MiB", flush=True)


# --- engine: the engine's own CPU per task, apart from the API ---------------------------------------

#: A stand-in for podman that runs no container: ``run`` prints the helper's result line at once. The local
#: backend does all its own work (directories, posix_spawn, the result line, batched removal); what it saves
#: is the container, which is podman's CPU, not ktes's.
FAKE_PODMAN = """#!/bin/sh
case "$1" in
  info) echo '{"host": {"ociRuntime": {"name": "runc"}, "cgroupVersion": "v2", "cgroupManager": "cgroupfs"}}' ;;
  run)
    case "$*" in *ktes-network-check*) exit 127 ;; esac  # the start-up's network check: "it would run"
    index=0
    while [ $# -gt 0 ]; do [ "$1" = --index ] && index=$2; shift; done
    echo "KTES-RESULT {\\"index\\": $index, \\"exit_code\\": 0, \\"start_time\\": \\"$(date -u +%FT%TZ)\\",\
 \\"end_time\\": \\"$(date -u +%FT%TZ)\\"}" ;;
esac
exit 0
"""


def idle_poll_cpu(base: str, pid: int, polls: int) -> float:
    """Server CPU seconds for ``polls`` of the completion poll's requests (to take them out of a figure)."""
    cpu0 = cpu_seconds(pid)
    with httpx.Client(base_url=base + BASE, timeout=60) as client:
        for _ in range(polls):
            client.get("/tasks", params={"state": "QUEUED", "page_size": 1})
    return cpu_seconds(pid) - cpu0


def engine_once(args: argparse.Namespace, image: str, src: str | None, runtime_dir: Path | None) -> dict[str, float]:
    """Submit with the engine off (the API's CPU per create), then start the server with the engine on over
    the same store and let it run every task (the engine's CPU, minus the completion polls)."""
    n = args.engine_tasks
    body = {"executors": [{"image": image, "command": ["true"]}], "resources": {"cpu_cores": 1}}
    env = {"KTES_LOCAL_MAX_CPUS": str(args.parallel)}
    if runtime_dir is not None:
        env["KTES_LOCAL_RUNTIME"] = str(runtime_dir / "podman")
    with tempfile.TemporaryDirectory(prefix="ktes-scale-") as tmp:
        data = Path(tmp)
        with ktes_serve(data, {**env, "KTES_ENGINE_ENABLED": "false"}, src) as (base, pid):
            cpu0 = cpu_seconds(pid)
            asyncio.run(submit_all(base, [body] * n, args.clients))
            api = cpu_seconds(pid) - cpu0
        with ktes_serve(data, env, src, args.profile) as (base, pid):
            cpu0 = cpu_seconds(pid)
            began = time.perf_counter()
            polls = wait_all_terminal(base, n, within=max(600, n * 2))
            wall = time.perf_counter() - began
            engine = cpu_seconds(pid) - cpu0
            engine -= idle_poll_cpu(base, pid, polls)
            states = httpx.get(f"{base}{BASE}/tasks", params={"state": "COMPLETE", "page_size": 2047}).json()["tasks"]
            if len(states) != min(n, 2047):
                raise RuntimeError(f"only {len(states)} tasks COMPLETE: see {data / 'server.log'}")
    return {"api_ms": api / n * 1000, "engine_ms": engine / n * 1000, "rate": n / wall}


def engine_part(args: argparse.Namespace, image: str) -> None:
    fake = args.engine_runtime == "fake"
    versions = [("this tree", None)]
    if args.baseline_src:
        versions.insert(0, ("baseline", args.baseline_src))
    with tempfile.TemporaryDirectory(prefix="ktes-fake-podman-") as bin_dir:
        runtime_dir = None
        if fake:
            runtime_dir = Path(bin_dir)
            (runtime_dir / "podman").write_text(FAKE_PODMAN)
            (runtime_dir / "podman").chmod(0o755)
        figures: dict[str, list[dict[str, float]]] = {name: [] for name, _ in versions}
        for _ in range(args.rounds):  # the versions take turns, so a change in the machine's load hits both
            for name, src in versions:
                figures[name].append(engine_once(args, image, src, runtime_dir))
    what = "a stand-in runtime that runs no container" if fake else "podman"
    print(
        f"\n## engine: {args.engine_tasks} tasks of `true` on {what}, at most {args.parallel} at once, "
        f"{args.rounds} rounds (median)"
    )
    print(f"{'':12} {'API ms/create':>14} {'engine ms/task':>15} {'tasks/s':>8}")
    medians = {}
    for name, _ in versions:
        runs = figures[name]
        medians[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        m = medians[name]
        each = ", ".join(f"{r['engine_ms']:.1f}" for r in runs)
        print(f"{name:12} {m['api_ms']:14.1f} {m['engine_ms']:15.1f} {m['rate']:8.1f}   (engine each round: {each})")
    if args.baseline_src:
        b, t = medians["baseline"], medians["this tree"]
        print(
            f"this tree / baseline: API {t['api_ms'] / b['api_ms']:.2f}x, engine {t['engine_ms'] / b['engine_ms']:.2f}x"
        )
    print(flush=True)


# --- podman: ktes against bare podman runs -----------------------------------------------------------

#: What each side of ``--podman-variants`` runs, 500 containers of ``true`` at the same parallelism:
PODMAN_VARIANTS = {
    "bare": "bare `podman run --rm --network none IMAGE true`",
    "bare-bridge": "bare `podman run --rm IMAGE true`, on the runtime's default network (a bridge)",
    "mounts": "bare, plus ktes's name, labels and bind mounts (helper, state dir), without the helper",
    "helper-rm": "ktes's exact `run` argv (through the helper) with --rm",
    "helper-cpus": "helper-rm of a task asking for cpu_cores 1, as the ktes side's tasks do (`--cpus 1`)",
    "spawn": "helper-cpus started as ktes starts it (posix_spawn in a session of its own, output to files)",
    "helper-kept": "ktes's exact `run` argv (kept), removed by batched `podman rm` as ktes did",
    "ktes": "`ktes serve`, this tree",
    "baseline": "`ktes serve` from --baseline-src",
}
BENCH_INSTANCE = "ktes-bench-scale"


def bench_run_argv(runtime: Runtime, image: str, state_dir: Path, variant: str) -> tuple[str, list[str]]:
    """A container name and the argv of one ``podman run`` of ``variant`` (state_dir: its own, made here)."""
    task_id, _ = new_id()
    resources = Resources(cpu_cores=1) if variant in ("helper-cpus", "spawn") else None
    task = Task(id=task_id, executors=[Executor(image=image, command=["true"])], resources=resources)
    state_dir.mkdir(mode=0o777)
    state_dir.chmod(0o777)
    options = argv.RunOptions(instance=BENCH_INSTANCE, helper=entrypoint.entrypoint_path())
    name = argv.container_name(task_id, 0)
    if variant == "bare":
        return name, runtime.command("run", *runtime.run_args, "--rm", "--network", "none", image, "true")
    if variant == "bare-bridge":
        return name, runtime.command("run", *runtime.run_args, "--rm", image, "true")
    if variant == "mounts":
        full = argv.run_argv(runtime, task, 0, state_dir, state_dir, options)
        cut = full.index(next(a for a in full if a.startswith("--entrypoint=")))
        return name, [*full[:cut], "--rm", image, "true"]
    full = argv.run_argv(runtime, task, 0, state_dir, state_dir, options)
    if variant in ("helper-rm", "helper-cpus", "spawn"):
        at = full.index("run") + 1
        return name, [*full[:at], "--rm", *full[at:]]
    return name, full


async def bare_podman(image: str, n: int, parallel: int, variant: str, tmp: Path) -> tuple[float, list[float]]:
    """``n`` runs of ``variant``, ``parallel`` at once; helper-kept removes the finished containers in batches
    (one ``podman rm`` at a time, of all that ended meanwhile, as the local backend's reaper)."""
    gate = asyncio.Semaphore(parallel)
    runtime = detect_runtime(Settings(local_runtime="podman"))  # the arguments ktes itself uses here
    finished: list[str] = []
    runs: list[float] = []
    reaper: asyncio.Task[None] | None = None

    async def reap() -> None:
        while finished:
            names = finished[:]
            del finished[:]
            rm = await asyncio.create_subprocess_exec(
                *argv.remove_argv(runtime, names), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            await rm.wait()

    async def one(i: int) -> None:
        nonlocal reaper
        async with gate:
            name, command = bench_run_argv(runtime, image, tmp / f"{variant}-{i}", variant)
            began = time.perf_counter()
            if variant == "spawn":
                files = executions.ExecutorFiles(tmp / f"run-{i}", 0)
                files.run_dir.mkdir()
                code = await executions.wait_child(executions.start(command, files, ""))
                runs.append(time.perf_counter() - began)
                if code != 0:
                    raise RuntimeError(f"podman run failed: {files.runtime_error()[-500:]}")
                return
            proc = await asyncio.create_subprocess_exec(*command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, err = await proc.communicate()
            runs.append(time.perf_counter() - began)
            if proc.returncode != 0:
                raise RuntimeError(f"podman run failed: {err.decode(errors='replace')[-500:]}")
        if variant == "helper-kept":
            finished.append(name)
            if reaper is None or reaper.done():
                reaper = asyncio.get_running_loop().create_task(reap())

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - began  # ktes's clock stops at the last end too, not at the last removal
    if reaper is not None:
        await reaper
    return wall, runs


def ktes_podman(image: str, n: int, parallel: int, src: str | None, gaps: bool) -> tuple[float, float, str]:
    """``n`` tasks of ``true`` through ``ktes serve``: wall time, its CPU per task, and (``gaps``) a line on
    the time ktes spends between one executor's CLI ending and the next one starting."""
    body = {"executors": [{"image": image, "command": ["true"]}], "resources": {"cpu_cores": 1}}
    # Without a network, as `bare` and the helper variants: ktes's default (`local_network`) is the runtime's
    # bridge, whose set-up per container (netavark, iptables) costs podman about a third more here
    # (`bare-bridge`; docs/scale.md), which is podman's work, not ktes's.
    env = {"KTES_LOCAL_MAX_CPUS": str(parallel), "KTES_LOCAL_NETWORK": "none"}
    if gaps:
        env.update({"KTES_LOG_LEVEL": "debug", "KTES_LOG_FORMAT": "json"})
    with tempfile.TemporaryDirectory(prefix="ktes-scale-") as tmp, ktes_serve(Path(tmp), env, src) as (base, pid):
        cpu0 = cpu_seconds(pid)
        began = time.perf_counter()
        asyncio.run(submit_all(base, [body] * n, 16))
        wait_all_terminal(base, n, within=max(600, n * 2))
        wall = time.perf_counter() - began
        cpu = cpu_seconds(pid) - cpu0
        tasks = full_tasks(base)
        log_text = (Path(tmp) / "server.log").read_text(errors="replace") if gaps else ""
    not_complete = [t["id"] for t in tasks if t["state"] != "COMPLETE"]
    if not_complete:
        raise RuntimeError(f"{len(not_complete)} tasks not COMPLETE, e.g. {not_complete[0]}")
    return wall, cpu / n * 1000, dispatch_gaps(log_text, parallel) if gaps else ""


def dispatch_gaps(log_text: str, parallel: int) -> str:
    """From the backend's debug lines: how long each executor's CLI ran, and how long after a CLI ended the
    next one started (the i-th start after the first ``parallel`` against the i-th end: the queue is full)."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for line in log_text.splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        message = entry.get("message", "")
        if entry.get("logger") != "ktes.backends.local.backend" or not message.startswith("executor "):
            continue
        if " started" in message:
            starts[entry["task_id"]] = ts(entry["time"])
        elif " CLI ended" in message:
            ends[entry["task_id"]] = ts(entry["time"])
    if len(starts) <= parallel or not ends:
        return "dispatch gap: no debug lines (this version does not log executor starts and ends)"
    runs = [ends[t] - starts[t] for t in ends if t in starts]
    gaps = [start - end for start, end in zip(sorted(starts.values())[parallel:], sorted(ends.values()), strict=False)]
    return (
        f"CLI run p50 {pct(runs, 50) * 1000:.0f} ms; dispatch gap (a CLI's end to the next CLI's start): "
        f"p50 {pct(gaps, 50) * 1000:.1f} ms, p99 {pct(gaps, 99) * 1000:.1f} ms, "
        f"mean {statistics.mean(gaps) * 1000:.1f} ms"
    )


def podman_part(args: argparse.Namespace, image: str) -> None:
    """Each variant in turn, ``--podman-rounds`` times (alternating, so a change in the machine's load hits
    every side): wall times, and each one's ratio to ``bare`` of the same round."""
    n, parallel = args.ratio_tasks, args.parallel
    variants = args.podman_variants.split(",")
    unknown = [v for v in variants if v not in PODMAN_VARIANTS]
    if unknown or ("baseline" in variants and not args.baseline_src):
        raise SystemExit(f"unknown variants {unknown} (or baseline without --baseline-src)")
    walls: dict[str, list[float]] = {v: [] for v in variants}
    notes: dict[str, list[str]] = {v: [] for v in variants}
    print(f"\n## {n} tasks of `true` at most {parallel} at once, {args.podman_rounds} rounds, variants in turn")
    for variant in variants:
        print(f"{variant:12} {PODMAN_VARIANTS[variant]}")
    for round_no in range(args.podman_rounds):
        for variant in variants:
            load = os.getloadavg()[0]
            if variant in ("ktes", "baseline"):
                src = args.baseline_src if variant == "baseline" else None
                wall, cpu_ms, gap = ktes_podman(image, n, parallel, src, args.podman_gaps)
                notes[variant].append(f"serve CPU {cpu_ms:.1f} ms/task" + (f"; {gap}" if gap else ""))
            else:
                with tempfile.TemporaryDirectory(prefix="ktes-bench-podman-") as tmp:
                    wall, runs = asyncio.run(bare_podman(image, n, parallel, variant, Path(tmp)))
                notes[variant].append(f"podman run p50 {pct(runs, 50) * 1000:.0f} ms")
            walls[variant].append(wall)
            print(f"round {round_no + 1} {variant:12} {wall:7.1f} s  ({n / wall:.1f}/s)  load {load:.1f}", flush=True)
            print(f"             {notes[variant][-1]}", flush=True)
    print(f"\n{'':12} {'median s':>9} {'tasks/s':>8}  ratio to bare (each round)")
    for variant in variants:
        median = statistics.median(walls[variant])
        ratios = ""
        if "bare" in walls and variant != "bare":
            ratios = ", ".join(f"{w / b:.2f}x" for w, b in zip(walls[variant], walls["bare"], strict=True))
        print(f"{variant:12} {median:9.1f} {n / median:8.1f}  {ratios}", flush=True)


# --- large documents ---------------------------------------------------------------------------------


def large_task(mib: float) -> Task:
    task_id, ms = new_id()
    content = "x" * int(mib * 2**20)
    return Task(
        id=task_id,
        state=State.COMPLETE,
        creation_time=rfc3339(ms),
        name="large",
        executors=[Executor(image="alpine", command=["md5sum", "/data/in"])],
        inputs=[Input(path="/data/in", content=content)],
    )


async def timed_gets(client: httpx.AsyncClient, path: str, n: int) -> list[float]:
    took = []
    for _ in range(n):
        began = time.perf_counter()
        response = await client.get(path)
        response.raise_for_status()
        took.append((time.perf_counter() - began) * 1000)
    return took


def peak_rss_mib(pid: int) -> float:
    """The server's peak resident memory so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def large_figures(base: str, pid: int, task_id: str, lists: int, mib: float) -> None:
    async with httpx.AsyncClient(base_url=base + BASE, timeout=600, limits=httpx.Limits(max_connections=None)) as c:
        basic_list = await timed_gets(c, "/tasks?view=BASIC", 50)
        basic_get = await timed_gets(c, f"/tasks/{task_id}?view=BASIC", 50)
        full_get = await timed_gets(c, f"/tasks/{task_id}?view=FULL", 5)
        print(f"BASIC list page:  p50 {pct(basic_list, 50):8.2f} ms  p99 {pct(basic_list, 99):8.2f} ms")
        print(f"GET BASIC:        p50 {pct(basic_get, 50):8.2f} ms  p99 {pct(basic_get, 99):8.2f} ms")
        print(f"GET FULL ({mib:g} MiB): p50 {pct(full_get, 50):8.2f} ms")

        # The readers are other processes, so this process's own loop measures only the server.
        reader = (
            "import sys, httpx\n"
            "with httpx.Client(timeout=600) as c:\n"
            "    while True: c.get(sys.argv[1]).raise_for_status()\n"
        )
        page_url = f"{base}{BASE}/tasks?view=FULL&page_size=4"
        readers = [subprocess.Popen([sys.executable, "-c", reader, page_url]) for _ in range(4)]  # noqa: ASYNC220
        rss: list[float] = []
        try:
            await asyncio.sleep(2.0)
            info = []
            for _ in range(40):
                info += await timed_gets(c, "/service-info", 1)
                rss.append(rss_mib(pid))
        finally:
            for proc in readers:
                proc.kill()
                proc.wait()
        print(
            f"service-info while 4 other clients read FULL pages of 4 tasks (4x{mib:g} MiB):"
            f" p50 {pct(info, 50):8.2f} ms"
            f"  p99 {pct(info, 99):8.2f} ms  max {max(info):8.2f} ms"
        )
        print(f"server RSS meanwhile: median {statistics.median(rss):.0f} MiB, max {max(rss):.0f} MiB")

        async def one_list() -> float:
            began = time.perf_counter()
            (await c.get("/tasks?view=BASIC")).raise_for_status()
            return time.perf_counter() - began

        began = time.perf_counter()
        each = await asyncio.gather(*(one_list() for _ in range(lists)))
        total = time.perf_counter() - began
        print(f"{lists} concurrent BASIC lists: all done in {total:.2f} s, median {statistics.median(each):.2f} s")


def large_part(args: argparse.Namespace) -> None:
    """With --baseline-src, the same figures for the baseline first, then for this tree, on the same store."""
    versions: list[tuple[str, str | None]] = [("this tree", None)]
    if args.baseline_src:
        versions.insert(0, ("baseline", args.baseline_src))
    with tempfile.TemporaryDirectory(prefix="ktes-scale-") as tmp:
        data = Path(tmp)
        store = open_store(f"sqlite:///{data / 'ktes.db'}")
        ids = store.import_tasks([large_task(args.large_mib) for _ in range(args.large_tasks)])
        store.close()
        for name, src in versions:
            print(
                f"\n## large documents: {args.large_tasks} tasks with {args.large_mib:g} MiB content each (SQLite)"
                + (f": {name}" if args.baseline_src else "")
            )
            env = {"KTES_ENGINE_ENABLED": "false", "KTES_LIST_PAGE_MAX_BYTES": str(int(args.large_page_mib * 2**20))}
            with ktes_serve(data, env, src) as (base, pid):
                asyncio.run(large_figures(base, pid, ids[-1], args.large_lists, args.large_mib))
                print(f"ktes serve RSS after: {rss_mib(pid):.0f} MiB, peak {peak_rss_mib(pid):.0f} MiB", flush=True)


# --- many stored tasks, many pollers -----------------------------------------------------------------


async def poll_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One HTTP/1.1 keep-alive GET on an open connection; returns the status. (A bare client: httpx spends
    more CPU per request than the server does, and 1,000 of them would measure the client.)"""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def pollers(port: int, ids: list[str], clients: int, seconds: float) -> tuple[list[float], int]:
    took: list[float] = []
    errors = 0
    end = time.monotonic() + seconds

    async def poller(i: int) -> None:
        nonlocal errors
        request = f"GET {BASE}/tasks/{ids[i % len(ids)]} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(random.random())  # spread the clients over the second
        try:
            while time.monotonic() < end:
                tick = time.monotonic()
                began = time.perf_counter()
                if await poll_once(reader, writer, request) != 200:
                    errors += 1
                took.append((time.perf_counter() - began) * 1000)
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        finally:
            writer.close()

    await asyncio.gather(*(poller(i) for i in range(clients)))
    return took, errors


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def poll_part(args: argparse.Namespace) -> None:
    if args.poll_database == "postgresql" and args.poll_url:  # a server of your own, filled once and kept
        with tempfile.TemporaryDirectory(prefix="ktes-scale-") as tmp:
            poll_store(args, args.poll_url, "PostgreSQL", Path(tmp))
        return
    if args.poll_database == "postgresql":
        from tests.fixtures.postgres import running_postgres

        with running_postgres() as url, tempfile.TemporaryDirectory(prefix="ktes-scale-") as tmp:
            poll_store(args, url, "PostgreSQL 15", Path(tmp))
        return
    with tempfile.TemporaryDirectory(prefix="ktes-scale-") as tmp:
        data = Path(args.poll_dir) if args.poll_dir else Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        poll_store(args, f"sqlite:///{data / 'ktes.db'}", "SQLite", data)


def poll_store(args: argparse.Namespace, url: str, label: str, data: Path) -> None:
    """Fill the store at ``url`` to ``--stored`` tasks (what is missing), then poll it and run wrk on it."""
    store = open_store(url)
    with store.engine.connect() as conn:
        have = conn.exec_driver_sql("SELECT count(*) FROM tasks").scalar() or 0
    rng = random.Random(1)
    began = time.perf_counter()
    for batch in range(have, args.stored, 5000):
        store.import_tasks([synthetic_task(i, rng) for i in range(batch, min(batch + 5000, args.stored))])
    with store.engine.connect() as conn:  # 1,000 tasks spread over the whole store
        every = [row[0] for row in conn.exec_driver_sql("SELECT id FROM tasks")]
        ids = every[:: max(1, len(every) // 1000)]
        del every
    store.close()
    stored = max(have, args.stored)
    print(
        f"\n## {stored:,} stored tasks ({label}; {time.perf_counter() - began:.0f} s to import what was missing;"
        f" load average {load_average()})"
    )
    env = {"KTES_ENGINE_ENABLED": "false"}
    if not url.startswith("sqlite"):
        env["KTES_DATABASE_URL"] = url
    versions: list[tuple[str, str | None]] = [("this tree", None)]
    if args.baseline_src:  # another ktes on the same store first, then this tree
        versions.insert(0, ("baseline", args.baseline_src))
    for name, src in versions:
        if args.baseline_src:
            print(f"\n### {name}", flush=True)
        poll_server(args, data, env, ids, src)


def poll_server(args: argparse.Namespace, data: Path, env: dict[str, str], ids: list[str], src: str | None) -> None:
    with ktes_serve(data, env, src) as (base, pid):
        port = int(base.rsplit(":", 1)[1])
        cpu0 = cpu_seconds(pid)
        took, errors = asyncio.run(pollers(port, ids, args.pollers, args.seconds))
        cpu = cpu_seconds(pid) - cpu0
        print(
            f"{args.pollers} clients polling one task each (GET, MINIMAL) once a second for {args.seconds:g} s: "
            f"{len(took)} polls ({len(took) / args.seconds:.0f}/s), p50 {pct(took, 50):.2f} ms, "
            f"p99 {pct(took, 99):.2f} ms, {errors} errors; server CPU {cpu / args.seconds * 100:.0f}%, "
            f"RSS {rss_mib(pid):.0f} MiB",
            flush=True,
        )
        if shutil.which("wrk"):
            title = f"wrk -t2 -c16, {args.wrk_seconds:g} s each (load {load_average()})"
            print(f"{title:44} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
            one = ids[len(ids) // 2]
            for name, path in (
                ("get MINIMAL", f"/tasks/{one}"),
                ("get BASIC", f"/tasks/{one}?view=BASIC"),
                ("list first page (256, MINIMAL)", "/tasks"),
                ("list BASIC page of 256", "/tasks?view=BASIC"),
                ("list FULL page of 256", "/tasks?view=FULL"),
                ("list by state EXECUTOR_ERROR", "/tasks?state=EXECUTOR_ERROR&view=BASIC"),
            ):
                f = wrk(name, f"{base}{BASE}{path}", args.wrk_seconds)
                print(f"{f.name:44} {f.rps:8.0f} {f.p50_ms:8.2f} {f.p99_ms:8.2f}", flush=True)


# --- k8s: ktes on the lab cluster against bare Jobs --------------------------------------------------


def kube_requests(base: str) -> dict[tuple[str, str], float]:
    """``ktes_kubernetes_requests_total`` from ``/metrics``, by (verb, resource)."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(httpx.get(base + "/metrics", timeout=30).text):
        for sample in family.samples:
            if sample.name == "ktes_kubernetes_requests_total":
                found[sample.labels["verb"], sample.labels["resource"]] = sample.value
    return found


def lab_note(args: argparse.Namespace, what: str) -> None:
    load = os.getloadavg()[0]
    if args.lab_log:
        with open(args.lab_log, "a") as log:
            log.write(f"{datetime.now():%H:%M:%S} bench/scale.py --parts k8s: {what} (load {load:.1f})\n")


def wait_no_pods(namespace: str, within: float = 600) -> None:
    from tests.fixtures.k8s import kubectl

    deadline = time.monotonic() + within
    while kubectl("-n", namespace, "get", "pods", "-o", "name").strip():
        if time.monotonic() > deadline:
            raise RuntimeError(f"pods still in {namespace} after {within:.0f} s")
        time.sleep(2)


def bare_jobs_run(
    namespace: str, image: str, n: int, command: list[str], config_map: str | None = None
) -> tuple[float, list[float]]:
    """``n`` bare Jobs created at once (16 at a time, like ktes's clients): wall time from the first create to
    the last Job seen Complete by a watch started before, and each Job's create→Complete; then deleted.
    With ``config_map``, each Pod mounts the volumes a ktes Pod of a task without files does: two
    ``emptyDir`` volumes and that ConfigMap (ktes's helper)."""
    import threading
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from bench.k8s import bare_job
    from kubernetes import client as k8s
    from kubernetes import watch as k8s_watch

    batch = k8s.BatchV1Api()
    run = uuid.uuid4().hex[:8]
    names = [f"bare-{run}-{i}" for i in range(n)]
    created: dict[str, float] = {}
    done: dict[str, float] = {}
    stream = k8s_watch.Watch()

    def watch() -> None:
        selector = f"bench-run={run}"
        for event in stream.stream(batch.list_namespaced_job, namespace, label_selector=selector, timeout_seconds=900):
            job = event["object"]
            if job.metadata.name not in done and (job.status.succeeded or 0) > 0:
                done[job.metadata.name] = time.time()
                if len(done) == n:
                    break
            if (job.status.failed or 0) > 0:
                raise RuntimeError(f"bare job {job.metadata.name} failed")
        stream.stop()

    def create(name: str) -> None:
        body = bare_job(image, name, command)
        body["metadata"]["labels"]["bench-run"] = run
        body["spec"]["template"]["metadata"]["labels"]["bench-run"] = run
        body["spec"]["template"]["spec"]["enableServiceLinks"] = False
        body["spec"]["ttlSecondsAfterFinished"] = 300  # as ktes's Jobs (it deletes them once read)
        if config_map is not None:
            pod = body["spec"]["template"]["spec"]
            pod["volumes"] = [
                {"name": "workspace", "emptyDir": {}},
                {"name": "state", "emptyDir": {}},
                {"name": "bin", "configMap": {"name": config_map, "defaultMode": 0o555}},
            ]
            pod["containers"][0]["volumeMounts"] = [
                {"name": "workspace", "mountPath": "/ktes/workspace"},
                {"name": "state", "mountPath": "/ktes/state"},
                {"name": "bin", "mountPath": "/ktes/bin", "readOnly": True},
            ]
        created[name] = time.time()
        batch.create_namespaced_job(namespace, body)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()  # its first list shows Jobs created before it got there, with their status
    began = time.time()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, names))
    watcher.join(timeout=900)
    if len(done) < n:
        raise RuntimeError(f"only {len(done)} of {n} bare Jobs completed")
    wall = max(done.values()) - began
    each = [done[name] - created[name] for name in names]

    def delete(name: str) -> None:
        with contextlib.suppress(k8s.ApiException):  # gone already is fine
            batch.delete_namespaced_job(name, namespace, propagation_policy="Background")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(delete, names))
    return wall, each


def ktes_k8s_run(base: str, pid: int, image: str, n: int, command: list[str]) -> dict[str, Any]:
    body = {"executors": [{"image": image, "command": command}]}
    requests0 = kube_requests(base)
    cpu0 = cpu_seconds(pid)
    began = time.time()
    _, submit_s = asyncio.run(submit_all(base, [body] * n, 16))
    wait_all_terminal(base, n, within=900)
    cpu = cpu_seconds(pid) - cpu0
    requests = {k: v - requests0.get(k, 0) for k, v in kube_requests(base).items() if v > requests0.get(k, 0)}
    tasks = [t for t in full_tasks(base) if ts(t["creation_time"]) >= began - 1]
    states: dict[str, int] = {}
    each: list[float] = []
    ends: list[float] = []
    #: submit→INITIALIZING (the engine), →executor 0 started (Kubernetes), executor ended→COMPLETE (ktes again)
    phases: dict[str, list[float]] = {"dispatch": [], "start": [], "finish": []}
    for task in tasks:
        states[task["state"]] = states.get(task["state"], 0) + 1
        created = ts(task["creation_time"])
        log = (task.get("logs") or [{}])[0]
        if log.get("end_time"):
            ends.append(ts(log["end_time"]))
            each.append(ts(log["end_time"]) - created)
        executor = (log.get("logs") or [{}])[0]
        if log.get("start_time"):
            phases["dispatch"].append(ts(log["start_time"]) - created)
        if executor.get("start_time"):
            phases["start"].append(ts(executor["start_time"]) - created)
        if executor.get("end_time") and log.get("end_time"):
            phases["finish"].append(ts(log["end_time"]) - ts(executor["end_time"]))
    wall = (max(ends) - began) if ends else float("nan")
    return {
        "wall": wall,
        "each": each,
        "phases": phases,
        "states": states,
        "requests": requests,
        "cpu": cpu,
        "submit": submit_s,
    }


def print_requests(requests: dict[tuple[str, str], float], n: int) -> None:
    from ktes.backends.kubernetes.api_requests import READS, WATCHES, WRITES

    def total(keys: set[tuple[str, str]]) -> float:
        return sum(requests[k] for k in keys)

    writes = {k for k in requests if k[0] in WRITES}
    logs = {k for k in requests if k[0] in READS and k[1] == "pods/log"}
    reads = {k for k in requests if k[0] in READS} - logs
    watches = {k for k in requests if k[0] in WATCHES}
    print(f"ktes's requests to the API server ({n} tasks), by verb and resource:")
    for verb, resource in sorted(requests):
        print(f"  {verb:8} {resource:24} {requests[verb, resource]:6.0f}  ({requests[verb, resource] / n:.2f}/task)")
    print(
        f"per task: writes {total(writes) / n:.2f}, reads {total(reads) / n:.2f} (+ log reads {total(logs) / n:.2f}),"
        f" watches {total(watches):.0f} in all (shared by every task)"
    )


def print_bare(title: str, n: int, wall: float, each: list[float]) -> None:
    print(f"{title}: bare Jobs: all {n} Complete in {wall:.1f} s;", end="")
    print(f" create→Complete p50 {pct(each, 50):.1f} s p99 {pct(each, 99):.1f} s", flush=True)


def print_ktes(title: str, n: int, got: dict[str, Any]) -> None:
    print(f"{title}: ktes: {got['states']} in {got['wall']:.1f} s (submitted in {got['submit']:.1f} s);", end="")
    print(f" submit→COMPLETE p50 {pct(got['each'], 50):.1f} s p99 {pct(got['each'], 99):.1f} s")
    for phase, label in (
        ("dispatch", "submit→INITIALIZING"),
        ("start", "submit→executor started"),
        ("finish", "executor ended→COMPLETE"),
    ):
        values = got["phases"][phase]
        print(f"  {label:24} p50 {pct(values, 50):6.1f} s  p99 {pct(values, 99):6.1f} s")
    print(f"  ktes serve CPU: {got['cpu']:.1f} s, {got['cpu'] / n * 1000:.0f} ms per task")
    print_requests(got["requests"], n)


def k8s_part(args: argparse.Namespace) -> None:
    import uuid

    from bench.k8s import ktes_image
    from kubernetes import config as k8s_config
    from tests.fixtures.k8s import LAB_KUBECONFIG, kubectl, lab_cluster_script, load_into_lab
    from tests.fixtures.ktes_server import start_server

    n = args.k8s_tasks
    command = ["sleep", str(args.k8s_sleep)]
    subprocess.run([str(lab_cluster_script()), "up"], check=True, stdout=subprocess.DEVNULL)
    image = ktes_image()
    busybox = build_busybox_image()
    load_into_lab(busybox)
    k8s_config.load_kube_config(str(LAB_KUBECONFIG))
    namespace = f"ktes-scale-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    env = {
        "KUBECONFIG": str(LAB_KUBECONFIG),
        "KTES_BACKEND": "kubernetes",
        "KTES_K8S_NAMESPACE": namespace,
        "KTES_K8S_IMAGE": image,
        "KTES_K8S_DNS_POLICY": "Default",
        "KTES_K8S_LEASE_NAME": f"scale-{uuid.uuid4().hex[:6]}",
    }
    print(f"\n## k8s: {n} tasks of `{' '.join(command)}` at once on the lab, against {n} bare Jobs")
    server = None
    try:
        server = start_server(Path(tempfile.mkdtemp(prefix="ktes-scale-k8s-")), env)
        base = server.url
        ktes_k8s_run(base, server.proc.pid, busybox, 1, ["true"])  # warm up: the Lease, the helper, the image
        helper = None
        if args.k8s_bare_volumes:  # the bare side mounts ktes's volumes, its helper's ConfigMap among them
            maps = kubectl("get", "configmap", "-n", namespace, "-o", "name").split()
            helper = next(m.split("/", 1)[1] for m in maps if m.split("/", 1)[1] != "kube-root-ca.crt")
            print(f"bare Jobs mount two emptyDir volumes and the ConfigMap {helper}, as ktes's Pods", flush=True)
        bare_jobs_run(namespace, busybox, 1, ["true"], helper)
        wait_no_pods(namespace)
        for round_ in range(1, args.k8s_rounds + 1):
            walls: dict[str, float] = {}
            for side in ("bare", "ktes") if round_ % 2 else ("ktes", "bare"):  # each goes first in turn
                lab_note(args, f"{n} {side} pods at once in namespace {namespace}")
                load = os.getloadavg()[0]
                if side == "bare":
                    walls[side], bare_each = bare_jobs_run(namespace, busybox, n, command, helper)
                    print_bare(f"round {round_}, load {load:.1f}", n, walls[side], bare_each)
                else:
                    got = ktes_k8s_run(base, server.proc.pid, busybox, n, command)
                    walls[side] = got["wall"]
                    print_ktes(f"round {round_}, load {load:.1f}", n, got)
                wait_no_pods(namespace)
                lab_note(args, f"done: no pod left in namespace {namespace}")
            print(f"round {round_}: wall time ratio ktes/bare {walls['ktes'] / walls['bare']:.2f}x", flush=True)
    finally:
        if server is not None:
            server.stop()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


# --- many connections ---------------------------------------------------------------------------------


async def connections_figures(port: int, pid: int, count: int) -> None:
    """``count`` connections held open doing nothing, then each sending a GET of a list page and a POST at
    once (as the 1,000-connection fault test does): the server's RSS before, with them open, and after."""
    get = f"GET {BASE}/tasks?page_size=5 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    body = b'{"name": "c", "executors": [{"image": "alpine", "command": ["true"]}]}'
    post = (
        f"POST {BASE}/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    before = rss_mib(pid)
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    await asyncio.sleep(2.0)
    idle = rss_mib(pid)
    seen: list[float] = []
    sampling = True

    async def sample() -> None:
        while sampling:
            seen.append(rss_mib(pid))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    began = time.perf_counter()
    codes = await asyncio.gather(
        *(poll_once(reader, writer, post if i % 2 else get) for i, (reader, writer) in enumerate(conns))
    )
    took = time.perf_counter() - began
    sampling = False
    await sampler
    active = rss_mib(pid)
    for _, writer in conns:
        writer.close()
    await asyncio.sleep(2.0)
    after = rss_mib(pid)
    bad = sum(1 for code in codes if code != 200)
    print(f"\n## {count:,} concurrent connections (engine off)")
    print(f"server RSS: {before:.0f} MiB before, {idle:.0f} MiB with {count:,} idle connections open")
    print(
        f"{count:,} requests at once on them (half GET of a list page, half POST): {took:.1f} s, {bad} not 200; "
        f"RSS max {max(seen, default=active):.0f} MiB meanwhile, {active:.0f} MiB after, {after:.0f} MiB once closed",
        flush=True,
    )


def connections_part(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ktes-scale-") as tmp:
        data = Path(tmp)
        with ktes_serve(data, {"KTES_ENGINE_ENABLED": "false"}) as (base, pid):
            for _ in range(2):  # the second round shows whether the first one's memory is kept or reused
                asyncio.run(connections_figures(int(base.rsplit(":", 1)[1]), pid, args.connections))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="local,podman,large,poll")
    parser.add_argument("--tasks", type=int, default=10_000, help="local: tasks of `true`")
    parser.add_argument("--clients", type=int, default=32, help="local: concurrent submitting clients")
    parser.add_argument("--parallel", type=int, default=8, help="tasks at once (KTES_LOCAL_MAX_CPUS)")
    parser.add_argument("--ratio-tasks", type=int, default=500, help="podman: tasks on each side")
    parser.add_argument(
        "--podman-variants", default="bare,ktes", help=f"podman: sides to measure, of {','.join(PODMAN_VARIANTS)}"
    )
    parser.add_argument("--podman-rounds", type=int, default=1, help="podman: runs of each variant, in turn")
    parser.add_argument(
        "--podman-gaps", action="store_true", help="podman: ktes with debug logs, to time its dispatch gap"
    )
    parser.add_argument("--large-tasks", type=int, default=20)
    parser.add_argument("--large-mib", type=float, default=15.0)
    parser.add_argument("--large-lists", type=int, default=1000)
    parser.add_argument(
        "--large-page-mib", type=float, default=64.0, help="large: list_page_max_bytes (64: a FULL page of 4 whole)"
    )
    parser.add_argument("--stored", type=int, default=1_000_000, help="poll: stored tasks")
    parser.add_argument("--pollers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0, help="poll: how long the clients poll")
    parser.add_argument("--wrk-seconds", type=float, default=5.0, help="poll: each wrk run after the pollers")
    parser.add_argument("--engine-tasks", type=int, default=1000, help="engine: tasks per run")
    parser.add_argument("--engine-runtime", choices=("fake", "podman"), default="fake", help="engine: the runtime")
    parser.add_argument("--rounds", type=int, default=3, help="engine: runs of each version")
    parser.add_argument("--baseline-src", help="engine, podman, poll: another ktes's src dir, measured too")
    parser.add_argument("--profile", type=Path, help="engine: py-spy's samples of the engine's run go here")
    parser.add_argument("--connections", type=int, default=1000, help="connections: how many at once")
    parser.add_argument("--keep-log", help="local: copy the server's log here at the end")
    parser.add_argument("--poll-dir", help="poll: a data dir to keep the filled store in (reused when there)")
    parser.add_argument("--poll-database", choices=("sqlite", "postgresql"), default="sqlite", help="poll: the store")
    parser.add_argument("--poll-url", help="poll, postgresql: the URL of a database of your own (filled, then kept)")
    parser.add_argument("--k8s-tasks", type=int, default=200, help="k8s: tasks (and bare Jobs) at once")
    parser.add_argument("--k8s-sleep", type=int, default=5, help="k8s: seconds each task sleeps")
    parser.add_argument("--k8s-rounds", type=int, default=1, help="k8s: bare/ktes pairs, alternating")
    parser.add_argument(
        "--k8s-bare-volumes", action="store_true", help="k8s: bare Jobs mount the volumes ktes's Pods do"
    )
    parser.add_argument("--lab-log", help="k8s: a file to note each run in before it starts (a shared lab)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"ktes scale benchmark: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    parts = args.parts.split(",")
    image = build_busybox_image() if {"local", "podman", "engine"} & set(parts) else ""
    for part in parts:
        if part == "local":
            local_part(args, image)
        elif part == "podman":
            podman_part(args, image)
        elif part == "engine":
            engine_part(args, image)
        elif part == "connections":
            connections_part(args)
        elif part == "large":
            large_part(args)
        elif part == "poll":
            poll_part(args)
        elif part == "k8s":
            k8s_part(args)
        else:
            raise SystemExit(f"unknown part {part!r}")


if __name__ == "__main__":
    main()
