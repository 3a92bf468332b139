"""GET /service-info: what this server is and really supports (from the same Capabilities validation uses)."""

from __future__ import annotations

from typing import Any

import ktes
from ktes.auth.principal import BASIC, OIDC, parse_schemes
from ktes.capabilities import Capabilities
from ktes.config import Settings

TES_TYPE = {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"}


def service_info(settings: Settings, capabilities: Capabilities) -> dict[str, Any]:
    info: dict[str, Any] = {
        "id": settings.service_id,
        "name": "ktes",
        "type": TES_TYPE,
        "description": "GA4GH Task Execution Service (TES 1.1) on Kubernetes and the local machine",
        "organization": {"name": settings.service_organization_name, "url": settings.service_organization_url},
        "version": ktes.__version__,
        "storage": [f"{scheme}://" for scheme in capabilities.storage_schemes],
        "tesResources_backend_parameters": list(capabilities.backend_parameters),
    }
    if settings.service_environment:
        info["environment"] = settings.service_environment
    schemes = security_schemes(settings)
    if schemes:
        info["securitySchemes"] = schemes
    return info


def security_schemes(settings: Settings) -> dict[str, Any]:
    """The schemes this server accepts, shaped as the TES development draft declares them (OpenAPI
    ``components.securitySchemes``: ``bearerAuth`` a JWT bearer token, ``basicAuth`` HTTP basic), with where
    a token comes from. Empty with auth off."""
    on = parse_schemes(settings.auth)
    schemes: dict[str, Any] = {}
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
        schemes["bearerAuth"] = bearer
    if BASIC in on:
        schemes["basicAuth"] = {"type": "http", "scheme": "basic", "description": "A user name and password"}
    return schemes
