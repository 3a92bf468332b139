"""``ktes serve``: the API, and (unless ``engine_enabled`` is false) the engine running tasks on the backend."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import typer
from pydantic import ValidationError

import ktes
from ktes.backends.base import Backend, ReportsReadiness
from ktes.cli import startup
from ktes.config import Settings, load
from ktes.engine.engine import Engine
from ktes.engine.runner import run_engine
from ktes.errors import StoreUnavailable
from ktes.logs import configure as configure_logging
from ktes.store.base import Store
from ktes.store.json_reads import OffersAwaitedReads
from ktes.tes.models import State


@contextlib.asynccontextmanager
async def retention(settings: Settings, store: Store, backend: Backend, engine: Engine | None) -> AsyncIterator[None]:
    """With ``retention_days``: purge finished tasks older than that, now and every hour, while serving."""
    if settings.retention_days is None:
        yield
        return
    from ktes.backends.local.cleanup import remove_task_dirs
    from ktes.engine.retention import purge_forever
    from ktes.tes.states import TERMINAL

    async def leftovers(task_ids: list[str]) -> None:
        if settings.backend == "local":
            await asyncio.to_thread(remove_task_dirs, settings.data_dir, task_ids)
        elif engine is not None and engine.status == "running":  # the backend is this engine's: sweep
            unfinished = [t.id for t in store.tasks_in(set(State) - TERMINAL) if t.id is not None]
            await backend.sweep(unfinished)

    loop = asyncio.create_task(purge_forever(store, timedelta(days=settings.retention_days), leftovers))
    try:
        yield
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


async def serve(settings: Settings) -> None:
    """Open the store, the filer and the backend; serve the API, with the engine running in its lifespan
    (so a SIGTERM or Ctrl-C stops the engine before the process ends). What can fail at start is checked
    first and raises :class:`~ktes.cli.startup.StartupError`."""
    import uvicorn
    from fastapi import FastAPI

    from ktes.api.app import create_app
    from ktes.api.http_protocol import CoalescingHttpToolsProtocol
    from ktes.auth.authenticator import Authenticator, warn_if_open
    from ktes.backends.registry import create_backend, create_leadership, preflight, refused_schemes
    from ktes.capabilities import Capabilities
    from ktes.filer.registry import Filer
    from ktes.filer.roots import AllowedRoots
    from ktes.store.sql import open_store

    authenticator = Authenticator(settings)  # bad auth settings stop the start, before anything is opened
    warn_if_open(settings)
    sock = startup.listening_socket(settings.host, settings.port)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise startup.StartupError(
            f"cannot create the data directory {settings.data_dir} ({exc.strerror}); fix KTES_DATA_DIR or --data-dir"
        ) from exc
    try:
        store = await asyncio.to_thread(
            functools.partial(open_store, settings.sqlalchemy_url, reads_at_once=settings.database_reads_at_once)
        )
    except StoreUnavailable as exc:
        raise startup.StartupError(f"{exc}; start the database, or fix KTES_DATABASE_URL") from exc
    if settings.engine_enabled:
        await asyncio.to_thread(startup.check_backend, settings)
    filer = Filer(settings)
    backend = create_backend(settings, filer)
    refused = refused_schemes(settings)
    capabilities = Capabilities(
        storage_schemes=tuple(s for s in filer.schemes() if s not in refused),
        backend_parameters=tuple(backend.backend_parameters()),
        refused_schemes=refused,
    )
    if settings.engine_enabled:
        await preflight(settings)
    logging.getLogger(__name__).info(
        "file:// inputs and outputs allowed below: %s (never ktes's own files, dot-directories or credential files)",
        AllowedRoots.from_settings(settings).describe(),
    )
    engine = Engine(settings, store, backend) if settings.engine_enabled else None
    leadership = create_leadership(settings) if engine is not None else None
    app = create_app(
        settings,
        store,
        capabilities,
        engine.wake if engine is not None else lambda: None,
        backend,
        (lambda: engine.status) if engine is not None else lambda: None,
        authenticator=authenticator,
        leadership=leadership if isinstance(leadership, ReportsReadiness) else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            async with retention(settings, store, backend, engine):
                if engine is None:
                    yield
                else:
                    async with run_engine(engine, leadership):
                        yield
        finally:
            awaited = store.awaited_reads() if isinstance(store, OffersAwaitedReads) else None
            if awaited is not None:
                await awaited.close_async_reads()
            store.close()

    app.router.lifespan_context = lifespan
    config = uvicorn.Config(
        app,
        http=CoalescingHttpToolsProtocol,  # one send per small response (ktes.api.http_protocol)
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level.lower() == "debug",
        log_config=None,  # every line goes through ktes.logs (format, task id, redaction)
        lifespan="on",
        timeout_graceful_shutdown=max(1, round(settings.shutdown_seconds)),  # then the engine stops; tasks run on
    )
    if settings.log_level.lower() == "info":  # uvicorn's own start and stop lines are noise; its warnings are not
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    logging.getLogger(__name__).info(
        "ktes %s: TES API on http://%s:%d/ga4gh/tes/v1", ktes.__version__, host, settings.port
    )
    await uvicorn.Server(config).serve(sockets=[sock])


def run(settings: Settings) -> None:
    """Run :func:`serve` on uvloop when it is installed. A :class:`StartupError` goes to the caller."""
    configure_logging(settings.log_level, settings.log_format)
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
        debug: bool = typer.Option(False, "--debug", help="Show the traceback when start-up fails"),
    ) -> None:
        """Serve the TES API and run tasks."""
        from ktes.auth.authenticator import check_settings

        try:
            startup.check_config_file(config)
            try:
                settings = load(config, host=host, port=port, data_dir=data_dir, backend=backend)
            except ValidationError as exc:
                raise startup.settings_problem(exc) from exc
            try:
                check_settings(settings)
            except ValueError as exc:
                raise startup.StartupError(str(exc)) from exc
            run(settings)
        except startup.StartupError as exc:
            if debug:
                raise
            typer.echo(f"ktes serve: {exc}", err=True)
            raise typer.Exit(1) from None
