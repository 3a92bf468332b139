"""Fair shares and per-user limits, measured on the store (SQLite and PostgreSQL). Not a test: it prints figures.

For each size N, alice has N tasks queued (bulk, through the store) and then bob queues one. It prints:

- where bob's task comes in the engine's next dispatch batch (``queued_in_turns(64)``: 2 means right after
  alice's oldest), and how long that look takes (median of 20): the owners are found by a skip scan, so it
  should not grow with N;
- the cost of a create under a per-user limit of 1000 (count and insert in one transaction, with the owner's
  advisory lock on PostgreSQL) against a plain create: bob's (a few tasks, accepted) and alice's (N tasks not
  yet ended, refused). The count stops at the limit, so a create never reads more than 1000 index entries,
  however many tasks the user has.

    python bench/fair.py [--sizes 1000,10000,100000] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fixtures.postgres

from tests.fixtures.postgres import new_database, running_postgres

from ktes.errors import OverUserLimit
from ktes.store.sql import SqlStore, open_store
from ktes.tes.models import Executor, Task

BATCH = 64  # the engine's DISPATCH_BATCH


def owned(owner: str, i: int) -> Task:
    return Task(name=f"{owner}-{i}", executors=[Executor(image="alpine:3", command=["true"])], owner=owner)


def median_ms(call: Callable[[], object], rounds: int = 20) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


@contextmanager
def databases(names: list[str]) -> Iterator[Iterator[tuple[str, Callable[[], str]]]]:
    with tempfile.TemporaryDirectory() as tmp:
        if "postgresql" in names:
            with running_postgres() as pg:
                yield iter(_makers(names, Path(tmp), pg))
        else:
            yield iter(_makers(names, Path(tmp), None))


def _makers(names: list[str], tmp: Path, pg: str | None) -> list[tuple[str, Callable[[], str]]]:
    counter = iter(range(1_000_000))
    makers: list[tuple[str, Callable[[], str]]] = []
    if "sqlite" in names:
        makers.append(("sqlite", lambda: f"sqlite:///{tmp / f'fair-{next(counter)}.db'}"))
    if pg is not None:
        makers.append(("postgresql", lambda: new_database(pg)))
    return makers


LIMIT = 1000


def refused(store: SqlStore) -> None:
    try:
        store.create(owned("alice", 0), max_active=LIMIT)
    except OverUserLimit:
        return
    raise AssertionError("alice is over the limit")


def measure(store: SqlStore, size: int) -> tuple[int, float, float, float, float]:
    for start in range(0, size, 5000):
        store.create_many(owned("alice", i) for i in range(start, min(size, start + 5000)))
    bobs = store.create(owned("bob", 0))
    batch = [task.id for task in store.queued_in_turns(BATCH)]
    position = batch.index(bobs) + 1
    look = median_ms(lambda: store.queued_in_turns(BATCH))
    plain = median_ms(lambda: store.create(owned("carol", 0)))
    limited = median_ms(lambda: store.create(owned("bob", 1), max_active=LIMIT))
    over = median_ms(lambda: refused(store))
    return position, look, plain, limited, over


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    head = ("database", "alice queued", "bob in batch", "look ms", "create ms", "limited ms", "refused ms")
    print(f"{head[0]:<11} {head[1]:>12} {head[2]:>12} {head[3]:>8} {head[4]:>9} {head[5]:>10} {head[6]:>10}")
    with databases(args.databases.split(",")) as makers:
        for name, new_url in makers:
            for size in sizes:
                store = open_store(new_url())
                try:
                    position, look, plain, limited, over = measure(store, size)
                finally:
                    store.close()
                print(f"{name:<11} {size:>12} {position:>12} {look:>8.2f} {plain:>9.2f} {limited:>10.2f} {over:>10.2f}")


if __name__ == "__main__":
    main()
