"""What /metrics costs the API: GET throughput of ``ktes serve`` with metrics on and off (KTES_METRICS_ENABLED).

On a store of 1,000 tasks (SQLite), the two servers take turns (on, off, on, off, ...) so the load of a shared
machine falls on both alike; each round runs ``wrk`` on a MINIMAL get, a FULL get and a list page. Prints the
median requests/s of each and the ratio on/off. Not a test: it prints figures.

    python bench/metrics_cost.py [--seconds 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import BASE, fill, get_json, ktes_serve, wrk

RUNS = [
    ("get MINIMAL", "/tasks/{id}"),
    ("get FULL", "/tasks/{id}?view=FULL"),
    ("list first page (256, MINIMAL)", "/tasks"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"metrics cost: wrk -t2 -c16, {args.seconds:g}s per run, {args.rounds} rounds, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="ktes-bench-") as tmp:
        url = f"sqlite:///{tmp}/ktes.db"
        fill(url, 0, 1000)
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
