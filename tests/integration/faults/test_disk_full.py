"""A full disk under a task's work directory or an output's destination: the task fails with a sentence
saying so, nothing half-written appears as an output, and the server goes on serving.

Each file system is a small tmpfs mounted by the test (it runs as root, as CI does).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import tes

from tests.fixtures.ktes_server import StartServer
from tests.integration.local.tes_calls import containers_of, executor, run_task

pytestmark = pytest.mark.containers

Mount = Callable[[Path, int], Path]


@pytest.fixture
def small_fs() -> Iterator[Mount]:
    """``small_fs(path, mib)``: a tmpfs of ``mib`` MiB mounted at ``path`` (unmounted at the end)."""
    mounted: list[Path] = []

    def mount(path: Path, mib: int) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0755", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"the disk-full tests mount a tmpfs and need root: {done.stderr.strip()}", pytrace=False)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disks_fail_the_task_with_a_sentence(
    small_fs: Mount, ktes_server: StartServer, busybox_image: str, tmp_path: Path
) -> None:
    data_dir = small_fs(tmp_path / "data", 24)
    dest = small_fs(tmp_path / "dest", 4)
    big_input = tmp_path / "big-input"
    big_input.write_bytes(b"\0" * (40 << 20))
    server = ktes_server(
        env={
            "KTES_DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'ktes.db'}",  # the store is not what fills up here
            "KTES_FILE_ALLOWED_ROOTS": f'["{tmp_path}"]',
        },
        data_dir=data_dir,
    )
    client = tes.HTTPClient(server.url, timeout=30)

    fills_workdir = run_task(
        client,
        tes.Task(
            outputs=[tes.Output(path="/data/out/big", url=f"file://{tmp_path}/never")],  # /data/out is in the workdir
            executors=[executor(busybox_image, "sh", "-c", "head -c 67108864 /dev/zero > /data/out/big")],
        ),
    )
    # EXECUTOR_ERROR when the executor's result was recorded, SYSTEM_ERROR when the full disk took that too
    assert fills_workdir.state in {"EXECUTOR_ERROR", "SYSTEM_ERROR"}, fills_workdir.logs[0]
    assert any("work directory full" in line for line in fills_workdir.logs[0].system_logs or [])
    assert not (tmp_path / "never").exists()

    too_big_input = run_task(
        client,
        tes.Task(
            inputs=[tes.Input(path="/data/in", url=f"file://{big_input}")],
            executors=[executor(busybox_image, "true")],
        ),
    )
    assert too_big_input.state == "SYSTEM_ERROR"
    assert any(
        "no space left on the file system of the task's work directory" in line
        for line in too_big_input.logs[0].system_logs
    ), too_big_input.logs[0].system_logs

    output_too_big = run_task(
        client,
        tes.Task(
            outputs=[tes.Output(path="/data/out/result", url=f"file://{dest}/result")],
            executors=[executor(busybox_image, "sh", "-c", "head -c 8388608 /dev/zero > /data/out/result")],
        ),
    )
    assert output_too_big.state == "SYSTEM_ERROR"
    assert any(
        "no space left on the file system of the destination" in line for line in output_too_big.logs[0].system_logs
    ), output_too_big.logs[0].system_logs
    assert not output_too_big.logs[0].outputs
    assert list(dest.iterdir()) == []  # no half-written result, no partial file

    fine = run_task(client, tes.Task(executors=[executor(busybox_image, "echo", "still serving")]))
    assert fine.state == "COMPLETE"
    assert fine.logs[0].logs[0].stdout == "still serving\n"
    assert server.running()

    ids = [t.id for t in (fills_workdir, too_big_input, output_too_big, fine)]
    deadline = time.monotonic() + 60  # finished containers are removed in batches after the end is recorded
    while containers_of(*ids):
        assert time.monotonic() < deadline, f"containers left: {containers_of(*ids)}"
        time.sleep(0.5)
