"""``ktes serve``: the API, and (unless ``engine_enabled`` is false) the engine running tasks on the backend."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import typer

from ktes.config import Settings, load
from ktes.engine.engine import Engine
from ktes.engine.runner import run_engine
from ktes.errors import StartupError


async def serve(settings: Settings) -> None:
    """Open the store, the filer and the backend; serve the API, with the engine running in its lifespan
    (so a SIGTERM or Ctrl-C stops the engine before the process ends)."""
    import uvicorn
    from fastapi import FastAPI

    from ktes.api.app import create_app
    from ktes.auth.authenticator import Authenticator, warn_if_open
    from ktes.backends.registry import create_backend, create_leadership, preflight, refused_schemes
    from ktes.capabilities import Capabilities
    from ktes.filer.registry import Filer
    from ktes.filer.roots import AllowedRoots
    from ktes.store.sql import open_store

    authenticator = Authenticator(settings)  # bad auth settings stop the start, before anything is opened
    warn_if_open(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await asyncio.to_thread(open_store, settings.sqlalchemy_url)
    filer = Filer(settings)
    logging.getLogger(__name__).info(
        "file:// inputs and outputs allowed below: %s (never ktes's own files, dot-directories or credential files)",
        AllowedRoots.from_settings(settings).describe(),
    )
    backend = create_backend(settings, filer)
    refused = refused_schemes(settings)
    capabilities = Capabilities(
        storage_schemes=tuple(s for s in filer.schemes() if s not in refused),
        backend_parameters=tuple(backend.backend_parameters()),
        refused_schemes=refused,
    )
    if settings.engine_enabled:
        await preflight(settings)
    engine = Engine(settings, store, backend) if settings.engine_enabled else None
    leadership = create_leadership(settings) if engine is not None else None
    app = create_app(
        settings, store, capabilities, engine.wake if engine is not None else lambda: None, authenticator=authenticator
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            if engine is None:
                yield
            else:
                async with run_engine(engine, leadership):
                    yield
        finally:
            store.close()

    app.router.lifespan_context = lifespan
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level.lower() == "debug",
        lifespan="on",
    )
    await uvicorn.Server(config).serve()


def run(settings: Settings) -> None:
    """Run :func:`serve` on uvloop when it is installed. A :class:`StartupError` is one sentence on stderr
    and exit code 1 (its traceback only at log level debug)."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        try:
            import uvloop
        except ImportError:
            asyncio.run(serve(settings))
            return
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(settings))
    except StartupError as exc:
        if settings.log_level.lower() == "debug":
            logging.getLogger(__name__).exception("ktes serve could not start")
        typer.echo(f"ktes serve: {exc}", err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    """Add ``ktes serve``."""

    @app.command("serve")
    def serve_command(
        host: str | None = typer.Option(None, help="Address to listen on [KTES_HOST; default 127.0.0.1]"),
        port: int | None = typer.Option(None, help="Port to listen on [KTES_PORT; default 8000]"),
        data_dir: Path | None = typer.Option(None, help="Database and work directories [KTES_DATA_DIR]"),
        backend: str | None = typer.Option(None, help="local or kubernetes [KTES_BACKEND; default local]"),
        config: Path | None = typer.Option(None, help="YAML file with settings [KTES_CONFIG]"),
    ) -> None:
        """Serve the TES API and run tasks."""
        from ktes.auth.authenticator import check_settings

        settings = load(config, host=host, port=port, data_dir=data_dir, backend=backend)
        try:
            check_settings(settings)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        run(settings)
