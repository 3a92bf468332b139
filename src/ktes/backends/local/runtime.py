"""Which container CLI to use and with which arguments: detected once per process, overridable by settings.

A runtime is used only if it answers: podman when ``podman info`` works (preferred: no daemon), else docker
when its daemon answers; with neither, start-up fails saying what was tried (:func:`choose`). Without
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


def _last_line(output: bytes) -> str:
    lines = [line.strip() for line in output.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def docker_answers(binary: str) -> str | None:
    """None when the docker daemon answers, else why not (its own last line)."""
    try:
        done = subprocess.run(
            [binary, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else _last_line(done.stderr or done.stdout)


def podman_info(binary: str, attempts: int = 2) -> tuple[dict[str, Any], str | None]:
    """``podman info`` as JSON and None, or ({}, why it failed) when it fails ``attempts`` times."""
    why = "podman info failed"
    for _ in range(attempts):
        try:
            done = subprocess.run(
                [binary, "info", "--format", "json"],
                capture_output=True,
                timeout=INFO_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            why = str(exc)
            continue
        if done.returncode != 0:
            why = _last_line(done.stderr)
            continue
        try:
            info = json.loads(done.stdout)
        except ValueError:
            why = "podman info did not print JSON"
            continue
        if isinstance(info, dict):
            return info, None
    return {}, why


@dataclass(frozen=True)
class Choice:
    """The container CLI that answers, and ``podman info`` (empty for docker)."""

    binary: str
    kind: str
    info: dict[str, Any]


def choose(wanted: str | None, path: str | None = None) -> Choice:
    """The container CLI to use: ``wanted`` (a name or a path) if it answers, else podman if ``podman info``
    works, else docker if its daemon answers. :class:`BackendError` says what was tried and what to do.

    ``scripts/setup`` makes the same decision (``python -m ktes.backends.local.runtime``) to know whether to
    install podman.
    """
    candidates = [wanted] if wanted else ["podman", "docker"]
    tried: list[str] = []
    for name in candidates:
        binary = shutil.which(name, path=path)
        if binary is None:
            tried.append(f"{name} is not installed")
            continue
        kind = _kind_of(binary)
        if kind == "podman":
            info, why = podman_info(binary)
        else:
            info, why = {}, docker_answers(binary)
        if why is None:
            return Choice(binary, kind, info)
        tried.append(f"{binary} does not answer ({why})")
    fix = (
        "install podman and runc (scripts/setup does), start the Docker daemon, or set KTES_LOCAL_RUNTIME"
        if not wanted
        else "fix it, or unset KTES_LOCAL_RUNTIME to let ktes look for podman and docker"
    )
    raise BackendError(f"the local backend found no container runtime that answers ({'; '.join(tried)}): {fix}")


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


def crun_fails(info: dict[str, Any]) -> bool:
    """Whether podman's default OCI runtime is crun on cgroup v1 (where crun fails: runc is needed)."""
    host = info.get("host") or {}
    return (host.get("ociRuntime") or {}).get("name") == "crun" and host.get("cgroupVersion") == "v1"


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
    chosen = choose(wanted)
    binary, kind, info = chosen.binary, chosen.kind, chosen.info
    if global_args is None:
        global_args = ()
        if kind == "podman":
            runc = shutil.which("runc") or next(
                (p for p in ("/usr/sbin/runc", "/usr/bin/runc") if os.path.exists(p)), None
            )
            if runc is None and crun_fails(info):
                raise BackendError(
                    f"{binary} runs containers with crun, which fails on this host's cgroup v1, and runc is not "
                    "installed: install runc (scripts/setup does), or set KTES_LOCAL_GLOBAL_ARGS"
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


def main() -> int:
    """``python -m ktes.backends.local.runtime``: print the runtime ``ktes serve`` would use (exit 0), or why
    there is none (exit 1). ``scripts/setup`` asks this before deciding to install podman."""
    import sys

    try:
        runtime = _detect(os.environ.get("KTES_LOCAL_RUNTIME") or None, None, None)
    except BackendError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{runtime.kind} {runtime.binary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
