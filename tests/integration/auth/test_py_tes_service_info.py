"""py-tes's ``get_service_info()`` against a secured ``ktes serve`` (basic and OIDC at once, the token from a
real OpenID provider over HTTP): it works, and the schemes are declared where the TES draft declares them."""

from __future__ import annotations

from pathlib import Path

import httpx
import tes

from ktes.auth.users_file import add_user
from tests.fixtures.ktes_server import StartServer
from tests.fixtures.oidc import OidcProvider


def test_py_tes_reads_the_service_info_of_a_secured_server(
    ktes_server: StartServer, oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    users = tmp_path / "users"
    add_user(users, "bob", "bob-pw", rounds=4)
    env = {
        "KTES_AUTH": "basic,oidc",
        "KTES_AUTH_USERS_FILE": str(users),
        "KTES_OIDC_ISSUER": oidc_provider.issuer,
        "KTES_OIDC_AUDIENCE": "ktes",
    }
    server = ktes_server(env=env)
    for client in (
        tes.HTTPClient(server.url, timeout=30, token=oidc_provider.token("alice")),
        tes.HTTPClient(server.url, timeout=30, user="bob", password="bob-pw"),
        tes.HTTPClient(server.url, timeout=30),  # service-info is public
    ):
        info = client.get_service_info()
        assert info.name == "ktes"
        assert info.type == {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"}
        assert oidc_provider.issuer in str(info.description)

    security = httpx.get(server.url + "/ktes/v1/security", timeout=10).json()
    assert security["security"] == [{"BearerAuth": []}, {"BasicAuth": []}]
    schemes = security["components"]["securitySchemes"]
    assert (schemes["BearerAuth"]["scheme"], schemes["BearerAuth"]["bearerFormat"]) == ("bearer", "JWT")
    assert schemes["BearerAuth"]["x-openIdConnectUrl"] == oidc_provider.issuer + "/.well-known/openid-configuration"
    assert schemes["BasicAuth"]["scheme"] == "basic"
