"""Whether the status lists changed since they were last published to the status room.

A revocation is final the moment the status registry records it; verifiers learn
it only once the signed list is in the agency's public status room. When the
homeserver is unreachable, the revocation stays recorded and the publication
*pending* here, across processes: the running issuer service, the next
``issuer revoke`` or ``issuer publish`` publishes every list and clears it.

Two counters in one row, so that a change made while a publication is under way
is never cleared by it: a change raises ``requested``; a publisher reads
``requested`` *before* signing the lists and, once the room holds them, raises
``published`` to that value. Pending means ``requested > published``.
"""

from __future__ import annotations

from typing import Final

from onceonly.sql import Schema, SqlStore

_SCHEMA: Final = Schema(
    "issuer status publication",
    1,
    (
        "CREATE TABLE IF NOT EXISTS issuer_status_publication ("
        " id INTEGER PRIMARY KEY CHECK (id = 1),"
        " requested BIGINT NOT NULL,"
        " published BIGINT NOT NULL,"
        " requested_at BIGINT)",
        "INSERT INTO issuer_status_publication (id, requested, published)"
        " VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING",
    ),
)


class StatusPublication(SqlStore):
    """The pending-publication marker of an agency's status lists (in the issuer database).

    Open with :meth:`open`; the constructor only stores the connection.
    """

    SCHEMA = _SCHEMA

    def request(self, *, now: int) -> None:
        """Note that the lists changed (call before changing them) and must be published."""
        with self._db.write() as tx:
            tx.execute(
                "UPDATE issuer_status_publication SET requested = requested + 1,"
                " requested_at = ? WHERE id = 1",
                (now,),
            )

    def snapshot(self) -> int:
        """The change counter now; pass it to :meth:`published` once the lists signed after
        this call are in the status room."""
        with self._db.read() as tx:
            row = tx.execute("SELECT requested FROM issuer_status_publication WHERE id = 1").one()
        return 0 if row is None else int(row[0])

    def published(self, snapshot: int) -> None:
        """Record that every change up to ``snapshot`` is published."""
        with self._db.write() as tx:
            tx.execute(
                "UPDATE issuer_status_publication SET published = ? WHERE id = 1 AND published < ?",
                (snapshot, snapshot),
            )

    @property
    def pending(self) -> bool:
        """Whether a change is not yet published."""
        with self._db.read() as tx:
            row = tx.execute(
                "SELECT requested, published FROM issuer_status_publication WHERE id = 1"
            ).one()
        return row is not None and int(row[0]) > int(row[1])
