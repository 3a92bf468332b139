"""Which container CLI to use and with which arguments: detected once per process, overridable by settings.

podman is preferred (no daemon); docker is used when podman is missing and its daemon answers. Without
``local_global_args``, podman gets ``--runtime <runc> --cgroup-manager=cgroupfs`` when its default runtime
is crun on cgroup v1 (crun fails on such hosts) or when systemd is not running. Without ``local_run_args``,
podman gets ``--ulimit nofile=N:N --ulimit nproc=M:M`` within this process's hard limits, because podman's
defaults may exceed them and then every container fails to start.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktes.config import Settings
from ktes.errors import BackendError

log = logging.getLogger(__name__)

#: podman's own default for open files; never ask for more.
MAX_NOFILE = 1024 * 1024
INFO_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Runtime:
    #: Absolute path of the CLI.
    binary: str
    #: "podman" or "docker".
    kind: str
    global_args: tuple[str, ...]
    run_args: tuple[str, ...]
    #: Whether --cpus/--memory can be enforced (not with rootless podman on cgroup v1).
    limits_supported: bool = True

    def command(self, *args: str) -> list[str]:
        """``[binary, *global_args, *args]``."""
        return [self.binary, *self.global_args, *args]

    def describe(self) -> str:
        return " ".join([self.kind, *self.global_args, "run", *self.run_args])


def _kind_of(binary: str) -> str:
    return "docker" if Path(binary).name.startswith("docker") else "podman"


def _docker_answers(binary: str) -> bool:
    try:
        done = subprocess.run(
            [binary, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_binary(wanted: str | None) -> str:
    """The CLI to use: ``wanted`` (a name or a path), else podman, else a docker whose daemon answers."""
    if wanted:
        found = shutil.which(wanted)
        if found is None:
            raise BackendError(f"the container runtime {wanted!r} (local_runtime) was not found on PATH")
        return found
    podman = shutil.which("podman")
    if podman is not None:
        return podman
    docker = shutil.which("docker")
    if docker is not None and _docker_answers(docker):
        return docker
    raise BackendError("the local backend needs podman or docker, and neither was found (set local_runtime)")


def podman_info(binary: str, attempts: int = 2) -> dict[str, Any]:
    """``podman info`` as JSON ({} if it fails twice: the caller then falls back to safe choices)."""
    for _ in range(attempts):
        try:
            done = subprocess.run(
                [binary, "info", "--format", "json"],
                capture_output=True,
                timeout=INFO_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("podman info failed: %s", exc)
            continue
        if done.returncode != 0:
            log.warning("podman info failed: %s", done.stderr.decode(errors="replace").strip()[-500:])
            continue
        try:
            info = json.loads(done.stdout)
        except ValueError:
            continue
        if isinstance(info, dict):
            return info
    return {}


def podman_global_args(info: dict[str, Any], runc: str | None, systemd_running: bool) -> list[str]:
    """Global arguments podman needs on this host (pure: decided from ``podman info``)."""
    host = info.get("host") or {}
    oci_runtime = (host.get("ociRuntime") or {}).get("name")
    cgroup_version = host.get("cgroupVersion")
    cgroup_manager = host.get("cgroupManager")
    args: list[str] = []
    if runc is not None and (not host or (oci_runtime == "crun" and cgroup_version == "v1")):
        args += ["--runtime", runc, "--cgroup-manager=cgroupfs"]
    elif cgroup_manager == "systemd" and not systemd_running:
        args.append("--cgroup-manager=cgroupfs")
    return args


def _pid_max() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text().strip())
    except (OSError, ValueError):
        return None


def podman_ulimit_args(nofile_hard: int, nproc_hard: int, pid_max: int | None) -> list[str]:
    """``--ulimit`` values within the hard limits (pure). podman caps its own processes at pid_max."""
    unlimited = resource.RLIM_INFINITY
    nofile = MAX_NOFILE if nofile_hard == unlimited else min(nofile_hard, MAX_NOFILE)
    nproc_cap = pid_max if pid_max is not None else 32768
    nproc = nproc_cap if nproc_hard == unlimited else min(nproc_hard, nproc_cap)
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def limits_supported(info: dict[str, Any]) -> bool:
    host = info.get("host") or {}
    rootless = bool((host.get("security") or {}).get("rootless"))
    return not (rootless and host.get("cgroupVersion") == "v1")


@functools.cache
def _detect(wanted: str | None, global_args: tuple[str, ...] | None, run_args: tuple[str, ...] | None) -> Runtime:
    binary = find_binary(wanted)
    kind = _kind_of(binary)
    info: dict[str, Any] = {}
    if kind == "podman" and (global_args is None or run_args is None):
        info = podman_info(binary)
    if global_args is None:
        global_args = ()
        if kind == "podman":
            runc = shutil.which("runc") or next(
                (p for p in ("/usr/sbin/runc", "/usr/bin/runc") if os.path.exists(p)), None
            )
            global_args = tuple(podman_global_args(info, runc, Path("/run/systemd/system").is_dir()))
    if run_args is None:
        run_args = ()
        if kind == "podman":
            nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
            run_args = tuple(podman_ulimit_args(nofile, nproc, _pid_max()))
    return Runtime(
        binary=binary,
        kind=kind,
        global_args=global_args,
        run_args=run_args,
        limits_supported=limits_supported(info) if info else True,
    )


def detect_runtime(settings: Settings) -> Runtime:
    """The runtime for ``settings`` (cached: detection runs once per process and set of settings)."""
    global_args = tuple(settings.local_global_args) if settings.local_global_args is not None else None
    run_args = tuple(settings.local_run_args) if settings.local_run_args is not None else None
    return _detect(settings.local_runtime, global_args, run_args)
