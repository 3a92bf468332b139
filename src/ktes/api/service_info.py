"""GET /service-info: what this server is and really supports (from the same Capabilities validation uses)."""

from __future__ import annotations

from typing import Any

import ktes
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
    return info
