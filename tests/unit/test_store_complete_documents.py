"""Documents stored by an older ktes (empty arrays and maps left out) read complete after the upgrade."""

from __future__ import annotations

from pathlib import Path

import orjson
from alembic import command

from ktes.store.base import TaskFilter
from ktes.store.migrate import alembic_config, upgrade
from ktes.store.sql import SqlStore, make_engine
from ktes.tes.ids import new_id
from ktes.tes.models import View

OLD_DOC = {
    "id": new_id()[0],
    "state": "COMPLETE",
    "inputs": [{"path": "/in", "content": "hello"}],
    "executors": [{"image": "busybox", "command": ["true"]}],
    "logs": [{"logs": [{"exit_code": 0, "stdout": "x"}], "outputs": []}],
    "creation_time": "2026-01-01T00:00:00Z",
}


def test_an_old_document_is_completed_once_at_start(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'ktes.db'}")
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.exec_driver_sql(
            "INSERT INTO tasks (id, state, name, creation_time) VALUES (?, 'COMPLETE', NULL, ?)",
            (OLD_DOC["id"], OLD_DOC["creation_time"]),
        )
        conn.exec_driver_sql(
            "INSERT INTO task_docs (task_id, doc, basic) VALUES (?, ?, NULL)",
            (OLD_DOC["id"], orjson.dumps(OLD_DOC).decode()),
        )
    upgrade(engine)
    store = SqlStore(engine)
    full = orjson.loads(store.get_view_json(OLD_DOC["id"], View.FULL))
    assert full["outputs"] == [] and full["volumes"] == [] and full["tags"] == {}
    assert full["inputs"] == [{"path": "/in", "type": "FILE", "content": "hello"}]
    basic = orjson.loads(store.get_view_json(OLD_DOC["id"], View.BASIC))
    assert basic["inputs"] == [{"path": "/in", "type": "FILE"}] and "stdout" not in basic["logs"][0]["logs"][0]
    listed = orjson.loads(store.list_tasks_json(TaskFilter(), 10, None, View.BASIC))["tasks"]
    assert listed == [basic]
    store.close()
