"""How ktes names each request it sends to the Kubernetes API server (``ktes_kubernetes_requests_total``)."""

from __future__ import annotations

import pytest

from ktes.backends.kubernetes.api_requests import request_kind

API = "https://10.0.0.1:6443"


@pytest.mark.parametrize(
    ("method", "path", "named"),
    [
        ("GET", "/api/v1/namespaces/ns/pods?labelSelector=a%3Db", ("list", "pods")),
        ("GET", "/api/v1/namespaces/ns/pods?labelSelector=a%3Db&watch=true&resourceVersion=7", ("watch", "pods")),
        ("GET", "/api/v1/namespaces/ns/pods/ktes-1-abcde/log?container=executor-0", ("get", "pods/log")),
        ("POST", "/apis/batch/v1/namespaces/ns/jobs", ("create", "jobs")),
        ("GET", "/apis/batch/v1/namespaces/ns/jobs/ktes-1", ("get", "jobs")),
        ("DELETE", "/apis/batch/v1/namespaces/ns/jobs/ktes-1", ("delete", "jobs")),
        ("DELETE", "/api/v1/namespaces/ns/pods", ("deletecollection", "pods")),
        ("PATCH", "/api/v1/namespaces/ns/secrets/ktes-1", ("patch", "secrets")),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/ktes-engine", ("update", "leases")),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", ("create", "selfsubjectaccessreviews")),
        ("GET", "/api/v1/namespaces/ns", ("get", "namespaces")),
        ("GET", "/version", ("get", "other")),
    ],
)
def test_each_request_is_named_as_the_api_server_names_it(method: str, path: str, named: tuple[str, str]) -> None:
    assert request_kind(method, API + path) == named
