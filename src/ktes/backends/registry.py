"""Backends by name. Each is imported only when chosen, so the local one never loads the Kubernetes client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ktes.backends.base import Backend, Leadership
from ktes.config import Settings

if TYPE_CHECKING:
    from ktes.filer.registry import Filer

NAMES = ("local", "kubernetes")


def create_backend(settings: Settings, filer: Filer) -> Backend:
    """The backend ``settings.backend`` names."""
    if settings.backend == "local":
        from ktes.backends.local.backend import LocalBackend

        return LocalBackend(settings, filer)
    if settings.backend == "kubernetes":
        from ktes.backends.kubernetes.backend import KubernetesBackend

        return KubernetesBackend(settings)
    raise ValueError(f"unknown backend {settings.backend!r}; choose one of {', '.join(NAMES)}")


def create_leadership(settings: Settings) -> Leadership | None:
    """Who may run the engine: the Kubernetes backend's Lease (several replicas may serve one namespace);
    None for the local backend (one process owns its tasks, so its engine always runs).

    A plain import: if the Kubernetes part cannot be loaded, ``ktes serve`` fails at start rather than
    letting every replica run an engine.
    """
    if settings.backend == "kubernetes":
        from ktes.backends.kubernetes.lease import LeaseLeadership

        return LeaseLeadership(settings)
    return None


async def preflight(settings: Settings) -> None:
    """Check that the configured backend can run tasks; :class:`ktes.errors.StartupError` says why not."""
    if settings.backend == "kubernetes":
        from ktes.backends.kubernetes.preflight import check

        await check(settings)


def refused_schemes(settings: Settings) -> dict[str, str]:
    """URL schemes the filer serves but the configured backend cannot stage, each with the reason."""
    if settings.backend == "kubernetes":
        from ktes.backends.kubernetes.filevolume import refused_schemes as kubernetes_refused

        return kubernetes_refused(settings)
    return {}
