"""Key Binding JWTs (RFC 9901 §4.3, §7.3): create and verify.

A KB-JWT proves that whoever presents the SD-JWT holds the key named in its
``cnf`` claim, for this verifier (``aud``), this request (``nonce``), now
(``iat``), and exactly these disclosures (``sd_hash``).

One claim beyond RFC 9901 §4.3 (which allows extra claims): ``onceonly_context``
names the kind of exchange the holder signed for. It is absent in an answer to
a presentation request and ``identity_binding`` in a PID shown to an issuer to
obtain a credential, so an agency that is both issuer and verifier cannot pass
one off as the other by choosing the same nonce (spec section 11).
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Collection
from typing import Final, NamedTuple

from onceonly import jose
from onceonly.errors import (
    AudienceMismatch,
    ContextMismatch,
    Expired,
    KeyBindingError,
    NonceMismatch,
    SdHashMismatch,
    UnsupportedAlgorithm,
)
from onceonly.jwt_claims import check_validity_window, numeric_date
from onceonly.sdjwt.claims import KB_JWT_TYP
from onceonly.sdjwt.disclosures import digest_of

KB_CONTEXT_CLAIM: Final = "onceonly_context"
"""KB-JWT claim naming the kind of exchange the holder signed for (absent: a presentation)."""


class KeyBinding(NamedTuple):
    """The verified content of a KB-JWT."""

    aud: str
    nonce: str
    iat: int | float
    context: str | None = None


def create_kb_jwt(
    sd_hash_input: str,
    *,
    holder_key: jose.PrivateKey,
    aud: str,
    nonce: str,
    now: int,
    hash_alg: str,
    context: str | None = None,
) -> str:
    """Sign a KB-JWT over ``sd_hash_input`` (``<jwt>~<d1>~...~``).

    ``context`` (``onceonly_context``) is set only for exchanges other than an
    answer to a presentation request (see the module docstring).

    Raises:
        ValueError: empty ``aud``, ``nonce`` or ``context`` (a programming error).
    """
    if not aud or not nonce or context == "":
        raise ValueError("a KB-JWT needs a non-empty aud and nonce")
    payload: dict[str, object] = {
        "iat": now,
        "aud": aud,
        "nonce": nonce,
        "sd_hash": digest_of(sd_hash_input, hash_alg),
    }
    if context is not None:
        payload[KB_CONTEXT_CLAIM] = context
    # kid is dropped: the verifier takes the key from cnf, never from the KB header.
    key = dataclasses.replace(holder_key, kid=None)
    return jose.sign_compact(payload, key, typ=KB_JWT_TYP)


def verify_kb_jwt(
    kb_jwt: str,
    *,
    sd_hash_input: str,
    holder_key: jose.PublicKey,
    hash_alg: str,
    allowed_algs: Collection[str],
    expected_aud: str | None,
    expected_nonce: str | None,
    now: int,
    leeway_seconds: int,
    max_age_seconds: int,
    max_bytes: int,
    expected_context: str | None = None,
) -> KeyBinding:
    """Verify a KB-JWT against the holder key from ``cnf``.

    ``expected_aud``/``expected_nonce`` of ``None`` skip that comparison; the
    verifier's policy decides when that is allowed (never when KB is required).
    ``expected_context`` is always compared: ``None`` means the KB-JWT must not
    carry ``onceonly_context`` at all.

    Raises:
        UnsupportedAlgorithm, InvalidTokenType, MalformedInput: header problems.
        KeyBindingError: bad signature or missing/mistyped claims.
        AudienceMismatch, NonceMismatch, SdHashMismatch: the binding does not match.
        ContextMismatch: the KB-JWT was signed for another kind of exchange.
        NotYetValid, Expired: ``iat`` in the future or older than ``max_age_seconds``;
            an ``exp`` or ``nbf`` that is present puts ``now`` outside the token's
            window (RFC 9901 §7.3: the KB-JWT must be a valid JWT in all other respects).
    """
    jws = jose.parse_compact(kb_jwt, max_bytes=max_bytes)
    alg = jose.check_header(jws.header, allowed_algs=allowed_algs, expected_typ=KB_JWT_TYP)
    if not holder_key.accepts(alg):
        raise UnsupportedAlgorithm(f"KB-JWT alg {alg!r} does not match the cnf key")
    if not holder_key.verify(jws.signing_input, jws.signature):
        raise KeyBindingError("KB-JWT signature does not verify with the cnf key")
    claims = jws.payload
    iat, aud = claims.get("iat"), claims.get("aud")
    nonce, sd_hash = claims.get("nonce"), claims.get("sd_hash")
    iat = numeric_date(iat, "iat", error=KeyBindingError)
    exp = None if "exp" not in claims else numeric_date(claims["exp"], "exp", error=KeyBindingError)
    nbf = None if "nbf" not in claims else numeric_date(claims["nbf"], "nbf", error=KeyBindingError)
    if not isinstance(aud, str) or not isinstance(nonce, str) or not isinstance(sd_hash, str):
        raise KeyBindingError("KB-JWT 'aud', 'nonce' and 'sd_hash' must be strings")
    context = claims.get(KB_CONTEXT_CLAIM)
    if context is not None and not isinstance(context, str):
        raise KeyBindingError(f"KB-JWT '{KB_CONTEXT_CLAIM}' must be a string")
    if context != expected_context:
        raise ContextMismatch(
            "KB-JWT was signed for another kind of exchange",
            detail={"context": context or "presentation"},
        )
    check_validity_window(
        kind="kb-jwt",
        what="KB-JWT",
        now=now,
        leeway=leeway_seconds,
        issued_at=iat,
        expires_at=exp,
        not_before=nbf,
    )
    if iat < now - max_age_seconds - leeway_seconds:
        raise Expired("KB-JWT is older than the accepted age", detail={"token": "kb-jwt"})
    if expected_aud is not None and aud != expected_aud:
        raise AudienceMismatch("KB-JWT 'aud' is not this verifier")
    if expected_nonce is not None and not hmac.compare_digest(
        nonce.encode("utf-8"), expected_nonce.encode("utf-8")
    ):
        raise NonceMismatch("KB-JWT 'nonce' is not the expected one")
    expected_hash = digest_of(sd_hash_input, hash_alg)
    if not hmac.compare_digest(sd_hash.encode("utf-8"), expected_hash.encode("ascii")):
        raise SdHashMismatch("KB-JWT 'sd_hash' does not cover the presented SD-JWT")
    return KeyBinding(aud, nonce, iat, context)
