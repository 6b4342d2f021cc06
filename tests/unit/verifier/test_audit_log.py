"""verifier.audit_log: the hash chain, signed heads and export, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from onceonly import errors
from onceonly.jose import PrivateKey, generate_private_key, private_key_from_jwk, verify_compact
from onceonly.sql import open_database
from tests.unit.verifier.audit_samples import OUTCOME, T0, TRUST, append_sample
from tests.unit.verifier.processes import BARRIER_TIMEOUT_S, race
from verifier.audit import audit_file, audit_lines
from verifier.audit_format import (
    HEAD_TYP,
    EntryKind,
    compute_entry_hash,
    genesis_hash,
)
from verifier.audit_log import AuditLog


@pytest.fixture
def key() -> PrivateKey:
    return generate_private_key(kid="verifier-1")


def test_append_builds_a_chain(store_location: str, key: PrivateKey) -> None:
    with AuditLog.open(store_location, signing_key=key, log_id="log-a") as log:
        first = log.append(kind=EntryKind.REQUEST, exchange_id="ex-1", now=T0)
        second = log.append(
            kind=EntryKind.VERIFICATION,
            exchange_id="ex-1",
            now=T0 + 1,
            presentation="a~b~",
            outcome=OUTCOME,
            trust_list=TRUST,
        )
        assert (first.seq, second.seq) == (1, 2)
        assert first.prev_hash == genesis_hash("log-a")
        assert second.prev_hash == first.entry_hash
        assert second.entry_hash == compute_entry_hash(second.to_json())
        assert log.tip() == (2, second.entry_hash)
        assert log.entries() == [first, second]
        assert log.entries(after_seq=1) == [second]


def test_heads_signed_every_n_and_on_demand(store_location: str, key: PrivateKey) -> None:
    with AuditLog.open(store_location, signing_key=key, head_every=10) as log:
        for index in range(1, 26):
            append_sample(log, index)
        heads = log.signed_heads()
        assert [
            verify_compact(h, key.public(), expected_typ=HEAD_TYP).payload["seq"] for h in heads
        ] == [
            10,
            20,
        ]
        on_demand = log.sign_head(now=T0 + 100)
        payload = verify_compact(on_demand, key.public(), expected_typ=HEAD_TYP).payload
        assert payload == {
            "seq": 25,
            "entry_hash": log.tip()[1],
            "time": T0 + 100,
            "log_id": log.log_id,
        }
        assert log.signed_heads()[-1] == on_demand


def test_no_key_no_heads(store_location: str) -> None:
    with AuditLog.open(store_location, head_every=1) as log:
        append_sample(log, 1)
        assert log.signed_heads() == []
        with pytest.raises(errors.ConfigError):
            log.sign_head(now=T0)


def test_reopen_continues_the_chain(store_location: str, key: PrivateKey) -> None:
    with AuditLog.open(store_location, signing_key=key) as log:
        log_id = log.log_id
        last = log.append(kind=EntryKind.REQUEST, exchange_id="ex-1", now=T0)
    with AuditLog.open(store_location, signing_key=key) as again:
        assert again.log_id == log_id
        nxt = again.append(kind=EntryKind.RESPONSE, exchange_id="ex-1", now=T0 + 1)
        assert (nxt.seq, nxt.prev_hash) == (2, last.entry_hash)
    with pytest.raises(errors.ConfigError, match="not 'another'"):
        AuditLog.open(store_location, log_id="another")


def test_invalid_entries_rejected_and_nothing_appended(store_location: str) -> None:
    with AuditLog.open(store_location) as log:
        with pytest.raises(errors.MalformedInput):
            log.append(
                kind=EntryKind.STATUS_SENT,
                exchange_id="ex-1",
                now=T0,
                details={"count": 3},  # type: ignore[dict-item]
            )
        with pytest.raises(errors.MalformedInput):
            log.append(kind="deleted", exchange_id="ex-1", now=T0)  # type: ignore[arg-type]
        assert log.tip() == (0, genesis_hash(log.log_id))
        assert log.append(kind=EntryKind.REQUEST, exchange_id="ex-1", now=T0).seq == 1


def test_bad_head_every_rejected(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError):
        AuditLog.open(tmp_path / "a.sqlite3", head_every=-1)


def test_export_round_trip_audits_clean(
    store_location: str, key: PrivateKey, tmp_path: Path
) -> None:
    with AuditLog.open(store_location, signing_key=key, head_every=7) as log:
        for index in range(1, 41):
            append_sample(log, index)
        log.sign_head(now=T0 + 50)
        summary = log.export(tmp_path / "out.jsonl", now=T0 + 51)
    assert (summary.entries, summary.heads, summary.last_seq) == (40, 6, 40)
    assert not (tmp_path / "out.jsonl.partial").exists()
    report = audit_file(tmp_path / "out.jsonl", verifier_key=key.public())
    assert report.clean, report.findings
    assert report.log_id == summary.log_id


def test_export_reproduces_tampering_in_the_database(
    store_location: str, key: PrivateKey, tmp_path: Path
) -> None:
    with AuditLog.open(store_location, signing_key=key, head_every=5) as log:
        for index in range(1, 21):
            append_sample(log, index)
    db = open_database(store_location, store="test")
    (text,) = db.execute("SELECT entry FROM audit_entries WHERE seq = 6")[0]
    tampered = json.loads(text)
    tampered["outcome"]["verified"] = False
    tampered["outcome"]["error_code"] = "revoked"
    db.execute("UPDATE audit_entries SET entry = ? WHERE seq = 6", (json.dumps(tampered),))
    db.execute("DELETE FROM audit_entries WHERE seq = 13")
    db.close()
    with AuditLog.open(store_location, signing_key=key) as log:
        log.export(tmp_path / "out.jsonl", now=T0 + 99)
    report = audit_file(tmp_path / "out.jsonl", verifier_key=key.public())
    assert [(f.code, f.seq) for f in report.findings] == [("audit_altered", 6), ("audit_gap", 13)]


def test_export_to_unwritable_place_is_store_error(tmp_path: Path) -> None:
    with AuditLog.open(tmp_path / "a.sqlite3") as log, pytest.raises(errors.StoreError):
        log.export(tmp_path / "no-such-dir" / "out.jsonl", now=T0)


# --- several processes appending to one log ------------------------------------------


def _append_worker(
    location: str, jwk: dict[str, str], prefix: str, count: int, barrier: object
) -> None:
    with AuditLog.open(location, signing_key=private_key_from_jwk(jwk), head_every=25) as log:
        barrier.wait(timeout=BARRIER_TIMEOUT_S)  # type: ignore[attr-defined]
        for index in range(count):
            # Pause like a real verifier between events, so the writers interleave.
            time.sleep(0.0005)
            append_sample(log, index, exchange_prefix=prefix)


@pytest.mark.timeout(240)
def test_concurrent_appenders_keep_one_chain(
    store_location: str, key: PrivateKey, tmp_path: Path
) -> None:
    count = 150
    # No process creates the log beforehand: both race to create its tables and log id.
    args = [(store_location, key.to_jwk(), prefix, count) for prefix in ("alpha", "beta")]
    assert race(_append_worker, args, timeout=200) == [0, 0]
    with AuditLog.open(store_location, signing_key=key) as log:
        log.sign_head(now=T0 + 10_000)
        log.export(tmp_path / "out.jsonl", now=T0 + 10_001)
        entries = []
        while batch := log.entries(after_seq=entries[-1].seq if entries else 0):
            entries.extend(batch)
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    report = audit_lines(lines, verifier_key=key.public())
    assert report.clean, report.findings
    assert report.last_seq == 2 * count and report.valid_heads == 2 * count // 25 + 1
    writers = [entry.exchange_id.split("-")[0] for entry in entries]
    assert writers.count("alpha") == writers.count("beta") == count
    switches = sum(1 for a, b in itertools.pairwise(writers) if a != b)
    assert switches > 1, "the two writers did not interleave"
