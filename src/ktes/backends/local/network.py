"""The network task containers join (``local_network``), said at start, and a check at start that it works.

The default is the runtime's own default network (podman's and docker's bridge), as Docker, Funnel and
Kubernetes give containers: workflow jobs install packages and talk to object stores from inside their
container. ``none`` (no network) and ``host`` (the host's) are the operator's other choices, or a network's
name. A container on a bridge network reaches other hosts, not services bound to the host's 127.0.0.1 (such
as ktes itself by default).

The check runs one throw-away container of an empty root directory on the configured network, whose command
does not exist: the runtime sets up the network before it looks for the command, so "command not found"
(exit 127) means the network works, and any other failure is the network's (or the runtime's) and is said at
start. Only podman can run a container without an image (``--rootfs``); with docker the check is skipped.
"""

from __future__ import annotations

import subprocess
import tempfile

from ktes.backends.local.argv import network_args
from ktes.backends.local.runtime import Runtime

CHECK_TIMEOUT_SECONDS = 60.0
#: podman's and docker's exit code for "the command was not found", reached only once the network is set up.
COMMAND_NOT_FOUND = 127
_NO_NETWORK_TO_CHECK = ("none", "host")


def describe(network: str, runtime_kind: str) -> str:
    """The network in force, in words (for the start-up line and service-info)."""
    if network in ("", "default"):
        return f"{runtime_kind}'s default network"
    if network == "none":
        return "no network (local_network=none)"
    if network == "host":
        return "the host's network (local_network=host)"
    return f"the network {network!r} (local_network)"


def network_problem(runtime: Runtime, network: str) -> str | None:
    """Why task containers cannot start on ``network`` here (the runtime's own error line), or None."""
    if network in _NO_NETWORK_TO_CHECK or runtime.kind != "podman":
        return None
    with tempfile.TemporaryDirectory(prefix="ktes-network-check-") as rootfs:
        argv = runtime.command(
            "run", "--rm", *runtime.run_args, *network_args(network), "--rootfs", rootfs, "/ktes-network-check"
        )
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=CHECK_TIMEOUT_SECONDS, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
    if done.returncode == COMMAND_NOT_FOUND:
        return None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return lines[-1][:400] if lines else f"exit code {done.returncode}"
