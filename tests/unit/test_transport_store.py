"""The transport store: atomic sync-token handover, de-duplication, outbox order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from onceonly.errors import StoreError
from onceonly.matrix.store import TransportStore


@pytest.fixture
def store(tmp_path: Path) -> TransportStore:
    s = TransportStore.open(tmp_path / "t.sqlite")
    yield s
    s.close()


def test_inbox_deduplicates_event_ids_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    first = TransportStore.open(path)
    assert first.record_inbound("$a", {"n": 1}) is True
    assert first.record_inbound("$a", {"n": 2}) is False
    first.mark_handled("$a")
    first.close()
    again = TransportStore.open(path)
    assert again.record_inbound("$a", {"n": 3}) is False
    assert again.seen("$a") and not again.seen("$b")
    assert again.pending_inbound() == []
    again.close()


def test_sync_token_and_events_commit_together_or_not_at_all(store: TransportStore) -> None:
    store.set_sync_token("s1")
    with pytest.raises(RuntimeError), store.transaction():
        store.record_inbound("$x", {"n": 1})
        store.set_sync_token("s2")
        raise RuntimeError("crash before commit")
    assert store.sync_token() == "s1"
    assert store.pending_inbound() == []
    with store.transaction():
        store.record_inbound("$x", {"n": 1})
        store.set_sync_token("s2")
    assert store.sync_token() == "s2"
    assert [r.event_id for r in store.pending_inbound()] == ["$x"]


def test_pending_items_keep_arrival_order_and_count_attempts(store: TransportStore) -> None:
    for event_id in ("$3", "$1", "$2"):
        store.record_inbound(event_id, {})
    store.note_delivery_attempt("$1")
    rows = store.pending_inbound()
    assert [r.event_id for r in rows] == ["$3", "$1", "$2"]
    assert [r.attempts for r in rows] == [0, 1, 0]


def test_failed_items_stay_pending_until_parked_and_can_be_requeued(
    store: TransportStore,
) -> None:
    store.record_inbound("$e", {"k": "v"})
    store.mark_failed("$e", "boom", park=False)
    assert [r.event_id for r in store.pending_inbound()] == ["$e"]
    store.mark_failed("$e", "boom", park=True)
    assert store.pending_inbound() == []
    assert [r.payload for r in store.parked_inbound()] == [{"k": "v"}]
    store.requeue_parked("$e")
    assert [r.event_id for r in store.pending_inbound()] == ["$e"]


def test_outbox_sends_in_order_and_forgets_content_once_sent(store: TransportStore) -> None:
    store.enqueue("t1", "!r", "a.b", {"secret": 1})
    store.enqueue("t2", "!r", "a.b", {"secret": 2})
    assert [r.txn_id for r in store.queued()] == ["t1", "t2"]
    store.mark_send_failed("t1", "down", final=False)
    assert [r.attempts for r in store.queued()] == [1, 0]
    store.mark_sent("t1", "$ev1")
    store.mark_send_failed("t2", "forbidden", final=True)
    assert store.queued() == []
    assert store.outbox_status("t1") == ("sent", "$ev1", "down")
    assert store.outbox_status("t2") == ("failed", None, "forbidden")
    assert store.outbox_status("t3") is None
    with pytest.raises(sqlite3.IntegrityError):
        store.enqueue("t1", "!r", "a.b", {})  # a transaction id is never reused


def test_undecrypted_events_are_kept_once_and_dropped(store: TransportStore) -> None:
    store.keep_undecrypted("$m", "!r", {"type": "m.room.encrypted"})
    store.keep_undecrypted("$m", "!r", {"type": "other"})
    rows = store.undecrypted()
    assert [(r.event_id, r.source["type"]) for r in rows] == [("$m", "m.room.encrypted")]
    assert store.seen("$m")
    store.drop_undecrypted("$m")
    assert store.undecrypted() == []


def test_direct_room_map(store: TransportStore) -> None:
    assert store.direct_room("@p:hs") is None
    store.set_direct_room("@p:hs", "!one")
    store.set_direct_room("@p:hs", "!two")
    assert store.direct_room("@p:hs") == "!two"


def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    TransportStore.open(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError) as info:
        TransportStore.open(path)
    assert info.value.detail == {"found": "99", "expected": 1}


def test_unreadable_file_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        TransportStore.open(path)


def test_outbox_lists_rooms_by_their_oldest_unsent_event_and_each_room_in_order(
    store: TransportStore,
) -> None:
    store.enqueue("a1", "!a", "a.b", {"n": 1})
    store.enqueue("b1", "!b", "a.b", {"n": 1})
    store.enqueue("a2", "!a", "a.b", {"n": 2})
    store.enqueue("c1", "!c", "a.b", {"n": 1})
    assert store.queued_rooms() == ["!a", "!b", "!c"]
    assert [r.txn_id for r in store.queued_in("!a")] == ["a1", "a2"]
    store.mark_sent("a1", "$a1")
    store.mark_send_failed("b1", "forbidden", final=True)
    # "!a" now waits since its second event, which came after "!b" gave up and before "!c".
    assert store.queued_rooms() == ["!a", "!c"]
    assert [r.content for r in store.queued_in("!a")] == [{"n": 2}]
    assert store.queued_in("!b") == []
    assert store.queued_in("!unknown") == []
