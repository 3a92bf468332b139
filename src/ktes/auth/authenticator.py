"""From an ``Authorization`` header to a :class:`Principal`, with the schemes the operator turned on."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ipaddress
import logging
import secrets
import time

import httpx

from ktes.auth.oidc import OidcVerifier
from ktes.auth.principal import BASIC, OIDC, AuthFailed, Principal, parse_schemes
from ktes.auth.users_file import BasicUsers
from ktes.config import Settings

log = logging.getLogger(__name__)

REALM = "ktes"
#: bcrypt checks run in threads; at most this many at once, so guessing passwords cannot take every core.
_BCRYPT_AT_ONCE = 2
#: Verified basic credentials are remembered this long (seconds; a change of the users file forgets them).
_RECENT_SECONDS = 300.0
_RECENT_SIZE = 10_000


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_open(settings: Settings) -> None:
    """With auth off on an address others can reach, say so loudly (at start); and an OIDC set-up that accepts
    tokens the provider issued to any of its clients."""
    schemes = parse_schemes(settings.auth)
    if OIDC in schemes and not settings.oidc_audience:
        log.warning("KTES_OIDC_AUDIENCE is not set: tokens the provider issued to any client are accepted")
    if not schemes and not is_loopback(settings.host):
        log.warning(
            "\n%s\nWARNING: KTES_AUTH=none and ktes listens on %s: anyone who reaches this port can run\n"
            "containers, and read and cancel every task. Set KTES_AUTH=basic or oidc (see docs/auth.md).\n%s",
            "!" * 100,
            settings.host,
            "!" * 100,
        )


def check_settings(settings: Settings) -> None:
    """Raise ValueError (naming the setting) for an auth configuration that cannot work."""
    schemes = parse_schemes(settings.auth)
    if BASIC in schemes and settings.auth_users_file is None:
        raise ValueError("KTES_AUTH=basic needs KTES_AUTH_USERS_FILE (create it with `ktes users add`)")
    if OIDC in schemes and not settings.oidc_issuer:
        raise ValueError("KTES_AUTH=oidc needs KTES_OIDC_ISSUER")


class Authenticator:
    """The configured schemes. ``enabled`` is False with ``KTES_AUTH=none``: then there is nothing to check."""

    def __init__(self, settings: Settings, *, oidc_transport: httpx.AsyncBaseTransport | None = None) -> None:
        check_settings(settings)
        self.schemes = parse_schemes(settings.auth)
        self.admins = frozenset(settings.admins)
        self.basic: BasicUsers | None = None
        self.oidc: OidcVerifier | None = None
        self._bcrypt_slots: asyncio.Semaphore | None = None
        self._key = secrets.token_bytes(32)
        #: keyed hash of a basic Authorization header -> (principal, until, users file generation)
        self._recent: dict[bytes, tuple[Principal, float, int]] = {}
        if BASIC in self.schemes and settings.auth_users_file is not None:
            self.basic = BasicUsers(settings.auth_users_file)
        if OIDC in self.schemes and settings.oidc_issuer:
            self.oidc = OidcVerifier(
                settings.oidc_issuer,
                settings.oidc_audience,
                user_claim=settings.oidc_user_claim,
                groups_claim=settings.oidc_groups_claim,
                admin_groups=settings.oidc_admin_groups,
                admins=settings.admins,
                algorithms=settings.oidc_algorithms,
                leeway_seconds=settings.oidc_leeway_seconds,
                refresh_seconds=settings.oidc_jwks_refresh_seconds,
                transport=oidc_transport,
            )

    @property
    def enabled(self) -> bool:
        return bool(self.schemes)

    async def aclose(self) -> None:
        if self.oidc is not None:
            await self.oidc.aclose()

    def challenges(self, reason: str | None = None) -> list[str]:
        """``WWW-Authenticate`` values: one per scheme; the reason goes with the scheme that was tried."""
        values = []
        if self.oidc is not None:
            value = f'Bearer realm="{REALM}"'
            if reason is not None:
                value += f', error="invalid_token", error_description="{reason}"'
            values.append(value)
        if self.basic is not None:
            values.append(f'Basic realm="{REALM}", charset="UTF-8"')
        return values

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller named by the header. Raises :class:`AuthFailed` with a short reason."""
        if not authorization:
            raise AuthFailed("credentials required")
        if self.basic is not None and authorization[:6].lower() == "basic ":
            # Most requests repeat the credentials of a recent one: one keyed hash and a look-up.
            key = hashlib.blake2b(authorization.encode(), key=self._key, digest_size=16).digest()
            hit = self._recent.get(key)
            if hit is not None and hit[1] > time.monotonic() and hit[2] == self.basic.current_generation():
                return hit[0]
            principal = await self._authenticate(authorization)
            if len(self._recent) >= _RECENT_SIZE:
                self._recent.clear()
            self._recent[key] = (principal, time.monotonic() + _RECENT_SECONDS, self.basic.generation)
            return principal
        return await self._authenticate(authorization)

    async def _authenticate(self, authorization: str) -> Principal:
        scheme, _, credentials = authorization.partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "bearer" and self.oidc is not None:
            return await self.oidc.verify(credentials)
        if scheme == "basic" and self.basic is not None:
            return await self._basic(credentials)
        wanted = " or ".join(name for name, on in (("Bearer", self.oidc), ("Basic", self.basic)) if on is not None)
        raise AuthFailed(f"use {wanted} authentication")

    async def _basic(self, credentials: str) -> Principal:
        assert self.basic is not None
        try:
            name, sep, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthFailed("malformed basic credentials") from exc
        if not sep or not name:
            raise AuthFailed("malformed basic credentials")
        if not self.basic.cached(name, password):
            if self._bcrypt_slots is None:
                self._bcrypt_slots = asyncio.Semaphore(_BCRYPT_AT_ONCE)
            async with self._bcrypt_slots:
                ok = await asyncio.to_thread(self.basic.verify, name, password)
            if not ok:
                raise AuthFailed("wrong user name or password")
        return Principal(name=name, admin=name in self.admins)
