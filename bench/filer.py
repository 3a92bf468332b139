"""Benchmark: the filer against the raw clients, over HTTP and S3, at two sizes.

    python bench/filer.py [--sizes-mib 64,1024] [--reps 3]

HTTP: the test suite's HTTP server (GET by sendfile, PUT streamed to disk) on this host's address; ktes
against ``curl``. S3: moto in server mode (its own process: it holds the objects in memory); ktes against
boto3 (``download_file``/``upload_file``, and a streamed ``get_object``) and, when installed, obstore. Each
transfer runs in a fresh child process that times only the transfer (not interpreter start-up) and reports
its own peak RSS. Trials are interleaved and the median is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MIB = 1024 * 1024
BUCKET = "ktes-bench"
KEY = "AKIAKTESBENCH0000001"
SECRET = "ktes-bench-secret"


# --- the child: one transfer, timed in-process ------------------------------------------------------


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(tool: str, op: str, source: str, dest: str) -> None:
    started = time.perf_counter()
    cpu_started = cpu_seconds()
    if tool == "ktes":
        from ktes.config import Settings
        from ktes.filer.registry import Filer

        filer = Filer(Settings())
        url, path = (source, Path(dest)) if op == "get" else (dest, Path(source))
        plugin = filer.for_url(url)
        started, cpu_started = time.perf_counter(), cpu_seconds()  # plugin made: time the transfer only
        if op == "get":
            plugin.download_file(url, path)
        else:
            plugin.upload_file(path, url)
    elif tool in ("boto3", "boto3-stream"):
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=os.environ["KTES_S3_ENDPOINT_URL"],
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        started, cpu_started = time.perf_counter(), cpu_seconds()
        if op == "put":
            client.upload_file(source, BUCKET, dest.split("/", 3)[3])
        elif tool == "boto3":
            # One stream: with ranged parts, moto copies the whole object for every part (minutes per GiB).
            single = TransferConfig(multipart_threshold=1 << 40)
            client.download_file(BUCKET, source.split("/", 3)[3], dest, Config=single)
        else:
            body = client.get_object(Bucket=BUCKET, Key=source.split("/", 3)[3])["Body"]
            with open(dest, "wb") as writer:
                for chunk in body.iter_chunks(MIB):
                    writer.write(chunk)
    elif tool == "obstore":
        import obstore
        from obstore.store import S3Store

        store = S3Store(
            BUCKET,
            endpoint=os.environ["KTES_S3_ENDPOINT_URL"],
            access_key_id=KEY,
            secret_access_key=SECRET,
            region="us-east-1",
            virtual_hosted_style_request=False,
            client_options={"allow_http": True},
        )
        started, cpu_started = time.perf_counter(), cpu_seconds()
        if op == "get":
            result = obstore.get(store, source.split("/", 3)[3])
            with open(dest, "wb") as writer:
                for chunk in result.stream(MIB):
                    writer.write(chunk)
        else:
            with open(source, "rb") as reader:
                obstore.put(store, dest.split("/", 3)[3], reader, chunk_size=16 * MIB, max_concurrency=4)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mib": peak_rss_mib()}))


def peak_rss_mib() -> float:
    """This process's peak resident memory since it started (VmHWM: unlike ru_maxrss, not inherited from
    the parent that forked it)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- the parent ---------------------------------------------------------------------------------------


def run_timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, float, float]:
    """(transfer seconds, wall seconds, peak RSS MiB or NaN for curl, CPU seconds of the transfer) of a child."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(f"{argv} failed: {stdout} {stderr}")
    reported = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    if reported:
        return reported[-1]["seconds"], wall, reported[-1]["peak_rss_mib"], reported[-1]["cpu_seconds"]
    return wall, wall, float("nan"), usage.ru_utime + usage.ru_stime


def make_file(path: Path, size: int) -> None:
    with path.open("wb") as writer:
        block = os.urandom(MIB)
        for i in range(size // MIB):
            writer.write(block[i % 256 :] + block[: i % 256])  # distinct blocks, cheap to make


def start_moto(address: str) -> tuple[subprocess.Popen[bytes], str]:
    from tests.fixtures.servers import free_port, wait_for_port

    port = free_port(address)
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", address, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(address, port)
    return process, f"http://{address}:{port}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-mib", default="64,1024")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", choices=["http", "s3"], default=None)
    args = parser.parse_args()

    from tests.fixtures.servers import own_address, start_http_server

    try:
        import obstore  # noqa: F401

        have_obstore = True
    except ImportError:
        have_obstore = False

    address = own_address()
    work = Path(tempfile.mkdtemp(prefix="ktes-bench-"))
    (work / "http").mkdir()
    http = start_http_server(address, work / "http")
    moto, endpoint = start_moto(address)
    try:
        rows = measure(args, address, work, http.base_url, endpoint, have_obstore)
    finally:
        moto.terminate()
        moto.wait()
        http.server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    report(rows)


def measure(
    args: argparse.Namespace, address: str, work: Path, http_base: str, endpoint: str, have_obstore: bool
) -> list[dict[str, Any]]:
    import boto3
    from botocore.config import Config

    env = {
        **os.environ,
        "KTES_S3_ENDPOINT_URL": endpoint,
        "KTES_S3_ACCESS_KEY_ID": KEY,
        "KTES_S3_SECRET_ACCESS_KEY": SECRET,
        "KTES_S3_REGION": "us-east-1",
        "KTES_S3_PATH_STYLE": "true",
        "PYTHONPATH": str(ROOT),
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    s3.create_bucket(Bucket=BUCKET)
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    rows: list[dict[str, Any]] = []
    for size_mib in (int(s) for s in args.sizes_mib.split(",")):
        size = size_mib * MIB
        source = work / f"src-{size_mib}.bin"
        make_file(source, size)
        shutil.copyfile(source, work / "http" / source.name)
        s3.upload_file(str(source), BUCKET, f"in/{source.name}")
        get_url = f"{http_base}/files/{source.name}"
        s3_get = f"s3://{BUCKET}/in/{source.name}"
        dest = work / "dest.bin"
        trials: dict[str, list[str]] = {}
        if args.only in (None, "http"):
            trials |= {
                "http get  curl": ["curl", "-sSf", "-o", str(dest), get_url],
                "http get  ktes": [*me, "ktes", "get", get_url, str(dest)],
                "http put  curl": ["curl", "-sSf", "-T", str(source), f"{http_base}/files/up/c.bin"],
                "http put  ktes": [*me, "ktes", "put", str(source), f"{http_base}/files/up/k.bin"],
            }
        if args.only in (None, "s3"):
            trials |= {
                "s3 get    boto3 download_file 1x": [*me, "boto3", "get", s3_get, str(dest)],
                "s3 get    boto3 get_object": [*me, "boto3-stream", "get", s3_get, str(dest)],
                "s3 get    ktes": [*me, "ktes", "get", s3_get, str(dest)],
                "s3 put    boto3 upload_file": [*me, "boto3", "put", str(source), f"s3://{BUCKET}/up/b.bin"],
                "s3 put    ktes": [*me, "ktes", "put", str(source), f"s3://{BUCKET}/up/k.bin"],
            }
            if have_obstore:
                trials["s3 get    obstore"] = [*me, "obstore", "get", s3_get, str(dest)]
                trials["s3 put    obstore"] = [*me, "obstore", "put", str(source), f"s3://{BUCKET}/up/o.bin"]
        results: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in trials}
        for _ in range(args.reps):
            for name, argv in trials.items():
                results[name].append(run_timed(argv, env))
                dest.unlink(missing_ok=True)
        for name, runs in results.items():
            seconds = statistics.median(r[0] for r in runs)
            rows.append(
                {
                    "size_mib": size_mib,
                    "trial": name,
                    "mb_s": size / seconds / 1e6,
                    "wall_s": statistics.median(r[1] for r in runs),
                    "rss_mib": max(r[2] for r in runs),
                    "cpu_s_per_gib": statistics.median(r[3] for r in runs) * 1024 / size_mib,
                }
            )
        source.unlink()
        (work / "http" / source.name).unlink()
        s3.delete_object(Bucket=BUCKET, Key=f"in/{source.name}")
    return rows


def report(rows: list[dict[str, Any]]) -> None:
    print(f"{'size':>6}  {'trial':<32}{'MB/s':>8}{'wall s':>8}{'CPU s/GiB':>11}{'peak RSS MiB':>14}")
    for row in rows:
        print(
            f"{row['size_mib']:>5}M  {row['trial']:<32}{row['mb_s']:>8.0f}{row['wall_s']:>8.2f}"
            f"{row['cpu_s_per_gib']:>11.2f}{row['rss_mib']:>14.0f}"
        )
    print("\nratios ktes / raw client (throughput, median of the transfer itself):")
    for size_mib in sorted({r["size_mib"] for r in rows}):
        by = {r["trial"]: r for r in rows if r["size_mib"] == size_mib}

        def ratio(ktes: str, raws: list[str], by: dict[str, dict[str, Any]] = by) -> str:
            present = [by[r]["mb_s"] for r in raws if r in by]
            if ktes not in by or not present:
                return "-"
            return f"{by[ktes]['mb_s'] / max(present):.2f}"

        print(
            f"  {size_mib:>5} MiB: http get {ratio('http get  ktes', ['http get  curl'])}, "
            f"http put {ratio('http put  ktes', ['http put  curl'])}, "
            f"s3 get {ratio('s3 get    ktes', ['s3 get    boto3 download_file 1x', 's3 get    boto3 get_object'])}"
            f" (vs best raw boto3), s3 put {ratio('s3 put    ktes', ['s3 put    boto3 upload_file'])}"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
    else:
        main()
