"""The two small signed objects this protocol defines itself.

* The *key proof* in ``credential.request``: an OpenID4VCI 1.0 JWT proof (``typ``
  ``openid4vci-proof+jwt``, the holder's public key in the ``jwk`` header) over
  ``{"aud", "nonce", "iat"}``, signed with the holder key the credential will be
  bound to. It shows the requester holds that key and, through ``nonce`` and
  ``aud``, that the proof was made for this agency and this offer.
* The *device list* in ``device.list``: a compact JWS (``typ``
  ``onceonly-device-list+jwt``) over a :class:`DeviceListPayload`, signed with
  the holder key bound in the citizen's PID. Agencies share room keys only with
  the devices it lists.

Pure: keys and ``now`` are arguments; nonce bookkeeping (single use) belongs to
the caller's store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from onceonly.errors import (
    AudienceMismatch,
    Expired,
    InvalidClaim,
    InvalidSignature,
    MalformedInput,
    NonceMismatch,
    NotYetValid,
    ReplayDetected,
)
from onceonly.jose import (
    PrivateKey,
    PublicKey,
    json_dumps_compact,
    parse_compact,
    public_key_from_jwk,
    sign_compact,
    verify_compact,
)
from onceonly.protocol.events import KEY_PROOF_TYP
from onceonly.protocol.rooms import DEVICE_LIST_TYP, DeviceListPayload

KEY_PROOF_MAX_AGE: Final = 300
"""Seconds a key proof stays acceptable after its ``iat``."""

CLOCK_LEEWAY: Final = 30
"""Seconds of clock skew tolerated for ``iat`` in the future."""

IDENTITY_BINDING_CONTEXT: Final = "identity_binding"
"""``onceonly_context`` of the KB-JWT of a PID shown to an issuer in ``credential.request``.

The issuer demands it; a verifier refuses it in ``presentation.response``
(spec section 11), so a nonce the agency chose for both cannot make the one
pass for the other.
"""

_MAX_SIGNED_BYTES: Final = 16 * 1024


def make_key_proof(holder_key: PrivateKey, *, audience: str, nonce: str, now: int) -> str:
    """Sign a key proof for a credential request (an OpenID4VCI 1.0 ``jwt`` proof).

    Args:
        holder_key: The key the credential is to be bound to.
        audience: The issuing agency's trust-list id (``issuer_id`` of the offer).
        nonce: The offer's nonce, or a fresh random one when there was no offer.
        now: Current Unix time in seconds.
    """
    # OpenID4VCI: the header names the key by exactly one of kid, jwk, x5c; a
    # proof for a key not yet bound anywhere carries it as jwk.
    unnamed = dataclasses.replace(holder_key, kid=None)
    payload = {"aud": audience, "nonce": nonce, "iat": now}
    return sign_compact(
        payload, unnamed, typ=KEY_PROOF_TYP, extra_header={"jwk": unnamed.public().to_jwk()}
    )


def _proof_key(proof: str, holder_jwk: Mapping[str, Any]) -> PublicKey:
    """The key a proof names in its ``jwk`` header, which must be the request's holder key."""
    header = parse_compact(proof, max_bytes=_MAX_SIGNED_BYTES).header
    if "kid" in header or "x5c" in header:
        raise MalformedInput("key proof must name its key by jwk alone")
    header_jwk = header.get("jwk")
    if not isinstance(header_jwk, Mapping):
        raise MalformedInput("key proof header has no jwk")
    named = public_key_from_jwk(header_jwk)  # refuses private members
    holder = public_key_from_jwk(holder_jwk)
    if named.thumbprint() != holder.thumbprint():
        # Whatever it proves, it does not prove possession of the key to be bound.
        raise InvalidSignature("key proof is made with another key than holder_jwk")
    return holder


def verify_key_proof(
    proof: str,
    holder_jwk: Mapping[str, Any],
    *,
    audience: str,
    nonce: str,
    now: int,
    max_age: int = KEY_PROOF_MAX_AGE,
    leeway: int = CLOCK_LEEWAY,
) -> None:
    """Check a credential request's key proof against the key it claims to prove.

    Args:
        proof: The compact JWS from ``credential.request``.
        holder_jwk: The request's ``holder_jwk`` (the proof must verify under it).
        audience: This agency's own id.
        nonce: The nonce this agency expects (from its offer, or the request's own
            nonce after the caller checked it was never seen before).
        now: Current Unix time in seconds.
        max_age: How old ``iat`` may be.
        leeway: How far in the future ``iat`` may be.

    Raises:
        MalformedInput, UnsupportedAlgorithm, InvalidTokenType, InvalidSignature:
            the proof is not a valid JWS of this type under ``holder_jwk``, or its
            header does not name the key by ``jwk`` alone.
        InvalidSignature: also when the header's ``jwk`` is another key than ``holder_jwk``.
        AudienceMismatch: made for another agency.
        NonceMismatch: made for another offer.
        InvalidClaim: ``iat`` missing or not an integer.
        Expired: ``iat`` older than ``max_age``.
        NotYetValid: ``iat`` further in the future than ``leeway``.
    """
    key = _proof_key(proof, holder_jwk)
    jws = verify_compact(proof, key, expected_typ=KEY_PROOF_TYP, max_bytes=_MAX_SIGNED_BYTES)
    claims = jws.payload
    if claims.get("aud") != audience:
        raise AudienceMismatch("key proof was made for another audience")
    if claims.get("nonce") != nonce:
        raise NonceMismatch("key proof nonce is not the expected one")
    issued_at = claims.get("iat")
    if type(issued_at) is not int:
        raise InvalidClaim("key proof iat must be an integer")
    if issued_at > now + leeway:
        raise NotYetValid("key proof iat lies in the future")
    if issued_at < now - max_age:
        raise Expired("key proof is too old")


def sign_device_list(payload: DeviceListPayload, pid_holder_key: PrivateKey) -> str:
    """Sign a device list with the holder key bound in the citizen's PID."""
    return sign_compact(payload.model_dump(mode="json"), pid_holder_key, typ=DEVICE_LIST_TYP)


def verify_device_list(
    device_list: str,
    pid_holder_key: PublicKey,
    *,
    user_id: str,
    newer_than: int | None = None,
    now: int,
    leeway: int = CLOCK_LEEWAY,
) -> DeviceListPayload:
    """Verify a ``device.list`` JWS and return its payload.

    Args:
        device_list: The compact JWS from the ``device.list`` content.
        pid_holder_key: The ``cnf`` key of the citizen's verified PID.
        user_id: The Matrix user who sent the event; must equal ``sub``.
        newer_than: ``seq`` of the list already held; the new one must be higher.
        now: Current Unix time in seconds.
        leeway: How far in the future ``iat`` may be.

    Raises:
        MalformedInput, UnsupportedAlgorithm, InvalidTokenType, InvalidSignature:
            not a valid device-list JWS under ``pid_holder_key``.
        InvalidClaim: ``sub`` is another user.
        NotYetValid: signed in the future.
        ReplayDetected: not newer than the list already held (rollback).
    """
    jws = verify_compact(
        device_list, pid_holder_key, expected_typ=DEVICE_LIST_TYP, max_bytes=_MAX_SIGNED_BYTES
    )
    try:
        # JSON mode: strict (no coercion) yet arrays are accepted for tuple fields.
        payload = DeviceListPayload.model_validate_json(
            json_dumps_compact(jws.payload), strict=True
        )
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
        raise MalformedInput(
            "device list payload is invalid", detail={"fields": fields[:5]}
        ) from None
    if payload.sub != user_id:
        raise InvalidClaim("device list belongs to another user")
    if payload.iat > now + leeway:
        raise NotYetValid("device list iat lies in the future")
    if newer_than is not None and payload.seq <= newer_than:
        raise ReplayDetected(
            "device list is not newer than the one held",
            detail={"seq": payload.seq, "held": newer_than},
        )
    return payload
