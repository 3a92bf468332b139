"""The Helm chart without a cluster: it lints, it renders what an operator asks for, it keeps least privilege and
pod security, and it agrees with the Kustomize base (one Role, one security context, one set of probes)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "ktes"
BASE = REPO / "deploy" / "base"


def helm(binary: Path, *args: str) -> str:
    done = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def render(binary: Path, *values: str, namespace: str = "tes") -> dict[str, dict[str, Any]]:
    """The chart's objects by "Kind/name"."""
    args = ["template", "ktes", str(CHART), "--namespace", namespace]
    for value in values:
        args += ["--set", value]
    objects = [d for d in yaml.safe_load_all(helm(binary, *args)) if d]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in objects}


def base(kind: str) -> dict[str, Any]:
    for path in BASE.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == kind:
                found: dict[str, Any] = doc
                return found
    raise AssertionError(f"no {kind} in {BASE}")


def test_the_chart_lints(helm_binary: Path) -> None:
    out = helm(helm_binary, "lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in out


def test_the_default_install_is_one_replica_on_sqlite_with_probes_and_pod_security(helm_binary: Path) -> None:
    objects = render(helm_binary)
    assert set(objects) == {
        "ServiceAccount/ktes",
        "ConfigMap/ktes",
        "PersistentVolumeClaim/ktes",
        "Role/ktes",
        "RoleBinding/ktes",
        "Service/ktes",
        "Deployment/ktes",
        "ServiceAccount/ktes-uninstall",  # the four uninstall hooks
        "Role/ktes-uninstall",
        "RoleBinding/ktes-uninstall",
        "Job/ktes-uninstall",
    }
    deployment = objects["Deployment/ktes"]
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/tmp"]]["emptyDir"] == {}
    assert volumes[mounts["/var/lib/ktes"]]["persistentVolumeClaim"]["claimName"] == "ktes"


def test_postgresql_replicas_ingress_network_policy_and_another_task_namespace(helm_binary: Path) -> None:
    objects = render(
        helm_binary,
        "database.existingSecret=ktes-db",
        "replicas=3",
        "ingress.enabled=true",
        "networkPolicy.enabled=true",
        "taskNamespace=tes-tasks",
        "podSecurityContext.runAsUser=null",
    )
    assert "PersistentVolumeClaim/ktes" not in objects
    assert {"Ingress/ktes", "NetworkPolicy/ktes"} <= set(objects)
    deployment = objects["Deployment/ktes"]
    assert deployment["spec"]["replicas"] == 3 and deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["KTES_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "ktes-db", "key": "url"}
    assert env["KTES_K8S_NAMESPACE"]["value"] == "tes-tasks"
    assert "runAsUser" not in deployment["spec"]["template"]["spec"]["securityContext"]  # OpenShift picks it
    for kind in ("Role/ktes", "RoleBinding/ktes"):
        assert objects[kind]["metadata"]["namespace"] == "tes-tasks"  # the only rights ktes gets are there
    assert objects["RoleBinding/ktes"]["subjects"] == [{"kind": "ServiceAccount", "name": "ktes", "namespace": "tes"}]
    assert not [o for o in objects.values() if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_sqlite_refuses_more_than_one_replica(helm_binary: Path) -> None:
    with pytest.raises(AssertionError, match="needs PostgreSQL"):
        render(helm_binary, "replicas=2")


def test_the_chart_and_the_kustomize_base_agree(helm_binary: Path) -> None:
    objects = render(helm_binary)
    assert objects["Role/ktes"]["rules"] == base("Role")["rules"]
    chart_pod = objects["Deployment/ktes"]["spec"]["template"]["spec"]
    base_pod = base("Deployment")["spec"]["template"]["spec"]
    assert chart_pod["securityContext"] == base_pod["securityContext"]
    (chart_container,), (base_container,) = chart_pod["containers"], base_pod["containers"]
    for key in ("securityContext", "readinessProbe", "livenessProbe", "ports", "resources", "lifecycle"):
        assert chart_container[key] == base_container[key], key
