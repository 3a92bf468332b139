"""``ktes config show``: the effective configuration, where each value came from, secrets masked."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ktes.config import Settings, load

MASK = "********"
ENV_PREFIX = "KTES_"
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@/\s]*@")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def mask_url_password(text: str) -> str:
    """``scheme://user:secret@host`` becomes ``scheme://user:********@host``."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)


def shown_value(value: Any) -> Any:
    """A setting's value as JSON-compatible data with secrets masked: a SecretStr is masked whole unless it is
    a URL (then only its password), and a password in any URL is masked."""
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return mask_url_password(secret) if "://" in secret else MASK
    if isinstance(value, str):
        return mask_url_password(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): shown_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shown_value(v) for v in value]
    return value


def yaml_keys(config_file: Path | None) -> set[str]:
    """The setting names the YAML file sets (lowercased, as pydantic-settings matches them)."""
    if config_file is None:
        return set()
    data = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {config_file}: expected a mapping of settings, got a {type(data).__name__}")
    return {str(key).lower() for key in data}


def sources(settings: Settings, config_file: Path | None, from_option: bool) -> dict[str, str]:
    """Where each setting came from: ``env KTES_X``, ``file``, or ``default`` (env wins over the file)."""
    environment = {key.upper() for key in os.environ}
    in_file = yaml_keys(config_file)
    result: dict[str, str] = {}
    for name in Settings.model_fields:
        variable = ENV_PREFIX + name.upper()
        if name == "config" and from_option:
            result[name] = "option --config"
        elif variable in environment:
            result[name] = f"env {variable}"
        elif name in in_file:
            result[name] = "file"
        else:
            result[name] = "default"
    return result


def fail(message: str) -> NoReturn:
    err.print(Text(f"error: {message}", "red"))
    raise typer.Exit(1)


def validation_message(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        problems.append(f"{name} (env {ENV_PREFIX}{name.split('.')[0].upper()}): {error['msg']}")
    return "invalid configuration: " + "; ".join(problems)


def show(
    config: Annotated[
        Path | None, typer.Option("--config", metavar="FILE", help="A YAML settings file (else $KTES_CONFIG)")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON: each setting's value and source")] = False,
    yaml_: Annotated[
        bool, typer.Option("--yaml", help="Print YAML: the values, as a settings file holds them")
    ] = False,
) -> None:
    """Print the effective configuration (secrets masked) and where each value came from."""
    config_file = config or (Path(os.environ["KTES_CONFIG"]) if os.environ.get("KTES_CONFIG") else None)
    if config_file is not None and not config_file.is_file():
        fail(f"config file {config_file} does not exist")
    try:
        settings = load(config)
        origin = sources(settings, config_file, from_option=config is not None)
    except ValidationError as exc:
        fail(validation_message(exc))
    except (yaml.YAMLError, ValueError, OSError) as exc:
        fail(f"config file {config_file}: {exc}")
    values = {name: shown_value(getattr(settings, name)) for name in Settings.model_fields}
    if json_:
        document = {name: {"value": values[name], "source": origin[name]} for name in values}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif yaml_:
        sys.stdout.write(yaml.safe_dump(values, sort_keys=False, default_flow_style=False))
    else:
        out.print(settings_table(values, origin))


def settings_table(values: dict[str, Any], origin: dict[str, str]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("SETTING", no_wrap=True)
    table.add_column("VALUE", overflow="fold")
    table.add_column("SOURCE", no_wrap=True)
    for name, value in values.items():
        shown = Text("-", "dim") if value is None else Text(value if isinstance(value, str) else json.dumps(value))
        source = origin[name]
        table.add_row(name, shown, Text(source, "dim" if source == "default" else "cyan"))
    return table


def register(app: typer.Typer) -> None:
    """Add ``ktes config show`` to ``app``."""
    config_app = typer.Typer(help="Inspect ktes's configuration.", no_args_is_help=True)
    config_app.command("show")(show)
    app.add_typer(config_app, name="config")
