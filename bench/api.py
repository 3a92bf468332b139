"""API benchmark: ``ktes serve`` as shipped, driven by ``wrk`` on 127.0.0.1, on SQLite and PostgreSQL.

For each database it fills the store to 1k, 10k and 100k tasks (bulk, through the store), starts
``ktes serve --backend local`` with the engine disabled (an API-only replica: the filled tasks must not run),
and measures create, get (MINIMAL and FULL) and list (first page, by state, by tag, by a rare tag, by name
prefix, FULL view, a deep page), printing requests/s, p50 and p99 latency, and the server's RSS after the
runs. Not a test: it prints figures.

    python bench/api.py [--seconds 3] [--sizes 1000,10000,100000] [--databases sqlite,postgresql]
    python bench/api.py --auth [--seconds 3]     # GET throughput with auth off, basic and OIDC, side by side
    python bench/api.py --get [--baseline-src ../main/src] [--rounds 5] [--profile]
                                                 # GetTask only, this tree and another taking turns
    python bench/api.py --url URL --sizes 1000000 [--baseline-src ../main/src] [--rounds 2] [--no-create]

``--url`` reuses a store of your own (filled only up to the size; a million tasks take minutes to add), and
``--baseline-src`` measures another ktes's ``src`` on the same store, taking turns with this tree (the baseline
must know the store's schema: migrations it lacks stop it).

Needs ``wrk`` (Debian package) and, for PostgreSQL, Debian's postgresql 15 (started in a temp directory).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fixtures.postgres

import sqlalchemy as sa
from tests.fixtures.postgres import running_postgres

from ktes.store.sql import open_store
from ktes.tes.ids import new_id, rfc3339
from ktes.tes.models import Executor, ExecutorLog, Input, Output, Resources, State, Task, TaskLog

BASE = "/ga4gh/tes/v1"
STATES = [State.COMPLETE] * 17 + [State.EXECUTOR_ERROR, State.SYSTEM_ERROR, State.CANCELED]
CREATE_BODY = {
    "name": "bench-create",
    "executors": [{"image": "alpine:3", "command": ["md5sum", "/data/in"]}],
    "inputs": [{"url": "s3://bucket/in", "path": "/data/in"}],
    "tags": {"project": "bench"},
}


def synthetic_task(i: int, rng: random.Random) -> Task:
    """A finished task of realistic size (about 1.5 KB of JSON)."""
    task_id, ms = new_id()
    return Task(
        id=task_id,
        state=rng.choice(STATES),
        creation_time=rfc3339(ms),
        name=f"align-{i % 100:02d}-{i}",
        description="align reads of one sample against the reference",
        inputs=[
            Input(url=f"s3://bucket/samples/{i}.fastq.gz", path="/data/reads.fastq.gz"),
            Input(path="/data/params.json", content='{"threads": 4, "min_quality": 20}'),
        ],
        outputs=[Output(url=f"s3://bucket/results/{i}/", path="/data/out/*.bam", path_prefix="/data/out/")],
        resources=Resources(cpu_cores=4, ram_gb=8.0, disk_gb=20.0),
        executors=[
            Executor(image="quay.io/biocontainers/bwa:0.7.17", command=["bwa", "mem", "-t", "4", "ref.fa", "r.fq"]),
            Executor(image="quay.io/biocontainers/samtools:1.19", command=["samtools", "sort", "-o", "out/a.bam"]),
        ],
        tags={"project": f"p{i % 10}", "sample": f"s{i}"},
        logs=[
            TaskLog(
                logs=[
                    ExecutorLog(exit_code=0, start_time="2024-01-01T00:00:01Z", end_time="2024-01-01T00:10:00Z"),
                    ExecutorLog(exit_code=0, start_time="2024-01-01T00:10:01Z", stdout="sorted 1203 reads\n"),
                ],
                outputs=[],
                metadata={"host": "node-3"},
                start_time="2024-01-01T00:00:00Z",
                end_time="2024-01-01T00:11:00Z",
                system_logs=["pulled quay.io/biocontainers/bwa:0.7.17"],
            )
        ],
    )


def fill(url: str, start: int, stop: int, owner: str | None = None) -> float:
    """Add tasks ``start..stop-1`` (owned by ``owner``); return the seconds it took."""
    store = open_store(url)
    rng = random.Random(start)
    began = time.perf_counter()
    for batch in range(start, stop, 5000):
        chunk = [synthetic_task(i, rng) for i in range(batch, min(batch + 5000, stop))]
        for task in chunk:
            task.owner = owner
        store.import_tasks(chunk)
    store.close()
    return time.perf_counter() - began


@dataclass
class Figures:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    assert match, text
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wrk(
    name: str, url: str, seconds: float, script: Path | None = None, headers: dict[str, str] | None = None
) -> Figures:
    argv = ["wrk", "-t2", "-c16", f"-d{seconds:g}s", "--latency"]
    for key, value in (headers or {}).items():
        argv += ["-H", f"{key}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Figures(name, rps, p50, p99, int(errors.group(1)) if errors else 0, requests)


def get_json(url: str, headers: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def ktes_serve(
    database_url: str, data_dir: Path, extra_env: dict[str, str] | None = None, src: str | None = None
) -> Iterator[tuple[str, int]]:
    """An API-only ``ktes serve`` on ``database_url``; with ``src``, the ``ktes`` package found there."""
    port = free_port()
    env = {
        **os.environ,
        "KTES_DATABASE_URL": database_url,
        "KTES_ENGINE_ENABLED": "false",
        "KTES_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    if src:
        env["PYTHONPATH"] = src
    argv = ["ktes", "serve", "--backend", "local", "--host", "127.0.0.1", "--port", str(port)]
    if src is not None:
        env["PYTHONPATH"] = str(Path(src).resolve())
        argv = [sys.executable, "-m", "ktes", *argv[1:]]
    server = subprocess.Popen([*argv, "--data-dir", str(data_dir)], env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            get_json(base + "/healthz")
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ktes serve did not start") from None
            time.sleep(0.1)
    try:
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def deep_token(base: str, depth: int) -> str | None:
    """The page_token after ``depth`` tasks (walked with big MINIMAL pages)."""
    token, seen = None, 0
    while seen < depth:
        size = min(2047, depth - seen)
        page = get_json(f"{base}{BASE}/tasks?page_size={size}" + (f"&page_token={token}" if token else ""))
        seen += len(page["tasks"])
        token = page.get("next_page_token")
        if not token:
            return None
    return token


def suite(
    base: str, pid: int, seconds: float, work: Path, stored: int, create: bool = True
) -> tuple[list[Figures], float]:
    create_lua = work / "create.lua"
    create_lua.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(CREATE_BODY))}\n"
    )
    newest = get_json(f"{base}{BASE}/tasks?page_size=1&state=COMPLETE")["tasks"][0]["id"]
    runs = [
        ("get MINIMAL", f"/tasks/{newest}"),
        ("get FULL", f"/tasks/{newest}?view=FULL"),
        ("list first page (256, MINIMAL)", "/tasks"),
        ("list by state EXECUTOR_ERROR (~5%)", "/tasks?state=EXECUTOR_ERROR"),
        ("list by tag project=p3 (10%)", "/tasks?tag_key=project&tag_value=p3"),
        ("list by rare tag sample=s123 (1 task)", "/tasks?tag_key=sample&tag_value=s123"),
        ("list by name_prefix align-42 (1%)", "/tasks?name_prefix=align-42"),
        ("list BASIC page of 256", "/tasks?view=BASIC"),
        ("list FULL page of 256", "/tasks?view=FULL"),
    ]
    token = deep_token(base, int(stored * 0.9)) if stored >= 10_000 else None
    if token is not None:
        runs.append(("list deep page (90% down)", f"/tasks?page_token={token}"))
    figures = [wrk(name, f"{base}{BASE}{path}", seconds) for name, path in runs]
    if create:
        figures.insert(0, wrk("create", f"{base}{BASE}/tasks", seconds, create_lua))
    return figures, rss_mib(pid)


def stored_tasks(url: str) -> int:
    """How many tasks the store at ``url`` holds (0 for a new database)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM tasks")).scalar_one())
    except sa.exc.DBAPIError:
        return 0
    finally:
        engine.dispose()


def load_average() -> str:
    return "load average " + " ".join(f"{value:.1f}" for value in os.getloadavg())


def print_figures(figures: list[Figures]) -> None:
    print(f"{'operation':44} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for f in figures:
        bad = f"  ({f.errors} non-2xx)" if f.errors else ""
        print(f"{f.name:44} {f.rps:8.0f} {f.p50_ms:8.2f} {f.p99_ms:8.2f}{bad}")


@dataclass
class Options:
    seconds: float
    baseline_src: str | None = None
    rounds: int = 1
    create: bool = True


def run_database(label: str, url: str, sizes: list[int], options: Options) -> None:
    work = Path(tempfile.mkdtemp(prefix="ktes-bench-"))
    filled = stored_tasks(url)
    versions: list[tuple[str, str | None]] = [("this tree", None)]
    if options.baseline_src:
        versions.insert(0, ("baseline", options.baseline_src))
    try:
        for size in sizes:
            if size < filled:
                print(f"\n(skipping {size:,}: the store holds {filled:,} tasks)")
                continue
            took = fill(url, filled, size)
            print(f"\n## {label}: {size:,} stored tasks (filled {size - filled:,} in {took:.1f}s)", flush=True)
            filled = size
            results: dict[str, list[list[Figures]]] = {}
            for turn in range(1, options.rounds + 1):
                for name, src in versions:
                    with ktes_serve(url, work, src=src) as (base, pid):
                        idle = rss_mib(pid)
                        before = load_average()
                        figures, rss = suite(base, pid, options.seconds, work, size, options.create)
                    tag = f"{name}, turn {turn}: " if len(versions) > 1 or options.rounds > 1 else ""
                    print(f"\n{tag}{before} at the start, {load_average()} at the end")
                    print_figures(figures)
                    print(f"server RSS: {idle:.0f} MiB at start, {rss:.0f} MiB after the runs", flush=True)
                    results.setdefault(name, []).append(figures)
            if len(versions) > 1:
                compare(results["baseline"], results["this tree"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(baseline: list[list[Figures]], this_tree: list[list[Figures]]) -> None:
    """Each operation's best turn (highest req/s) of both sides."""

    def best(turns: list[list[Figures]]) -> list[Figures]:
        return [max(column, key=lambda f: f.rps) for column in zip(*turns, strict=True)]

    print("\nbest turn of each side      baseline: req/s   p50   p99   |   this tree: req/s   p50   p99")
    for b, t in zip(best(baseline), best(this_tree), strict=True):
        sides = [f"{f.rps:7.0f} {f.p50_ms:7.2f} {f.p99_ms:7.2f}" for f in (b, t)]
        print(f"{b.name:44} {sides[0]}   | {sides[1]}", flush=True)


def auth_comparison(seconds: float, stored: int = 10_000, rounds: int = 3) -> None:
    """The same GETs with auth off, with basic auth and with OIDC (a real provider process), in one run: the
    modes take turns ``rounds`` times and the best of each counts, so a busy moment of the machine does not
    land on one mode only."""
    import base64

    from tests.fixtures.oidc import OidcProvider

    from ktes.auth.users_file import add_user

    work = Path(tempfile.mkdtemp(prefix="ktes-bench-auth-"))
    url = f"sqlite:///{work / 'ktes.db'}"
    took = fill(url, 0, stored, owner="bench")
    print(f"\n## auth on vs off: SQLite, {stored:,} tasks of user 'bench' (filled in {took:.1f}s)", flush=True)
    users = work / "users"
    add_user(users, "bench", "bench-password")  # bcrypt cost 12: ktes verifies once, then remembers
    provider = OidcProvider(port=free_port(), key_file=work / "key.json", log=work / "provider.log")
    provider.start()
    basic = "Basic " + base64.b64encode(b"bench:bench-password").decode()
    modes: list[tuple[str, dict[str, str], dict[str, str]]] = [
        ("off", {}, {}),
        ("basic", {"KTES_AUTH": "basic", "KTES_AUTH_USERS_FILE": str(users)}, {"Authorization": basic}),
        (
            "oidc",
            {"KTES_AUTH": "oidc", "KTES_OIDC_ISSUER": provider.issuer, "KTES_OIDC_AUDIENCE": "ktes"},
            {"Authorization": "Bearer " + provider.token("bench")},
        ),
    ]
    results: dict[str, list[Figures]] = {}
    try:
        for _ in range(rounds):
            for mode, env, headers in modes:
                with ktes_serve(url, work, env) as (base, _pid):
                    newest = get_json(f"{base}{BASE}/tasks?page_size=1", headers)["tasks"][0]["id"]
                    runs = [
                        ("get MINIMAL", f"/tasks/{newest}"),
                        ("get FULL", f"/tasks/{newest}?view=FULL"),
                        ("list first page (256, MINIMAL)", "/tasks"),
                        ("list BASIC page of 256", "/tasks?view=BASIC"),
                    ]
                    figures = [wrk(name, f"{base}{BASE}{path}", seconds, headers=headers) for name, path in runs]
                best = results.setdefault(mode, figures)
                results[mode] = [max(a, b, key=lambda f: f.rps) for a, b in zip(best, figures, strict=True)]
    finally:
        provider.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'operation':34} {'off req/s':>10} {'basic req/s':>12} {'oidc req/s':>11} {'basic':>7} {'oidc':>7}")
    for i, off in enumerate(results["off"]):
        on_basic, on_oidc = results["basic"][i], results["oidc"][i]
        errors = sum(f.errors for f in (off, on_basic, on_oidc))
        bad = f"  ({errors} non-2xx)" if errors else ""
        print(
            f"{off.name:34} {off.rps:10.0f} {on_basic.rps:12.0f} {on_oidc.rps:11.0f}"
            f" {on_basic.rps / off.rps - 1:+7.1%} {on_oidc.rps / off.rps - 1:+7.1%}{bad}",
            flush=True,
        )


#: Where a profile sample's time goes: the first of these patterns met walking its stack from the innermost
#: frame outwards names its share (see ``--profile``).
SHARES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("store read (SQLite, pool)", ("ktes/store/", "sqlalchemy/", "sqlite", "_sqlite3")),
    ("socket write (syscall)", ("write (libc", "UVStream_write", "UVStream__")),
    ("uvicorn + httptools", ("uvicorn/protocols/", "parser.c", "llhttp", "httptools")),
    (
        "ktes GetTask code (read, redaction, JSON)",
        ("ktes/api/tasks.py", "ktes/api/fast_get.py", "ktes/api/redaction", "ktes/tes/", "orjson"),
    ),
    (
        "Starlette/FastAPI + ktes middleware",
        ("starlette/", "fastapi/", "ktes/api/", "ktes/auth/", "prometheus_client", "uvicorn/middleware/", "anyio/"),
    ),
)


def shares(profile: Path) -> dict[str, float]:
    """The shares of a py-spy ``raw`` profile, in percent of its samples (the rest: event loop and other)."""
    counts: dict[str, int] = {}
    total = 0
    for line in profile.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack:
            continue
        n = int(samples)
        total += n
        share = "event loop, other"
        for frame in reversed(stack.split(";")):
            share = next((name for name, marks in SHARES if any(m in frame for m in marks)), "")
            if share:
                break
        counts[share or "event loop, other"] = counts.get(share or "event loop, other", 0) + n
    return {name: 100 * n / max(total, 1) for name, n in counts.items()}


def profiled_wrk(name: str, url: str, seconds: float, pid: int, out: Path) -> tuple[Figures, dict[str, float]]:
    """``wrk`` with ``py-spy record --native`` on the server meanwhile (which slows it: figures for shares only)."""
    spy = subprocess.Popen(
        [
            "py-spy",
            "record",
            "--native",
            "--rate",
            "200",
            "--format",
            "raw",
            "--duration",
            f"{max(1, seconds - 1):g}",
            "--output",
            str(out),
            "--pid",
            str(pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    figures = wrk(name, url, seconds)
    spy.wait(timeout=120)
    return figures, shares(out)


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time ``pid`` has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def get_comparison(
    seconds: float, rounds: int, baseline_src: str | None, stored: int = 10_000, profile: bool = False
) -> None:
    """GetTask only (MINIMAL, BASIC, FULL of one finished task): this tree, and with ``baseline_src`` another
    tree's ktes on the same store, taking turns ``rounds`` times (the median and the best of each count), the
    load average printed with every run."""
    work = Path(tempfile.mkdtemp(prefix="ktes-bench-get-"))
    url = f"sqlite:///{work / 'ktes.db'}"
    took = fill(url, 0, stored)
    print(f"\n## GetTask: SQLite, {stored:,} stored tasks (filled in {took:.1f}s)", flush=True)
    this_src = str(Path(__file__).resolve().parents[1] / "src")
    sides = [("this tree", this_src)]
    if baseline_src:
        sides.insert(0, ("baseline", baseline_src))
    views = ["MINIMAL", "BASIC", "FULL"]
    results: dict[tuple[str, str], list[Figures]] = {}
    cpu_per_request: dict[tuple[str, str], list[float]] = {}
    profiles: dict[str, dict[str, float]] = {}
    try:
        for turn in range(rounds):
            for side, src in sides if turn % 2 == 0 else sides[::-1]:
                with ktes_serve(url, work, src=src) as (base, pid):
                    newest = get_json(f"{base}{BASE}/tasks?page_size=1&state=COMPLETE")["tasks"][0]["id"]
                    for view in views:
                        target = f"{base}{BASE}/tasks/{newest}?view={view}"
                        cpu = cpu_seconds(pid)
                        f = wrk(f"get {view}", target, seconds)
                        cpu_us = (cpu_seconds(pid) - cpu) / max(f.requests, 1) * 1e6
                        results.setdefault((side, view), []).append(f)
                        cpu_per_request.setdefault((side, view), []).append(cpu_us)
                        bad = f"  ({f.errors} non-2xx)" if f.errors else ""
                        print(
                            f"round {turn + 1} {side:10} get {view:8} {f.rps:8.0f} req/s  p50 {f.p50_ms:6.2f} ms"
                            f"  p99 {f.p99_ms:6.2f} ms  server CPU {cpu_us:5.0f} us/req  load {load()}{bad}",
                            flush=True,
                        )
                    if profile and turn == 0:
                        target = f"{base}{BASE}/tasks/{newest}?view=BASIC"
                        _f, profiles[side] = profiled_wrk("get BASIC", target, seconds, pid, work / f"{side}.txt")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'GetTask':14} " + " ".join(f"{side + ' median':>18} {'best':>7}" for side, _ in sides), end="")
    print(f" {'ratio (median)':>15}" if baseline_src else "")
    for view in views:
        row = f"{'get ' + view:14} "
        medians = []
        for side, _ in sides:
            rates = sorted(f.rps for f in results[(side, view)])
            medians.append(rates[len(rates) // 2])
            row += f"{medians[-1]:18.0f} {rates[-1]:7.0f}"
        print(row + (f" {medians[1] / medians[0]:14.2f}x" if baseline_src else ""), flush=True)
    print("\nserver CPU per request, median (us; the load barely moves it, unlike req/s):")
    for view in views:
        cells = []
        for side, _ in sides:
            cpu = sorted(cpu_per_request[(side, view)])
            cells.append(f"{side} {cpu[len(cpu) // 2]:5.0f}")
        print(f"  get {view:8} " + "   ".join(cells), flush=True)
    for side, by_share in profiles.items():
        print(f"\nprofile of get BASIC, {side} (py-spy --native, share of samples):")
        for name, pct in sorted(by_share.items(), key=lambda item: -item[1]):
            print(f"  {pct:5.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each wrk run")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--auth", action="store_true", help="only compare GET throughput with auth off and on")
    parser.add_argument("--rounds", type=int, default=None, help="turns of each side (--auth, --get: 3, else 1)")
    parser.add_argument("--get", action="store_true", help="only GetTask (MINIMAL, BASIC, FULL) of one task")
    parser.add_argument("--profile", action="store_true", help="with --get: py-spy shares of get BASIC per tree")
    parser.add_argument("--url", help="a database of your own to fill (up to the size) and measure, kept after")
    parser.add_argument("--baseline-src", help="the src directory of another ktes, measured in turns with this one")
    parser.add_argument("--no-create", action="store_true", help="skip the create run (it adds tasks to the store)")
    args = parser.parse_args()
    if args.get:
        print(f"ktes API benchmark: wrk -t2 -c16, {args.seconds:g}s per run, {os.cpu_count()} CPUs", flush=True)
        get_comparison(args.seconds, args.rounds or 3, args.baseline_src, profile=args.profile)
        return
    if args.auth:
        print(f"ktes API benchmark: wrk -t2 -c16, {args.seconds:g}s per run, {os.cpu_count()} CPUs", flush=True)
        auth_comparison(args.seconds, rounds=args.rounds or 3)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    options = Options(args.seconds, args.baseline_src, args.rounds or 1, not args.no_create)
    print(f"ktes API benchmark: wrk -t2 -c16, {args.seconds:g}s per run, {os.cpu_count()} CPUs", flush=True)
    if args.url:
        label = "SQLite" if args.url.startswith("sqlite") else "PostgreSQL"
        run_database(label, args.url, sizes, options)
        return
    for database in args.databases.split(","):
        if database == "sqlite":
            with tempfile.TemporaryDirectory(prefix="ktes-bench-db-") as tmp:
                run_database("SQLite", f"sqlite:///{tmp}/ktes.db", sizes, options)
        elif database == "postgresql":
            with running_postgres(durable=True) as url:
                run_database("PostgreSQL 15", url, sizes, options)
        else:
            raise SystemExit(f"unknown database {database!r}")


if __name__ == "__main__":
    main()
