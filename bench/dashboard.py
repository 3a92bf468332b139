"""Dashboard benchmark: the task list with 100,000 stored tasks, in headless Debian chromium.

Fills a SQLite store with ``--tasks`` finished tasks (bench/api.py's synthetic tasks, about 1.5 KB each),
starts ``ktes serve`` as an API-only replica (engine off: the stored tasks must not run), and measures, over
``--runs`` fresh page loads each: time from navigation to the first task row on screen (the list unfiltered,
filtered by state, by name prefix, by tag), to the counts by state, and the service page; plus the API calls
the list makes (first page BASIC, summary with its grouped count) measured alone. Not a test: it prints figures.

    python bench/dashboard.py [--tasks 100000] [--runs 5]

Needs /usr/bin/chromium (Debian's chromium) and the dev extra (playwright).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.fixtures

from tests.fixtures.browser import CHROMIUM, LAUNCH_ARGS  # noqa: E402
from tests.fixtures.ktes_server import start_server  # noqa: E402


def bench_api_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_api", ROOT / "bench" / "api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_api"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def timed_load(page: Page, url: str, selector: str) -> float:
    """Milliseconds from navigation to ``selector`` being visible."""
    began = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.locator(selector).first.wait_for(state="visible", timeout=30_000)
    return (time.perf_counter() - began) * 1000


def timed_get(url: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
        times.append((time.perf_counter() - began) * 1000)
    return times


def line(name: str, times: list[float]) -> str:
    return f"{name:<44} median {statistics.median(times):7.1f} ms   max {max(times):7.1f} ms   (n={len(times)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ktes-bench-dashboard-") as tmp:
        data_dir = Path(tmp)
        print(f"filling {args.tasks:,} tasks ...", flush=True)
        seconds = bench_api_module().fill(f"sqlite:///{data_dir / 'ktes.db'}", 0, args.tasks)
        print(f"filled in {seconds:.1f} s")
        server = start_server(data_dir, {"KTES_ENGINE_ENABLED": "false"})
        try:
            base = server.url
            print(
                line(
                    "API: first page, BASIC, 50 tasks",
                    timed_get(f"{base}/ga4gh/tes/v1/tasks?view=BASIC&page_size=50", 20),
                )
            )
            print(line("API: summary (counts by state)", timed_get(f"{base}/ktes/v1/summary", 20)))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
                cases = [
                    ("list: first row", "/ui/", "#tasks tbody tr"),
                    ("list: counts by state", "/ui/", "#counts li"),
                    ("list by state (EXECUTOR_ERROR): first row", "/ui/?state=EXECUTOR_ERROR", "#tasks tbody tr"),
                    ("list by name prefix (align-07-): first row", "/ui/?name_prefix=align-07-", "#tasks tbody tr"),
                    ("list by tag (project=p3): first row", "/ui/?tags=project%3Dp3", "#tasks tbody tr"),
                    ("service page: figures", "/ui/service", "#load dd"),
                ]
                results: dict[str, list[float]] = {}
                for _ in range(args.runs):
                    for name, path, selector in cases:
                        context = browser.new_context()  # a cold page each time (no cache)
                        page = context.new_page()
                        results.setdefault(name, []).append(timed_load(page, base + path, selector))
                        context.close()
                browser.close()
            print(f"-- chromium, {args.tasks:,} stored tasks, cold page loads:")
            for name, times in results.items():
                print(line(name, times))
            worst = max(statistics.median(t) for n, t in results.items() if "first row" in n)
            print(f"first rows of the list render in under 1 s: {'yes' if worst < 1000 else 'NO'} ({worst:.0f} ms)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
