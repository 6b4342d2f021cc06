"""Signing and verifying the trust list: signature, time, rollback, malformed input."""

from __future__ import annotations

import pytest

from onceonly import errors, jose
from onceonly.trust import (
    TRUST_LIST_TYP,
    TrustList,
    build_trust_list,
    sign_trust_list,
    verify_trust_list,
    verify_trust_list_signature,
)

from .conftest import DAY, NOW, Keys, make_draft, make_list


def test_round_trip_returns_the_signed_content(keys: Keys) -> None:
    trust_list = make_list(keys, seq=3)
    token = sign_trust_list(trust_list, keys.authority)
    verified = verify_trust_list(token, [keys.authority.public()], now=NOW + 10)
    assert verified.trust_list == trust_list
    assert verified.token == token
    assert verified.trust_list.seq == 3
    header = jose.parse_compact(token).header
    assert header["typ"] == TRUST_LIST_TYP
    assert header["kid"] == keys.authority.public().thumbprint()


def test_any_of_several_anchors_verifies(keys: Keys) -> None:
    other = jose.generate_private_key(jose.EDDSA)
    token = sign_trust_list(make_list(keys), keys.authority)
    verified = verify_trust_list(token, [other.public(), keys.authority.public()], now=NOW)
    assert verified.anchor == keys.authority.public()


def test_wrong_key_rejected(keys: Keys) -> None:
    impostor = jose.generate_private_key(jose.ES256)
    token = sign_trust_list(make_list(keys), impostor)
    with pytest.raises(errors.InvalidSignature):
        verify_trust_list(token, [keys.authority.public()], now=NOW)


def test_list_cannot_bring_its_own_key(keys: Keys) -> None:
    impostor = jose.generate_private_key(jose.ES256)
    payload = make_list(keys).model_dump(mode="json")
    token = jose.sign_compact(
        payload, impostor, typ=TRUST_LIST_TYP, extra_header={"jwk": impostor.public().to_jwk()}
    )
    with pytest.raises(errors.MalformedInput, match="must not carry keys"):
        verify_trust_list(token, [keys.authority.public(), impostor.public()], now=NOW)


def test_no_anchor_configured(keys: Keys) -> None:
    token = sign_trust_list(make_list(keys), keys.authority)
    with pytest.raises(errors.UnknownKey):
        verify_trust_list(token, [], now=NOW)


def test_tampered_payload_rejected(keys: Keys) -> None:
    token = sign_trust_list(make_list(keys), keys.authority)
    header, _payload, signature = token.split(".")
    forged = make_list(keys, seq=99).model_dump(mode="json")
    tampered = f"{header}.{jose.json_object_b64(forged)}.{signature}"
    with pytest.raises(errors.InvalidSignature):
        verify_trust_list(tampered, [keys.authority.public()], now=NOW)


def test_wrong_typ_rejected(keys: Keys) -> None:
    token = jose.sign_compact(make_list(keys).model_dump(mode="json"), keys.authority, typ="jwt")
    with pytest.raises(errors.InvalidTokenType):
        verify_trust_list(token, [keys.authority.public()], now=NOW)


def test_expired_rejected_beyond_leeway(keys: Keys) -> None:
    token = sign_trust_list(make_list(keys, days=1), keys.authority)
    anchors = [keys.authority.public()]
    verify_trust_list(token, anchors, now=NOW + DAY + 59)  # inside the 60 s leeway
    with pytest.raises(errors.Expired) as caught:
        verify_trust_list(token, anchors, now=NOW + DAY + 60)
    assert caught.value.detail == {"seq": 1, "exp": NOW + DAY}


def test_not_yet_valid_rejected(keys: Keys) -> None:
    token = sign_trust_list(make_list(keys, now=NOW + 3600), keys.authority)
    with pytest.raises(errors.NotYetValid):
        verify_trust_list(token, [keys.authority.public()], now=NOW)


def test_rollback_rejected(keys: Keys) -> None:
    cached = make_list(keys, seq=5)
    older = sign_trust_list(make_list(keys, seq=4), keys.authority)
    with pytest.raises(errors.TrustListRollback) as caught:
        verify_trust_list(older, [keys.authority.public()], now=NOW, cached=cached)
    assert caught.value.detail == {"seq": 4, "cached_seq": 5}


def test_same_sequence_different_content_rejected(keys: Keys) -> None:
    cached = make_list(keys, seq=5)
    draft = make_draft(keys).model_copy(update={"agencies": make_draft(keys).agencies[:1]})
    changed = build_trust_list(draft, sequence=5, now=NOW, valid_for_seconds=DAY)
    token = sign_trust_list(changed, keys.authority)
    with pytest.raises(errors.TrustListConflict):
        verify_trust_list(token, [keys.authority.public()], now=NOW, cached=cached)


def test_same_list_signed_again_is_accepted(keys: Keys) -> None:
    cached = make_list(keys, seq=5)
    token = sign_trust_list(cached, keys.authority)  # ECDSA: a different signature
    verified = verify_trust_list(token, [keys.authority.public()], now=NOW, cached=cached)
    assert verified.trust_list == cached


def test_newer_sequence_accepted(keys: Keys) -> None:
    token = sign_trust_list(make_list(keys, seq=6), keys.authority)
    verified = verify_trust_list(
        token, [keys.authority.public()], now=NOW, cached=make_list(keys, seq=5)
    )
    assert verified.trust_list.seq == 6


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.pop("seq"),
        lambda p: p.update(seq="7"),
        lambda p: p.update(seq=0),
        lambda p: p.update(exp=p["nbf"]),
        lambda p: p.update(unexpected=True),
        lambda p: p["agencies"][0].update(matrix_user_id="registry"),
        lambda p: p["agencies"][0]["keys"][0]["jwk"].pop("kid"),
        lambda p: p["agencies"][0]["keys"][0].update(valid_until=0),
        lambda p: p["agencies"][1]["may_request"][0].update(paths=[["a", -1]]),
        lambda p: p["agencies"][1]["may_request"][0].update(purposes=["not_registered"]),
        lambda p: p["agencies"][1].update(matrix_user_id="@registry:gov.example"),
        lambda p: p["agencies"][0].update(dids=["did:example:123"]),
        lambda p: p["agencies"][0]["keys"][0]["jwk"].update(use="enc"),
        lambda p: p["agencies"][1]["keys"][0].update(jwk=p["agencies"][0]["keys"][1]["jwk"]),
        lambda p: p["agencies"][0]["keys"][0]["jwk"].update(key_ops=["encrypt"]),
    ],
    ids=[
        "no-seq",
        "string-seq",
        "zero-seq",
        "exp-not-after-nbf",
        "unknown-member",
        "bad-matrix-id",
        "key-without-kid",
        "empty-key-window",
        "negative-index",
        "unregistered-purpose",
        "duplicate-matrix-user",
        "unsupported-did",
        "encryption-key",
        "key-shared-by-two-agencies",
        "key-ops-without-verify",
    ],
)
def test_malformed_payload_rejected(keys: Keys, mutate: object) -> None:
    payload = make_list(keys).model_dump(mode="json")
    mutate(payload)  # type: ignore[operator]
    token = jose.sign_compact(payload, keys.authority, typ=TRUST_LIST_TYP)
    with pytest.raises(errors.MalformedInput, match="malformed trust list"):
        verify_trust_list(token, [keys.authority.public()], now=NOW)


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "e30.e30", "e30.e30.e30.e30", "eyJhbGciOiJFUzI1NiJ9.W10.AAAA"],
)
def test_garbage_rejected_as_malformed(keys: Keys, token: str) -> None:
    with pytest.raises(errors.MalformedInput):
        verify_trust_list_signature(token, [keys.authority.public()])


def test_private_key_in_agency_jwk_rejected(keys: Keys) -> None:
    payload = make_list(keys).model_dump(mode="json")
    payload["agencies"][0]["keys"][0]["jwk"] = keys.registry_old.to_jwk()
    token = jose.sign_compact(payload, keys.authority, typ=TRUST_LIST_TYP)
    with pytest.raises(errors.MalformedInput, match="private key material"):
        verify_trust_list(token, [keys.authority.public()], now=NOW)


def test_build_refuses_non_positive_validity(keys: Keys) -> None:
    with pytest.raises(errors.MalformedInput):
        build_trust_list(make_draft(keys), sequence=1, now=NOW, valid_for_seconds=0)


def test_model_is_frozen(keys: Keys) -> None:
    trust_list = make_list(keys)
    with pytest.raises(ValueError, match="frozen"):
        trust_list.seq = 2  # type: ignore[misc]
    assert isinstance(trust_list, TrustList)
