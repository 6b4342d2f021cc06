"""Policy answers of the trust list: issuing, key rotation, requesting, Matrix identity."""

from __future__ import annotations

from typing import Any

import pytest

from onceonly import errors, jose
from onceonly.query import DcqlQuery
from onceonly.trust import parse_claim_path

from .conftest import DAY, NOW, PID, RESIDENCE, Keys, make_list

REGISTRY = "https://registry.example"
TAX = "https://tax.example"


def credential(key: jose.PrivateKey, **claims: Any) -> str:
    payload = {"iss": REGISTRY, "vct": PID, "iat": NOW, "exp": NOW + 365 * DAY, **claims}
    return jose.sign_compact(payload, key, typ="dc+sd-jwt")


def verify(keys: Keys, token: str) -> jose.CompactJws:
    resolver = make_list(keys).issuer_key_resolver()
    return jose.verify_compact(token, resolver, expected_typ="dc+sd-jwt")


# --- rotation ----------------------------------------------------------------------


def test_old_key_verifies_credential_issued_inside_its_window(keys: Keys) -> None:
    token = credential(keys.registry_old, iat=NOW - 60 * DAY)
    assert verify(keys, token).payload["iat"] == NOW - 60 * DAY


def test_old_key_refused_for_credential_issued_after_its_window(keys: Keys) -> None:
    token = credential(keys.registry_old, iat=NOW - 30 * DAY)  # valid_until is exclusive
    with pytest.raises(errors.UntrustedIssuer, match="reg-2025"):
        verify(keys, token)


def test_new_key_verifies_current_credential(keys: Keys) -> None:
    jws = verify(keys, credential(keys.registry_new))
    assert jws.header["kid"] == "reg-2026"


def test_new_key_refused_before_its_window(keys: Keys) -> None:
    with pytest.raises(errors.UntrustedIssuer):
        verify(keys, credential(keys.registry_new, iat=NOW - 31 * DAY))


def test_key_of_another_agency_refused(keys: Keys) -> None:
    # The tax office's key id is not the registry's: no registry key matches.
    with pytest.raises(errors.UnknownKey):
        verify(keys, credential(keys.tax))


def test_forged_kid_does_not_help(keys: Keys) -> None:
    impostor = jose.PrivateKey(jose.EDDSA, jose.generate_private_key(jose.EDDSA).key, "reg-2026")
    with pytest.raises(errors.InvalidSignature):
        verify(keys, credential(impostor))


def test_did_issuer_and_did_url_kid(keys: Keys) -> None:
    signer = jose.PrivateKey(
        keys.registry_new.alg, keys.registry_new.key, "did:web:registry.example#reg-2026"
    )
    jws = verify(keys, credential(signer, iss="did:web:registry.example"))
    assert jws.payload["iss"] == "did:web:registry.example"


def test_without_kid_the_single_key_in_window_is_used(keys: Keys) -> None:
    anonymous = jose.PrivateKey(keys.registry_old.alg, keys.registry_old.key)
    assert verify(keys, credential(anonymous, iat=NOW - 100 * DAY)).payload["iss"] == REGISTRY


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"iss": "https://unknown.example"}, errors.UntrustedIssuer),
        ({"iss": None}, errors.InvalidClaim),
        ({"iat": None}, errors.InvalidClaim),
        ({"iat": "1800000000"}, errors.InvalidClaim),
        ({"vct": "urn:not-allowed"}, errors.UntrustedIssuer),
    ],
)
def test_resolver_refusals(keys: Keys, claims: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        verify(keys, credential(keys.registry_new, **claims))


def test_may_issue(keys: Keys) -> None:
    trust_list = make_list(keys)
    assert trust_list.may_issue(REGISTRY, PID, NOW)
    assert trust_list.may_issue("did:web:registry.example", RESIDENCE, NOW)
    assert not trust_list.may_issue(TAX, PID, NOW)
    assert not trust_list.may_issue(REGISTRY, "urn:other", NOW)
    assert not trust_list.may_issue(REGISTRY, PID, NOW - 500 * DAY)  # no key back then
    assert not trust_list.may_issue("https://unknown.example", PID, NOW)


# --- requesting ----------------------------------------------------------------------


def test_may_request_allowed_paths(keys: Keys) -> None:
    trust_list = make_list(keys)
    purpose = trust_list.may_request(
        TAX,
        RESIDENCE,
        [("address",), ("address", "locality"), ("nationalities", None), ("nationalities", 0)],
        "tax_residence",
    )
    assert purpose.text.de == "Steuerlicher Wohnsitz"
    assert trust_list.may_request(TAX, PID, [("family_name",)], "tax_id").code == "tax_id"


@pytest.mark.parametrize(
    "path",
    ["given_name", "nationalities", "nationalities.first", "addr", "address_extra"],
)
def test_may_request_refuses_path_outside_registration(keys: Keys, path: str) -> None:
    trust_list = make_list(keys)
    requested = [("address", "street"), parse_claim_path(path)]
    with pytest.raises(errors.NotAuthorizedToRequest) as caught:
        trust_list.may_request(TAX, RESIDENCE, requested, "tax_residence")
    assert caught.value.detail["path"] == list(parse_claim_path(path))
    assert repr(path) in caught.value.message


def test_may_request_refuses_parent_of_registered_path(keys: Keys) -> None:
    # Registered: family_name and birthdate; asking for the root object would be everything.
    with pytest.raises(errors.NotAuthorizedToRequest):
        make_list(keys).may_request(TAX, PID, [("family_name", "x"), ()], "tax_id")


def test_may_request_refuses_unregistered_purpose(keys: Keys) -> None:
    trust_list = make_list(keys)
    with pytest.raises(errors.NotAuthorizedToRequest, match="marketing"):
        trust_list.may_request(TAX, RESIDENCE, [("address",)], "marketing")
    # A purpose registered for another credential type does not carry over.
    with pytest.raises(errors.NotAuthorizedToRequest, match="tax_id"):
        trust_list.may_request(TAX, RESIDENCE, [("address",)], "tax_id")


def test_may_request_refuses_unknown_or_unregistered_verifier(keys: Keys) -> None:
    trust_list = make_list(keys)
    with pytest.raises(errors.NotAuthorizedToRequest):
        trust_list.may_request(REGISTRY, RESIDENCE, [("address",)], "tax_residence")
    with pytest.raises(errors.NotAuthorizedToRequest):
        trust_list.may_request("https://nobody.example", PID, [("family_name",)], "tax_id")


def test_request_without_claims_needs_a_grant_for_the_vct(keys: Keys) -> None:
    # Only the always-visible claims are disclosed, but the vct must still be registered.
    trust_list = make_list(keys)
    assert trust_list.may_request(TAX, RESIDENCE, [], "tax_residence").code == "tax_residence"
    with pytest.raises(errors.NotAuthorizedToRequest):
        trust_list.may_request(TAX, "urn:other", [], "tax_residence")


def _query(*credentials: tuple[list[str], list[list[object]] | None]) -> DcqlQuery:
    return DcqlQuery.model_validate(
        {
            "credentials": [
                {
                    "id": f"c{index}",
                    "format": "dc+sd-jwt",
                    "meta": {"vct_values": vcts},
                    **({"claims": [{"path": p} for p in paths]} if paths else {}),
                }
                for index, (vcts, paths) in enumerate(credentials)
            ]
        }
    )


def test_may_request_query(keys: Keys) -> None:
    trust_list = make_list(keys)
    allowed = _query(
        ([RESIDENCE], [["address", "locality"], ["nationalities", 1]]), ([RESIDENCE], None)
    )
    assert trust_list.may_request_query(TAX, allowed, "tax_residence").code == "tax_residence"
    over_asking = _query(([RESIDENCE], [["address"]]), ([RESIDENCE], [["birth_place"]]))
    with pytest.raises(errors.NotAuthorizedToRequest) as caught:
        trust_list.may_request_query(TAX, over_asking, "tax_residence")
    assert caught.value.detail["path"] == ["birth_place"]
    # Accepting a second vct the verifier is not registered for is over-asking too.
    two_types = _query(([RESIDENCE, PID], [["address"]]))
    with pytest.raises(errors.NotAuthorizedToRequest):
        trust_list.may_request_query(TAX, two_types, "tax_residence")


# --- Matrix identity -------------------------------------------------------------------


def test_matrix_identity(keys: Keys) -> None:
    trust_list = make_list(keys)
    agency = trust_list.agency_for_matrix_user("@tax:gov.example")
    assert agency is not None and agency.id == TAX
    assert trust_list.agency_for_matrix_user("@mallory:gov.example") is None
    assert trust_list.is_agency("@registry:gov.example", REGISTRY)
    assert trust_list.is_agency("@registry:gov.example", "did:web:registry.example")
    assert not trust_list.is_agency("@tax:gov.example", REGISTRY)
    assert trust_list.require_agency("@tax:gov.example", TAX).name.en == "Tax office"
    with pytest.raises(errors.UntrustedParty):
        trust_list.require_agency("@mallory:gov.example", TAX)
