"""``ktes task create/get/list/wait/cancel/logs`` and ``ktes run``: a TES client for people and scripts.

Exit codes: 0 when the command did what was asked (for ``--wait``, ``wait`` and ``run``: the task ended
COMPLETE); 1 for an error (message on stderr, no traceback) or a task that ended otherwise; ``run`` exits
with the executor's own exit code; 2 for a usage error; 130 after Ctrl-C.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.text import Text

from ktes.cli.client import Document, TesClient, state_of
from ktes.cli.follow import follow_task
from ktes.cli.run_spec import BadOption, key_values, run_task
from ktes.cli.task_output import (
    end_line,
    err,
    last_log,
    out,
    print_json,
    print_logs,
    progress,
    state_text,
    task_details,
    task_table,
    write_raw,
)
from ktes.errors import KtesError
from ktes.tes.models import State, View
from ktes.tes.states import TERMINAL

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="KTES_SERVER",
        metavar="URL",
        help="The ktes (or any TES) server's URL [default: http://127.0.0.1:8000]",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="KTES_TOKEN", metavar="TOKEN", help="A bearer token (OIDC)", show_default=False),
]
UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        envvar="KTES_USER",
        metavar="NAME",
        help="User name for HTTP basic auth (password from KTES_PASSWORD, else a prompt)",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout")]
TimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout", metavar="SECONDS", help="Give up waiting after this many seconds (exit 1)", min=0),
]

#: Listing pages asked for (the spec's default page size, which every TES server accepts).
_PAGE_SIZE = 256


def open_client(server: str | None, token: str | None = None, user: str | None = None) -> TesClient:
    """A client for ``server``, with a bearer token or basic credentials when given."""
    basic = None
    if user:
        password = os.environ.get("KTES_PASSWORD")
        if password is None:
            password = typer.prompt(f"password for {user}", hide_input=True, err=True)
        basic = (user, password)
    return TesClient(server, token=token, basic=basic)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(Text(f"error: {message}", "red"))
    raise typer.Exit(code)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Expected failures end the command with their message (exit 1), never a traceback."""
    try:
        yield
    except (KtesError, BadOption) as exc:
        fail(str(exc))


def exit_for(task: Document) -> None:
    if state_of(task) != State.COMPLETE:
        raise typer.Exit(1)


def read_task_file(file: str) -> dict[str, Any]:
    """The JSON task document in ``file`` (``-`` for stdin); errors name the place."""
    name = "stdin" if file == "-" else file
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {name}: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        fail(f"{name} is not UTF-8 text: {exc}")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
    if not isinstance(document, dict):
        fail(f"{name}: a TES task is a JSON object, not a JSON {type(document).__name__}")
    return document


def wait_with_progress(
    client: TesClient, task_id: str, *, quiet: bool, timeout: float | None, lines: bool = True
) -> Document:
    """Wait for the task (spinner and state lines on stderr unless ``quiet``); Ctrl-C stops waiting only."""
    try:
        if quiet:
            return client.wait(task_id, timeout=timeout)
        with progress(task_id, lines=lines) as on_state:
            return client.wait(task_id, on_state=on_state, timeout=timeout)
    except KeyboardInterrupt:
        err.print(f"stopped waiting; task {task_id} keeps running (stop it with `ktes task cancel {task_id}`)")
        raise typer.Exit(130) from None


def create(
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="A JSON TES task document, or - for stdin", show_default=False)
    ],
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the task to end; exit 0 only if COMPLETE")] = False,
    timeout: TimeoutOption = None,
    json_: JsonOption = False,
    server: ServerOption = None,
    token: TokenOption = None,
    user: UserOption = None,
) -> None:
    """Submit a task and print its id."""
    document = read_task_file(file)
    with reporting_errors(), open_client(server, token, user) as client:
        task_id = client.create(document)
        if not wait:
            if json_:
                print_json({"id": task_id})
            else:
                out.print(task_id, markup=False)
            return
        if not json_:
            out.print(task_id, markup=False)
        task = wait_with_progress(client, task_id, quiet=json_, timeout=timeout)
        if json_:
            print_json(task)
        else:
            err.print(end_line(task, task_id))
        exit_for(task)


def get(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="The task's id", show_default=False)],
    view: Annotated[View, typer.Option("--view", case_sensitive=False, help="How much of the task")] = View.FULL,
    json_: JsonOption = False,
    server: ServerOption = None,
    token: TokenOption = None,
    user: UserOption = None,
) -> None:
    """Show one task (FULL view by default: everything but the executors' output, see `ktes task logs`)."""
    with reporting_errors(), open_client(server, token, user) as client:
        task = client.get(task_id, view)
    if json_:
        print_json(task)
    else:
        out.print(task_details(task))


def list_(
    state: Annotated[
        State | None,
        typer.Option(
            "--state", case_sensitive=False, metavar="STATE", help="Only tasks in this state (QUEUED, RUNNING, ...)"
        ),
    ] = None,
    name_prefix: Annotated[
        str | None, typer.Option("--name-prefix", metavar="PREFIX", help="Only tasks whose name starts so")
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            metavar="KEY[=VALUE]",
            help="Only tasks with tag KEY=VALUE, or KEY alone for any value (repeatable)",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, metavar="N", help="At most this many tasks (0: all)")] = 100,
    view: Annotated[
        View, typer.Option("--view", case_sensitive=False, help="How much of each task (for --json)")
    ] = View.BASIC,
    all_users: Annotated[
        bool,
        typer.Option("--all-users", help="Show each task's owner (admins see everyone's tasks; others only their own)"),
    ] = False,
    owner: Annotated[
        str | None, typer.Option("--owner", metavar="NAME", help="Only this user's tasks (admins only)")
    ] = None,
    json_: JsonOption = False,
    server: ServerOption = None,
    token: TokenOption = None,
    user: UserOption = None,
) -> None:
    """List your tasks, newest first (admins: --all-users or --owner NAME)."""
    with reporting_errors(), open_client(server, token, user) as client:
        tags = key_values("--tag", tag or [], bare_keys=True)
        page_size = min(limit + 1, _PAGE_SIZE) if limit else None
        found = client.iter_tasks(
            state=state, name_prefix=name_prefix, tags=tags, view=view, page_size=page_size, owner=owner
        )
        tasks = list(itertools.islice(found, limit + 1 if limit else None))
    more = bool(limit) and len(tasks) > limit
    tasks = tasks[:limit] if limit else tasks
    if json_:
        print_json(tasks)
    elif tasks:
        out.print(task_table(tasks, owners=all_users or owner is not None))
    else:
        err.print("no tasks")
    if more:
        err.print(f"(the first {limit}; more tasks match: --limit 0 shows all)")


def wait(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="The task's id", show_default=False)],
    timeout: TimeoutOption = None,
    json_: JsonOption = False,
    server: ServerOption = None,
    token: TokenOption = None,
    user: UserOption = None,
) -> None:
    """Wait for a task to end; exit 0 only if it ended COMPLETE."""
    with reporting_errors(), open_client(server, token, user) as client:
        task = wait_with_progress(client, task_id, quiet=json_, timeout=timeout)
    if json_:
        print_json(task)
    else:
        out.print(end_line(task, task_id))
    exit_for(task)


def cancel(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="The task's id", show_default=False)],
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the task has stopped")] = False,
    json_: JsonOption = False,
    server: ServerOption = None,
    token: TokenOption = None,
    user: UserOption = None,
) -> None:
    """Cancel a task (a task that has already ended is left as it is)."""
    with reporting_errors(), open_client(server, token, user) as client:
        before = state_of(client.get(task_id))
        client.cancel(task_id)
        task = wait_with_progress(client, task_id, quiet=True, timeout=None) if wait else client.get(task_id)
    state = state_of(task)
    if json_:
        print_json({"id": task_id, "state": state.value})
    elif before in TERMINAL:
        out.print(Text(f"task {task_id} had already ended: ").append_text(state_text(state)))
    else:
        out.print(Text(f"task {task_id} ").append_text(state_text(state)))


def logs(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="The task's id", show_default=False)],
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Print executors' stdout and stderr as they are written, until the task ends "
            "(a ktes server only); exit 0 only if it ends COMPLETE",
        ),
    ] = False,
    json_: JsonOption = False,
    server: ServerOption = None,
    token: TokenOption = None,
    user: UserOption = None,
) -> None:
    """Each executor's stdout then stderr, labelled, then the system logs."""
    if follow:
        with reporting_errors(), open_client(server, token, user) as client:
            try:
                task = follow_task(client, task_id, sys.stdout.buffer, sys.stderr.buffer, announce=sys.stderr.buffer)
            except KeyboardInterrupt:
                err.print(f"stopped following; task {task_id} keeps running")
                raise typer.Exit(130) from None
        exit_for(task)
        return
    with reporting_errors(), open_client(server, token, user) as client:
        task = client.get(task_id, View.FULL)
    if json_:
        print_json({"id": task.get("id", task_id), "state": state_of(task).value, "logs": task.get("logs") or []})
    else:
        print_logs(task)


def run(
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="The container image", show_default=False)],
    command: Annotated[
        list[str] | None, typer.Argument(metavar="CMD...", help="The command and its arguments (after --)")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", metavar="NAME", help="The task's name")] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", metavar="KEY=VALUE", help="An environment variable (repeatable)")
    ] = None,
    workdir: Annotated[
        str | None, typer.Option("--workdir", "-w", metavar="DIR", help="Working directory in the container")
    ] = None,
    cpu: Annotated[int | None, typer.Option("--cpu", min=1, metavar="N", help="CPU cores")] = None,
    ram_gb: Annotated[float | None, typer.Option("--ram-gb", min=0, metavar="GB", help="RAM in GB")] = None,
    input_: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", metavar="URL:PATH", help="Stage URL in at container PATH (repeatable)"),
    ] = None,
    output: Annotated[
        list[str] | None,
        typer.Option("--output", "-o", metavar="PATH:URL", help="Upload container PATH to URL (repeatable)"),
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", metavar="KEY=VALUE", help="A tag (repeatable)")] = None,
    timeout: TimeoutOption = None,
    json_: JsonOption = False,
    server: ServerOption = None,
    token: TokenOption = None,
    user: UserOption = None,
) -> None:
    """Run one command in a container as a TES task, wait, and print its output.

    The executor's stdout goes to stdout, its stderr to stderr, and ktes exits with its exit code.

    A task that fails for another reason exits 1 with the reason. Ctrl-C cancels the task."""
    with reporting_errors(), open_client(server, token, user) as client:
        document = run_task(
            image,
            command or [],
            name=name,
            env=env or [],
            workdir=workdir,
            cpu=cpu,
            ram_gb=ram_gb,
            inputs=input_ or [],
            outputs=output or [],
            tags=tag or [],
        )
        task_id = client.create(document)
        try:
            if json_:
                task = client.wait(task_id, timeout=timeout)
            else:
                with progress(task_id, lines=False) as on_state:
                    task = client.wait(task_id, on_state=on_state, timeout=timeout)
        except KeyboardInterrupt:
            client.cancel(task_id)
            err.print(f"canceled task {task_id}")
            raise typer.Exit(130) from None
    if json_:
        print_json(task)
    else:
        executor_logs = last_log(task).get("logs") or []
        if executor_logs:
            write_raw(str(executor_logs[0].get("stdout") or ""), sys.stdout, end_line=False)
            write_raw(str(executor_logs[0].get("stderr") or ""), sys.stderr, end_line=False)
    raise typer.Exit(run_exit_code(task, task_id, quiet=json_))


def run_exit_code(task: Document, task_id: str, *, quiet: bool) -> int:
    """0 for COMPLETE; the executor's exit code when it failed; else 1 and the reason on stderr."""
    state = state_of(task)
    if state == State.COMPLETE:
        return 0
    executor_logs = last_log(task).get("logs") or []
    code = executor_logs[0].get("exit_code") if executor_logs else None
    if state == State.EXECUTOR_ERROR and isinstance(code, int) and 0 < code < 256:
        return code
    if not quiet:
        err.print(end_line(task, task_id))
    return 1


def register(app: typer.Typer) -> None:
    """Add ``ktes task ...`` and ``ktes run`` to ``app``."""
    task_app = typer.Typer(help="Submit, inspect, wait for and cancel tasks on a TES server.", no_args_is_help=True)
    task_app.command("create")(create)
    task_app.command("get")(get)
    task_app.command("list")(list_)
    task_app.command("wait")(wait)
    task_app.command("cancel")(cancel)
    task_app.command("logs")(logs)
    app.add_typer(task_app, name="task")
    app.command("run")(run)
