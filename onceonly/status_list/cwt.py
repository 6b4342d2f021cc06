"""Status List Tokens in CWT form: a COSE_Sign1 over a CBOR claims set.

Pure. Layout per the draft (section "Status List Token in CWT Format"):
protected header ``{1: alg, 16: "application/statuslist+cwt"}``, claims
``2`` (sub), ``6`` (iat), ``4`` (exp), ``65534`` (ttl) and ``65533`` (the CBOR
status list map, with ``lst`` as a byte string); ``5`` (nbf) and ``3`` (aud) are
checked when present. The message is tagged COSE_Sign1 (tag 18) and never wrapped in the CWT tag 61.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

import cbor2

from onceonly.cose import HEADER_TYP, sign1, strict_cbor_loads, verify_sign1
from onceonly.errors import MalformedInput
from onceonly.jose import SUPPORTED_ALGS, PrivateKey, PublicKey
from onceonly.status_list.codec import DEFAULT_MAX_DECOMPRESSED_BYTES, StatusList
from onceonly.status_list.token import (
    DEFAULT_LEEWAY_SECONDS,
    DEFAULT_MAX_STATUS_TOKEN_BYTES,
    ClaimKeys,
    StatusListToken,
    token_claims,
    token_from_claims,
)

STATUS_LIST_CWT_TYP: Final = "application/statuslist+cwt"

CLAIM_SUB: Final = 2
CLAIM_AUD: Final = 3
CLAIM_EXP: Final = 4
CLAIM_NBF: Final = 5
CLAIM_IAT: Final = 6
CLAIM_STATUS_LIST: Final = 65533
CLAIM_TTL: Final = 65534

CWT_CLAIM_KEYS: Final = ClaimKeys(
    sub=CLAIM_SUB,
    iat=CLAIM_IAT,
    exp=CLAIM_EXP,
    ttl=CLAIM_TTL,
    status_list=CLAIM_STATUS_LIST,
    missing_list="status list CWT has no status list claim (65533)",
    nbf=CLAIM_NBF,
    aud=CLAIM_AUD,
)


def sign_status_list_cwt(
    status_list: StatusList,
    key: PrivateKey,
    *,
    uri: str,
    issued_at: int,
    expires_at: int | None = None,
    ttl: float | None = None,
    extra_claims: Mapping[int, Any] | None = None,
) -> bytes:
    """Sign ``status_list`` as a Status List Token in CWT form.

    Arguments mirror :func:`onceonly.status_list.sign_status_list_jwt`;
    ``extra_claims`` uses integer CWT claim keys and cannot override the above.

    Returns:
        The encoded, tagged COSE_Sign1 message.
    """
    claims = token_claims(
        CWT_CLAIM_KEYS,
        status_list.to_cbor_map(),
        uri=uri,
        issued_at=issued_at,
        expires_at=expires_at,
        ttl=ttl,
        extra_claims=extra_claims,
    )
    return sign1(bytes(cbor2.dumps(claims)), key, protected={HEADER_TYP: STATUS_LIST_CWT_TYP})


def verify_status_list_cwt(
    token: bytes,
    key: PublicKey,
    *,
    uri: str | None,
    now: int,
    leeway: int = DEFAULT_LEEWAY_SECONDS,
    max_age: int | None = None,
    allowed_algs: Collection[str] = SUPPORTED_ALGS,
    max_token_bytes: int = DEFAULT_MAX_STATUS_TOKEN_BYTES,
    max_list_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    max_entries: int | None = None,
    audience: str | None = None,
) -> StatusListToken:
    """Verify a Status List Token in CWT form and decode its list.

    Arguments and errors mirror :func:`onceonly.status_list.verify_status_list_jwt`;
    the ``typ`` that must be present is ``application/statuslist+cwt``.
    """
    message = verify_sign1(
        token,
        key,
        expected_typ=STATUS_LIST_CWT_TYP,
        allowed_algs=allowed_algs,
        max_bytes=max_token_bytes,
    )
    claims = strict_cbor_loads(message.payload, max_bytes=max_token_bytes)
    if not isinstance(claims, Mapping):
        raise MalformedInput("CWT claims set must be a map")
    return token_from_claims(
        claims,
        CWT_CLAIM_KEYS,
        lambda value: StatusList.from_cbor_map(
            value, max_bytes=max_list_bytes, max_entries=max_entries
        ),
        form="cwt",
        uri=uri,
        now=now,
        leeway=leeway,
        max_age=max_age,
        audience=audience,
    )
