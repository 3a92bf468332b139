"""What /metrics costs the API: GET throughput of ``ktes serve`` with metrics on and off (KTES_METRICS_ENABLED).

On a store of 1,000 tasks (SQLite), the two servers take turns (on, off, on, off, ...) so the load of a shared
machine falls on both alike; each round runs ``wrk`` on a MINIMAL get, a FULL get and a list page. Prints the
median requests/s of each and the ratio on/off. Not a test: it prints figures.

    python bench/metrics_cost.py [--seconds 3] [--rounds 5]

A second figure is steadier on a busy machine: the same app called in-process (raw ASGI, no sockets) with
and without metrics, alternating, for the time each GET takes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import BASE, fill, get_json, ktes_serve, wrk

from ktes.api.app import create_app
from ktes.capabilities import Capabilities
from ktes.config import Settings
from ktes.store.base import TaskFilter
from ktes.store.sql import open_store
from ktes.tes.models import View

RUNS = [
    ("get MINIMAL", "/tasks/{id}"),
    ("get FULL", "/tasks/{id}?view=FULL"),
    ("list first page (256, MINIMAL)", "/tasks"),
]


async def _call(app: object, path: str) -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: dict[str, object]) -> None:
        return None

    await app(scope, receive, send)  # type: ignore[operator]


def in_process(url: str, data_dir: Path, calls: int, rounds: int) -> None:
    store = open_store(url)
    capabilities = Capabilities(storage_schemes=("file",), backend_parameters=())
    apps = {
        mode: create_app(Settings(data_dir=data_dir, metrics_enabled=mode == "on"), store, capabilities)
        for mode in ("on", "off")
    }
    newest = store.list_tasks(TaskFilter(), 1, None, View.MINIMAL)
    path = f"{BASE}/tasks/{newest.tasks[0]['id']}"
    per_call: dict[str, list[float]] = {"on": [], "off": []}

    async def run() -> None:
        for mode in ("on", "off"):
            await _call(apps[mode], path)  # build the middleware stacks
        for round_number in range(rounds):
            for mode in ("on", "off") if round_number % 2 else ("off", "on"):  # neither always goes first
                started = time.perf_counter()
                for _ in range(calls):
                    await _call(apps[mode], path)
                per_call[mode].append((time.perf_counter() - started) / calls * 1e6)

    asyncio.run(run())
    store.close()
    on, off = statistics.median(per_call["on"]), statistics.median(per_call["off"])
    print(f"\nin-process GET MINIMAL, median of {rounds} x {calls} calls: on {on:.1f} us, off {off:.1f} us, ", end="")
    print(f"metrics cost {on - off:.1f} us a request ({(on - off) / off * 100:.1f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5000, help="in-process GETs per round")
    parser.add_argument("--in-process-only", action="store_true", help="skip the wrk runs")
    args = parser.parse_args()
    print(f"metrics cost: wrk -t2 -c16, {args.seconds:g}s per run, {args.rounds} rounds, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="ktes-bench-") as tmp:
        url = f"sqlite:///{tmp}/ktes.db"
        fill(url, 0, 1000)
        in_process(url, Path(tmp), args.calls, args.rounds)
        if args.in_process_only:
            return
        rps: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for mode in ("on", "off"):
                env = {"KTES_METRICS_ENABLED": "true" if mode == "on" else "false"}
                with ktes_serve(url, Path(tmp), env) as (base, _pid):
                    newest = get_json(f"{base}{BASE}/tasks?page_size=1")["tasks"][0]["id"]
                    for name, path in RUNS:
                        figures = wrk(name, f"{base}{BASE}{path.format(id=newest)}", args.seconds)
                        rps.setdefault((name, mode), []).append(figures.rps)
    print(f"{'operation':36} {'on req/s':>9} {'off req/s':>9} {'on/off':>7}")
    for name, _ in RUNS:
        on, off = statistics.median(rps[(name, "on")]), statistics.median(rps[(name, "off")])
        print(f"{name:36} {on:9.0f} {off:9.0f} {on / off:7.3f}")


if __name__ == "__main__":
    main()
