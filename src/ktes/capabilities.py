"""What this server really supports, in one place: service-info reports it, validation enforces it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Capabilities:
    #: URL schemes the filer can read or write, e.g. ["file", "http", "https", "s3"].
    storage_schemes: tuple[str, ...]
    #: tesResources.backend_parameters keys the configured backend honours, lowercase.
    backend_parameters: tuple[str, ...]
