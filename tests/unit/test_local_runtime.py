"""Runtime detection decisions, from podman info and the process limits (pure parts)."""

from __future__ import annotations

import resource

from ktes.backends.local import runtime


def info(oci: str, cgroups: str, manager: str = "cgroupfs", rootless: bool = False) -> dict[str, object]:
    return {
        "host": {
            "ociRuntime": {"name": oci},
            "cgroupVersion": cgroups,
            "cgroupManager": manager,
            "security": {"rootless": rootless},
        }
    }


def test_crun_on_cgroup_v1_switches_to_runc_and_cgroupfs() -> None:
    args = runtime.podman_global_args(info("crun", "v1", "systemd"), "/usr/sbin/runc", systemd_running=True)
    assert args == ["--runtime", "/usr/sbin/runc", "--cgroup-manager=cgroupfs"]


def test_a_working_setup_gets_no_global_args() -> None:
    assert runtime.podman_global_args(info("crun", "v2", "systemd"), "/usr/sbin/runc", systemd_running=True) == []
    assert runtime.podman_global_args(info("runc", "v1"), "/usr/sbin/runc", systemd_running=False) == []


def test_systemd_manager_without_systemd_uses_cgroupfs() -> None:
    args = runtime.podman_global_args(info("crun", "v2", "systemd"), None, systemd_running=False)
    assert args == ["--cgroup-manager=cgroupfs"]


def test_unreadable_info_falls_back_to_runc() -> None:
    assert runtime.podman_global_args({}, "/usr/bin/runc", systemd_running=True)[:2] == ["--runtime", "/usr/bin/runc"]


def test_ulimits_stay_within_the_hard_limits() -> None:
    assert runtime.podman_ulimit_args(20000, 96365, 32768) == [
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=32768:32768",
    ]
    unlimited = resource.RLIM_INFINITY
    assert runtime.podman_ulimit_args(unlimited, unlimited, None) == [
        "--ulimit",
        f"nofile={runtime.MAX_NOFILE}:{runtime.MAX_NOFILE}",
        "--ulimit",
        "nproc=32768:32768",
    ]


def test_limits_unsupported_only_for_rootless_cgroup_v1() -> None:
    assert runtime.limits_supported(info("runc", "v1"))
    assert not runtime.limits_supported(info("crun", "v1", rootless=True))
    assert runtime.limits_supported(info("crun", "v2", rootless=True))


def test_runtime_command_puts_global_args_first() -> None:
    rt = runtime.Runtime("/bin/podman", "podman", ("--g",), ("--r",))
    assert rt.command("ps") == ["/bin/podman", "--g", "ps"]
    assert rt.describe() == "podman --g run --r"
