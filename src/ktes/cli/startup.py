"""What ``ktes serve`` makes sure of before it serves, and the one sentence it prints when that fails.

Each start-up failure (a bad setting, the port in use, the database, no container runtime that answers,
Kubernetes out of reach) is a :class:`StartupError` whose message says what was tried and what to do;
``ktes serve`` prints it on stderr and exits 1, with no traceback unless ``--debug``.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ktes.config import Settings
from ktes.errors import BackendError, StartupError

__all__ = ["StartupError"]


def check_config_file(option: Path | None) -> None:
    """The YAML file of ``--config`` / ``KTES_CONFIG``, if one is named, exists and is a YAML mapping."""
    named = option or (Path(os.environ["KTES_CONFIG"]) if os.environ.get("KTES_CONFIG") else None)
    if named is None:
        return
    try:
        loaded = yaml.safe_load(named.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StartupError(f"cannot read the config file {named} (--config or KTES_CONFIG): {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise StartupError(
            f"the config file {named} is not valid YAML{at}; fix it or name another with --config"
        ) from exc
    if loaded is not None and not isinstance(loaded, dict):
        raise StartupError(f"the config file {named} must hold a mapping of settings (e.g. 'port: 8000')")


def settings_problem(exc: ValidationError) -> StartupError:
    """The first invalid setting, named as its environment variable, with what was given."""
    first: dict[str, Any] = dict(exc.errors()[0])
    name = ".".join(str(part) for part in first.get("loc") or ()) or "?"
    given = f" (got {first['input']!r})" if "input" in first and not isinstance(first["input"], dict) else ""
    return StartupError(
        f"the setting {name} (KTES_{name.upper()}) is not valid: {first.get('msg')}{given}; "
        "fix it in the environment, the --config file or the command line"
    )


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (uvicorn serves on it), or a StartupError saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise StartupError(
            f"cannot listen on {host}: the address does not resolve ({exc}); fix --host or KTES_HOST"
        ) from exc
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is already in use (another ktes serve?); stop that process, "
                "or choose another port with --port or KTES_PORT"
            ) from exc
        raise StartupError(
            f"cannot listen on {host} port {port} ({exc.strerror}); fix --host/--port or KTES_HOST/KTES_PORT"
        ) from exc
    sock.set_inheritable(True)
    return sock


def check_backend(settings: Settings) -> None:
    """The local backend can work: a container runtime that answers, and a network its containers can use.

    The Kubernetes backend checks itself (``ktes.backends.registry.preflight``: the API server, RBAC, the
    namespace, the file volume)."""
    if settings.backend == "kubernetes":
        return
    from ktes.backends.local.network import describe, network_problem
    from ktes.backends.local.runtime import detect_runtime

    try:
        runtime = detect_runtime(settings)
    except BackendError as exc:
        raise StartupError(str(exc)) from exc
    problem = network_problem(runtime, settings.local_network)
    if problem is not None:
        raise StartupError(
            f"task containers cannot start on {describe(settings.local_network, runtime.kind)} here "
            f"({problem}); fix the runtime's network, or set KTES_LOCAL_NETWORK=host or none"
        )
