"""The basic-auth users: an htpasswd-style file of ``name:bcrypt-hash`` lines (Apache's ``htpasswd -B`` writes
the same), managed with ``ktes users add|remove|list``. No plain-text password is ever stored.

:class:`BasicUsers` checks a name and password against the file. bcrypt is slow on purpose (about 0.2 s at
cost 12), so a successful check is remembered for a while under a keyed hash of the credentials (never the
password itself), and the file is read again when it changes, so ``ktes users`` takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
import threading
import time
from pathlib import Path

import bcrypt

#: User names: letters, digits and ``. _ @ + -`` (no ``:``, which separates the fields, and no spaces).
NAME_PATTERN = re.compile(r"[A-Za-z0-9._@+-]{1,128}")
DEFAULT_ROUNDS = 12
#: How long a verified name and password are remembered (seconds), and how many at most.
CACHE_SECONDS = 300.0
CACHE_SIZE = 10_000


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid user name (letters, digits and . _ @ + -, at most 128)")
    return name


def read_users(path: Path) -> dict[str, bytes]:
    """name -> bcrypt hash. A missing file has no users; blank lines and ``#`` comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    users: dict[str, bytes] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, hashed = line.split(":", 1)
        users[name] = hashed.encode()
    return users


def write_users(path: Path, users: dict[str, bytes]) -> None:
    """Replace the file atomically (same directory, mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".users-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for name in sorted(users):
                out.write(f"{name}:{users[name].decode()}\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def hash_password(password: str, rounds: int = DEFAULT_ROUNDS) -> bytes:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds))


def add_user(path: Path, name: str, password: str, rounds: int = DEFAULT_ROUNDS) -> bool:
    """Add ``name`` or change its password; True when the user is new."""
    check_name(name)
    if not password:
        raise ValueError("the password is empty")
    users = read_users(path)
    new = name not in users
    users[name] = hash_password(password, rounds)
    write_users(path, users)
    return new


def remove_user(path: Path, name: str) -> bool:
    """Remove ``name``; False when there was no such user."""
    users = read_users(path)
    if users.pop(name, None) is None:
        return False
    write_users(path, users)
    return True


def _cost(hashed: bytes) -> int:
    """The cost of a ``$2b$12$...`` hash (DEFAULT_ROUNDS when it cannot be read)."""
    parts = hashed.split(b"$")
    return int(parts[2]) if len(parts) > 3 and parts[2].isdigit() and 4 <= int(parts[2]) <= 31 else DEFAULT_ROUNDS


def _bcrypt_hash(hashed: bytes) -> bytes:
    # Apache's htpasswd writes the $2y$ prefix; it is the same algorithm as $2b$.
    return b"$2b$" + hashed[4:] if hashed.startswith(b"$2y$") else hashed


class BasicUsers:
    """Checks HTTP basic credentials against the users file (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, bytes] = {}
        self._key = secrets.token_bytes(32)
        self._verified: dict[bytes, tuple[str, float]] = {}
        #: bumped whenever the file changed (callers that remember verified credentials compare it)
        self.generation = 0
        self._looked_at = float("-inf")
        # A hash to check unknown users against, as costly as the users', so they take as long as known ones
        # (made on first need: it costs as much as a check).
        self._dummy: bytes | None = None

    def _current(self) -> dict[str, bytes]:
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._users = read_users(self.path)
                self._stamp = stamp
                self._verified.clear()  # a removed user or a changed password counts at once
                self.generation += 1
            return self._users

    def current_generation(self) -> int:
        """:attr:`generation`, looking at the file at most once a second (cheap enough for every request)."""
        now = time.monotonic()
        if now - self._looked_at >= 1.0:
            self._looked_at = now
            self._current()
        return self.generation

    def cached(self, name: str, password: str) -> bool:
        """True when these credentials were verified recently (cheap: no bcrypt)."""
        self._current()
        key = self._cache_key(name, password)
        with self._lock:
            hit = self._verified.get(key)
            return hit is not None and hit[0] == name and hit[1] > time.monotonic()

    def verify(self, name: str, password: str) -> bool:
        """Check the password with bcrypt (slow: call it off the event loop) and remember a success."""
        users = self._current()
        hashed = users.get(name)
        if hashed is None and self._dummy is None:
            self._dummy = hash_password(secrets.token_urlsafe(16), _cost(next(iter(users.values()), b"")))
        try:
            ok = bcrypt.checkpw(password.encode(), _bcrypt_hash(hashed if hashed is not None else self._dummy or b""))
        except ValueError:  # a malformed hash in the file
            ok = False
        ok = ok and hashed is not None
        if ok:
            with self._lock:
                if len(self._verified) >= CACHE_SIZE:
                    self._verified.clear()
                self._verified[self._cache_key(name, password)] = (name, time.monotonic() + CACHE_SECONDS)
        return ok

    def _cache_key(self, name: str, password: str) -> bytes:
        return hmac.new(self._key, f"{name}\0{password}".encode(), hashlib.sha256).digest()
