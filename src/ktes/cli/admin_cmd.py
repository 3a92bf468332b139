"""``ktes admin``: retention by hand (``purge``) and removing what ktes made in Kubernetes (``uninstall``);
``ktes db``: schema migrations for operators who migrate by hand (``upgrade``, ``check``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from ktes.config import Settings, load

admin = typer.Typer(help="Operate a ktes installation: purge old tasks, remove what ktes made.", no_args_is_help=True)
db = typer.Typer(help="The database schema: upgrade it, or check it is current.", no_args_is_help=True)

CONFIG_OPTION = typer.Option(None, "--config", help="YAML file with settings [KTES_CONFIG]")


async def _purge(settings: Settings, older_than: str, dry_run: bool) -> str:
    from ktes.engine.retention import parse_age, purge
    from ktes.store.sql import open_store

    age = parse_age(older_than)
    store = await asyncio.to_thread(open_store, settings.sqlalchemy_url)
    try:
        if settings.backend == "kubernetes":
            from ktes.backends.kubernetes.cleanup import remove_tasks
            from ktes.backends.kubernetes.client import Kube

            kube = Kube(settings)

            async def leftovers(task_ids: list[str]) -> None:
                await remove_tasks(kube, task_ids)

            try:
                return (await purge(store, age, dry_run=dry_run, remove_leftovers=leftovers)).sentence()
            finally:
                kube.close()
        from ktes.backends.local.cleanup import remove_task_dirs

        async def dirs(task_ids: list[str]) -> None:
            await asyncio.to_thread(remove_task_dirs, settings.data_dir, task_ids)

        return (await purge(store, age, dry_run=dry_run, remove_leftovers=dirs)).sentence()
    finally:
        store.close()


@admin.command("purge")
def purge_command(
    older_than: str = typer.Option(..., "--older-than", help="Age, e.g. 30d, 12h, 2w (by creation time)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say how many tasks would go"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Remove finished tasks created longer ago than --older-than, with their work directories or Kubernetes
    objects. Active tasks are never touched."""
    settings = load(config)
    try:
        sentence = asyncio.run(_purge(settings, older_than, dry_run))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None
    typer.echo(sentence)


@admin.command("uninstall")
def uninstall_command(
    yes: bool = typer.Option(False, "--yes", help="Really remove everything ktes made in its task namespace"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Delete every task Job, Pod and Secret, the executors' helper ConfigMaps and the engine's Lease from the
    task namespace (KTES_K8S_NAMESPACE). Running tasks are stopped. The Helm chart runs it on uninstall."""
    if not yes:
        raise typer.BadParameter("this deletes every task's objects: add --yes", param_hint="--yes")
    settings = load(config)
    from ktes.backends.kubernetes.cleanup import remove_everything
    from ktes.backends.kubernetes.client import Kube

    async def run() -> dict[str, int]:
        kube = Kube(settings)
        try:
            return await remove_everything(kube, settings)
        finally:
            kube.close()

    removed = asyncio.run(run())
    typer.echo(
        f"removed the objects of {removed['tasks']} tasks, {removed['configmaps']} helper ConfigMaps and "
        f"{removed['leases']} Lease from namespace {settings.k8s_namespace}"
    )


@db.command("upgrade")
def db_upgrade_command(config: Path | None = CONFIG_OPTION) -> None:
    """Apply every migration this ktes has that the database lacks (ktes serve also does this on start)."""
    from ktes.store.migrate import upgrade_url

    before, after = upgrade_url(load(config).sqlalchemy_url)
    typer.echo(f"database at {after} (was {before or 'empty'})" if before != after else f"database at {after}")


@db.command("check")
def db_check_command(config: Path | None = CONFIG_OPTION) -> None:
    """Exit 0 when the database schema is current, 1 when it needs `ktes db upgrade`."""
    from ktes.store.migrate import revisions

    current, head = revisions(load(config).sqlalchemy_url)
    if current == head:
        typer.echo(f"database schema is current ({head})")
        return
    typer.echo(f"database schema is at {current or 'nothing'}, this ktes needs {head}: run `ktes db upgrade`")
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(admin, name="admin")
    app.add_typer(db, name="db")
