"""``ktes config show``: effective values, where each came from, and secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner, Result

from ktes.cli import config_cmd
from ktes.config import Settings

app = typer.Typer(pretty_exceptions_enable=False)
config_cmd.register(app)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No KTES_* from the caller's environment; KTES_CONFIG (set by loading a file) restored afterwards."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("KTES_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("KTES_CONFIG", raising=False)


def show(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, ["config", "show", *args], env=env)


def test_json_gives_each_value_and_its_source(tmp_path: Path) -> None:
    config = tmp_path / "ktes.yaml"
    config.write_text("port: 9000\nhost: 0.0.0.0\nlocal_network: host\n")
    result = show("--config", str(config), "--json", env={"KTES_HOST": "127.0.0.2", "KTES_LOCAL_MAX_CPUS": "1.5"})
    assert result.exit_code == 0, result.stderr
    settings = json.loads(result.stdout)
    assert settings["port"] == {"value": 9000, "source": "file"}
    assert settings["host"] == {"value": "127.0.0.2", "source": "env KTES_HOST"}
    assert settings["local_network"] == {"value": "host", "source": "file"}
    assert settings["local_max_cpus"] == {"value": 1.5, "source": "env KTES_LOCAL_MAX_CPUS"}
    assert settings["backend"] == {"value": "local", "source": "default"}
    assert settings["config"] == {"value": str(config), "source": "option --config"}


def test_secrets_are_masked_everywhere() -> None:
    env = {
        "KTES_DATABASE_URL": "postgresql+psycopg://ktes:s3cret@db.example:5432/ktes",
        "KTES_S3_SECRET_ACCESS_KEY": "AKIAsecret",
        "KTES_FTP_PASSWORD": "hunter2",
        "KTES_S3_ENDPOINT_URL": "http://user:pw@minio:9000",
    }
    for args in ([], ["--json"], ["--yaml"]):
        result = show(*args, env=env)
        assert result.exit_code == 0, result.stderr
        for secret in ("s3cret", "AKIAsecret", "hunter2", ":pw@"):
            assert secret not in result.stdout
    settings = json.loads(show("--json", env=env).stdout)
    assert settings["database_url"]["value"] == "postgresql+psycopg://ktes:********@db.example:5432/ktes"
    assert settings["s3_secret_access_key"]["value"] == "********"
    assert settings["ftp_password"]["value"] == "********"
    assert settings["s3_endpoint_url"]["value"] == "http://user:********@minio:9000"


def test_the_table_for_people() -> None:
    result = show(env={"KTES_PORT": "8080", "COLUMNS": "200"})
    assert result.exit_code == 0
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["SETTING", "VALUE", "SOURCE"]
    assert ["port", "8080", "env", "KTES_PORT"] in lines
    assert ["backend", "local", "default"] in lines
    assert ["local_runtime", "-", "default"] in lines


def test_yaml_output_is_a_settings_file_ktes_reads_back(tmp_path: Path) -> None:
    result = show("--yaml", env={"KTES_PORT": "8123", "KTES_LOCAL_RUN_ARGS": '["--ulimit","nofile=1024:1024"]'})
    assert result.exit_code == 0
    values = yaml.safe_load(result.stdout)
    assert values["port"] == 8123
    assert values["local_run_args"] == ["--ulimit", "nofile=1024:1024"]
    config = tmp_path / "again.yaml"
    config.write_text(result.stdout)
    again = json.loads(show("--config", str(config), "--json").stdout)
    assert again["port"] == {"value": 8123, "source": "file"}


def test_a_bad_value_names_the_setting_and_its_variable() -> None:
    result = show(env={"KTES_PORT": "eighty"})
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: invalid configuration: port (env KTES_PORT): Input should be a valid integer"
    )
    assert "Traceback" not in result.output


def test_a_missing_config_file(tmp_path: Path) -> None:
    result = show("--config", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: config file {tmp_path / 'nope.yaml'} does not exist"


def test_a_config_file_that_is_not_yaml(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("port: [9000\n")
    result = show("--config", str(config))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: config file {config}: ")
    assert "line 2" in result.stderr


def test_a_renamed_setting_still_works_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTES_HTTP_RETRIES", "2")
    with pytest.warns(FutureWarning, match="KTES_HTTP_RETRIES.*deprecated.*transfer_retries"):
        assert Settings().transfer_retries == 2
    monkeypatch.delenv("KTES_HTTP_RETRIES")
    with pytest.warns(FutureWarning, match="http_retry_backoff_seconds"):
        assert Settings(http_retry_backoff_seconds=0.5).transfer_retry_backoff_seconds == 0.5


def test_api_limits_have_one_default() -> None:
    from ktes.api.tasks import limits_from
    from ktes.tes.validation import Limits

    assert limits_from(Settings()) == Limits()
