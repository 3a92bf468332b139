"""The dashboard's code exchange (``ktes.web.signin``) against a provider faked with ``httpx.MockTransport``: how
ktes authenticates as a public or confidential client, which token it hands the page, and what it says when
the provider cannot be reached. (The whole flow against a real provider: tests/integration/browser.)"""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.routing import Route

from ktes.auth.oidc import OidcVerifier
from ktes.config import Settings
from ktes.web.signin import TOKEN_PATH, SignIn

ISSUER = "https://login.test"
KEY = RSAKey.generate_key(2048, private=True, parameters={"kid": "k1"})
CALLBACK = "https://ktes.test/ui/signin"
VERIFIER = "v" * 43


def signed(**claims: Any) -> str:
    now = int(time.time())
    return jwt.encode({"alg": "RS256", "kid": "k1"}, {"iss": ISSUER, "iat": now, "exp": now + 600, **claims}, KEY)


class Provider:
    """Discovery, JWKS and a token endpoint that records what it was sent."""

    def __init__(self, tokens: dict[str, Any], status: int = 200) -> None:
        self.tokens, self.status = tokens, status
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "jwks_uri": ISSUER + "/jwks",
                    "authorization_endpoint": ISSUER + "/authorize",
                    "token_endpoint": ISSUER + "/token",
                },
            )
        if request.url.path == "/jwks":
            return httpx.Response(200, json={"keys": [KEY.as_dict(private=False)]})
        self.sent.append(request)
        return httpx.Response(self.status, json=self.tokens)


async def exchange(provider: httpx.MockTransport | Provider, **settings: Any) -> tuple[httpx.Response, Settings]:
    transport = provider if isinstance(provider, httpx.MockTransport) else httpx.MockTransport(provider)
    config = Settings(auth="oidc", oidc_issuer=ISSUER, oidc_audience="ktes-api", oidc_client_id="dash", **settings)
    verifier = OidcVerifier(ISSUER, "ktes-api", transport=transport)
    sign_in = SignIn(config, verifier, transport=transport)
    app = Starlette(routes=[Route(TOKEN_PATH, sign_in.token, methods=["POST"])])
    body = {"code": "c0de", "code_verifier": VERIFIER, "redirect_uri": CALLBACK, "nonce": "n1"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://ktes.test") as client:
        answer = await client.post(TOKEN_PATH, json=body)
    await verifier.aclose()
    return answer, config


async def test_a_public_client_sends_its_id_and_the_verifier_and_gets_the_access_token_when_it_is_for_ktes() -> None:
    access = signed(sub="alice", aud="ktes-api")
    provider = Provider({"access_token": access, "id_token": signed(sub="alice", aud="dash", nonce="n1")})
    answer, _ = await exchange(provider)
    assert answer.status_code == 200, answer.text
    assert answer.json()["token"] == access and answer.json()["user"] == "alice"
    (sent,) = provider.sent
    form = dict(httpx.QueryParams(sent.content.decode()))
    assert form == {
        "grant_type": "authorization_code",
        "code": "c0de",
        "redirect_uri": CALLBACK,
        "code_verifier": VERIFIER,
        "client_id": "dash",
    }
    assert "authorization" not in sent.headers


async def test_a_confidential_client_authenticates_with_its_secret_and_an_id_token_serves_when_access_is_opaque() -> (
    None
):
    id_token = signed(sub="bob", aud=["dash", "ktes-api"], nonce="n1")
    provider = Provider({"access_token": "opaque", "id_token": id_token})
    answer, _ = await exchange(provider, oidc_client_secret="s3cret")
    assert answer.status_code == 200 and answer.json()["token"] == id_token
    (sent,) = provider.sent
    assert sent.headers["authorization"] == "Basic " + base64.b64encode(b"dash:s3cret").decode()
    assert "client_id" not in dict(httpx.QueryParams(sent.content.decode()))


async def test_tokens_ktes_would_not_accept_are_not_handed_out() -> None:
    # The ID token is for the dashboard only and the access token is opaque: the API would refuse both.
    provider = Provider({"access_token": "opaque", "id_token": signed(sub="bob", aud="dash", nonce="n1")})
    answer, _ = await exchange(provider)
    assert answer.status_code == 401 and "another audience" in answer.json()["msg"]
    forged = signed(sub="bob", aud="dash", nonce="n1").rsplit(".", 1)[0] + ".AAAA"
    answer, _ = await exchange(Provider({"id_token": forged}))
    assert answer.status_code == 401 and "signature" in answer.json()["msg"]


async def test_a_refusal_or_an_unreachable_provider_is_said_plainly() -> None:
    answer, _ = await exchange(Provider({"error": "invalid_grant"}, status=400))
    assert answer.status_code == 401
    assert answer.json() == {
        "msg": "sign-in failed: the identity provider refused the code (invalid_grant); sign in again"
    }

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    answer, _ = await exchange(httpx.MockTransport(down))
    assert answer.status_code == 502
    assert answer.json()["msg"] == "sign-in failed: the identity provider cannot be reached; try again later"
