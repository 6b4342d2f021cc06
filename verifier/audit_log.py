"""The verifier's append-only, hash-chained audit log, with signed heads and file export.

Every request the verifier sends, every presentation it receives (verbatim),
every verdict and every status it reports is one entry whose hash covers the
previous entry's hash (format: :mod:`verifier.audit_format`). Periodically, every
``head_every`` entries and whenever :meth:`AuditLog.sign_head` is called, the
verifier signs the current head, so an auditor holding the verifier's public key
can tell whether anything up to that point was deleted, altered or reordered.

Storage is SQLite (one verifier process) or PostgreSQL (several processes). The
chain has exactly one tip, kept in the single row of ``audit_head``: an append
reads and advances it inside one transaction that holds the write lock
(``BEGIN IMMEDIATE`` in SQLite, ``SELECT ... FOR UPDATE`` in PostgreSQL), so
concurrent appenders are serialised and the chain never forks.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from pydantic import ValidationError

from onceonly.errors import ConfigError, MalformedInput, StoreError
from onceonly.jose import PrivateKey, json_dumps_compact
from onceonly.sql import Database, Schema, SqlHandle, Tx, open_schema
from verifier.audit_format import (
    AuditEntry,
    EntryKind,
    ExportHeadPayload,
    StatusListVersion,
    TrustListVersion,
    VerificationOutcome,
    build_entry,
    export_final_line,
    export_head_line,
    export_header_line,
    genesis_hash,
    sign_export_head,
    sign_head,
)

DEFAULT_HEAD_EVERY: Final = 100
_EXPORT_BATCH: Final = 500
_TIP: Final = "SELECT log_id, seq, entry_hash FROM audit_head WHERE id = 1"
_SCHEMA: Final = Schema(
    "verifier audit log",
    1,
    (
        # The single row (id = 1) is the chain's tip: appenders lock it to serialise.
        """
    CREATE TABLE IF NOT EXISTS audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        log_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        entry_hash TEXT NOT NULL
    )
    """,
        # The entry is kept as the exact JSON that was hashed, so an export reproduces
        # it byte for byte (and reproduces any tampering with the table too).
        """
    CREATE TABLE IF NOT EXISTS audit_entries (
        seq BIGINT PRIMARY KEY,
        exchange_id TEXT NOT NULL,
        entry TEXT NOT NULL
    )
    """,
        "CREATE INDEX IF NOT EXISTS audit_entries_exchange ON audit_entries (exchange_id)",
        """
    CREATE TABLE IF NOT EXISTS audit_signed_heads (
        seq BIGINT NOT NULL,
        time BIGINT NOT NULL,
        jws TEXT NOT NULL
    )
    """,
        "CREATE INDEX IF NOT EXISTS audit_signed_heads_seq ON audit_signed_heads (seq)",
    ),
)


@dataclass(frozen=True)
class ExportSummary:
    """What :meth:`AuditLog.export` wrote.

    Attributes:
        log_id: The log's identifier.
        entries: Number of entries written.
        heads: Number of signed heads written.
        last_seq: The highest ``seq`` written (0 for an empty log).
        export_head: Whether the export ends with a signed export head (only a log
            opened with its signing key can sign one).
    """

    log_id: str
    entries: int
    heads: int
    last_seq: int
    export_head: bool = False


class AuditLog(SqlHandle):
    """One verifier's audit log in a database. Create with :meth:`open`.

    One instance per process (or thread); several processes may append to the
    same PostgreSQL log (or the same SQLite file) at once.
    """

    def __init__(
        self,
        database: Database,
        *,
        log_id: str,
        signing_key: PrivateKey | None,
        head_every: int,
    ) -> None:
        super().__init__(database)
        self._log_id = log_id
        self._signing_key = signing_key
        self._head_every = head_every

    @classmethod
    def open(
        cls,
        location: str | os.PathLike[str],
        *,
        signing_key: PrivateKey | None = None,
        head_every: int = DEFAULT_HEAD_EVERY,
        log_id: str | None = None,
    ) -> AuditLog:
        """Open the audit log at ``location``, creating it (and its log id) if needed.

        Args:
            location: SQLite file path or ``postgresql://`` DSN.
            signing_key: The verifier's key for signing heads. Without it the log
                can be read and exported but heads are not signed.
            head_every: Sign a head automatically every this many entries (0: never).
            log_id: Identifier for a new log (a random UUID by default). For an
                existing log it must match the stored one.

        Raises:
            StoreError: the database failed or has another schema version.
            ConfigError: ``log_id`` differs from the existing log's, or ``head_every`` < 0.
        """
        if head_every < 0:
            raise ConfigError("head_every must be >= 0")
        database = open_schema(location, _SCHEMA)
        try:
            proposed = log_id or str(uuid.uuid4())
            with database.write() as tx:
                # Atomic create-if-absent: the first process to open the log names it.
                tx.execute(
                    "INSERT INTO audit_head (id, log_id, seq, entry_hash) VALUES (1, ?, 0, ?)"
                    " ON CONFLICT (id) DO NOTHING",
                    (proposed, genesis_hash(proposed)),
                )
                (stored,) = tx.execute("SELECT log_id FROM audit_head WHERE id = 1").one()
            if log_id is not None and stored != log_id:
                raise ConfigError(f"the log at this location is {stored!r}, not {log_id!r}")
        except BaseException:
            database.close()
            raise
        return cls(database, log_id=stored, signing_key=signing_key, head_every=head_every)

    @property
    def log_id(self) -> str:
        """The log's identifier (bound into its genesis hash and every signed head)."""
        return self._log_id

    def append(
        self,
        *,
        kind: EntryKind,
        exchange_id: str,
        now: int,
        presentation: str | None = None,
        outcome: VerificationOutcome | None = None,
        trust_list: TrustListVersion | None = None,
        status_lists: tuple[StatusListVersion, ...] = (),
        details: Mapping[str, str] | None = None,
    ) -> AuditEntry:
        """Append one entry to the chain (and sign a head if one is due).

        Args:
            kind: What happened.
            exchange_id: The exchange it belongs to.
            now: Current time, epoch seconds.
            presentation: The presentation exactly as received.
            outcome: The verification verdict.
            trust_list: The trust list version the verdict used.
            status_lists: The status list versions the verdict used.
            details: Other facts, as strings.

        Returns:
            The entry as stored, with its ``seq`` and hashes.

        Raises:
            MalformedInput: a field has the wrong type or shape.
            StoreError: the database failed (nothing was appended).
        """
        with self._db.write() as tx:
            # The tip row is locked until commit, so appenders take turns.
            _, tip_seq, tip_hash = _read_tip(tx, lock=True)
            try:
                entry = build_entry(
                    seq=tip_seq + 1,
                    time=now,
                    kind=kind,
                    exchange_id=exchange_id,
                    prev_hash=tip_hash,
                    presentation=presentation,
                    outcome=outcome,
                    trust_list=trust_list,
                    status_lists=status_lists,
                    details=details,
                )
            except ValidationError as exc:
                raise MalformedInput(
                    f"invalid audit entry: {exc.error_count()} problem(s)"
                ) from exc
            tx.execute(
                "INSERT INTO audit_entries (seq, exchange_id, entry) VALUES (?, ?, ?)",
                (entry.seq, entry.exchange_id, json_dumps_compact(entry.to_json())),
            )
            tx.execute(
                "UPDATE audit_head SET seq = ?, entry_hash = ? WHERE id = 1",
                (entry.seq, entry.entry_hash),
            )
            due = self._head_every > 0 and entry.seq % self._head_every == 0
            if due and self._signing_key is not None:
                self._store_head(tx, entry.seq, entry.entry_hash, now)
        return entry

    def sign_head(self, *, now: int) -> str:
        """Sign the current head now (e.g. before an export or at shutdown).

        Returns:
            The compact JWS, also stored beside the log.

        Raises:
            ConfigError: the log was opened without a signing key.
            StoreError: the database failed.
        """
        if self._signing_key is None:
            raise ConfigError("no signing key: the audit log was opened read-only for heads")
        with self._db.write() as tx:
            _, tip_seq, tip_hash = _read_tip(tx, lock=True)
            return self._store_head(tx, tip_seq, tip_hash, now)

    def _store_head(self, tx: Tx, seq: int, entry_hash: str, now: int) -> str:
        assert self._signing_key is not None  # callers check; keeps mypy precise
        jws = sign_head(
            self._signing_key, log_id=self._log_id, seq=seq, entry_hash=entry_hash, time=now
        )
        tx.execute(
            "INSERT INTO audit_signed_heads (seq, time, jws) VALUES (?, ?, ?)", (seq, now, jws)
        )
        return jws

    def tip(self) -> tuple[int, str]:
        """The last ``seq`` and its ``entry_hash`` (0 and the genesis hash when empty)."""
        with self._db.read() as tx:
            _, seq, entry_hash = _read_tip(tx, lock=False)
        return seq, entry_hash

    def entries(self, *, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Up to ``limit`` entries with ``seq > after_seq``, in ``seq`` order.

        Raises:
            StoreError: the database failed or holds an entry that is not valid JSON.
        """
        rows = self._db.execute(
            "SELECT entry FROM audit_entries WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        try:
            return [AuditEntry.model_validate(json.loads(row[0])) for row in rows]
        except (ValueError, ValidationError) as exc:
            raise StoreError(f"audit log holds an unreadable entry: {exc}") from exc

    def signed_heads(self) -> list[str]:
        """Every signed head (compact JWS), oldest first."""
        with self._db.read() as tx:
            return _signed_heads(tx)

    def export(self, out: Path, *, now: int) -> ExportSummary:
        """Write the log as JSON Lines for an auditor (atomically: a temp file, then rename).

        Entries are copied verbatim from the database, so an export shows the log
        as stored, tampering included; it never repairs anything. With the signing
        key, the export ends with an export head signed now over the exact last entry
        written (and the number of entries), so cutting the export's tail is visible.

        Args:
            out: The file to write.
            now: Export time (epoch seconds), recorded in the first line.

        Raises:
            StoreError: the database or the file system failed.
        """
        partial = out.with_name(out.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8", newline="\n") as stream:
                summary = self._write_export(stream, now=now)
            os.replace(partial, out)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise StoreError(f"cannot write export {out.name!r}: {exc.strerror}") from exc
        return summary

    def _write_export(self, stream: TextIO, *, now: int) -> ExportSummary:
        stream.write(export_header_line(log_id=self._log_id, exported_at=now) + "\n")
        count = last_seq = 0
        last_text: str | None = None
        # One snapshot, so the heads written below never name entries missing above.
        with self._db.read() as tx:
            for seq, text in _iter_entry_rows(tx):
                stream.write('{"entry":' + text + "}\n")
                count, last_seq, last_text = count + 1, seq, text
            heads = _signed_heads(tx)
        for head in heads:
            stream.write(export_head_line(head) + "\n")
        if self._signing_key is not None:
            payload = ExportHeadPayload(
                seq=last_seq,
                entry_hash=_stored_hash(last_text) if last_text else genesis_hash(self._log_id),
                time=now,
                entries=count,
                log_id=self._log_id,
            )
            stream.write(export_final_line(sign_export_head(self._signing_key, payload)) + "\n")
        return ExportSummary(
            log_id=self._log_id,
            entries=count,
            heads=len(heads),
            last_seq=last_seq,
            export_head=self._signing_key is not None,
        )


def _stored_hash(text: str) -> str:
    """The ``entry_hash`` an exported entry carries, as stored (tampering included)."""
    try:
        value = json.loads(text).get("entry_hash")
    except (ValueError, AttributeError):
        value = None
    # An unreadable row is exported as it is; the head then names no real hash and
    # the auditor reports the mismatch along with the unreadable line.
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value):
        return value
    return "0" * 64


def _read_tip(tx: Tx, *, lock: bool) -> tuple[str, int, str]:
    row = tx.execute(_TIP, lock=lock).one()
    if row is None:
        raise StoreError("audit log has no head row")
    log_id, seq, entry_hash = row
    return str(log_id), int(seq), str(entry_hash)


def _signed_heads(tx: Tx) -> list[str]:
    rows = tx.execute("SELECT jws FROM audit_signed_heads ORDER BY seq, time").all()
    return [str(row[0]) for row in rows]


def _iter_entry_rows(tx: Tx) -> Iterator[tuple[int, str]]:
    after = 0
    while True:
        rows = tx.execute(
            "SELECT seq, entry FROM audit_entries WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, _EXPORT_BATCH),
        ).all()
        if not rows:
            return
        for seq, text in rows:
            yield int(seq), str(text)
        after = int(rows[-1][0])
