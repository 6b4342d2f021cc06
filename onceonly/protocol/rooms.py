"""Contents that describe rooms and devices rather than one exchange.

* ``device.list`` (room event in a mailbox): the citizen's wallet-signed list of
  devices that may receive room keys.
* ``mailbox`` (state event, empty state key): marks a room as the mailbox of one
  (agency, citizen) pair, so either side finds it again after a restore.
* ``mailboxes`` (user account data): the owner's index from peer to mailbox room.
* ``trust.list`` and ``status.list`` (state events in public rooms): thin wrappers
  around the signed trust list JWT and a Token Status List JWT.

The JWTs inside are verified by their consumers (trust, status list, matrix key
handling) with keys they already trust; here only the envelope is checked.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from onceonly.protocol.fields import (
    CompactJwsStr,
    Content,
    DeviceIdStr,
    ExchangeIdStr,
    Frozen,
    MessageContent,
    RoomIdStr,
    Timestamp,
    UserIdStr,
)

DEVICE_LIST_TYP = "onceonly-device-list+jwt"
"""JOSE ``typ`` of the signed device list."""

LargeJwsStr = Annotated[
    str,
    StringConstraints(
        pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$", max_length=60 * 1024
    ),
]
"""A compact JWS up to 60 KiB (trust and status lists can be large)."""

Curve25519Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{43}$")]
Ed25519Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{43}$")]


class DeviceEntry(Frozen):
    """A device allowed to receive room keys, pinned by its Olm identity keys.

    Attributes:
        device_id: Matrix device id.
        ed25519: The device's Ed25519 fingerprint key (unpadded base64).
        curve25519: The device's Curve25519 identity key (unpadded base64).
    """

    device_id: DeviceIdStr
    ed25519: Ed25519Key
    curve25519: Curve25519Key


class DeviceListPayload(Frozen):
    """Payload of the device-list JWS (``typ`` ``onceonly-device-list+jwt``).

    Signed with the holder key bound (``cnf``) in the citizen's PID credential.

    Attributes:
        sub: The citizen's Matrix user id.
        seq: Strictly increasing; receivers ignore lists not newer than the one they hold.
        iat: When the wallet signed the list.
        devices: Every device that may receive room keys for this citizen.
    """

    sub: UserIdStr
    seq: int = Field(ge=0, le=2**53 - 1)
    iat: Timestamp
    devices: tuple[DeviceEntry, ...] = Field(min_length=1, max_length=32)


class DeviceList(MessageContent):
    """Citizen (wallet) to agency: the devices this citizen approves.

    Attributes:
        device_list: The signed list, a compact JWS whose payload is a
            :class:`DeviceListPayload`.
        exchange_id: Set when sent as part of an exchange (e.g. with a request).
    """

    EVENT_TYPE: ClassVar[str] = "device.list"

    device_list: CompactJwsStr
    exchange_id: ExchangeIdStr | None = None


class MailboxMarker(Content):
    """State of a mailbox room (state key ``""``): who the two parties are.

    Attributes:
        agency: The agency's Matrix user id.
        citizen: The citizen's Matrix user id.
    """

    EVENT_TYPE: ClassVar[str] = "mailbox"
    STATE_KEY: ClassVar[str | None] = ""

    agency: UserIdStr
    citizen: UserIdStr


class MailboxIndex(Content):
    """Account data of one party: peer user id to mailbox room id.

    Attributes:
        rooms: One mailbox per peer.
    """

    EVENT_TYPE: ClassVar[str] = "mailboxes"

    rooms: dict[UserIdStr, RoomIdStr] = Field(max_length=4096)


class TrustListState(Content):
    """State of the public trust-list room; state key = the trust authority's id.

    Attributes:
        jwt: The signed trust list.
        sequence: The list's sequence number (copied for cheap rollback checks;
            the signed value inside the JWT is authoritative).
        issued_at: When it was signed.
        expires_at: When consumers must stop using it.
    """

    EVENT_TYPE: ClassVar[str] = "trust.list"

    jwt: LargeJwsStr
    sequence: int = Field(ge=0, le=2**53 - 1)
    issued_at: Timestamp
    expires_at: Timestamp


class StatusListState(Content):
    """State of an issuer's status-list room; state key = the list's ``uri``.

    Attributes:
        uri: The URI credentials reference in ``status.status_list.uri``.
        token: The Token Status List as a JWT (``typ`` ``statuslist+jwt``).
        format: Token format; only the JWT form travels in Matrix.
        issued_at: When it was signed.
        ttl: Seconds consumers may cache it.
    """

    EVENT_TYPE: ClassVar[str] = "status.list"

    uri: Annotated[str, StringConstraints(pattern=r"^[^\s]{1,512}$")]
    token: LargeJwsStr
    format: Literal["statuslist+jwt"] = "statuslist+jwt"
    issued_at: Timestamp
    ttl: int | None = Field(default=None, ge=1, le=366 * 24 * 3600)


ROOM_EVENTS: tuple[type[Content], ...] = (
    DeviceList,
    MailboxMarker,
    MailboxIndex,
    TrustListState,
    StatusListState,
)
"""Contents that are not part of an exchange."""
