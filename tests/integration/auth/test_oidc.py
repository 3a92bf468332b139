"""OIDC bearer tokens against a real OpenID provider process (tests/fixtures/oidc.py): discovery, JWKS, the
checks that refuse bad tokens, admins by group, and a key rotation taken up without a restart."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from ktes.api.app import create_app
from ktes.auth.authenticator import Authenticator
from ktes.config import Settings
from ktes.store.sql import SqlStore, open_store
from tests.fixtures.oidc import OidcProvider
from tests.fixtures.postgres import new_database
from tests.unit.api_harness import BASE, CAPABILITIES, task_doc


class CountingTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport, counting what ktes asks the provider."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)


class Ktes:
    def __init__(self, client: httpx.AsyncClient, store: SqlStore, transport: CountingTransport) -> None:
        self.client = client
        self.store = store
        self.transport = transport

    async def call(self, method: str, path: str, token: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return await self.client.request(method, BASE + path, headers=headers, **kwargs)

    async def create(self, token: str) -> str:
        response = await self.call("POST", "/tasks", token, json=task_doc())
        assert response.status_code == 200, response.text
        task_id: str = response.json()["id"]
        return task_id

    async def ids(self, token: str, **params: str) -> list[str]:
        response = await self.call("GET", "/tasks", token, params=params)
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["tasks"]]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def ktes(request: pytest.FixtureRequest, oidc_provider: OidcProvider, tmp_path: Path) -> AsyncIterator[Ktes]:
    url = f"sqlite:///{tmp_path / 'ktes.db'}"
    if request.param == "postgresql":
        url = new_database(request.getfixturevalue("postgres_url"))
    settings = Settings(
        data_dir=tmp_path,
        auth="oidc",
        oidc_issuer=oidc_provider.issuer,
        oidc_audience="ktes",
        oidc_admin_groups=["tes-admins"],
        oidc_jwks_refresh_seconds=2.0,
    )
    transport = CountingTransport()
    authenticator = Authenticator(settings, oidc_transport=transport)
    store = open_store(url)
    app = create_app(settings, store, CAPABILITIES, authenticator=authenticator)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        yield Ktes(client, store, transport)
    await authenticator.aclose()
    store.close()


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def hmac_signed(secret: bytes, provider: OidcProvider) -> str:
    """The key-confusion attack: HS256 with the provider's public key as the secret (made by hand: joserfc
    itself refuses to use a public key as an HMAC secret)."""
    signing_input = f"{b64({'alg': 'HS256', 'kid': provider.kid})}.{b64(claims(provider))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def claims(provider: OidcProvider, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": provider.issuer, "aud": ["ktes"], "sub": "alice", "iat": now, "exp": now + 600, **changes}


async def test_a_token_from_the_provider_is_accepted_and_service_info_says_where_to_get_one(
    ktes: Ktes, oidc_provider: OidcProvider
) -> None:
    token = oidc_provider.token("alice")
    assert await ktes.ids(token) == []
    info = (await ktes.client.get(f"{BASE}/service-info")).json()
    assert "securitySchemes" not in info and oidc_provider.issuer in info["description"]
    security = (await ktes.client.get("/ktes/v1/security")).json()
    assert security["security"] == [{"BearerAuth": []}]
    assert security["components"]["securitySchemes"]["BearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": f"A JWT from the OpenID provider {oidc_provider.issuer}",
        "x-openIdConnectUrl": oidc_provider.issuer + "/.well-known/openid-configuration",
        "x-audience": "ktes",
    }
    missing = await ktes.call("GET", "/tasks", None)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == 'Bearer realm="ktes"'


async def test_bad_tokens_are_401_with_a_short_reason(ktes: Ktes, oidc_provider: OidcProvider) -> None:
    good = oidc_provider.token("alice")
    header, payload, signature = good.split(".")
    now = int(time.time())
    public_pem = oidc_provider.key.as_pem(private=False)
    stranger = RSAKey.generate_key(2048, private=True)
    cases = {
        "token expired": oidc_provider.forge(claims(oidc_provider, iat=now - 7200, exp=now - 3600)),
        "token not yet valid": oidc_provider.forge(claims(oidc_provider, nbf=now + 3600)),
        "token for another audience": oidc_provider.token("alice", client_id="another-service"),
        "token from another issuer": oidc_provider.token("alice", host=f"localhost:{oidc_provider.port}"),
        "token signature is invalid": f"{header}.{payload}.{signature[:-6]}AAAAAA",
        "token signing algorithm 'none' is not accepted": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "token signing algorithm 'HS256' is not accepted": hmac_signed(public_pem, oidc_provider),
        "token signed by an unknown key": jwt.encode({"alg": "RS256", "kid": "nope"}, claims(oidc_provider), stranger),
        "malformed token": "not-a-jwt",
    }
    for reason, token in cases.items():
        response = await ktes.call("GET", "/tasks", token)
        assert response.status_code == 401, reason
        assert response.json() == {"msg": f"authentication failed: {reason}"}
        assert f'error_description="{reason}"' in response.headers["www-authenticate"]
    # the checks themselves are right: the same claims, well signed, are accepted
    assert (await ktes.call("GET", "/tasks", oidc_provider.forge(claims(oidc_provider)))).status_code == 200


async def test_unknown_kids_refetch_the_jwks_at_most_once_per_interval(ktes: Ktes, oidc_provider: OidcProvider) -> None:
    await ktes.ids(oidc_provider.token("alice"))
    fetched = ktes.transport.paths.count("/jwks")
    stranger = RSAKey.generate_key(2048, private=True)
    for i in range(20):
        token = jwt.encode({"alg": "RS256", "kid": f"made-up-{i}"}, claims(oidc_provider), stranger)
        assert (await ktes.call("GET", "/tasks", token)).status_code == 401
    assert ktes.transport.paths.count("/jwks") - fetched <= 1


async def test_users_see_only_their_own_tasks_and_an_admin_group_sees_all(
    ktes: Ktes, oidc_provider: OidcProvider
) -> None:
    alice, bob = oidc_provider.token("alice"), oidc_provider.token("bob")
    admin = oidc_provider.token("carol", groups=["tes-admins"])
    alices, bobs = await ktes.create(alice), await ktes.create(bob)
    assert await ktes.ids(alice) == [alices] and await ktes.ids(bob) == [bobs]
    assert (await ktes.call("GET", f"/tasks/{bobs}", alice)).status_code == 404
    assert (await ktes.call("POST", f"/tasks/{bobs}:cancel", alice)).status_code == 404
    assert await ktes.ids(admin) == [bobs, alices]
    assert await ktes.ids(admin, owner="alice") == [alices]
    listed = (await ktes.call("GET", "/tasks", admin, params={"view": "BASIC"})).json()["tasks"]
    assert [t["tags"]["ktes.owner"] for t in listed] == ["bob", "alice"]
    assert (await ktes.call("POST", f"/tasks/{alices}:cancel", admin)).status_code == 200


async def test_a_key_rotation_at_the_provider_is_taken_up_without_a_restart(
    ktes: Ktes, oidc_provider: OidcProvider
) -> None:
    assert await ktes.ids(oidc_provider.token("alice")) == []
    old_kid = oidc_provider.kid
    oidc_provider.rotate()
    assert oidc_provider.kid != old_kid
    new_token = oidc_provider.token("alice")
    # ktes still holds the old JWKS; the new token names no kid and fails against the old key, so ktes looks
    # again (at most once per oidc_jwks_refresh_seconds: wait for that window, then it must be accepted)
    deadline = time.monotonic() + 30
    while (response := await ktes.call("GET", "/tasks", new_token)).status_code != 200:
        assert response.status_code == 401 and time.monotonic() < deadline, response.text
        await asyncio.sleep(0.2)
    forged_new = oidc_provider.forge(claims(oidc_provider))
    assert (await ktes.call("GET", "/tasks", forged_new)).status_code == 200
