"""GET /service-info: what this server is and really supports (from the same Capabilities validation uses), and
GET /ktes/v1/security: how to authenticate, declared as the TES development draft declares it.

The TES draft (``task-execution-schemas`` develop) declares security in the API's OpenAPI document, not in the
service-info body: ``components.securitySchemes`` with ``BearerAuth`` (HTTP bearer, JWT) and ``BasicAuth``
(HTTP basic), a top-level ``security`` naming them, and ``security: []`` on ``/service-info`` (public). ktes
does the same in a small OpenAPI document of its own (:func:`security_document`), because every field added to
the service-info body breaks py-tes: its ``get_service_info()`` builds an attrs class that refuses any field it
does not know (see docs/auth.md). service-info only says in its free-text ``description`` where to look.
"""

from __future__ import annotations

from typing import Any

import ktes
from ktes.auth.principal import BASIC, OIDC, parse_schemes
from ktes.capabilities import Capabilities
from ktes.config import Settings

TES_TYPE = {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"}
SECURITY_PATH = "/ktes/v1/security"
DESCRIPTION = "GA4GH Task Execution Service (TES 1.1) on Kubernetes and the local machine"


def service_info(settings: Settings, capabilities: Capabilities) -> dict[str, Any]:
    description = DESCRIPTION
    schemes = security_schemes(settings)
    if schemes:
        names = " or ".join(scheme["description"][0].lower() + scheme["description"][1:] for scheme in schemes.values())
        description += f". Authenticate with {names} (OpenAPI security schemes at {SECURITY_PATH})."
    info: dict[str, Any] = {
        "id": settings.service_id,
        "name": "ktes",
        "type": TES_TYPE,
        "description": description,
        "organization": {"name": settings.service_organization_name, "url": settings.service_organization_url},
        "version": ktes.__version__,
        "storage": [f"{scheme}://" for scheme in capabilities.storage_schemes],
        "tesResources_backend_parameters": list(capabilities.backend_parameters),
    }
    if settings.service_environment:
        info["environment"] = settings.service_environment
    return info


def security_schemes(settings: Settings) -> dict[str, dict[str, Any]]:
    """The schemes this server accepts, named and shaped as in the TES draft's ``components.securitySchemes``
    (``BearerAuth``, ``BasicAuth``), with where a token comes from. Empty with auth off."""
    on = parse_schemes(settings.auth)
    schemes: dict[str, dict[str, Any]] = {}
    if OIDC in on and settings.oidc_issuer:
        issuer = settings.oidc_issuer.rstrip("/")
        bearer: dict[str, Any] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": f"A JWT from the OpenID provider {issuer}",
            "x-openIdConnectUrl": issuer + "/.well-known/openid-configuration",
        }
        if settings.oidc_audience:
            bearer["x-audience"] = settings.oidc_audience
        schemes["BearerAuth"] = bearer
    if BASIC in on:
        schemes["BasicAuth"] = {"type": "http", "scheme": "basic", "description": "A user name and password"}
    return schemes


def security_document(settings: Settings) -> dict[str, Any]:
    """A complete (if path-less) OpenAPI 3.0 document declaring this server's security as the TES draft does:
    the schemes, a top-level ``security`` (any one of them), the TES paths being the spec's own."""
    schemes = security_schemes(settings)
    return {
        "openapi": "3.0.1",
        "info": {
            "title": "ktes: authentication of the TES API",
            "version": ktes.__version__,
            "description": "The TES API's paths are those of the TES specification; /service-info is public.",
        },
        "servers": [{"url": "/ga4gh/tes/v1"}],
        "security": [{name: []} for name in schemes],
        "paths": {},
        "components": {"securitySchemes": schemes},
    }
