"""PostgreSQL stopped for 10 s (``pg_ctl stop -m immediate``) while ``ktes serve --backend kubernetes`` runs
tasks on the lab.

The tasks' executors wait for a "go" file on this host's HTTP server, which the test writes once the database
is down, so what they do happens during the outage: ``short`` and ``content`` ones (two executors) end their
first executor and start their second during it, ``fails`` ones fail during it, ``s3`` and ``file`` ones write
an output that their stage-out container uploads (to moto, or to a file:// URL through the shared volume
``hostpath:/tmp``) during it, and ``after`` ones end after it. Each executor fetches a file of its own first,
so the HTTP server counts how often it ran.

What a user must see: every request during the outage answers 503 with ``Retry-After`` (never 500), none fails
after it; every task reaches its right final state with its logs and outputs, nothing said about restarts;
each executor ran once (a failed executor's successor never); nothing of any task is left in the namespace.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.k8s import fresh_namespace, host_tmp_dir
from tests.fixtures.ktes_server import KtesServer, StartServer
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.servers import HttpServer, S3Server
from tests.integration.faults import burst, lab

pytestmark = [pytest.mark.k8s, pytest.mark.postgres]

OUTAGE_SECONDS = 10.0
#: kind -> how many tasks of it
KINDS = {"short": 4, "fails": 3, "content": 3, "s3": 3, "file": 3, "after": 2}
#: kind -> its executors' runs, once each task ended (a failed executor's successor never runs)
RUNS = {"short": [1, 1], "fails": [1, 0], "content": [1, 1], "s3": [1], "file": [1], "after": [1, 1]}


@pytest.fixture
def namespace(k8s_lab: Path) -> Iterator[str]:
    with fresh_namespace("ktes-dbout") as name:
        yield name


@pytest.fixture
def out_dir() -> Iterator[Path]:
    with host_tmp_dir("ktes-dbout") as path:
        yield path


class Tasks:
    """The test's tasks and what they reach on this host: the HTTP server (runs, "go") and the outputs."""

    def __init__(self, image: str, http: HttpServer, s3: S3Server, out_dir: Path) -> None:
        self.prefix = f"dbout-{uuid.uuid4().hex[:8]}"
        self.image = image
        self.http = http
        self.s3 = s3
        self.out_dir = out_dir

    def go(self) -> None:
        """Let the executors waiting for it go on."""
        go = self.http.root / "go" / self.prefix
        go.parent.mkdir(parents=True, exist_ok=True)
        go.write_text("go\n")

    def _ran(self, name: str, index: int) -> str:
        return f"runs/{self.prefix}/{name}-{index}"

    def runs(self, name: str, index: int) -> int:
        return self.http.requests.count(("GET", f"/files/{self._ran(name, index)}"))

    def _executor(self, name: str, index: int, script: str) -> dict[str, Any]:
        ran = self.http.root / self._ran(name, index)
        ran.parent.mkdir(parents=True, exist_ok=True)
        ran.write_text("ran\n")
        ping = f"busybox wget -q -O /dev/null {self.http.base_url}/files/{self._ran(name, index)}"
        return {"image": self.image, "command": ["sh", "-c", f"{ping}; {script}"]}

    def body(self, kind: str, i: int) -> dict[str, Any]:
        name = f"{kind}-{i}"
        wait_go = f"until busybox wget -q -O /dev/null {self.http.base_url}/files/go/{self.prefix}; do sleep 0.5; done"
        sleep = f"sleep {1 + i % 3}"
        task: dict[str, Any] = {"name": name}
        if kind == "short":
            task["executors"] = [
                self._executor(name, 0, f"{wait_go}; {sleep}; echo {name}"),
                self._executor(name, 1, "echo second"),
            ]
        elif kind == "fails":
            task["executors"] = [
                self._executor(name, 0, f"{wait_go}; {sleep}; exit 3"),
                self._executor(name, 1, "echo never"),
            ]
        elif kind == "content":
            task["inputs"] = [{"path": "/data/in.txt", "content": f"{name}\n"}]
            task["executors"] = [
                self._executor(name, 0, f"{wait_go}; {sleep}; cat /data/in.txt"),
                self._executor(name, 1, "wc -c < /data/in.txt"),
            ]
        elif kind in ("s3", "file"):
            task["outputs"] = [{"path": "/data/out/result.txt", "url": self.output_url(kind, i)}]
            task["executors"] = [self._executor(name, 0, f"{wait_go}; {sleep}; echo {name} > /data/out/result.txt")]
        else:
            task["executors"] = [
                self._executor(name, 0, f"{wait_go}; sleep {OUTAGE_SECONDS + 5 + i}; echo {name}"),
                self._executor(name, 1, "echo second"),
            ]
        return task

    def bodies(self) -> list[dict[str, Any]]:
        return [self.body(kind, i) for kind, count in KINDS.items() for i in range(count)]

    def output_url(self, kind: str, i: int) -> str:
        if kind == "file":
            return f"file://{self.out_dir}/{i}.txt"
        return f"s3://{self.s3.bucket}/{self.prefix}/{i}.txt"

    def output(self, kind: str, i: int) -> str:
        if kind == "file":
            return (self.out_dir / f"{i}.txt").read_text()
        key = f"{self.prefix}/{i}.txt"
        return str(self.s3.client().get_object(Bucket=self.s3.bucket, Key=key)["Body"].read().decode())

    def all_started(self) -> bool:
        return all(self.runs(f"{kind}-{i}", 0) for kind, count in KINDS.items() for i in range(count))

    def check(self, tasks: list[dict[str, Any]]) -> None:
        by_name = {task["name"]: task for task in tasks}
        assert sorted(by_name) == sorted(f"{kind}-{i}" for kind, count in KINDS.items() for i in range(count))
        runs = {name: [self.runs(name, i) for i in range(len(task["executors"]))] for name, task in by_name.items()}
        wrong = {name: ran for name, ran in runs.items() if ran != RUNS[name.split("-")[0]]}
        assert not wrong, f"executors run other than once (a failed one's successor: never): {wrong}"
        for name, task in sorted(by_name.items()):
            log = task["logs"][-1]
            says = log.get("system_logs")
            kind, i = name.split("-")[0], int(name.split("-")[1])
            assert not [line for line in says or [] if "restart" in line], (name, says)
            stdout = [e.get("stdout") for e in log["logs"]]
            if kind == "fails":
                assert task["state"] == "EXECUTOR_ERROR", (name, says)
                assert [e["exit_code"] for e in log["logs"]] == [3], (name, says)
                continue
            assert task["state"] == "COMPLETE", (name, says)
            if kind in ("short", "after"):
                assert stdout == [f"{name}\n", "second\n"], (name, says)
            elif kind == "content":
                assert [out.strip() for out in stdout] == [name, str(len(f"{name}\n"))], (name, says)
            else:
                assert self.output(kind, i) == f"{name}\n", (name, says)


def states(server: KtesServer) -> Counter[str]:
    return Counter(task["state"] for task in burst.all_tasks(server))


def test_a_database_outage_on_kubernetes_loses_nothing(
    ktes_server: StartServer,
    k8s_lab: Path,
    ktes_image: str,
    k8s_busybox_image: str,
    own_postgres: PostgresServer,
    namespace: str,
    storage_env: dict[str, str],
    s3_server: S3Server,
    http_server: HttpServer,
    out_dir: Path,
) -> None:
    env = {
        **lab.ktes_env(k8s_lab, ktes_image, namespace, storage_env),
        "KTES_DATABASE_URL": own_postgres.url,
        "KTES_K8S_FILE_VOLUME": "hostpath:/tmp",
        "KTES_FILE_ALLOWED_ROOTS": json.dumps([str(out_dir)]),
    }
    server = ktes_server(env=env)
    tasks = Tasks(k8s_busybox_image, http_server, s3_server, out_dir)
    ids = burst.submit(server, tasks.bodies())
    deadline = time.monotonic() + 240
    while not tasks.all_started():  # every first executor runs: it waits for "go"
        assert time.monotonic() < deadline, f"not every task started in 240 s: {states(server)}"
        time.sleep(0.5)

    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=server.tes_url, timeout=30) as client:
        own_postgres.stop("immediate")
        tasks.go()
        during: Counter[int] = Counter()
        retry_after: set[str | None] = set()
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < outage_ends:  # the outage lasts this long; ask as clients do meanwhile
            for response in (
                client.get(f"/tasks/{ids[0]}"),
                client.get("/tasks", params={"view": "BASIC"}),
                client.post("/tasks", json=tasks.body("short", 99)),
            ):
                during[response.status_code] += 1
                retry_after.add(response.headers.get("Retry-After"))
            time.sleep(0.2)
        own_postgres.start()
        after = Counter(client.get(f"/tasks/{task_id}").status_code for task_id in ids)  # dead pooled connections
        assert set(after) == {200}, f"answers just after the restart: {dict(after)}"
        assert set(during) == {503}, f"answers during the outage: {dict(during)}"
        assert retry_after == {"5"}

        deadline = time.monotonic() + 180
        while True:
            response = client.get("/tasks", params={"view": "MINIMAL", "page_size": 100})
            statuses[response.status_code] += 1
            now = Counter(task["state"] for task in response.json()["tasks"]) if response.status_code == 200 else {}
            if sum(now.values()) == len(ids) and set(now) <= burst.TERMINAL:
                break
            assert time.monotonic() < deadline, f"tasks not finished in 180 s: {now}"
            time.sleep(0.5)
    assert set(statuses) == {200}, f"answers after the outage: {dict(statuses)}"

    tasks.check(burst.all_tasks(server))
    lab.wait_nothing_left(namespace, timeout=120)
    assert "internal server error" not in server.output()
