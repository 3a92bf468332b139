"""Task ids: sortable by creation time, lowercase, valid Kubernetes names."""

from __future__ import annotations

import re

from ktes.tes.ids import LENGTH, IdMaker, id_time_ms, is_id, new_id, rfc3339

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def test_ids_are_kubernetes_names() -> None:
    task_id, _ = new_id()
    assert DNS_1035.match(task_id)
    assert len(task_id) == LENGTH <= 40
    assert is_id(task_id)


def test_ids_grow_even_within_one_millisecond() -> None:
    make = IdMaker()
    ids = [make(now_ms=1_700_000_000_000)[0] for _ in range(1000)]
    assert ids == sorted(ids) and len(set(ids)) == 1000


def test_later_ids_sort_after_earlier_ones() -> None:
    make = IdMaker()
    early, _ = make(now_ms=1_700_000_000_000)
    late, _ = make(now_ms=1_700_000_000_001)
    assert early < late
    assert id_time_ms(early) == 1_700_000_000_000 and id_time_ms(late) == 1_700_000_000_001


def test_a_clock_stepping_back_does_not_reorder_ids() -> None:
    make = IdMaker()
    first, _ = make(now_ms=1_700_000_000_500)
    second, ms = make(now_ms=1_700_000_000_000)
    assert first < second and ms == 1_700_000_000_500


def test_the_id_carries_its_creation_time() -> None:
    task_id, ms = IdMaker()(now_ms=1_900_000_000_123)
    assert id_time_ms(task_id) == ms == 1_900_000_000_123
    assert rfc3339(ms) == "2030-03-17T17:46:40.123Z"


def test_is_id_rejects_other_shapes() -> None:
    assert not is_id("T" + "0" * 26)
    assert not is_id("t" + "u" * 26)  # u is not in the alphabet
    assert not is_id("t123")
