"""Which ktes installation made an object: every Job, Pod and Secret carries ``ktes.installation=<id>``.

Two installations (two databases) may share a namespace: a test one beside production, or a blue/green
upgrade with a new database. Each watches, sweeps and re-adopts only the objects carrying its own id, and
holds its own Lease (``ktes-engine-<id>``), so neither touches the other's tasks.

The id comes with the database, so every replica of one installation (one database) agrees on it and a new
database is a new installation:

- ``k8s_installation_id`` when set (an operator's choice, e.g. to keep the id when moving the database);
- SQLite: a random id kept in a file beside the database file (``<db>.installation-id``), made on first
  start (the database file and it live and die together);
- any other database (PostgreSQL): a hash of its URL without user and password (host, port, database),
  which every replica shares.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from ktes.config import Settings
from ktes.errors import StartupError

INSTALLATION_LABEL = "ktes.installation"
#: a label value: at most 63 characters, alphanumeric at both ends, ``-_.`` inside.
_VALID = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
_ID_BYTES = 5  # 10 hex digits


def _sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///...`` URL (None: not SQLite, or in memory)."""
    if not url.startswith("sqlite"):
        return None
    _, _, path = url.partition(":///")
    path = path.split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


def _from_file(path: Path) -> str:
    """The id kept in ``path``, made (random) if the file is not there yet."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_text(encoding="ascii").strip()
    made = secrets.token_hex(_ID_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:  # another process of this installation made it first
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(made + "\n")
    return made


def _from_url(url: str) -> str:
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.hostname or ''}:{parts.port or ''}{parts.path}"
    return hashlib.sha256(where.encode()).hexdigest()[: 2 * _ID_BYTES]


def installation_id(settings: Settings) -> str:
    """This installation's id (see the module's docstring). Raises :class:`StartupError` for a bad one."""
    given = settings.k8s_installation_id
    if given:
        found = given
    else:
        url = settings.sqlalchemy_url
        sqlite = _sqlite_file(url)
        try:
            found = _from_file(Path(f"{sqlite}.installation-id")) if sqlite else _from_url(url)
        except OSError as exc:
            raise StartupError(f"cannot keep the installation id beside the database {sqlite}: {exc}") from None
    if not _VALID.match(found):
        raise StartupError(
            f"the installation id {found!r} is not a Kubernetes label value (letters, digits, '-_.', at most 63)"
        )
    return found


def with_installation(settings: Settings) -> Settings:
    """``settings`` with ``k8s_installation_id`` resolved (the backend and the Lease use this copy)."""
    if settings.k8s_installation_id:
        installation_id(settings)  # checks it
        return settings
    return settings.model_copy(update={"k8s_installation_id": installation_id(settings)})


def lease_name(settings: Settings) -> str:
    """The Lease the engine's replicas hold: ``k8s_lease_name``, else ``ktes-engine-<installation id>``."""
    return settings.k8s_lease_name or f"ktes-engine-{installation_id(settings)}"
