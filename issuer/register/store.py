"""The register database: persons, identity bindings and life events on SQLite or PostgreSQL.

The table layout and the row-level SQL live in :mod:`issuer.register.rows`; this
module is the public face: one method per question the issuer service asks,
each in its own transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any, Final

from issuer.register.files import read_register_file
from issuer.register.model import (
    BindingMethod,
    LifeEvent,
    PersonRecord,
    PlaceOfBirth,
    issuable_claims,
)
from issuer.register.rows import (
    REGISTER_SCHEMA,
    apply_move,
    identity_probe,
    insert_move_event,
    life_event,
    load_person,
    move_recorded,
    require_person,
    upsert_person,
)
from onceonly.errors import (
    AmbiguousSubject,
    IdentityBindingConflict,
    IdentityNotBound,
    MalformedInput,
    StoreError,
    UnknownSubject,
)
from onceonly.sql import SqlStore, Tx
from onceonly.types import UserId, Vct

_MATRIX_USER_ID: Final = re.compile(r"^@[^:\s]+:[^\s]+$")


class Register(SqlStore):
    """An agency's register: the source of truth for what it attests.

    Open with :meth:`open` (a SQLite path or a ``postgresql://`` DSN); the
    constructor only stores the connection.
    """

    SCHEMA = REGISTER_SCHEMA

    # --- records -------------------------------------------------------------------

    def put_person(self, record: PersonRecord) -> None:
        """Insert or replace a person's identifying attributes and claim values.

        Bindings and life events of an existing person are kept.
        """
        with self._db.write() as tx:
            upsert_person(tx, record)

    def import_file(self, path: Path) -> tuple[int, int]:
        """Load a JSON or CSV register file (see :mod:`issuer.register.files`) atomically.

        Persons are inserted or replaced; each move in the file not yet reflected in
        the register is recorded as a pending life event, so importing the same file
        twice records nothing new.

        Returns:
            ``(persons, moves)``: how many persons were written and how many moves
            became new life events.

        Raises:
            MalformedInput: the file is invalid (the message names file and line).
            UnknownSubject: a move names a person without a residence record.
            StoreError: the database failed.
        """
        content = read_register_file(path)
        recorded = 0
        with self._db.write() as tx:
            for record in content.persons:
                upsert_person(tx, record)
            for move in content.moves:
                # The file's persons are the state before its moves, so a move is
                # applied on every import but becomes a life event only once.
                at = int(move.recorded_at.timestamp())
                effective = apply_move(
                    tx,
                    move.person_id,
                    move.new_address,
                    at=at,
                    moved_on=date.fromisoformat(move.moved_on),
                )
                if not move_recorded(tx, move):
                    insert_move_event(tx, move.person_id, effective, at)
                    recorded += 1
        return len(content.persons), recorded

    def person(self, person_id: str) -> PersonRecord:
        """The full record of ``person_id``.

        Raises:
            UnknownSubject: no such person.
            StoreCorrupt: the stored record is no longer valid (edited by hand).
        """
        with self._db.read() as tx:
            return load_person(tx, person_id)

    def person_ids(self) -> list[str]:
        """Every person id, sorted."""
        with self._db.read() as tx:
            rows = tx.execute("SELECT person_id FROM register_persons ORDER BY person_id").all()
        return [str(person_id) for (person_id,) in rows]

    def vcts_for(self, person_id: str) -> list[Vct]:
        """The credential types the register holds values for, for ``person_id``."""
        return sorted(Vct(vct) for vct in self.person(person_id).claims)

    def claims_for(self, person_id: str, vct: str, *, as_of: date | None = None) -> dict[str, Any]:
        """The claims to sign for ``person_id`` as a ``vct`` credential.

        The result validates against the type's schema once the issuer adds
        ``iss``/``iat``/``exp``/``vct``/``cnf``/``status``.

        Args:
            person_id: The register person id.
            vct: The credential type.
            as_of: Issuance date; derives ``age_over_18`` where the type has it.

        Raises:
            UnknownSubject: no such person, or no values for ``vct`` in their record.
            StoreCorrupt: the stored values no longer satisfy the schema (edited by hand).
        """
        record = self.person(person_id)
        if vct not in record.claims:
            raise UnknownSubject(
                "the register holds no values of this credential type for the person",
                detail={"vct": vct},
            )
        return issuable_claims(record, Vct(vct), as_of=as_of)

    # --- identity matching -----------------------------------------------------------

    def find_person(self, identity_claims: Mapping[str, Any]) -> str:
        """The one person whose identifying attributes match a PID's claims exactly.

        Given name, family name and birthdate must be equal (after Unicode NFC).
        Every part of the place of birth a record knows (locality, country) must
        also be presented and equal: a record is never matched on less than it
        knows, so withholding ``place_of_birth`` cannot pick one of two namesakes
        born the same day, even in a register that holds only one of them. Parts
        a record does not know cannot rule it out.

        Raises:
            MalformedInput: a required claim is missing or not a string.
            UnknownSubject: no record matches.
            AmbiguousSubject: more than one record matches, or a record matches only
                because the claims withhold a part of the place of birth it knows.
        """
        probe = identity_probe(identity_claims)
        with self._db.read() as tx:
            rows = tx.execute(
                "SELECT person_id, pob_locality, pob_country FROM register_persons"
                " WHERE family_name = ? AND given_name = ? AND birthdate = ?",
                (probe.family_name, probe.given_name, probe.birthdate),
            ).all()
        wanted = probe.place_of_birth or PlaceOfBirth()
        candidates: list[str] = []
        unconfirmed = False
        for person_id, locality, country in rows:
            verdicts = [
                _compare_part(locality, wanted.locality),
                _compare_part(country, wanted.country),
            ]
            if _Part.DIFFERS in verdicts:
                continue
            if _Part.WITHHELD in verdicts:
                unconfirmed = True
                continue
            candidates.append(str(person_id))
        if unconfirmed:
            # A namesake of the requester may be the one registered here; only the
            # withheld part could tell, so refuse rather than bind the wrong person.
            raise AmbiguousSubject(
                "the presented identity withholds the place of birth this register"
                " needs to tell namesakes apart"
            )
        if not candidates:
            raise UnknownSubject("no register record matches the presented identity")
        if len(candidates) > 1:
            # No count or ids in the error: it may travel to the requester, and how
            # many namesakes share a birthday is nobody else's business.
            raise AmbiguousSubject("several register records match the presented identity")
        return candidates[0]

    def person_for_eid_card(self, card_number: str) -> str:
        """The person holding the (simulated) eID card ``card_number``.

        Raises:
            UnknownSubject: no person has this card number.
        """
        with self._db.read() as tx:
            row = tx.execute(
                "SELECT person_id FROM register_persons WHERE eid_card_number = ?",
                (card_number,),
            ).one()
        if row is None:
            raise UnknownSubject("no register record has this eID card number")
        return str(row[0])

    # --- Matrix account bindings -------------------------------------------------------

    def bind_matrix_user(
        self, person_id: str, matrix_user_id: str, method: BindingMethod | str, at: int
    ) -> None:
        """Record that ``matrix_user_id`` belongs to ``person_id``.

        Binding an account again to the same person keeps the first binding.

        Args:
            person_id: The register person.
            matrix_user_id: ``@localpart:server``.
            method: How the identity was established (a :class:`BindingMethod`).
            at: When, Unix seconds.

        Raises:
            MalformedInput: bad user id or unknown method.
            UnknownSubject: no such person.
            IdentityBindingConflict: the account is bound to another person.
        """
        if not _MATRIX_USER_ID.match(matrix_user_id):
            raise MalformedInput(f"not a Matrix user id: {matrix_user_id!r}")
        try:
            checked_method = BindingMethod(method)
        except ValueError:
            raise MalformedInput(f"unknown identity binding method {method!r}") from None
        with self._db.write() as tx:
            require_person(tx, person_id)
            owner = _claim_binding(tx, matrix_user_id, person_id, checked_method, at)
        if owner != person_id:
            raise IdentityBindingConflict(
                "this Matrix account is already bound to another register identity",
                detail={"matrix_user_id": matrix_user_id},
            )

    def unbind_matrix_user(self, matrix_user_id: str) -> None:
        """Forget the binding of ``matrix_user_id``.

        Raises:
            IdentityNotBound: the account is not bound.
        """
        with self._db.write() as tx:
            row = tx.execute(
                "DELETE FROM register_bindings WHERE matrix_user_id = ? RETURNING person_id",
                (matrix_user_id,),
            ).one()
        if row is None:
            raise IdentityNotBound("this Matrix account is not bound to a register identity")

    def person_for_matrix_user(self, user_id: UserId | str) -> str:
        """The person bound to Matrix account ``user_id``.

        Raises:
            IdentityNotBound: the account is not bound.
        """
        with self._db.read() as tx:
            row = tx.execute(
                "SELECT person_id FROM register_bindings WHERE matrix_user_id = ?", (user_id,)
            ).one()
        if row is None:
            raise IdentityNotBound("this Matrix account is not bound to a register identity")
        return str(row[0])

    def matrix_users_of(self, person_id: str) -> list[UserId]:
        """The Matrix accounts bound to ``person_id`` (to deliver proactive offers)."""
        with self._db.read() as tx:
            rows = tx.execute(
                "SELECT matrix_user_id FROM register_bindings WHERE person_id = ?"
                " ORDER BY bound_at, matrix_user_id",
                (person_id,),
            ).all()
        return [UserId(str(user)) for (user,) in rows]

    # --- life events ---------------------------------------------------------------

    def record_move(
        self,
        person_id: str,
        new_address: Mapping[str, Any],
        at: int,
        *,
        moved_on: date | None = None,
    ) -> LifeEvent:
        """Register a move: update the residence and record a pending life event.

        Args:
            person_id: Who moved.
            new_address: The residence ``address`` claim object.
            at: When the register records it, Unix seconds.
            moved_on: When the move took effect (``registered_since``); the UTC
                date of ``at`` when omitted.

        Returns:
            The pending event, for the service to turn into a proactive offer.

        Raises:
            UnknownSubject: no such person, or no residence record for them.
            MalformedInput: the address does not satisfy the residence schema.
        """
        with self._db.write() as tx:
            effective = apply_move(tx, person_id, new_address, at=at, moved_on=moved_on)
            return insert_move_event(tx, person_id, effective, at)

    def pending_life_events(self) -> list[LifeEvent]:
        """Life events not yet handled, oldest first."""
        with self._db.read() as tx:
            rows = tx.execute(
                "SELECT event_id, person_id, kind, vct, effective_on, recorded_at, handled_at"
                " FROM register_life_events WHERE handled_at IS NULL ORDER BY event_id"
            ).all()
        return [life_event(row) for row in rows]

    def mark_life_event_handled(self, event_id: int, at: int) -> None:
        """Mark a life event handled (the offer went out).

        Raises:
            MalformedInput: no pending event has this id.
        """
        with self._db.write() as tx:
            row = tx.execute(
                "UPDATE register_life_events SET handled_at = ?"
                " WHERE event_id = ? AND handled_at IS NULL RETURNING event_id",
                (at, event_id),
            ).one()
        if row is None:
            raise MalformedInput(f"no pending life event {event_id}")


class _Part(Enum):
    """How a presented part of the place of birth compares with a record's."""

    AGREES = "agrees"  # equal, or the record does not know this part
    DIFFERS = "differs"
    WITHHELD = "withheld"  # the record knows it, the claims do not show it


def _compare_part(recorded: str | None, presented: str | None) -> _Part:
    if recorded is None:
        return _Part.AGREES
    if presented is None:
        return _Part.WITHHELD
    return _Part.AGREES if presented == recorded else _Part.DIFFERS


def _claim_binding(
    tx: Tx, matrix_user_id: str, person_id: str, method: BindingMethod, at: int
) -> str:
    """Bind the account to ``person_id`` unless it is bound already; return its person.

    Insert-or-nothing rather than look-then-insert: on PostgreSQL two processes
    binding the same new account would both find no row, and the second insert
    would fail on the primary key. ``ON CONFLICT`` instead waits for the first
    to commit, and the next statement sees its row.
    """
    inserted = tx.execute(
        "INSERT INTO register_bindings (matrix_user_id, person_id, method, bound_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (matrix_user_id) DO NOTHING RETURNING person_id",
        (matrix_user_id, person_id, method.value, at),
    ).one()
    if inserted is not None:
        return person_id
    existing = tx.execute(
        "SELECT person_id FROM register_bindings WHERE matrix_user_id = ?", (matrix_user_id,)
    ).one()
    if existing is None:  # unbound by another process between the two statements
        raise StoreError("the Matrix account was unbound meanwhile; try again")
    return str(existing[0])
