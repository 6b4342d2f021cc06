"""What the verifier really sees: plain members of opened objects, array positions, decoys.

* Opening an object to reach one member shows its plain members too: the wallet
  judges those against the registration and the consent, and refuses rather
  than show more than the verifier registered for.
* An array index names the element's position as issued; the wallet discloses
  that element only, and the verifier (``verifier.verification``) counts the
  elements it cannot see to find it.
* With an issuer that puts decoy digests into arrays (RFC 9901 §4.2.5; ours does
  not), matching and disclosure still name the same element.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest

from onceonly import jose
from onceonly.errors import QueryNotSatisfied
from onceonly.jose import b64url_encode
from onceonly.protocol.events import RefusalCode
from onceonly.query import parse_query
from onceonly.sdjwt import issue_sd_jwt_vc, parse_sd_jwt, present_disclosures, select_disclosures
from onceonly.sdjwt.claims import SD_JWT_VC_TYP
from onceonly.sdjwt.disclosures import ELLIPSIS_KEY
from onceonly.sdjwt.serialization import compact_without_kb
from tests.unit.wallet.agencies import (
    DAY,
    FAMILY_ID,
    IDENTITY_ID,
    NOW,
    PID,
    PID_CLAIMS,
    World,
    make_world,
    with_family_pid_paths,
)
from tests.unit.wallet.test_present import (
    NONCE,
    Recorder,
    answer,
    credential_query,
    request,
    verify,
)
from verifier.verification import VerifierOptions, check_presentations
from wallet.holdings import held_credential
from wallet.store import WalletStore

PID_DISCLOSABLE = [
    ("given_name",),
    ("family_name",),
    ("birthdate",),
    ("place_of_birth",),
    ("place_of_birth", "locality"),
    # The array itself stays in the signed payload, so decoys can be put into it.
    ("nationalities", None),
    ("address",),
    ("address", "locality"),
    ("age_over_18",),
]


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture(autouse=True)
def pid_issued_by_an_array_decoy_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The verifier knows no type metadata for the PID here.

    These PIDs keep ``nationalities`` itself in the signed payload (so that decoys
    can go into it), which our PID type metadata forbids (``sd: always``): they stand
    for another issuer's type, whose metadata the verifier does not hold.
    """
    import verifier.verification as verification

    known = verification.type_metadata
    monkeypatch.setattr(
        verification, "type_metadata", lambda vct: None if vct == PID else known(vct)
    )


def hold_pid(
    store: WalletStore,
    world: World,
    *,
    claims: dict[str, Any] = PID_CLAIMS,
    decoys_at: tuple[int, ...] = (),
) -> str:
    """Issue a PID (``place_of_birth.country`` plain, as in the type metadata) and keep it.

    ``decoys_at``: positions in the signed ``nationalities`` array where a decoy
    digest is put, re-signing the payload as an issuer that uses array decoys would.
    """
    key_id = store.new_holder_key()
    issued = issue_sd_jwt_vc(
        issuer=IDENTITY_ID,
        vct=PID,
        claims=claims,
        disclosable=[path for path in PID_DISCLOSABLE if path[0] in claims],
        holder_key=store.holder_public_key(key_id),
        signing_key=world.identity_key,
        now=NOW,
        expires_at=NOW + 365 * DAY,
        random_bytes=os.urandom,
    )
    issuer_jwt = issued.issuer_jwt
    if decoys_at:
        payload = dict(issued.payload)
        signed = list(payload["nationalities"])
        for position in decoys_at:
            decoy = b64url_encode(hashlib.sha256(os.urandom(16)).digest())
            signed.insert(position, {ELLIPSIS_KEY: decoy})
        payload["nationalities"] = signed
        issuer_jwt = jose.sign_compact(payload, world.identity_key, typ=SD_JWT_VC_TYP)
    text = compact_without_kb(issuer_jwt, [d.disclosure.encoded for d in issued.disclosures])
    return store.add_credential(sd_jwt=text, vct=PID, issuer=IDENTITY_ID, holder_key_id=key_id)


def pid_query(*claims: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "pid",
        "format": "dc+sd-jwt",
        "meta": {"vct_values": [PID]},
        "claims": list(claims),
    }


def verifier_accepts(world: World, req: Any, vp_token: Any) -> None:
    """The verifier's own checks, as ``verifier.verification`` runs them (raises if not)."""
    check_presentations(
        vp_token,
        query=parse_query(req.query.model_dump(mode="json")),
        trust_list=world.trust,
        audience=FAMILY_ID,
        nonce=NONCE,
        now=NOW,
        options=VerifierOptions(require_status=False),
    )


# --- plain members of an opened object --------------------------------------------


def test_plain_member_beyond_the_registration_is_refused_not_disclosed(
    store: WalletStore,
) -> None:
    world = with_family_pid_paths(make_world(), ("place_of_birth", "locality"))
    hold_pid(store, world)
    req = request(credential_query("pid", PID, ["place_of_birth", "locality"]))
    consent = Recorder(True)
    result = answer(store, world, req, consent)
    # Reaching the locality means disclosing place_of_birth, which shows its plain
    # country: the verifier is not registered for that, so nothing is sent ...
    assert result.response.vp_token is None
    refusal = result.response.refusal
    assert refusal is not None and refusal.code is RefusalCode.CONSENT_DENIED
    assert refusal.message is None
    # ... after the same consent step as any answer, with the reason kept for her.
    (plan,) = consent.plans
    assert isinstance(plan.unanswerable, QueryNotSatisfied)
    assert plan.unanswerable.detail == {
        "reason": "beyond_registration",
        "path": ["place_of_birth", "country"],
    }


def test_without_the_plain_member_the_same_request_is_answered(store: WalletStore) -> None:
    world = with_family_pid_paths(make_world(), ("place_of_birth", "locality"))
    hold_pid(store, world, claims={**PID_CLAIMS, "place_of_birth": {"locality": "Köln"}})
    req = request(credential_query("pid", PID, ["place_of_birth", "locality"]))
    result = answer(store, world, req, Recorder(True))
    assert result.response.vp_token is not None
    verified = verify(world, result.response.vp_token["pid"][0])
    assert verified.claims["place_of_birth"] == {"locality": "Köln"}


def test_consent_lists_every_leaf_the_verifier_will_see(store: WalletStore) -> None:
    world = with_family_pid_paths(make_world(), ("place_of_birth",))
    hold_pid(store, world)
    req = request(credential_query("pid", PID, ["place_of_birth", "locality"]))
    consent = Recorder(True)
    result = answer(store, world, req, consent)
    assert result.response.vp_token is not None
    (item,) = consent.plans[0].presentations
    assert set(item.shown) == {
        (("place_of_birth", "locality"), "Köln"),
        (("place_of_birth", "country"), "DE"),
    }
    verified = verify(world, result.response.vp_token["pid"][0])
    assert verified.claims["place_of_birth"] == {"locality": "Köln", "country": "DE"}


# --- array positions ------------------------------------------------------------------


def test_an_index_discloses_that_element_only_and_the_verifier_accepts_it(
    store: WalletStore, world: World
) -> None:
    hold_pid(store, world, claims={**PID_CLAIMS, "nationalities": ["DE", "FR", "PL"]})
    req = request(pid_query({"path": ["nationalities", 1], "values": ["FR"]}))
    result = answer(store, world, req, Recorder(True))
    assert result.response.vp_token is not None, result.error
    verified = verify(world, result.response.vp_token["pid"][0])
    assert verified.claims["nationalities"] == ["FR"]
    verifier_accepts(world, req, result.response.vp_token)


def test_the_verifier_rejects_an_element_at_another_position(
    store: WalletStore, world: World
) -> None:
    # A dishonest wallet answers "nationalities[0] is FR" by disclosing element 1 alone.
    hold_pid(store, world, claims={**PID_CLAIMS, "nationalities": ["DE", "FR"]})
    honest = request(pid_query({"path": ["nationalities", 1], "values": ["FR"]}))
    result = answer(store, world, honest, Recorder(True))
    assert result.response.vp_token is not None
    asked = request(pid_query({"path": ["nationalities", 0], "values": ["FR"]}))
    with pytest.raises(QueryNotSatisfied):
        verifier_accepts(world, asked, result.response.vp_token)


@pytest.mark.parametrize("decoys_at", [(0,), (0, 2), (1, 3)])
def test_array_decoys_do_not_shift_which_element_is_disclosed(
    store: WalletStore, world: World, decoys_at: tuple[int, ...]
) -> None:
    hold_pid(
        store, world, claims={**PID_CLAIMS, "nationalities": ["DE", "FR"]}, decoys_at=decoys_at
    )
    req = request(pid_query({"path": ["nationalities", None], "values": ["FR"]}))
    result = answer(store, world, req, Recorder(True))
    assert result.response.vp_token is not None, result.error
    (presentation,) = result.response.vp_token["pid"]
    assert verify(world, presentation).claims["nationalities"] == ["FR"]
    verifier_accepts(world, req, result.response.vp_token)


def test_index_after_array_decoys_names_the_element_as_issued(
    store: WalletStore, world: World
) -> None:
    # Signed array: [DE, FR, decoy]: the decoy comes after, every position agrees.
    hold_pid(store, world, claims={**PID_CLAIMS, "nationalities": ["DE", "FR"]}, decoys_at=(2,))
    req = request(pid_query({"path": ["nationalities", 1]}))
    result = answer(store, world, req, Recorder(True))
    assert result.response.vp_token is not None, result.error
    assert verify(world, result.response.vp_token["pid"][0]).claims["nationalities"] == ["FR"]
    verifier_accepts(world, req, result.response.vp_token)


def test_index_behind_a_decoy_is_not_disclosed_for_nothing(
    store: WalletStore, world: World
) -> None:
    # Signed array: [decoy, DE, FR]. As issued, FR is element 1; a verifier cannot
    # tell the decoy from a hidden element and would look at slot 1. The wallet sees
    # that its answer would be rejected and discloses nothing.
    hold_pid(store, world, claims={**PID_CLAIMS, "nationalities": ["DE", "FR"]}, decoys_at=(0,))
    req = request(pid_query({"path": ["nationalities", 1]}))
    consent = Recorder(True)
    result = answer(store, world, req, consent)
    assert result.response.vp_token is None
    assert result.response.refusal is not None
    assert result.response.refusal.code is RefusalCode.CONSENT_DENIED
    (plan,) = consent.plans
    assert isinstance(plan.unanswerable, QueryNotSatisfied)
    assert plan.unanswerable.detail["reason"] == "unverifiable"


def test_holder_paths_are_as_issued_with_decoys(store: WalletStore, world: World) -> None:
    credential_id = hold_pid(
        store, world, claims={**PID_CLAIMS, "nationalities": ["DE", "FR"]}, decoys_at=(0, 2)
    )
    held = held_credential(store.credential(credential_id))
    assert held.claims["nationalities"] == ["DE", "FR"]
    assert {p for p in held.disclosable_paths if p[0] == "nationalities"} == {
        ("nationalities", 0),
        ("nationalities", 1),
    }
    # The signed array really has the decoys at slots 0 and 2.
    sd_jwt = parse_sd_jwt(store.credential(credential_id).sd_jwt)
    assert {d.path for d in sd_jwt.disclosures if d.path[0] == "nationalities"} == {
        ("nationalities", 1),
        ("nationalities", 3),
    }


def test_the_verifier_finds_an_indexed_element_without_the_ones_before_it(
    store: WalletStore, world: World
) -> None:
    # Built by hand, not by the wallet: element 2 alone, as OpenID4VP asks.
    credential_id = hold_pid(
        store, world, claims={**PID_CLAIMS, "nationalities": ["DE", "FR", "PL"]}
    )
    stored = store.credential(credential_id)
    sd_jwt = parse_sd_jwt(stored.sd_jwt)
    (only_pl,) = [
        d.disclosure.encoded for d in sd_jwt.disclosures if d.path == ("nationalities", 2)
    ]
    assert stored.holder_key_id is not None
    presentation = present_disclosures(
        sd_jwt,
        disclosures=[only_pl],
        holder_key=store.holder_key(stored.holder_key_id),
        aud=FAMILY_ID,
        nonce=NONCE,
        now=NOW,
    )
    req = request(pid_query({"path": ["nationalities", 2], "values": ["PL"]}))
    verifier_accepts(world, req, {"pid": [presentation]})
    wrong = request(pid_query({"path": ["nationalities", 0], "values": ["PL"]}))
    with pytest.raises(QueryNotSatisfied):
        verifier_accepts(world, wrong, {"pid": [presentation]})


def test_holder_select_disclosures_counts_positions_as_issued(
    store: WalletStore, world: World
) -> None:
    # The same rule for the plain holder API (no DCQL): index 1 is FR behind a decoy.
    credential_id = hold_pid(
        store, world, claims={**PID_CLAIMS, "nationalities": ["DE", "FR"]}, decoys_at=(0,)
    )
    sd_jwt = parse_sd_jwt(store.credential(credential_id).sd_jwt)
    (chosen,) = select_disclosures(sd_jwt, [("nationalities", 1)])
    seen = parse_sd_jwt(compact_without_kb(sd_jwt.raw.issuer_jwt, [chosen]))
    assert seen.claims["nationalities"] == ["FR"]
    with pytest.raises(QueryNotSatisfied):
        select_disclosures(sd_jwt, [("nationalities", 2)])
