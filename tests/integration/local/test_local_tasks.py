"""Tasks run through a real ``ktes serve`` with podman, driven by py-tes as workflow clients do."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tes

from tests.fixtures.ktes_server import KtesServer, start_server
from tests.fixtures.servers import start_http_server
from tests.integration.local.tes_calls import containers_of, eventually, executor, run_task

pytestmark = pytest.mark.containers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, busybox_image: str) -> Iterator[KtesServer]:
    running = start_server(tmp_path_factory.mktemp("ktes-local"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(server: KtesServer) -> tes.HTTPClient:
    return tes.HTTPClient(server.url, timeout=30)


def test_echo_completes_with_its_output(client: tes.HTTPClient, server: KtesServer, busybox_image: str) -> None:
    task = run_task(client, tes.Task(executors=[executor(busybox_image, "echo", "hello world")]))
    assert task.state == "COMPLETE"
    log = task.logs[0]
    assert log.logs[0].exit_code == 0
    assert log.logs[0].stdout == "hello world\n"
    assert log.logs[0].start_time and log.logs[0].end_time and log.start_time and log.end_time
    assert log.metadata["host"] and log.metadata["runtime"] == "podman"
    eventually(lambda: containers_of(task.id) == [])  # removed once the end is reported
    eventually(lambda: not (server.data_dir / "work" / task.id).exists())


def test_exit_code_and_separate_streams(client: tes.HTTPClient, busybox_image: str) -> None:
    script = "echo out; echo err >&2; exit 3"
    task = run_task(client, tes.Task(executors=[executor(busybox_image, "sh", "-c", script)]))
    assert task.state == "EXECUTOR_ERROR"
    (log,) = task.logs[0].logs
    assert (log.exit_code, log.stdout, log.stderr) == (3, "out\n", "err\n")


def test_a_failure_stops_the_run_unless_ignored(client: tes.HTTPClient, busybox_image: str) -> None:
    stopped = run_task(
        client,
        tes.Task(executors=[executor(busybox_image, "sh", "-c", "exit 2"), executor(busybox_image, "echo", "never")]),
    )
    assert stopped.state == "EXECUTOR_ERROR"
    assert [log.exit_code for log in stopped.logs[0].logs] == [2]
    ignored = run_task(
        client,
        tes.Task(
            executors=[
                executor(busybox_image, "sh", "-c", "exit 1", ignore_error=True),
                executor(busybox_image, "echo", "after"),
            ]
        ),
    )
    assert ignored.state == "COMPLETE"
    assert [log.exit_code for log in ignored.logs[0].logs] == [1, 0]
    assert ignored.logs[0].logs[1].stdout == "after\n"


def test_command_not_found_is_an_executor_error(client: tes.HTTPClient, busybox_image: str) -> None:
    task = run_task(client, tes.Task(executors=[executor(busybox_image, "/no/such/program")]))
    assert task.state == "EXECUTOR_ERROR"
    assert task.logs[0].logs[0].exit_code == 127
    assert task.logs[0].system_logs[-1] == (
        "executor 0 could not start its command: exec /no/such/program: No such file or directory"
    )


def test_an_oom_kill_is_an_executor_error_saying_so(client: tes.HTTPClient, busybox_image: str) -> None:
    greedy = executor(busybox_image, "sh", "-c", "x=$(head -c 300000000 /dev/urandom); echo survived")
    task = run_task(client, tes.Task(resources=tes.Resources(ram_gb=0.0625), executors=[greedy]))
    assert task.state == "EXECUTOR_ERROR"
    assert task.logs[0].logs[0].exit_code == 137
    assert task.logs[0].system_logs[-1] == "executor 0 was killed for exceeding its memory limit (ram_gb=0.0625)"


def test_env_workdir_and_shared_volume(client: tes.HTTPClient, busybox_image: str) -> None:
    task = run_task(
        client,
        tes.Task(
            volumes=["/shared"],
            executors=[
                executor(
                    busybox_image,
                    "sh",
                    "-c",
                    'echo "$GREETING from $(pwd)" > /shared/note',
                    env={"GREETING": "hi"},
                    workdir="/tmp",
                ),
                executor(busybox_image, "cat", "/shared/note"),
            ],
        ),
    )
    assert task.state == "COMPLETE"
    assert task.logs[0].logs[1].stdout == "hi from /tmp\n"


def test_stdio_files_content_input_and_file_outputs(client: tes.HTTPClient, busybox_image: str, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    task = run_task(
        client,
        tes.Task(
            inputs=[tes.Input(path="/in/data.txt", content="line one\nline two\n")],
            outputs=[
                tes.Output(path="/out/stdout.txt", url=f"file://{out_dir}/stdout.txt"),
                tes.Output(path="/out/stderr.txt", url=f"file://{out_dir}/stderr.txt"),
            ],
            executors=[
                executor(
                    busybox_image,
                    "sh",
                    "-c",
                    "wc -l; echo oops >&2",
                    stdin="/in/data.txt",
                    stdout="/out/stdout.txt",
                    stderr="/out/stderr.txt",
                )
            ],
        ),
    )
    assert task.state == "COMPLETE", task.logs[0].system_logs
    assert (out_dir / "stdout.txt").read_text().strip() == "2"
    assert (out_dir / "stderr.txt").read_text() == "oops\n"
    assert task.logs[0].logs[0].stdout.strip() == "2"  # the tail is kept in the log as well
    assert sorted(o.path for o in task.logs[0].outputs) == ["/out/stderr.txt", "/out/stdout.txt"]


def test_directory_input_glob_and_directory_outputs(client: tes.HTTPClient, busybox_image: str, tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("A")
    (source / "sub" / "b.txt").write_text("BB")
    results = tmp_path / "results"
    script = (
        "cat /data/in/a.txt /data/in/sub/b.txt > /data/out/ab.txt; "
        "echo 1 > /data/out/one.csv; echo 2 > /data/out/two.csv"
    )
    task = run_task(
        client,
        tes.Task(
            inputs=[tes.Input(path="/data/in", url=f"file://{source}", type="DIRECTORY")],
            outputs=[
                tes.Output(path="/data/out/*.csv", path_prefix="/data/out/", url=f"file://{results}/csv"),
                tes.Output(path="/data/out", url=f"file://{results}/all", type="DIRECTORY"),
            ],
            executors=[executor(busybox_image, "sh", "-c", "mkdir -p /data/out && " + script)],
        ),
    )
    assert task.state == "COMPLETE", task.logs[0].system_logs
    assert sorted(p.name for p in (results / "csv").iterdir()) == ["one.csv", "two.csv"]
    assert (results / "all" / "ab.txt").read_text() == "ABB"
    sizes = {o.path: o.size_bytes for o in task.logs[0].outputs}
    assert int(sizes["/data/out/ab.txt"]) == 3


def test_http_input(client: tes.HTTPClient, busybox_image: str, tmp_path: Path) -> None:
    http = start_http_server("127.0.0.1", tmp_path)
    try:
        (tmp_path / "greeting.txt").write_text("from http\n")
        task = run_task(
            client,
            tes.Task(
                inputs=[tes.Input(path="/in/g.txt", url=http.url("files", "greeting.txt"))],
                executors=[executor(busybox_image, "cat", "/in/g.txt")],
            ),
        )
    finally:
        http.server.shutdown()
        http.server.server_close()
    assert task.state == "COMPLETE", task.logs[0].system_logs
    assert task.logs[0].logs[0].stdout == "from http\n"


def test_missing_image_fails_quickly_naming_it(client: tes.HTTPClient) -> None:
    began = time.monotonic()
    task = run_task(client, tes.Task(executors=[executor("localhost/ktes-test/nothing-here:1", "true")]))
    assert task.state == "SYSTEM_ERROR"
    assert time.monotonic() - began < 30
    assert any(
        "localhost/ktes-test/nothing-here:1" in line and "not found" in line for line in task.logs[0].system_logs
    )


def test_missing_output_fails_naming_the_path(client: tes.HTTPClient, busybox_image: str, tmp_path: Path) -> None:
    task = run_task(
        client,
        tes.Task(
            outputs=[tes.Output(path="/out/never-made.txt", url=f"file://{tmp_path}/x.txt")],
            executors=[executor(busybox_image, "true")],
        ),
    )
    assert task.state == "SYSTEM_ERROR"
    assert any("/out/never-made.txt" in line for line in task.logs[0].system_logs)


def test_failing_input_url_is_a_system_error(client: tes.HTTPClient, busybox_image: str, tmp_path: Path) -> None:
    task = run_task(
        client,
        tes.Task(
            inputs=[tes.Input(path="/in/x", url=f"file://{tmp_path}/absent.txt")],
            executors=[executor(busybox_image, "true")],
        ),
    )
    assert task.state == "SYSTEM_ERROR"
    assert any("absent.txt" in line for line in task.logs[0].system_logs)


def test_resources_become_limits(client: tes.HTTPClient, busybox_image: str) -> None:
    script = (
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
        "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us"
    )
    task = run_task(
        client,
        tes.Task(
            resources=tes.Resources(cpu_cores=1, ram_gb=0.5), executors=[executor(busybox_image, "sh", "-c", script)]
        ),
    )
    assert task.state == "COMPLETE", task.logs[0].system_logs
    memory, cpu = task.logs[0].logs[0].stdout.split("\n")[:2]
    assert int(memory) == 512 * 1024 * 1024
    assert cpu.split()[0] == "100000"


def test_a_task_bigger_than_the_machine_fails_at_once(client: tes.HTTPClient, busybox_image: str) -> None:
    task = run_task(
        client, tes.Task(resources=tes.Resources(cpu_cores=4096), executors=[executor(busybox_image, "true")])
    )
    assert task.state == "SYSTEM_ERROR"
    assert any("local_max_cpus" in line for line in task.logs[0].system_logs)


def test_a_link_a_task_plants_is_never_followed_on_the_host(
    client: tes.HTTPClient, busybox_image: str, tmp_path: Path
) -> None:
    """Executor 0 points its workspace file at a host file; executor 1's stdout is that file. The helper
    opens it inside the container, so the host file is neither truncated nor read into the logs."""
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret\n")
    plant = executor(busybox_image, "busybox", "ln", "-s", str(secret), "/data/out.txt")
    write = executor(busybox_image, "echo", "overwritten", stdout="/data/out.txt")
    task = run_task(client, tes.Task(volumes=["/data"], executors=[plant, write]))
    # inside the container the link leads nowhere: the task's own failure, told as such
    assert task.state == "EXECUTOR_ERROR"
    assert task.logs[0].system_logs[-1] == (
        "executor 1 could not start its command: cannot open stdout file /data/out.txt: No such file or directory"
    )
    assert secret.read_text() == "host secret\n"
    assert all("host secret" not in (log.stdout or "") + (log.stderr or "") for log in task.logs[0].logs)
