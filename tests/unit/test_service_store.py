"""The runtime's exchange store: durable, keyed by exchange id, honest about damage."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from onceonly.errors import StoreError
from onceonly.protocol.exchange import Exchange, Kind, Signal, State
from onceonly.service import ExchangeStore

ROOM = "!mailbox:localhost"
PEER = "@erika:localhost"


def _offered(exchange_id: str = "xch_store_0000001", expires_at: int | None = 2_000) -> Exchange:
    return Exchange(
        exchange_id=exchange_id,
        kind=Kind.ISSUANCE,
        state=State.OFFERED,
        expires_at=expires_at,
        history=(Signal.OFFER,),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ExchangeStore]:
    opened = ExchangeStore.open(tmp_path / "exchanges.sqlite")
    yield opened
    opened.close()


def test_round_trip_and_reopen(tmp_path: Path, store: ExchangeStore) -> None:
    exchange = _offered()
    store.put(exchange, room_id=ROOM, peer=PEER, now=1_000, last_event_id="$e1")
    assert store.get(exchange.exchange_id) == exchange
    assert store.get("xch_unknown_000001") is None
    again = ExchangeStore.open(tmp_path / "exchanges.sqlite")
    try:
        record = again.record(exchange.exchange_id)
        assert record is not None
        assert record.exchange == exchange
        assert (record.peer, record.room_id, record.last_event_id) == (PEER, ROOM, "$e1")
        assert (record.created_at, record.updated_at) == (1_000, 1_000)
    finally:
        again.close()


def test_update_keeps_creation_time_known_peer_and_last_event(store: ExchangeStore) -> None:
    exchange = _offered()
    store.put(exchange, room_id=ROOM, peer=PEER, now=1_000, last_event_id="$e1")
    moved = Exchange(
        exchange_id=exchange.exchange_id,
        kind=Kind.ISSUANCE,
        state=State.REQUESTED,
        expires_at=2_000,
        history=(Signal.OFFER, Signal.CREDENTIAL_REQUEST),
    )
    store.put(moved, room_id=ROOM, peer=None, now=1_500)
    record = store.record(exchange.exchange_id)
    assert record is not None
    assert record.exchange == moved
    assert (record.peer, record.last_event_id) == (PEER, "$e1")
    assert (record.created_at, record.updated_at) == (1_000, 1_500)
    store.set_last_event_id(exchange.exchange_id, "$e2")
    record = store.record(exchange.exchange_id)
    assert record is not None and record.last_event_id == "$e2"


def test_due_lists_only_open_exchanges_past_their_deadline(store: ExchangeStore) -> None:
    store.put(_offered("xch_due_000000001", 2_000), room_id=ROOM, peer=PEER, now=1)
    store.put(_offered("xch_later_0000001", 5_000), room_id=ROOM, peer=PEER, now=1)
    store.put(_offered("xch_nodeadline_01", None), room_id=ROOM, peer=PEER, now=1)
    done = Exchange(
        exchange_id="xch_done_00000001",
        kind=Kind.PRESENTATION,
        state=State.VERIFIED,
        expires_at=1_500,
    )
    store.put(done, room_id=ROOM, peer=PEER, now=1)
    assert store.due(2_000) == []  # the deadline second itself is still in time
    assert [r.exchange.exchange_id for r in store.due(2_001)] == ["xch_due_000000001"]
    assert [r.exchange.exchange_id for r in store.due(5_001)] == [
        "xch_due_000000001",
        "xch_later_0000001",
    ]


def test_handled_applied_and_mailboxes(store: ExchangeStore) -> None:
    assert not store.is_handled("$x") and not store.applied("$x")
    store.put(_offered(), room_id=ROOM, peer=PEER, now=1, applied_event_id="$x")
    assert store.applied("$x") and not store.is_handled("$x")
    store.mark_handled("$x", 2)
    store.mark_handled("$x", 3)  # idempotent
    assert store.is_handled("$x")
    assert store.peer_of_room(ROOM) is None
    store.remember_mailbox(PEER, ROOM)
    store.remember_mailbox(PEER, "!newer:localhost")
    assert store.peer_of_room("!newer:localhost") == PEER
    assert store.peer_of_room(ROOM) is None


def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "exchanges.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(StoreError, match="schema version 99"):
        ExchangeStore.open(path)


def test_a_damaged_row_is_a_store_error_not_a_crash(tmp_path: Path, store: ExchangeStore) -> None:
    store.put(_offered(), room_id=ROOM, peer=PEER, now=1)
    db = sqlite3.connect(tmp_path / "exchanges.sqlite")
    db.execute("UPDATE exchanges SET state = 'teleported'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="unreadable"):
        store.get("xch_store_0000001")


def test_a_directory_in_the_way_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "exchanges.sqlite").mkdir()
    with pytest.raises(StoreError):
        ExchangeStore.open(tmp_path / "exchanges.sqlite")
