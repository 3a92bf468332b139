"""Snakemake with its TES executor plugin, its data in S3, runs a two-rule workflow through a real ``ktes serve``.

What Snakemake does (and so what ktes must carry): for each job it makes one TES task whose only input is the job
script (given as ``content``), run as ``/bin/bash /tmp/run_snakemake.sh`` in ``--container-image``; the job
itself fetches the workflow sources and its input files from S3 and puts its outputs there (the S3 storage
plugin inside the image). So the task's container needs network access to S3: the local backend's default
network (the runtime's own) gives it, with no setting. The public ``snakemake/snakemake`` image cannot be
pulled here; the test builds an equivalent one from the client venv (see snakemake_image.py).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.fixtures.ktes_server import KtesServer, StartServer
from tests.fixtures.oidc import OidcProvider
from tests.fixtures.servers import S3Server

pytestmark = pytest.mark.containers

SNAKEFILE = """\
rule all:
    input:
        "results/summary.txt",

rule greet:
    output:
        "results/greeting.txt",
    shell:
        "echo hello from snakemake > {output}"

rule summarize:
    input:
        "results/greeting.txt",
    output:
        "results/summary.txt",
    shell:
        "cat {input} > {output} && echo lines: $(wc -l < {input}) >> {output}"
"""


def task_logs(server: KtesServer, token: str | None = None) -> str:
    """What ktes says about each task (Snakemake only says "see the cluster/cloud log")."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    tasks = httpx.get(f"{server.tes_url}/tasks", params={"view": "FULL"}, headers=headers, timeout=30).json()["tasks"]
    lines = []
    for task in tasks:
        lines.append(f"task {task['id']} {task.get('name')}: {task['state']}")
        for log in task.get("logs") or []:
            lines += [f"  system: {entry}" for entry in log.get("system_logs") or []]
            for executor in log.get("logs") or []:
                lines.append(f"  exit {executor.get('exit_code')}, stderr: {(executor.get('stderr') or '')[-1500:]}")
    return "\n".join(lines)


@pytest.fixture(params=["open", "oidc-token"])
def target(
    request: pytest.FixtureRequest, ktes_server: StartServer, storage_env: dict[str, str]
) -> tuple[KtesServer, str | None]:
    """``ktes serve`` as ``ktes_for_clients`` makes it, open or with OIDC on (then a token from the provider)."""
    env = {**storage_env, "KTES_LOCAL_NETWORK": "host"}
    if request.param == "open":
        return ktes_server(env=env), None
    provider: OidcProvider = request.getfixturevalue("oidc_provider")
    env.update(KTES_AUTH="oidc", KTES_OIDC_ISSUER=provider.issuer, KTES_OIDC_AUDIENCE="ktes")
    return ktes_server(env=env), provider.token("snakemake-user")


def test_two_rule_workflow_with_data_in_s3(
    client_venvs: dict[str, Path],
    snakemake_image: str,
    target: tuple[KtesServer, str | None],
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    ktes_for_clients, token = target
    workdir = tmp_path / "workflow"
    workdir.mkdir()
    (workdir / "Snakefile").write_text(SNAKEFILE)
    # The plugin prints $GITHUB_WORKSPACE/funnel.log when a task fails (leftover debugging in 0.1.3); without
    # it a failed task ends in a KeyError instead of Snakemake's own error report.
    (tmp_path / "funnel.log").write_text("(see the ktes task logs)\n")
    prefix = f"snakemake-{uuid.uuid4().hex[:8]}"
    command = [
        str(client_venvs["snakemake"] / "bin" / "snakemake"),
        "--executor",
        "tes",
        "--tes-url",
        f"{ktes_for_clients.url}/ga4gh/tes",  # py-tes 0.4 (pinned by the plugin) appends /v1/tasks itself
        "--container-image",
        snakemake_image,
        "--default-storage-provider",
        "s3",
        "--default-storage-prefix",
        f"s3://{s3_server.bucket}/{prefix}",
        "--storage-s3-endpoint-url",
        s3_server.endpoint_url,
        "--storage-s3-access-key",
        s3_server.access_key_id,
        "--storage-s3-secret-key",
        s3_server.secret_access_key,
        "--storage-s3-region",
        s3_server.region,
        "--jobs",
        "2",
        "--seconds-between-status-checks",
        "1",
        "--directory",
        str(workdir),
        *(["--tes-token", token] if token else []),
    ]
    env = {**os.environ, "GITHUB_WORKSPACE": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=540, check=False)
    assert result.returncode == 0, f"snakemake failed:\n{result.stderr[-6000:]}\n{task_logs(ktes_for_clients, token)}"

    s3 = s3_server.client()
    greeting = s3.get_object(Bucket=s3_server.bucket, Key=f"{prefix}/results/greeting.txt")["Body"].read()
    summary = s3.get_object(Bucket=s3_server.bucket, Key=f"{prefix}/results/summary.txt")["Body"].read()
    assert greeting == b"hello from snakemake\n"
    assert summary == b"hello from snakemake\nlines: 1\n"
