"""``ktes serve --backend kubernetes`` killed (SIGKILL) three times during a burst of mixed tasks on the lab.

The burst and its checks are the local test's (burst.py); outputs go to S3 (moto on this host's address).
Each kill is followed by a restart on the same database; the new replica takes the dead one's Lease over
once it expires, re-adopts the tasks in flight and sweeps what belongs to none. Afterwards every task is in
its right final state with its logs and outputs, and nothing of any task is left in the namespace.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.k8s import fresh_namespace
from tests.fixtures.ktes_server import StartServer
from tests.fixtures.servers import S3Server
from tests.integration.faults import burst, lab

pytestmark = pytest.mark.k8s

PER_KIND = 10  # 40 tasks: see docs/scale.md for why not 100


@pytest.fixture
def namespace(k8s_lab: Path) -> Iterator[str]:
    with fresh_namespace("ktes-kill") as name:
        yield name


def test_three_kills_during_a_burst_on_kubernetes(
    ktes_server: StartServer,
    k8s_lab: Path,
    ktes_image: str,
    k8s_busybox_image: str,
    namespace: str,
    storage_env: dict[str, str],
    s3_server: S3Server,
) -> None:
    env = lab.ktes_env(k8s_lab, ktes_image, namespace, storage_env)
    prefix = f"kill-burst-{uuid.uuid4().hex[:8]}"
    server = ktes_server(env=env)
    documents = burst.bodies(PER_KIND, k8s_busybox_image, lambda i: f"s3://{s3_server.bucket}/{prefix}/{i}.txt")
    ids = burst.submit(server, documents)

    server = burst.kill_three_times(server, ktes_server, env, len(ids), timeout=300)
    burst.wait_finished(server, len(ids), timeout=300)
    s3 = s3_server.client()

    def read_output(i: int) -> str:
        return s3.get_object(Bucket=s3_server.bucket, Key=f"{prefix}/{i}.txt")["Body"].read().decode()

    burst.check_outcomes(server, PER_KIND, read_output)
    lab.wait_nothing_left(namespace, timeout=120)
