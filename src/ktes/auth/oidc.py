"""OIDC bearer tokens: JWTs checked against the issuer's discovery document and JWKS, with joserfc.

What is checked, in order: the header's ``alg`` is one of the allowed asymmetric algorithms (``none`` and the
HMAC family are never allowed, whatever the settings say: a verifier holding a public key must not treat it
as a shared secret); the ``kid`` names a key of the issuer's JWKS (an unknown ``kid`` fetches the JWKS again,
at most once per ``oidc_jwks_refresh_seconds``, so a provider's key rotation is picked up without a restart
and a flood of made-up kids cannot make ktes hammer the provider); the signature; ``iss`` is the issuer;
``aud`` contains the audience; ``exp`` (required) and ``nbf`` with a small leeway. The user is the
``oidc_user_claim`` claim; admins are named in ``admins`` or belong to one of ``oidc_admin_groups``.

Only the fetching and caching are ktes's own: joserfc does the JOSE work (parsing, keys, signatures, claims).
A verified token is remembered until it expires (at most ``TOKEN_CACHE_SECONDS``), so a client that sends the
same token on every request costs one dictionary look-up per request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from collections.abc import Collection
from typing import Any

import httpx
import orjson
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from ktes.auth.principal import AuthFailed, Principal

#: Never accepted, whatever ``oidc_algorithms`` says.
REFUSED_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})
TOKEN_CACHE_SECONDS = 300.0
MAX_TOKEN_BYTES = 16 * 1024
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_-]{1,16}")
TOKEN_CACHE_SIZE = 10_000


class OidcUnavailable(AuthFailed):
    """The provider's discovery document or JWKS could not be read."""


class BadSignature(AuthFailed):
    def __init__(self) -> None:
        super().__init__("token signature is invalid")


def _header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS (only to choose the key and refuse an algorithm early)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthFailed("malformed token")
    try:
        segment = parts[0] + "=" * (-len(parts[0]) % 4)
        header = orjson.loads(base64.urlsafe_b64decode(segment))
    except (binascii.Error, ValueError) as exc:
        raise AuthFailed("malformed token") from exc
    if not isinstance(header, dict):
        raise AuthFailed("malformed token")
    return header


class OidcVerifier:
    """Verifies bearer tokens of one issuer. Async (the JWKS is fetched with httpx); thread-unsafe by design:
    it lives on the server's event loop."""

    def __init__(
        self,
        issuer: str,
        audience: str | None,
        *,
        user_claim: str = "sub",
        groups_claim: str = "groups",
        admin_groups: Collection[str] = (),
        admins: Collection[str] = (),
        algorithms: Collection[str] = ("RS256",),
        leeway_seconds: float = 30.0,
        refresh_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.user_claim = user_claim
        self.groups_claim = groups_claim
        self.admin_groups = frozenset(admin_groups)
        self.admins = frozenset(admins)
        self.algorithms = [alg for alg in algorithms if alg not in REFUSED_ALGORITHMS]
        if not self.algorithms:
            raise ValueError("KTES_OIDC_ALGORITHMS: no asymmetric algorithm left (none and HMAC are refused)")
        self.leeway = int(leeway_seconds)
        self.refresh_seconds = refresh_seconds
        self._http = httpx.AsyncClient(timeout=10.0, transport=transport)
        self._jwks_uri: str | None = None
        self._discovery: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._fetching: asyncio.Lock | None = None
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the provider's keys ------------------------------------------------------------------------

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcUnavailable("the identity provider cannot be reached; try again later") from exc
        if not isinstance(body, dict):
            raise OidcUnavailable("the identity provider answered something unexpected")
        return body

    async def _refresh(self, *, force: bool) -> None:
        """Fetch discovery (once) and the JWKS; without ``force`` only when none was fetched yet. At most one
        fetch per ``refresh_seconds``; concurrent callers share it."""
        if self._fetching is None:
            self._fetching = asyncio.Lock()
        async with self._fetching:
            if self._keys is not None and (not force or time.monotonic() - self._fetched_at < self.refresh_seconds):
                return
            if self._keys is None and time.monotonic() - self._fetched_at < self.refresh_seconds:
                raise OidcUnavailable("the identity provider cannot be reached; try again later")
            self._fetched_at = time.monotonic()
            if self._jwks_uri is None:
                discovery = await self._get_json(self.issuer + "/.well-known/openid-configuration")
                if str(discovery.get("issuer", "")).rstrip("/") != self.issuer:
                    raise OidcUnavailable("the identity provider's discovery document names another issuer")
                jwks_uri = discovery.get("jwks_uri")
                if not isinstance(jwks_uri, str):
                    raise OidcUnavailable("the identity provider's discovery document has no jwks_uri")
                self._jwks_uri = jwks_uri
                self._discovery = discovery
            try:
                self._keys = KeySet.import_key_set(await self._get_json(self._jwks_uri))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError) as exc:
                raise OidcUnavailable("the identity provider's JWKS cannot be read") from exc

    async def provider_metadata(self) -> dict[str, Any]:
        """The provider's discovery document (read once, with the keys)."""
        if self._discovery is None:
            await self._refresh(force=False)
        if self._discovery is None:
            raise OidcUnavailable("the identity provider cannot be reached; try again later")
        return self._discovery

    def _has_key(self, kid: str | None) -> bool:
        if self._keys is None:
            return False
        if kid is None:
            return len(self._keys.keys) == 1
        return any(key.kid == kid for key in self._keys.keys)

    # --- tokens -------------------------------------------------------------------------------------

    async def verify(self, token: str) -> Principal:
        """The token's user. Raises :class:`AuthFailed` with a short reason."""
        hit = self._verified.get(token)
        if hit is not None:
            if hit[1] > time.time():
                return hit[0]
            del self._verified[token]
        claims = await self.verified_claims(token, self.audience)
        principal = self._principal(claims)
        expires = float(claims["exp"])
        if len(self._verified) >= TOKEN_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, min(expires, time.time() + TOKEN_CACHE_SECONDS))
        return principal

    def user_of(self, claims: dict[str, Any]) -> Principal:
        """The user the verified ``claims`` name. Raises :class:`AuthFailed`."""
        return self._principal(claims)

    async def verified_claims(self, token: str, audience: str | None) -> dict[str, Any]:
        """The claims of a token of this issuer for ``audience`` (e.g. an ID token for the dashboard's client
        id), checked as :meth:`verify` checks, not remembered. Raises :class:`AuthFailed`."""
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthFailed("token too long")
        header = _header(token)
        alg = header.get("alg")
        if alg not in self.algorithms:
            # The reason goes into a response header: name the algorithm only when it is a plain word.
            named = f" {alg!r}" if isinstance(alg, str) and _PLAIN_WORD.fullmatch(alg) else ""
            raise AuthFailed(f"token signing algorithm{named} is not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthFailed("malformed token")
        await self._refresh(force=False)
        if not self._has_key(kid):
            await self._refresh(force=True)  # the provider may have rotated its keys
            if not self._has_key(kid):
                raise AuthFailed("token signed by an unknown key")
        try:
            return self._check(token, audience)
        except BadSignature:
            # A token without a kid names no key: after a rotation it fails against the old one. Look again.
            cached = self._keys
            if kid is not None:
                raise
            await self._refresh(force=True)
            if self._keys is cached:
                raise
            return self._check(token, audience)

    def _check(self, token: str, audience: str | None) -> dict[str, Any]:
        assert self._keys is not None
        try:
            decoded = jwt.decode(token, self._keys, algorithms=self.algorithms)
        except BadSignatureError as exc:
            raise BadSignature() from exc
        except JoseError as exc:
            raise AuthFailed("token cannot be verified") from exc
        except ValueError as exc:
            raise AuthFailed("malformed token") from exc
        options: dict[str, Any] = {"iss": {"essential": True, "value": self.issuer}, "exp": {"essential": True}}
        if audience:
            options["aud"] = {"essential": True, "value": audience}
        registry = jwt.JWTClaimsRegistry(leeway=self.leeway, **options)
        claims = dict(decoded.claims)
        if isinstance(claims.get("iss"), str):
            claims["iss"] = claims["iss"].rstrip("/")
        try:
            registry.validate(claims)
        except ExpiredTokenError as exc:
            raise AuthFailed("token expired") from exc
        except MissingClaimError as exc:
            raise AuthFailed(f"token lacks the {exc.claim} claim") from exc
        except InvalidClaimError as exc:  # joserfc's InvalidTokenError is this class too
            reason = {
                "iss": "token from another issuer",
                "aud": "token for another audience",
                "nbf": "token not yet valid",
            }.get(exc.claim)
            raise AuthFailed(reason or f"token claim {exc.claim} is invalid") from exc
        except JoseError as exc:
            raise AuthFailed("token claims are invalid") from exc
        return claims

    def _principal(self, claims: dict[str, Any]) -> Principal:
        name = claims.get(self.user_claim)
        if not isinstance(name, str) or not name:
            raise AuthFailed(f"token lacks the {self.user_claim} claim")
        groups = claims.get(self.groups_claim)
        group_set = {groups} if isinstance(groups, str) else {g for g in groups or () if isinstance(g, str)}
        return Principal(name=name, admin=name in self.admins or bool(group_set & self.admin_groups))
