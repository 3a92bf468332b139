"""The two backends the storage tests run on, each as the ``KTES_*`` settings of a ``ktes serve``.

``storage_backend`` (module scope) is parametrised over ``local`` (mark ``containers``) and ``kubernetes``
(mark ``k8s``), so every test of a module runs once per backend and a module starts its servers once per
backend. With Kubernetes, each server gets a namespace of its own: ktes sweeps Jobs it does not know in its
namespace and holds a Lease there, so two servers must never share one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fixtures.k8s import kubectl

BACKENDS = [
    pytest.param("local", marks=pytest.mark.containers, id="local"),
    pytest.param("kubernetes", marks=pytest.mark.k8s, id="kubernetes"),
]

#: how long a batch of tasks may take on each backend (the lab starts pods in a few seconds each).
WITHIN_SECONDS = {"local": 120.0, "kubernetes": 300.0}


@dataclass
class StorageBackend:
    """One backend: its name, the busybox image its executors run, and how to configure a server for it."""

    name: str
    image: str
    within_seconds: float
    kubeconfig: Path | None = None
    ktes_image: str = ""
    namespaces: list[str] = field(default_factory=list)

    def server_env(self) -> dict[str, str]:
        """``KTES_*`` settings (besides storage) for one more ``ktes serve`` on this backend."""
        env = {"KTES_BACKEND": self.name, "KTES_LOG_LEVEL": "info"}
        if self.name == "kubernetes":
            assert self.kubeconfig is not None
            namespace = fresh_namespace()
            self.namespaces.append(namespace)
            env |= {
                "KTES_K8S_NAMESPACE": namespace,
                "KTES_K8S_IMAGE": self.ktes_image,
                "KTES_K8S_KUBECONFIG": str(self.kubeconfig),
                "KUBECONFIG": str(self.kubeconfig),
                "KTES_K8S_DNS_POLICY": "Default",  # the lab has no cluster DNS; every URL names an address
            }
        return env


def fresh_namespace() -> str:
    """A new namespace, returned once its default service account exists (pods cannot start before)."""
    name = f"ktes-storage-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    deadline = time.monotonic() + 60
    while not kubectl("get", "serviceaccount", "default", "-n", name, "--ignore-not-found", "-o", "name").strip():
        if time.monotonic() > deadline:
            raise AssertionError(f"namespace {name} got no default service account within 60 s")
        time.sleep(0.2)
    return name


@pytest.fixture(scope="module", params=BACKENDS)
def storage_backend(request: pytest.FixtureRequest) -> Iterator[StorageBackend]:
    name = str(request.param)
    if name == "local":
        yield StorageBackend(name, str(request.getfixturevalue("busybox_image")), WITHIN_SECONDS[name])
        return
    backend = StorageBackend(
        name,
        str(request.getfixturevalue("k8s_busybox_image")),
        WITHIN_SECONDS[name],
        kubeconfig=request.getfixturevalue("k8s_lab"),
        ktes_image=str(request.getfixturevalue("ktes_image")),
    )
    try:
        yield backend
    finally:
        for namespace in backend.namespaces:
            kubectl("delete", "namespace", namespace, "--wait=false", check=False)
