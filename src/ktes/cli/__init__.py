"""The ``ktes`` command line (typer + rich)."""
