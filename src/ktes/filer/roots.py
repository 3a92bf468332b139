"""Where ``file://`` URLs may point: the allowed roots, minus ktes's own files and credentials.

The one place that decides whether a task may read or write a host path. A path is allowed when, with every
link and ``..`` resolved, it lies below an allowed root, and

- it is not ktes's own: the data directory (database, ``-wal``/``-shm``, workspaces of other tasks), the
  database file wherever it is, the YAML settings file and the kubeconfig ktes uses. That holds whatever
  roots the operator configures;
- no directory below the root on the way to it is a dot-directory (``.ssh``, ``.aws``, ``.kube``,
  ``.config``, ``.git``...): that is where tools keep keys and settings;
- its name is not a known credential or shell start-up file (``id_ed25519``, ``authorized_keys``,
  ``credentials``, ``.netrc``, ``.env``, ``.bashrc``...), and it is not a dot-file right in a home directory.

The default roots (``file_allowed_roots`` unset) serve a workflow user on their own machine: the directory
``ktes serve`` was started in (unless that is ``/``) and the temp directory, with the local backend; none on
Kubernetes, where a path in a pod is not the client's path.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ktes.config import Settings

#: Names refused anywhere below a root: private keys, cloud and cluster credentials, shell start-up files.
_CREDENTIAL_NAMES = re.compile(
    r"""(
        id_(rsa|dsa|ecdsa|ed25519)(_sk)?(\.pub)?   # SSH keys
      | authorized_keys2?
      | credentials(\.json)?                        # AWS, gcloud
      | kubeconfig | .*\.kubeconfig
      | \.netrc | \.pgpass | \.git-credentials | \.npmrc | \.pypirc | \.dockercfg | \.env
      | \.(bash|zsh)(rc|env|_profile|_login|_logout) | \.profile | \.zprofile | \.zlogin | \.zshenv | \.inputrc
    )""",
    re.VERBOSE,
)


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def default_roots(settings: Settings, cwd: Path | None = None) -> tuple[Path, ...]:
    """The configured roots, or the defaults: the start directory (unless ``/``) and the temp directory with
    the local backend, nothing on Kubernetes."""
    if settings.file_allowed_roots is not None:
        return tuple(settings.file_allowed_roots)
    if settings.backend != "local":
        return ()
    start = _real(cwd if cwd is not None else Path.cwd())
    temp = _real(tempfile.gettempdir())
    return tuple(dict.fromkeys(r for r in (start, temp) if r != Path("/")))


def own_paths(settings: Settings) -> tuple[Path, ...]:
    """Everything ktes itself owns or reads on this host, which no task may reach."""
    paths: list[Path | str] = [settings.data_dir]
    url = settings.sqlalchemy_url
    if url.startswith("sqlite:///"):
        database = url.removeprefix("sqlite:///").split("?", 1)[0]
        paths += [database + suffix for suffix in ("", "-wal", "-shm", "-journal")]
    config = settings.config or os.environ.get("KTES_CONFIG")
    if config:
        paths.append(config)
    kubeconfig = settings.k8s_kubeconfig or os.environ.get("KUBECONFIG")
    if kubeconfig:
        paths += [p for p in str(kubeconfig).split(os.pathsep) if p]
    return tuple(dict.fromkeys(_real(p) for p in paths))


def _homes() -> tuple[Path, ...]:
    homes = {Path.home(), Path(os.path.expanduser("~root"))}
    return tuple(_real(h) for h in homes)


@dataclass(frozen=True)
class AllowedRoots:
    """The allowed roots and what is refused below them (all paths with links resolved)."""

    roots: tuple[Path, ...]
    own: tuple[Path, ...] = ()
    homes: tuple[Path, ...] = ()

    @classmethod
    def of(cls, roots: Iterable[Path], own: Iterable[Path] = ()) -> AllowedRoots:
        return cls(tuple(_real(r) for r in roots), tuple(_real(p) for p in own), _homes())

    @classmethod
    def from_settings(cls, settings: Settings) -> AllowedRoots:
        return cls.of(default_roots(settings), own_paths(settings))

    def describe(self) -> str:
        return ", ".join(str(r) for r in self.roots) or "none configured"

    def refusal(self, path: Path, *, directory: bool = False) -> str | None:
        """Why ``path`` (a file, or a ``directory`` to list) may not be used, as a clause after the URL; None
        when it may. Links and ``..`` are resolved first."""
        real = _real(path)
        if any(real == own or real.is_relative_to(own) for own in self.own):
            return "is ktes's own file or directory"
        root = self._root_of(real)
        if root is None:
            return f"is outside the allowed roots ({self.describe()})"
        parts = real.relative_to(root).parts
        if any(part.startswith(".") for part in (parts if directory else parts[:-1])):
            return "is in a dot-directory (where tools keep keys and settings)"
        name = parts[-1] if parts else real.name
        if _CREDENTIAL_NAMES.fullmatch(name) or (name.startswith(".") and real.parent in self.homes):
            return "is a credential or start-up file"
        return None

    def _root_of(self, real: Path) -> Path | None:
        for root in sorted(self.roots, key=lambda r: len(r.parts), reverse=True):
            if real == root or real.is_relative_to(root):
                return root
        return None


def roots_from(roots: Sequence[Path], settings: Settings | None = None) -> AllowedRoots:
    """Explicit roots (tests, tools), with ktes's own paths from ``settings`` when given."""
    return AllowedRoots.of(roots, own_paths(settings) if settings is not None else ())
