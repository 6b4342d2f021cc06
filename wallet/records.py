"""What the wallet store keeps, as frozen models (each is one encrypted record)."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, StringConstraints

MAX_SD_JWT_CHARS: Final = 256 * 1024

RowId = Annotated[StrictStr, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
"""Id of a stored row (credential, holder key, history entry, offer)."""

Text = Annotated[StrictStr, StringConstraints(max_length=1024)]
Timestamp = Annotated[StrictInt, Field(ge=0)]
"""Seconds since the Unix epoch."""

PathPart = StrictStr | Annotated[StrictInt, Field(ge=0)] | None

DisclosureOutcome = Literal["disclosed", "declined", "failed"]
OfferState = Literal[
    "pending", "approved", "requested", "accepted", "declined", "expired", "failed"
]
"""Progress of an issuance exchange the wallet takes part in.

``pending``: an offer waits for the citizen; ``approved``: the citizen said yes and
the request is still to be sent; ``requested``: the request (with its holder key)
went out; ``accepted``: the credential arrived, passed every check and is stored;
``declined``: the citizen said no; ``expired``: too late; ``failed``: the credential
was rejected or the request could not be made.
"""


class _Record(BaseModel):
    # Closed: a stored record with unknown members means a newer writer or tampering.
    model_config = ConfigDict(frozen=True, extra="forbid")


class StatusReference(_Record):
    """Where a credential's revocation status lives (Token Status List ``status_list``)."""

    idx: Annotated[StrictInt, Field(ge=0)]
    uri: Annotated[StrictStr, StringConstraints(min_length=1, max_length=2048)]


class StoredCredential(_Record):
    """A credential the citizen holds.

    Attributes:
        credential_id: The wallet's id for it.
        sd_jwt: The issued SD-JWT with every disclosure (``jwt~d1~...~dn~``).
        vct: Its credential type.
        issuer: The issuer (``iss``).
        received_at: When the wallet stored it.
        status: Its status list entry, if it has one.
        holder_key_id: The holder key it is bound to (``cnf``), if any.
        label: A name the citizen sees ("ID card", "Car registration").
    """

    credential_id: RowId
    sd_jwt: Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_SD_JWT_CHARS)]
    vct: Text
    issuer: Text
    received_at: Timestamp
    status: StatusReference | None = None
    holder_key_id: RowId | None = None
    label: Text = ""


class HolderKeyRecord(_Record):
    """A holder private key; only ever stored sealed (and exported encrypted)."""

    key_id: RowId
    private_jwk: dict[str, StrictStr]
    created_at: Timestamp


class DisclosureRecord(_Record):
    """One entry of the citizen's own audit log: who got what, why, when, and the outcome.

    Attributes:
        entry_id: Id of the entry.
        verifier_id: The verifier's id on the trust list.
        verifier_user: The verifier's Matrix user id.
        credential_id: The credential presented (``None`` if nothing was sent).
        claim_paths: The claim paths disclosed (or that were asked for, if declined).
        purpose: The purpose the verifier stated.
        at: When.
        outcome: ``disclosed``, ``declined`` or ``failed``.
        exchange_id: The protocol exchange it belongs to, if known.
    """

    entry_id: RowId
    verifier_id: Text
    verifier_user: Text
    credential_id: RowId | None
    claim_paths: tuple[tuple[PathPart, ...], ...]
    purpose: Text
    at: Timestamp
    outcome: DisclosureOutcome
    exchange_id: Annotated[StrictStr, StringConstraints(max_length=128)] | None = None


class PendingOffer(_Record):
    """An issuance exchange (an issuer's offer, or a request the wallet opened) and its progress.

    Attributes:
        offer_id: Id of the offer (the exchange id).
        issuer: Who offers it.
        vct: What it would be.
        received_at: When the offer arrived.
        state: Where it stands.
        issuer_user: The agency's Matrix account (the only sender accepted for it).
        nonce: The offer's nonce (the key proof signs it); for a request the wallet
            opened itself, the nonce it chose.
        expires_at: When the offer (and its nonce) becomes void.
        offer_event_id: The Matrix event of the offer.
        holder_key_id: The holder key created for this exchange (set once requested).
        reason: Why it was offered, in words, for display.
        credential_id: The stored credential, once accepted.
    """

    offer_id: RowId
    issuer: Text
    vct: Text
    received_at: Timestamp
    state: OfferState = "pending"
    issuer_user: Text | None = None
    nonce: Text | None = None
    expires_at: Timestamp | None = None
    offer_event_id: Text | None = None
    holder_key_id: RowId | None = None
    reason: Text = ""
    credential_id: RowId | None = None


KnownStatus = Literal["valid", "revoked", "suspended"]
"""A credential's status as its issuer's status list last told the wallet."""


class CredentialStatusRecord(_Record):
    """What the wallet last learnt from a credential's status list.

    ``revoked`` is final (the status list draft's INVALID never goes back); a
    ``suspended`` credential may become ``valid`` again at a later check.

    Attributes:
        credential_id: The credential.
        state: ``valid``, ``revoked`` or ``suspended``.
        checked_at: When the verified status list said so.
        list_uri: The status list consulted.
    """

    credential_id: RowId
    state: KnownStatus
    checked_at: Timestamp
    list_uri: Annotated[StrictStr, StringConstraints(min_length=1, max_length=2048)]


DeviceState = Literal["approved", "revoked"]


class ApprovedDevice(_Record):
    """Another device of the citizen's account she approved (or later revoked).

    The keys are the ones the wallet saw when she approved it; a device that
    later shows other keys under the same id is a different device.

    Attributes:
        device_id: The Matrix device id.
        ed25519: Its Ed25519 identity key (Element's "session key").
        curve25519: Its Curve25519 identity key.
        display_name: The device's own name at approval time (for display only).
        state: ``approved``, or ``revoked`` once she withdrew it.
        changed_at: When it was approved or revoked.
        announced: Whether a device list reflecting this state went to the agencies.
    """

    device_id: Annotated[StrictStr, StringConstraints(pattern=r"^[^\s]{1,128}$")]
    ed25519: Annotated[StrictStr, StringConstraints(pattern=r"^[A-Za-z0-9+/]{43}$")]
    curve25519: Annotated[StrictStr, StringConstraints(pattern=r"^[A-Za-z0-9+/]{43}$")]
    display_name: Text | None = None
    state: DeviceState = "approved"
    changed_at: Timestamp
    announced: bool = False


class DamagedRecord(_Record):
    """A stored row that could not be read (its seal fails or it does not decode).

    Listed instead of the record by the commands that read everything (``list``,
    ``export``), and carried in a backup so that an incomplete backup says so.

    Attributes:
        table: The wallet table (``credentials``, ``holder_keys``, ...).
        row_id: The row's id (ids are stored in the clear; the content is lost).
    """

    table: Text
    row_id: Text


def path_to_json(path: tuple[Any, ...]) -> list[Any]:
    """A claim path as a JSON array (for display and export)."""
    return list(path)
