"""From an issued SD-JWT in the store to a DCQL match and back to exactly the right disclosures."""

from __future__ import annotations

import os
from typing import Any

import pytest

from onceonly.jose import generate_private_key
from onceonly.query import HIDDEN, claims_satisfy, match_query, parse_query, positioned_claims
from onceonly.sdjwt import issue_sd_jwt_vc, parse_sd_jwt
from onceonly.sdjwt.serialization import compact_without_kb
from wallet.holdings import exact_disclosures, held_credential
from wallet.store import WalletStore

PID = "https://pid.example/vct/pid"
CLAIMS: dict[str, Any] = {
    "given_name": "Erika",
    "family_name": "Mustermann",
    "address": {"locality": "Berlin", "postal_code": "10115", "street_address": "Heidestr. 17"},
    "nationalities": ["DE", "FR", "IT"],
}
DISCLOSABLE = [
    ("given_name",),
    ("family_name",),
    ("address",),
    ("address", "locality"),
    ("address", "street_address"),
    ("nationalities", None),
]


def test_store_match_present_verify(store: WalletStore) -> None:
    holder = store.new_holder_key()
    issued = issue_sd_jwt_vc(
        issuer="https://register.example",
        vct=PID,
        claims=CLAIMS,
        disclosable=DISCLOSABLE,
        holder_key=store.holder_public_key(holder),
        signing_key=generate_private_key(),
        now=1_700_000_000,
        expires_at=1_800_000_000,
        random_bytes=os.urandom,
    )
    text = compact_without_kb(issued.issuer_jwt, [d.disclosure.encoded for d in issued.disclosures])
    credential_id = store.add_credential(
        sd_jwt=text, vct=PID, issuer="https://register.example", holder_key_id=holder
    )
    held = held_credential(store.credential(credential_id))
    assert "iss" in held.always_visible and "cnf" in held.always_visible
    assert ("nationalities", 2) in held.disclosable_paths

    query = parse_query(
        {
            "credentials": [
                {
                    "id": "pid",
                    "format": "dc+sd-jwt",
                    "meta": {"vct_values": [PID]},
                    "claims": [
                        {"path": ["family_name"]},
                        {"path": ["address", "locality"]},
                        {"path": ["nationalities", 1]},
                    ],
                }
            ]
        }
    )
    (candidate,) = match_query(query, [held]).for_query("pid").candidates
    assert candidate.disclosures == {
        ("family_name",),
        ("address",),
        ("address", "locality"),
        ("nationalities", 1),
    }
    sd_jwt = parse_sd_jwt(text)
    chosen = exact_disclosures(sd_jwt, candidate.disclosures)
    assert len(chosen) == 4
    # What the verifier gets: the issuer JWT with only the chosen disclosures.
    seen = parse_sd_jwt(compact_without_kb(sd_jwt.raw.issuer_jwt, chosen))
    assert "given_name" not in seen.claims
    assert seen.claims["address"] == {"locality": "Berlin", "postal_code": "10115"}
    assert seen.claims["nationalities"] == ["FR"]
    # Checked as a verifier does, with the hidden element 0 keeping FR at index 1.
    view = positioned_claims(seen.claims, seen.claim_paths)
    assert view["nationalities"] == [HIDDEN, "FR"]
    claims_satisfy(query, {"pid": view})


def test_exact_disclosures_refuses_paths_without_a_disclosure() -> None:
    issued = issue_sd_jwt_vc(
        issuer="https://register.example",
        vct=PID,
        claims=CLAIMS,
        disclosable=[("given_name",)],
        holder_key=generate_private_key().public(),
        signing_key=generate_private_key(),
        now=1_700_000_000,
        expires_at=1_800_000_000,
        random_bytes=os.urandom,
    )
    text = compact_without_kb(issued.issuer_jwt, [d.disclosure.encoded for d in issued.disclosures])
    sd_jwt = parse_sd_jwt(text)
    assert len(exact_disclosures(sd_jwt, {("given_name",)})) == 1
    with pytest.raises(KeyError):
        exact_disclosures(sd_jwt, {("given_name",), ("family_name",)})
