"""``ktes serve`` that cannot start says so in one sentence on stderr and exits 1, without a traceback.

Each case runs the real command as a user would, with one thing wrong: a bad setting, the port in use, the
database out of reach, no container runtime that answers (a fresh machine's ``docker`` CLI without a daemon),
Kubernetes out of reach. ``--debug`` brings the traceback back. A good start is quiet: no migration chatter.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.ktes_server import free_local_port

SERVE = [sys.executable, "-c", "from ktes.cli.main import app; app()", "serve"]
NO_DAEMON = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"


def serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KTES_")}
    env.update(KTES_DATA_DIR=str(tmp_path / "data"), KTES_HOST="127.0.0.1", KTES_PORT=str(free_local_port()))
    env.update(extra)
    return env


def serve_fails(env: dict[str, str], *args: str) -> str:
    """Run ``ktes serve``; it must exit 1 with one line on stderr and no traceback. Returns that line."""
    result = subprocess.run([*SERVE, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ktes serve: "), lines[0]
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_bad_setting_names_its_variable(tmp_path: Path) -> None:
    line = serve_fails(serve_env(tmp_path, KTES_PORT="eighty"))
    assert "KTES_PORT" in line and "'eighty'" in line


def test_a_config_file_that_is_missing_or_broken_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert f"cannot read the config file {missing}" in serve_fails(serve_env(tmp_path), "--config", str(missing))
    broken = tmp_path / "broken.yaml"
    broken.write_text("port: [1,\n")
    assert f"the config file {broken} is not valid YAML at line 2" in serve_fails(
        serve_env(tmp_path, KTES_CONFIG=str(broken))
    )


def test_a_port_in_use_says_so(tmp_path: Path, busy_port: int) -> None:
    line = serve_fails(serve_env(tmp_path, KTES_PORT=str(busy_port)))
    assert f"port {busy_port} on 127.0.0.1 is already in use" in line and "KTES_PORT" in line


def test_an_unreachable_database_is_named_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://ktes:hunter2@127.0.0.1:{free_local_port()}/ktes"
    line = serve_fails(serve_env(tmp_path, KTES_DATABASE_URL=url))
    assert "could not open the database postgresql+psycopg://ktes:***@127.0.0.1" in line
    assert "Connection refused" in line and "KTES_DATABASE_URL" in line and "hunter2" not in line


def test_a_docker_cli_without_daemon_is_no_runtime(tmp_path: Path) -> None:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    docker = stubs / "docker"
    docker.write_text(f'#!/bin/sh\necho "{NO_DAEMON}" >&2\nexit 1\n')
    docker.chmod(0o755)
    line = serve_fails(serve_env(tmp_path, PATH=str(stubs)))
    assert "no container runtime that answers" in line
    assert "podman is not installed" in line and f"{docker} does not answer (Cannot connect" in line
    assert "install podman" in line


def test_unreachable_kubernetes_names_the_api_server(tmp_path: Path) -> None:
    port = free_local_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: lab\n"
        f"clusters: [{{name: lab, cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}}}]\n"
        "users: [{name: me, user: {token: t}}]\n"
        "contexts: [{name: lab, context: {cluster: lab, user: me}}]\n"
    )
    env = serve_env(tmp_path, KTES_BACKEND="kubernetes", KTES_K8S_KUBECONFIG=str(kubeconfig))
    line = serve_fails(env)
    assert f"could not reach the Kubernetes API server at https://127.0.0.1:{port}" in line
    assert "KTES_K8S_KUBECONFIG" in line


@pytest.mark.containers
def test_a_network_task_containers_cannot_use_is_said_at_start(tmp_path: Path) -> None:
    line = serve_fails(serve_env(tmp_path, KTES_LOCAL_NETWORK="ktes-no-such-network"))
    assert "task containers cannot start on the network 'ktes-no-such-network'" in line
    assert "network not found" in line and "KTES_LOCAL_NETWORK=host or none" in line


def test_debug_shows_the_traceback(tmp_path: Path, busy_port: int) -> None:
    env = serve_env(tmp_path, KTES_PORT=str(busy_port))
    result = subprocess.run([*SERVE, "--debug"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0 and "Traceback" in result.stderr and "already in use" in result.stderr


@pytest.mark.containers
def test_a_good_start_is_quiet(tmp_path: Path) -> None:
    env = serve_env(tmp_path)
    proc = subprocess.Popen(SERVE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{env['KTES_PORT']}/healthz"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "ktes serve did not answer in time"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert "alembic" not in output and "Running upgrade" not in output, output
    assert f"TES API on http://127.0.0.1:{env['KTES_PORT']}/ga4gh/tes/v1" in output
    assert "task containers on podman's default network" in output
    assert len(output.strip().splitlines()) <= 4, output
