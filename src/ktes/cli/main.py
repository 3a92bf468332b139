"""The ``ktes`` command: each command group lives in its own module and registers itself here."""

from __future__ import annotations

import typer

from ktes.cli import admin_cmd, config_cmd, filer_cmd, pod_cmd, serve_cmd, task_cmd, users_cmd

app = typer.Typer(
    name="ktes",
    help="ktes: a GA4GH Task Execution Service (TES 1.1) server for Kubernetes and the local machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

serve_cmd.register(app)
config_cmd.register(app)
task_cmd.register(app)
filer_cmd.register(app)
pod_cmd.register(app)
admin_cmd.register(app)
users_cmd.register(app)
