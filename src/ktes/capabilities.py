"""What this server really supports, in one place: service-info reports it, validation enforces it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Capabilities:
    #: URL schemes the filer can read or write, e.g. ["file", "http", "https", "s3"].
    storage_schemes: tuple[str, ...]
    #: tesResources.backend_parameters keys the configured backend honours, lowercase.
    backend_parameters: tuple[str, ...]
    #: schemes the filer serves that the backend cannot stage, with the reason (not in storage_schemes).
    refused_schemes: dict[str, str] = field(default_factory=dict)
