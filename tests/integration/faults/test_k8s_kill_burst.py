"""``ktes serve --backend kubernetes`` killed (SIGKILL) three times during a burst of 100 mixed tasks on the lab.

The burst and its checks are the local test's (burst.py); of the outputs, half go to file:// URLs (through the
shared volume ``hostpath:/tmp``: the lab has one node, this one) and half to S3 (moto on this host's address).
Each kill is followed by a restart on the same database; the new replica takes the dead one's Lease over
once it expires, re-adopts the tasks in flight and sweeps what belongs to none. Afterwards every task is in
its right final state with its logs and outputs, and nothing of any task is left in the namespace.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.k8s import fresh_namespace, host_tmp_dir
from tests.fixtures.ktes_server import StartServer
from tests.fixtures.servers import S3Server
from tests.integration.faults import burst, lab

pytestmark = pytest.mark.k8s


@pytest.fixture
def namespace(k8s_lab: Path) -> Iterator[str]:
    with fresh_namespace("ktes-kill") as name:
        yield name


@pytest.fixture
def out_dir() -> Iterator[Path]:
    with host_tmp_dir("ktes-kill") as path:
        yield path


def test_three_kills_during_a_burst_on_kubernetes(
    ktes_server: StartServer,
    k8s_lab: Path,
    ktes_image: str,
    k8s_busybox_image: str,
    namespace: str,
    storage_env: dict[str, str],
    s3_server: S3Server,
    out_dir: Path,
) -> None:
    env = {
        **lab.ktes_env(k8s_lab, ktes_image, namespace, storage_env),
        "KTES_K8S_FILE_VOLUME": "hostpath:/tmp",
        "KTES_FILE_ALLOWED_ROOTS": json.dumps([str(out_dir)]),
    }
    prefix = f"kill-burst-{uuid.uuid4().hex[:8]}"

    def output_url(i: int) -> str:
        return f"file://{out_dir}/{i}.txt" if i % 2 else f"s3://{s3_server.bucket}/{prefix}/{i}.txt"

    server = ktes_server(env=env)
    ids = burst.submit(server, burst.bodies(k8s_busybox_image, output_url))

    server = burst.kill_three_times(server, ktes_server, env, len(ids), timeout=300)
    burst.wait_finished(server, len(ids), timeout=300)
    s3 = s3_server.client()

    def read_output(i: int) -> str:
        if i % 2:
            return (out_dir / f"{i}.txt").read_text()
        return str(s3.get_object(Bucket=s3_server.bucket, Key=f"{prefix}/{i}.txt")["Body"].read().decode())

    burst.check_outcomes(server, read_output)
    lab.wait_nothing_left(namespace, timeout=120)
