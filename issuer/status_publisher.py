"""Publishing the agency's status lists, and revoking credentials.

Each status list the registry holds is signed as a Token Status List in both
forms the draft defines (JWT ``statuslist+jwt`` and CWT ``statuslist+cwt``) and

- written as files, ``<n>.jwt`` and ``<n>.cwt`` per list (``n`` the last segment
  of the list URI), for serving at the URI or handing to an auditor;
- set as ``status.list`` state (JWT form; state key = the list URI) in the
  agency's public status room, where verifiers read it through Matrix
  (:mod:`onceonly.status_fetch`).

Revocation flips the entries in the status registry (final: a revoked entry
never becomes valid again); the caller republishes afterwards.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from issuer.config import AgencyConfig
from issuer.issuance_log import IssuanceLog, IssuanceRecord
from issuer.status_registry import (
    DEFAULT_TOKEN_TTL_SECONDS,
    DEFAULT_TOKEN_VALIDITY_SECONDS,
    StatusRegistry,
)
from onceonly.errors import MalformedInput
from onceonly.jose import PrivateKey
from onceonly.matrix.accounts import Credentials
from onceonly.matrix.state_rooms import ensure_public_room, put_state, state_client
from onceonly.protocol import StatusListState, to_content
from onceonly.status_fetch import STATUS_LIST_EVENT_TYPE, status_room_alias
from onceonly.status_list import INVALID
from onceonly.types import EventId, RoomId

_FILE_STEM: Final = re.compile(r"[A-Za-z0-9._-]{1,100}")


@dataclass(frozen=True)
class SignedStatusList:
    """One status list, signed in both forms.

    Attributes:
        uri: The list URI (``sub`` of both tokens).
        jwt: The compact JWS.
        cwt: The encoded COSE_Sign1 CWT.
        issued_at: ``iat`` of both.
        ttl: The ``ttl`` claim: how long consumers may cache.
    """

    uri: str
    jwt: str
    cwt: bytes
    issued_at: int
    ttl: int

    @property
    def file_stem(self) -> str:
        """The file name stem: the URI's last path segment (``1`` for ``.../status/1``)."""
        stem = self.uri.rstrip("/").rsplit("/", 1)[-1]
        if not _FILE_STEM.fullmatch(stem) or stem in {".", ".."}:
            raise MalformedInput("status list URI does not end in a usable file name")
        return stem


def sign_status_lists(
    registry: StatusRegistry,
    key: PrivateKey,
    *,
    now: int,
    validity: int = DEFAULT_TOKEN_VALIDITY_SECONDS,
    ttl: int = DEFAULT_TOKEN_TTL_SECONDS,
) -> list[SignedStatusList]:
    """Sign every list of ``registry`` (oldest first) as JWT and CWT.

    Args:
        registry: The agency's status registry.
        key: The agency's active signing key (listed in the trust list).
        now: ``iat``.
        validity: Seconds until ``exp``; republish before that.
        ttl: The ``ttl`` claim.
    """
    return [
        SignedStatusList(
            uri=uri,
            jwt=registry.sign_jwt(uri, key, now=now, validity=validity, ttl=ttl),
            cwt=registry.sign_cwt(uri, key, now=now, validity=validity, ttl=ttl),
            issued_at=now,
            ttl=ttl,
        )
        for uri in registry.list_uris()
    ]


def write_status_files(lists: Sequence[SignedStatusList], directory: Path) -> list[Path]:
    """Write ``<n>.jwt`` and ``<n>.cwt`` per list into ``directory`` (atomically each).

    Returns:
        The paths written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for signed in lists:
        for suffix, data in ((".jwt", signed.jwt.encode("ascii")), (".cwt", signed.cwt)):
            path = directory / f"{signed.file_stem}{suffix}"
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_bytes(data)
            os.replace(temporary, path)  # readers never see a half-written token
            written.append(path)
    return written


def status_state_content(signed: SignedStatusList) -> StatusListState:
    """The ``status.list`` state content for ``signed``."""
    return StatusListState(
        uri=signed.uri, token=signed.jwt, issued_at=signed.issued_at, ttl=signed.ttl
    )


async def publish_status_lists(
    credentials: Credentials, config: AgencyConfig, lists: Sequence[SignedStatusList]
) -> tuple[RoomId, list[EventId]]:
    """Set every list as state in the agency's public status room (created if missing).

    Args:
        credentials: The agency's Matrix account (it becomes the room's only admin).
        config: The agency configuration (names the room).
        lists: The signed lists.

    Returns:
        The room id and the state event ids.

    Raises:
        TransportError: the homeserver refused or is unreachable.
        InputTooLarge: a token does not fit in a state event.
    """
    alias = status_room_alias(config.matrix_user_id)
    async with state_client(credentials) as client:
        room_id, _created = await ensure_public_room(
            client,
            alias,
            name=f"Status lists: {config.name_en}",
            topic=f"Token Status Lists of {config.agency_id} (signed; no personal data)",
            state_event_types=(STATUS_LIST_EVENT_TYPE,),
        )
        event_ids = [
            await put_state(
                client,
                room_id,
                STATUS_LIST_EVENT_TYPE,
                to_content(status_state_content(signed)),
                signed.uri,
            )
            for signed in lists
        ]
    return room_id, event_ids


def revoke_credentials(
    registry: StatusRegistry,
    log: IssuanceLog,
    *,
    now: int,
    credential_id: str | None = None,
    person_id: str | None = None,
    vct: str | None = None,
) -> list[IssuanceRecord]:
    """Revoke one credential (by id) or every credential of a person (optionally of one type).

    Entries already revoked are skipped, so revoking twice is harmless.

    Args:
        registry: The status registry.
        log: The issuance log (finds the status entries).
        now: When.
        credential_id: The issuance log's credential id.
        person_id: The register person (with ``credential_id`` unset).
        vct: Only this type (with ``person_id``).

    Returns:
        The records whose entries were revoked now.

    Raises:
        MalformedInput: neither or both of ``credential_id`` and ``person_id``, or an
            unknown credential id.
    """
    if (credential_id is None) == (person_id is None):
        raise MalformedInput("name either a credential id or a person")
    if credential_id is not None:
        records = [log.by_credential_id(credential_id)]
    else:
        assert person_id is not None
        records = [r for r in log.by_person(person_id) if vct is None or r.vct == vct]
    revoked: list[IssuanceRecord] = []
    for record in records:
        if registry.entry(record.status_reference).status == INVALID:
            continue
        registry.revoke(record.status_reference, now=now)
        revoked.append(record)
    return revoked
