"""The dashboard's "Sign in" with OpenID Connect: authorization code + PKCE (S256), the code exchanged by ktes.

The browser makes the ``state``, the ``nonce`` and the PKCE verifier, keeps them in sessionStorage and goes to
the provider's authorization endpoint (a top-level navigation). The provider sends it back to
``/ui/signin`` with a code; the page checks ``state`` and posts the code, the verifier and the nonce here.
ktes exchanges the code at the provider's token endpoint (with the client secret when the operator set one),
verifies the ID token (signature, issuer, audience = the dashboard's client id, expiry) and its ``nonce``, and
answers the token the API accepts (the access token when it is a JWT ktes accepts, else the ID token).

Why ktes and not the browser talks to the token endpoint: many providers answer the token endpoint without
CORS headers (or only for origins registered by hand), and many (ELIXIR's LS Login for web apps, the test
provider) register a web client as confidential, whose secret cannot live in a page. Done here, it works with
every provider, the secret stays on the server, and the page's Content-Security-Policy keeps
``connect-src 'self'``. See docs/dashboard.md.

Routes (public: the user is not signed in yet): ``GET /ui/signin/config`` (what the page needs to start),
``GET /ui/signin`` (the callback page, rendered by :mod:`ktes.web.pages`), ``POST /ui/signin/token``.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response

from ktes.auth.oidc import OidcUnavailable, OidcVerifier
from ktes.auth.principal import AuthFailed
from ktes.config import Settings

log = logging.getLogger(__name__)

CALLBACK_PATH = "/ui/signin"
CONFIG_PATH = "/ui/signin/config"
TOKEN_PATH = "/ui/signin/token"
_MAX_BODY_BYTES = 16 * 1024
_FIELDS = ("code", "code_verifier", "redirect_uri", "nonce")
#: RFC 7636: 43 to 128 characters of this alphabet.
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_PLAIN_WORD = re.compile(r"[a-z_]{1,40}")
_JSON = "application/json"


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON, headers={"Cache-Control": "no-store"})


def _refuse(message: str, status: int = 400) -> Response:
    return _answer({"msg": message}, status)


class SignIn:
    """The dashboard's OIDC sign-in. ``enabled`` needs OIDC on and ``KTES_OIDC_CLIENT_ID``."""

    def __init__(
        self, settings: Settings, verifier: OidcVerifier | None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.verifier = verifier if settings.oidc_client_id else None
        self.client_id = settings.oidc_client_id or ""
        self.client_secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
        self.scope = settings.oidc_scope
        self._transport = transport

    @property
    def enabled(self) -> bool:
        return self.verifier is not None

    async def config(self, _request: Request) -> Response:
        if self.verifier is None:
            return _answer({"oidc": None})
        try:
            metadata = await self.verifier.provider_metadata()
        except AuthFailed as exc:
            return _refuse(exc.reason, 503)
        endpoint = metadata.get("authorization_endpoint")
        if not isinstance(endpoint, str) or urlsplit(endpoint).scheme not in ("https", "http"):
            return _refuse("the identity provider's discovery document has no authorization_endpoint", 503)
        oidc = {"authorization_endpoint": endpoint, "client_id": self.client_id, "scope": self.scope}
        return _answer({"oidc": oidc})

    async def token(self, request: Request) -> Response:
        if self.verifier is None:
            return _refuse("sign-in with an identity provider is not configured here", 404)
        body = await request.body()
        if len(body) > _MAX_BODY_BYTES:
            return _refuse("the sign-in request is too large", 413)
        try:
            fields = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _refuse("the sign-in request is not JSON")
        if not isinstance(fields, dict):
            return _refuse("the sign-in request is not a JSON object")
        for name in _FIELDS:
            if not isinstance(fields.get(name), str) or not fields[name]:
                return _refuse(f"{name}: required")
        if not _VERIFIER.fullmatch(fields["code_verifier"]):
            return _refuse("code_verifier: 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
        if urlsplit(fields["redirect_uri"]).path.rstrip("/") != CALLBACK_PATH:
            return _refuse(f"redirect_uri: must be this server's {CALLBACK_PATH}")
        try:
            return await self._exchange(fields)
        except AuthFailed as exc:
            status = 502 if isinstance(exc, (_Unreachable, OidcUnavailable)) else 401
            return _refuse(f"sign-in failed: {exc.reason}", status)

    async def _exchange(self, fields: dict[str, str]) -> Response:
        assert self.verifier is not None
        metadata = await self.verifier.provider_metadata()
        endpoint = metadata.get("token_endpoint")
        if not isinstance(endpoint, str):
            raise _Unreachable("the identity provider's discovery document has no token_endpoint")
        form = {
            "grant_type": "authorization_code",
            "code": fields["code"],
            "redirect_uri": fields["redirect_uri"],
            "code_verifier": fields["code_verifier"],
        }
        auth: httpx.BasicAuth | None = None
        if self.client_secret is None:
            form["client_id"] = self.client_id  # a public client
        else:
            auth = httpx.BasicAuth(self.client_id, self.client_secret)  # client_secret_basic
        try:
            async with httpx.AsyncClient(timeout=15.0, transport=self._transport, auth=auth) as client:
                answer = await client.post(endpoint, data=form, headers={"Accept": _JSON})
            issued = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _Unreachable("the identity provider cannot be reached; try again later") from exc
        if not isinstance(issued, dict):
            raise _Unreachable("the identity provider answered something unexpected")
        if answer.status_code != 200:
            error = issued.get("error")
            said = f" ({error})" if isinstance(error, str) and _PLAIN_WORD.fullmatch(error) else ""
            log.info("sign-in: the token endpoint answered %s%s", answer.status_code, said)
            raise AuthFailed(f"the identity provider refused the code{said}; sign in again")
        id_token = issued.get("id_token")
        if not isinstance(id_token, str):
            raise AuthFailed("the identity provider sent no ID token (is 'openid' in KTES_OIDC_SCOPE?)")
        id_claims = await self.verifier.verified_claims(id_token, self.client_id)
        nonce = id_claims.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), fields["nonce"].encode()):
            raise AuthFailed("the ID token does not answer this sign-in (nonce)")
        token, claims = id_token, None
        access = issued.get("access_token")
        if isinstance(access, str) and access.count(".") == 2:
            try:
                claims = await self.verifier.verified_claims(access, self.verifier.audience)
                token = access
            except AuthFailed:
                claims = None
        if claims is None:
            claims = await self.verifier.verified_claims(id_token, self.verifier.audience)
        user = self.verifier.user_of(claims)
        log.info("sign-in: %s signed in to the dashboard", user.name)
        return _answer({"token": token, "expires_at": int(claims["exp"]), "user": user.name})


class _Unreachable(AuthFailed):
    """The provider could not be asked (502, not the user's fault)."""
