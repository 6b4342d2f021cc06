"""The issuance log on SQLite and PostgreSQL: records without claim values, and lookups."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from issuer.issuance_log import IssuanceLog, IssuanceRecord, credential_digest
from onceonly.errors import MalformedInput, StoreError, UnknownStatusEntry
from onceonly.jose import b64url_encode
from onceonly.status_list import StatusReference

RESIDENCE = "urn:onceonly:credential:residence:1"
PID = "urn:onceonly:credential:pid:1"
LIST = "https://meldebehoerde.berlin.example/status/1"
NOW = 1_800_000_000


def entry(n: int, **overrides: Any) -> IssuanceRecord:
    fields: dict[str, Any] = {
        "credential_id": f"cred-{n}",
        "person_id": "MB-0001",
        "matrix_user_id": "@juergen:localhost",
        "vct": RESIDENCE,
        "status_list_uri": LIST,
        "status_index": 1000 + n,
        "issued_at": NOW + n,
        "expires_at": NOW + n + 365 * 86_400,
        "credential_digest": credential_digest(f"header.payload{n}.signature~disclosure~"),
        "signing_kid": "kid-1",
    }
    fields.update(overrides)
    return IssuanceRecord(**fields)


@pytest.fixture
def log(target: str) -> Iterator[IssuanceLog]:
    with IssuanceLog.open(target) as opened:
        yield opened


def test_digest_covers_only_the_issuer_signed_jwt() -> None:
    issued = "eyJh.eyJi.c2ln~WyJzYWx0IiwiYSIsMV0~WyJzYWx0MiIsImIiLDJd~"
    presented = "eyJh.eyJi.c2ln~WyJzYWx0MiIsImIiLDJd~kb.jwt.sig"
    expected = b64url_encode(hashlib.sha256(b"eyJh.eyJi.c2ln").digest())
    assert credential_digest(issued) == credential_digest(presented) == expected


def test_record_and_query_by_person_status_and_user(log: IssuanceLog) -> None:
    first, second = entry(1), entry(2, vct=PID)
    other = entry(3, person_id="MB-0002", matrix_user_id="@anna:localhost")
    for item in (second, other, first):
        log.record(item)
    assert log.by_person("MB-0001") == [first, second]
    assert log.by_person("MB-0404") == []
    assert log.by_matrix_user("@anna:localhost") == [other]
    assert log.by_status(StatusReference(idx=1002, uri=LIST)) == second
    assert log.by_status(second.status_reference) == second
    assert log.by_credential_id("cred-3") == other
    assert log.by_digest(first.credential_digest) == first
    assert log.by_digest(credential_digest("unknown.jwt.x")) is None
    assert log.count_by_vct() == {RESIDENCE: 2, PID: 1}


def test_unknown_lookups(log: IssuanceLog) -> None:
    log.record(entry(1))
    with pytest.raises(UnknownStatusEntry):
        log.by_status(StatusReference(idx=1001, uri=LIST + "x"))
    with pytest.raises(UnknownStatusEntry):
        log.by_status(StatusReference(idx=7, uri=LIST))
    with pytest.raises(MalformedInput):
        log.by_credential_id("cred-404")


@pytest.mark.parametrize(
    "clash",
    [
        {"credential_id": "cred-1"},
        {"status_index": 1001},
        {"credential_digest": credential_digest("header.payload1.signature")},
    ],
)
def test_duplicates_are_refused(log: IssuanceLog, clash: dict[str, Any]) -> None:
    log.record(entry(1))
    with pytest.raises(StoreError, match="already recorded"):
        log.record(entry(2, **clash))
    assert [r.credential_id for r in log.by_person("MB-0001")] == ["cred-1"]


def test_same_index_in_another_list_is_fine(log: IssuanceLog) -> None:
    log.record(entry(1))
    log.record(entry(2, status_index=1001, status_list_uri=LIST.replace("/1", "/2")))
    assert len(log.by_person("MB-0001")) == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"matrix_user_id": "juergen"},
        {"status_index": -1},
        {"credential_digest": "not-a-digest"},
        {"credential_id": ""},
        {"expires_at": NOW},
        {"given_name": "Jürgen"},  # claim values have no place in the log
    ],
)
def test_record_model_refuses_bad_fields(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        entry(1, **bad)


def test_the_table_has_no_claim_columns(target: str, log: IssuanceLog) -> None:
    log.record(entry(1))
    if target.endswith(".sqlite3"):
        import sqlite3

        with sqlite3.connect(target) as conn:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(issuance_log)")}
    else:
        import psycopg

        with psycopg.connect(target) as conn:
            rows = conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'issuance_log' AND table_schema = current_schema()"
            ).fetchall()
        columns = {row[0] for row in rows}
    assert columns == set(IssuanceRecord.model_fields)
    assert not columns & {"given_name", "family_name", "birthdate", "address", "claims"}


def test_log_shares_a_database_with_the_register(tmp_path: Path) -> None:
    from issuer.register import Register

    path = str(tmp_path / "issuer.sqlite3")
    with Register.open(path) as register, IssuanceLog.open(path) as log:
        log.record(entry(1))
        assert register.person_ids() == []
        assert log.by_person("MB-0001") == [entry(1)]


def test_log_persists_across_reopen(target: str) -> None:
    with IssuanceLog.open(target) as log:
        log.record(entry(1))
    with IssuanceLog.open(target) as log:
        assert log.by_credential_id("cred-1") == entry(1)


def test_racing_duplicate_records_let_exactly_one_through(target: str) -> None:
    with IssuanceLog.open(target):
        pass  # create the table before the race

    def attempt(_: int) -> bool:
        with IssuanceLog.open(target) as own:
            try:
                own.record(entry(1))
            except StoreError:
                return False
            return True

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count(True) == 1
    with IssuanceLog.open(target) as check:
        assert check.by_person("MB-0001") == [entry(1)]
