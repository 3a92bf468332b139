"""The container command lines the local backend builds (no container is run)."""

from __future__ import annotations

from pathlib import Path

from ktes.backends.local import argv
from ktes.backends.local.backend import runtime_failure
from ktes.backends.local.runtime import Runtime
from ktes.tes.models import Executor, Input, Output, Resources, Task

PODMAN = Runtime(
    binary="/usr/bin/podman",
    kind="podman",
    global_args=("--runtime", "/usr/sbin/runc", "--cgroup-manager=cgroupfs"),
    run_args=("--ulimit", "nofile=1024:1024"),
)
DOCKER = Runtime(binary="/usr/bin/docker", kind="docker", global_args=(), run_args=())
HELPER = Path("/site/ktes/run/bin/ktes-entrypoint-x86_64")
OPTIONS = argv.RunOptions(instance="abc123", helper=HELPER, network="none", tail_bytes=100)
WS = Path("/data/work/t1")
STATE = Path("/data/run/t1/state-0")


def task(**executor_fields: object) -> Task:
    return Task(
        id="t1",
        inputs=[Input(path="/in/a.txt", content="x")],
        outputs=[Output(path="/out/r.txt", url="file:///tmp/r.txt")],
        volumes=["/vol"],
        executors=[Executor(image="localhost/img:1", command=["echo", "a b", "[x]"], **executor_fields)],
    )


def pairs(command: list[str], flag: str) -> list[str]:
    return [command[i + 1] for i, part in enumerate(command) if part == flag]


def test_run_is_labelled_named_and_runs_the_command_through_the_helper() -> None:
    command = argv.run_argv(PODMAN, task(), 0, WS, STATE, OPTIONS)
    assert command[:5] == ["/usr/bin/podman", "--runtime", "/usr/sbin/runc", "--cgroup-manager=cgroupfs", "run"]
    assert command[5] == "--rm"  # the result outlives the container: the CLI's output, the state directory
    assert pairs(command, "--name") == ["ktes-t1-0"]
    assert pairs(command, "--label") == ["ktes.task-id=t1", "ktes.executor-index=0", "ktes.instance=abc123"]
    image = command.index("localhost/img:1")
    assert command[image - 1] == '--entrypoint=["/ktes/bin/ktes-entrypoint"]'
    assert command[-4:] == ["--", "echo", "a b", "[x]"]
    assert "--pull=never" in command
    assert pairs(command, "--network") == ["none"]
    assert pairs(command, "--ulimit") == ["nofile=1024:1024"]
    assert "-i" not in command  # no stdin file: nothing attached


def test_every_mount_point_is_bound_at_its_container_path() -> None:
    command = argv.run_argv(PODMAN, task(stdout="/logs/out.txt"), 0, WS, STATE, OPTIONS)
    assert pairs(command, "-v") == [
        "/data/work/t1/in/a.txt:/in/a.txt",
        "/data/work/t1/logs:/logs",
        "/data/work/t1/out:/out",
        "/data/work/t1/vol:/vol",
        f"{HELPER}:/ktes/bin/ktes-entrypoint:ro",
        "/data/run/t1/state-0:/ktes/state",
    ]


def test_workdir_env_and_stdin() -> None:
    executor = task(workdir="/w", env={"A": "1", "B": "x=y"}, stdin="/in/a.txt", stdout="/out/o", ignore_error=True)
    command = argv.run_argv(PODMAN, executor, 0, WS, STATE, OPTIONS)
    assert pairs(command, "-w") == ["/w"]
    assert pairs(command, "-e") == ["A=1", "B=x=y"]
    assert "-i" not in command  # the helper opens the stdin file inside the container
    helper_args = command[command.index("localhost/img:1") + 1 :]
    assert helper_args == [
        *["--index", "0", "--state-dir", "/ktes/state", "--tail-bytes", "100"],
        *["--stdin", "/in/a.txt", "--stdout", "/out/o", "--ignore-error", "--", "echo", "a b", "[x]"],
    ]


def test_resources_become_limits_only_when_supported() -> None:
    limited = task()
    limited.resources = Resources(cpu_cores=2, ram_gb=1.5)
    command = argv.run_argv(PODMAN, limited, 0, WS, STATE, OPTIONS)
    assert pairs(command, "--cpus") == ["2"]
    assert pairs(command, "--memory") == [f"{int(1.5 * 1024**3)}b"]
    unsupported = argv.RunOptions(instance="abc123", helper=HELPER, limits=False)
    command = argv.run_argv(PODMAN, limited, 0, WS, STATE, unsupported)
    assert "--cpus" not in command and "--memory" not in command


def test_network_choices() -> None:
    assert argv.network_args("none") == ["--network", "none"]
    assert argv.network_args("host") == ["--network", "host"]
    assert argv.network_args("default") == []
    assert argv.network_args("my-net") == ["--network", "my-net"]


def test_docker_differences() -> None:
    command = argv.run_argv(DOCKER, task(), 0, WS, STATE, OPTIONS)
    assert "--pull=never" not in command
    assert "--entrypoint=/ktes/bin/ktes-entrypoint" in command
    assert argv.image_present_argv(DOCKER, "x:1") == [
        "/usr/bin/docker",
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "x:1",
    ]
    assert argv.remove_argv(DOCKER, ["a"]) == ["/usr/bin/docker", "rm", "--force", "a"]
    assert '{{.Label "ktes.task-id"}}' in argv.list_argv(DOCKER, "abc")[-1]


def test_podman_image_list_and_remove() -> None:
    assert argv.image_present_argv(PODMAN, "x:1")[-3:] == ["image", "exists", "x:1"]
    assert argv.pull_argv(PODMAN, "x:1")[-2:] == ["pull", "x:1"]
    listing = argv.list_argv(PODMAN, "abc", "t1")
    assert pairs(listing, "--filter") == ["label=ktes.instance=abc", "label=ktes.task-id=t1"]
    assert argv.remove_argv(PODMAN, ["a", "b"])[-7:] == ["rm", "--force", "--ignore", "--time", "0", "a", "b"]


def test_the_runtime_or_helper_error_is_the_telling_line() -> None:
    stderr = "Trying to pull...\nError: localhost/x:1: image not known\n"
    assert runtime_failure(stderr) == "Error: localhost/x:1: image not known"
    assert runtime_failure("ktes-entrypoint: cannot write /ktes/state/0.json\n") == (
        "ktes-entrypoint: cannot write /ktes/state/0.json"
    )
    assert runtime_failure("something else\n") == "something else"
    assert runtime_failure("") is None


def test_a_cancel_removes_a_tasks_podman_containers_in_one_call() -> None:
    command = argv.remove_task_argv(PODMAN, "abc123", "t1")
    assert command is not None and command[-9:] == [
        *("rm", "--force", "--ignore", "--time", "0"),
        *("--filter", "label=ktes.instance=abc123", "--filter", "label=ktes.task-id=t1"),
    ]
    assert argv.remove_task_argv(DOCKER, "abc123", "t1") is None  # docker: list, then remove by name
