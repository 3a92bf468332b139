"""``python -m ktes`` is the ``ktes`` command."""

from ktes.cli.main import app

app()
