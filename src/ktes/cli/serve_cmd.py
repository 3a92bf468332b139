"""``ktes serve``: the API, and (unless ``engine_enabled`` is false) the engine running tasks on the backend."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import cast

import typer

from ktes.config import Settings, load
from ktes.engine.engine import Engine

#: How the engine runs for the life of the server: given the settings and the engine, an async context
#: manager that starts it (now, or once this replica may run it) and stops it on exit.
EngineRunner = Callable[[Settings, Engine], AbstractAsyncContextManager[None]]

#: With the Kubernetes backend, only the replica holding a Lease may run the engine. The Kubernetes backend
#: provides that runner here (same signature as :func:`run_engine_always`).
KUBERNETES_ENGINE_RUNNER = ("ktes.backends.kubernetes.lease", "run_engine_while_leader")


@contextlib.asynccontextmanager
async def run_engine_always(settings: Settings, engine: Engine) -> AsyncIterator[None]:
    """The local default: one engine, started with the server and stopped with it."""
    await engine.start()
    try:
        yield
    finally:
        await engine.stop()


def engine_runner(settings: Settings) -> EngineRunner:
    """The engine runner for the configured backend (the Kubernetes one holds a Lease first)."""
    if settings.backend == "kubernetes":
        module_name, attribute = KUBERNETES_ENGINE_RUNNER
        with contextlib.suppress(ImportError, AttributeError):
            return cast(EngineRunner, getattr(importlib.import_module(module_name), attribute))
        logging.getLogger(__name__).warning("no Lease runner available: running the engine in this replica")
    return run_engine_always


async def serve(settings: Settings) -> None:
    """Open the store, the filer and the backend; serve the API, with the engine running in its lifespan
    (so a SIGTERM or Ctrl-C stops the engine before the process ends)."""
    import uvicorn
    from fastapi import FastAPI

    from ktes.api.app import create_app
    from ktes.auth.authenticator import Authenticator, warn_if_open
    from ktes.backends.registry import create_backend
    from ktes.capabilities import Capabilities
    from ktes.filer.registry import Filer
    from ktes.store.sql import open_store

    authenticator = Authenticator(settings)  # bad auth settings stop the start, before anything is opened
    warn_if_open(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await asyncio.to_thread(open_store, settings.sqlalchemy_url)
    filer = Filer(settings)
    backend = create_backend(settings, filer)
    capabilities = Capabilities(
        storage_schemes=tuple(filer.schemes()), backend_parameters=tuple(backend.backend_parameters())
    )
    engine = Engine(settings, store, backend) if settings.engine_enabled else None
    app = create_app(
        settings, store, capabilities, engine.wake if engine is not None else lambda: None, authenticator=authenticator
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            if engine is None:
                yield
            else:
                async with engine_runner(settings)(settings, engine):
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
    """Run :func:`serve` on uvloop when it is installed."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(settings))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(settings))


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
