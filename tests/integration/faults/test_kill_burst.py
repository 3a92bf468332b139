"""``ktes serve`` killed (SIGKILL) three times during a burst of 100 mixed tasks on the local backend.

Each kill is followed by a restart on the same data directory. Afterwards every task is in its right final
state with its logs, every file:// output exists with its content, and no container, work directory or run
directory is left. The burst and its checks are shared with the Kubernetes test (burst.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fixtures.ktes_server import StartServer
from tests.integration.faults import burst
from tests.integration.local.tes_calls import containers_of

pytestmark = pytest.mark.containers


def leftovers(data_dir: Path) -> list[str]:
    return sorted(p.name for root in ("work", "run") if (data_dir / root).is_dir() for p in (data_dir / root).iterdir())


def test_three_kills_during_a_burst(ktes_server: StartServer, busybox_image: str, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    env = {"KTES_LOCAL_MAX_CPUS": "6", "KTES_FILE_ALLOWED_ROOTS": f'["{tmp_path}"]'}
    server = ktes_server(env=env)
    ids = burst.submit(server, burst.bodies(busybox_image, lambda i: f"file://{out_dir}/result-{i}.txt"))

    server = burst.kill_three_times(server, ktes_server, env, len(ids), timeout=180)
    burst.wait_finished(server, len(ids), timeout=240)
    burst.check_outcomes(server, lambda i: (out_dir / f"result-{i}.txt").read_text())

    deadline = time.monotonic() + 120  # finished containers are removed in batches after the end is recorded
    while leftovers(server.data_dir) or containers_of(*ids):
        assert time.monotonic() < deadline, f"left behind: {leftovers(server.data_dir)} {containers_of(*ids)}"
        time.sleep(0.5)
