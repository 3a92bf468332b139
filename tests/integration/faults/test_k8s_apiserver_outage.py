"""The lab's kube-apiserver stopped for 30 s while tasks run, then started again (``cluster up``).

Two installations, each in its own namespace, live through the same outage:

- ``kept``: its Lease outlasts the outage, so its engine runs on throughout: its watches must recover and
  every call it could not make must be made once the API is back;
- ``lost``: the default Lease (15 s): the leader cannot renew it, stops its engine, and takes the Lease
  again once the API answers (re-adopting what is in flight).

Each runs tasks whose executors wait for a "go" file on this host's HTTP server, which the test writes once
the apiserver is down, so what they do happens during the outage: ``short`` ones end during it, ``fails``
ones fail during it, ``long`` ones (content in, output to S3) end after it; ``late`` ones are submitted
during it. Each executor fetches a file of its own first, so the server counts how often it ran.

What a user must see: ``/readyz`` answers 503 naming the Kubernetes API from the time it notices until
the API is back (never ready in between), and 200 afterwards; every task reaches its right final state with
its logs and outputs, each executor ran once; nothing of any task is left in either namespace.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.k8s import fresh_namespace
from tests.fixtures.ktes_server import KtesServer, StartServer
from tests.fixtures.servers import HttpServer, S3Server
from tests.integration.faults import burst, lab

pytestmark = pytest.mark.k8s

OUTAGE_SECONDS = 30.0
LEASES = {
    "kept": {"KTES_K8S_LEASE_DURATION_SECONDS": "600", "KTES_K8S_LEASE_RENEW_SECONDS": "2"},
    "lost": {"KTES_K8S_LEASE_DURATION_SECONDS": "15", "KTES_K8S_LEASE_RENEW_SECONDS": "5"},  # the defaults
}
#: name -> (tasks of that kind, submitted during the outage)
KINDS = {"short": 3, "fails": 2, "long": 3, "late": 3}


@pytest.fixture
def namespaces(k8s_lab: Path) -> Iterator[dict[str, str]]:
    with fresh_namespace("ktes-outage") as kept, fresh_namespace("ktes-outage") as lost:
        yield {"kept": kept, "lost": lost}


class Burst:
    """The tasks of one installation and what they reach on this host."""

    def __init__(self, which: str, image: str, http: HttpServer, s3: S3Server) -> None:
        self.prefix = f"outage-{which}-{uuid.uuid4().hex[:8]}"
        self.image = image
        self.http = http
        self.s3 = s3

    def go(self) -> None:
        """Let the executors waiting for it go on."""
        go = self.http.root / "go" / self.prefix
        go.parent.mkdir(parents=True, exist_ok=True)
        go.write_text("go\n")

    def _ran(self, name: str) -> str:
        return f"runs/{self.prefix}/{name}"

    def runs(self, name: str) -> int:
        return self.http.requests.count(("GET", f"/files/{self._ran(name)}"))

    def output(self, name: str) -> str:
        key = f"{self.prefix}/{name}.txt"
        return self.s3.client().get_object(Bucket=self.s3.bucket, Key=key)["Body"].read().decode()

    def body(self, kind: str, i: int) -> dict[str, Any]:
        name = f"{kind}-{i}"
        ran = self.http.root / self._ran(name)
        ran.parent.mkdir(parents=True, exist_ok=True)
        ran.write_text("ran\n")
        fetch = f"busybox wget -q -O /dev/null {self.http.base_url}/files"
        ping = f"{fetch}/{self._ran(name)}"
        wait_go = f"until {fetch}/go/{self.prefix}; do sleep 0.5; done"
        task: dict[str, Any] = {"name": name}
        if kind == "short":
            script = f"{ping}; {wait_go}; sleep {1 + i}; echo short-{i}"
        elif kind == "fails":
            script = f"{ping}; {wait_go}; sleep {2 + i}; exit 3"
        elif kind == "long":
            script = f"{ping}; {wait_go}; sleep {OUTAGE_SECONDS + 10 + i}; cat /data/in.txt > /data/out/result.txt"
            task["inputs"] = [{"path": "/data/in.txt", "content": f"long-{i}\n"}]
            task["outputs"] = [
                {"path": "/data/out/result.txt", "url": f"s3://{self.s3.bucket}/{self.prefix}/{name}.txt"}
            ]
        else:
            script = f"{ping}; echo late-{i}"
            task["inputs"] = [{"path": "/data/in.txt", "content": f"late-{i}\n"}]
        task["executors"] = [
            {"image": self.image, "command": ["sh", "-c", script]},
            {"image": self.image, "command": ["sh", "-c", "echo second"]},
        ]
        return task

    def bodies(self, late: bool) -> list[dict[str, Any]]:
        return [self.body(kind, i) for kind, count in KINDS.items() if (kind == "late") == late for i in range(count)]

    def check(self, server: KtesServer) -> None:
        by_name = {task["name"]: task for task in burst.all_tasks(server)}
        assert sorted(by_name) == sorted(f"{kind}-{i}" for kind, count in KINDS.items() for i in range(count))
        runs = {name: self.runs(name) for name in by_name}
        assert set(runs.values()) == {1}, f"executors run other than once: {runs}"
        for name, task in sorted(by_name.items()):
            log = task["logs"][-1]
            says = log.get("system_logs")
            kind, i = name.split("-")
            assert task["state"] == ("EXECUTOR_ERROR" if kind == "fails" else "COMPLETE"), (name, says)
            stdout = [e.get("stdout") for e in log["logs"]]
            if kind == "fails":
                assert [e["exit_code"] for e in log["logs"]] == [3], (name, says)
            elif kind == "long":
                assert stdout == ["", "second\n"], (name, says)
                assert self.output(name) == f"long-{i}\n"
            else:
                assert stdout == [f"{kind}-{i}\n", "second\n"], (name, says)


def readyz(server: KtesServer) -> tuple[int, dict[str, Any]]:
    response = httpx.get(server.url + "/readyz", timeout=10)
    return response.status_code, response.json()


def states(server: KtesServer) -> Counter[str]:
    return Counter(task["state"] for task in burst.all_tasks(server))


def test_a_kube_apiserver_outage_loses_nothing(
    ktes_server: StartServer,
    k8s_lab: Path,
    ktes_image: str,
    k8s_busybox_image: str,
    namespaces: dict[str, str],
    storage_env: dict[str, str],
    s3_server: S3Server,
    http_server: HttpServer,
) -> None:
    servers: dict[str, KtesServer] = {}
    bursts: dict[str, Burst] = {}
    for which, lease in LEASES.items():
        servers[which] = ktes_server(env={**lab.ktes_env(k8s_lab, ktes_image, namespaces[which], storage_env), **lease})
        bursts[which] = Burst(which, k8s_busybox_image, http_server, s3_server)
        burst.submit(servers[which], bursts[which].bodies(late=False))
    running = sum(count for kind, count in KINDS.items() if kind != "late")
    deadline = time.monotonic() + 240
    while any(states(server)["RUNNING"] < running for server in servers.values()):
        assert time.monotonic() < deadline, f"not all running: {[states(s) for s in servers.values()]}"
        time.sleep(0.5)

    answers: dict[str, list[tuple[int, str]]] = {which: [] for which in servers}
    with lab.apiserver_down(OUTAGE_SECONDS) as outage_ends:
        for one in bursts.values():
            one.go()
        for which, server in servers.items():  # the TES API answers on: the tasks wait in QUEUED
            burst.submit(server, bursts[which].bodies(late=True))
        while time.monotonic() < outage_ends:  # the outage lasts this long; ask as a kubelet's probe would
            for which, server in servers.items():
                status, body = readyz(server)
                if answers[which] or status != 200:
                    answers[which].append((status, body["checks"]["backend"] + " / " + body["checks"]["engine"]))
            time.sleep(1)
        assert lab.apiserver_pid() is None, "the kube-apiserver was started again during the outage"

    for which, seen in answers.items():
        assert seen, f"{which}: /readyz said ready throughout the outage"
        assert {status for status, _ in seen} == {503}, f"{which}: /readyz during the outage: {seen}"
        assert "does not answer" in seen[-1][1], seen[-1]
    deadline = time.monotonic() + 120
    for which, server in servers.items():
        while readyz(server)[0] != 200:
            assert time.monotonic() < deadline, f"{which}: not ready after the outage: {readyz(server)}"
            time.sleep(0.5)

    total = sum(KINDS.values())
    for which, server in servers.items():
        burst.wait_finished(server, total, timeout=300, what=f"{which}: ")
    for which, server in servers.items():
        bursts[which].check(server)
    assert "no longer leading" not in servers["kept"].output(), "the Lease that outlasts the outage was lost"
    assert "no longer leading" in servers["lost"].output(), "the default Lease was kept through the outage"
    for namespace in namespaces.values():
        lab.wait_nothing_left(namespace, timeout=120)
