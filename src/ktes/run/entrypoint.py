"""Where the executors' helper is (``tools/entrypoint``): a static binary shipped inside the ktes package.

Both backends run every executor through it: the local one bind-mounts it read-only into the container,
the Kubernetes one puts it in a ConfigMap. ``pip install ktes`` is all it takes: the package holds one
binary per architecture ktes ships (built by ``tools/entrypoint/build``, each printing the sha256 of the
source it was built from with ``--version``). A setting (``entrypoint_path``) names another file.
"""

from __future__ import annotations

import platform
from importlib import resources
from pathlib import Path

from ktes.errors import KtesError

#: machine names (``uname -m``, Go's GOARCH) -> the architecture the package's binary is built for.
ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
#: where executors find the helper inside their container (both backends).
CONTAINER_PATH = "/ktes/bin/ktes-entrypoint"


class EntrypointMissing(KtesError):
    """The helper is not there for this machine (a sentence for the operator)."""


def packaged(machine: str | None = None) -> Path:
    """The package's helper for ``machine`` (default: this one's); EntrypointMissing when there is none."""
    machine = machine or platform.machine()
    arch = ARCHITECTURES.get(machine.lower())
    if arch is None:
        shipped = ", ".join(sorted(set(ARCHITECTURES.values())))
        raise EntrypointMissing(
            f"ktes ships the executors' helper for {shipped}, not for {machine}: build tools/entrypoint "
            "(make) and set entrypoint_path"
        )
    path = Path(str(resources.files("ktes.run") / "bin" / f"ktes-entrypoint-{arch}"))
    if not path.is_file():
        raise EntrypointMissing(
            f"the executors' helper {path} is missing from this ktes installation: run tools/entrypoint/build "
            "(from a source checkout) or set entrypoint_path"
        )
    return path


def entrypoint_path(override: Path | None = None, machine: str | None = None) -> Path:
    """``override`` when set (it must exist), else :func:`packaged`."""
    if override is None:
        return packaged(machine)
    if not override.is_file():
        raise EntrypointMissing(f"the executors' helper {override} (entrypoint_path) does not exist")
    return override


def read_entrypoint(override: Path | None = None, machine: str | None = None) -> bytes:
    path = entrypoint_path(override, machine)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EntrypointMissing(f"the executors' helper {path} cannot be read ({exc.strerror})") from None
