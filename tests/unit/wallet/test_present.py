"""Answering presentation requests: trust, over-asking, matching, consent, minimal disclosure."""

from __future__ import annotations

from typing import Any

import pytest

from onceonly import jose
from onceonly.errors import InvalidDisclosure, QueryNotSatisfied
from onceonly.protocol.bodies import build_presentation_request
from onceonly.protocol.events import PresentationRequest, Purpose, RefusalCode
from onceonly.protocol.fields import LocalizedText
from onceonly.query import HIDDEN, DcqlQuery, claims_satisfy, parse_query, positioned_claims
from onceonly.sdjwt import (
    VerificationPolicy,
    VerifiedCredential,
    parse_sd_jwt,
    present_disclosures,
    verify_presentation,
)
from tests.unit.wallet.agencies import (
    CHILD_BENEFIT,
    DAY,
    FAMILY_ID,
    FAMILY_USER,
    IDENTITY_ID,
    NOW,
    PID,
    PID_CLAIMS,
    REGISTRY_ID,
    RESIDENCE,
    RESIDENCE_CLAIMS,
    ROGUE_USER,
    World,
    issue,
    make_world,
)
from wallet.answer import Answer, answer_request
from wallet.present import DisclosurePlan, Holding, usable_holdings
from wallet.store import WalletStore

NONCE = "n0nce-for-the-family-office"
EXCHANGE = "xch_present_00000000001"
NAME = LocalizedText(de="Familienkasse Berlin", en="Family Benefits Office Berlin")


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def hold(store: WalletStore, world: World, vct: str, *, expires_at: int = NOW + 365 * DAY) -> str:
    """Put a real credential of ``vct`` into the wallet, bound to a fresh holder key."""
    key_id = store.new_holder_key()
    signer, issuer, claims = (
        (world.identity_key, IDENTITY_ID, PID_CLAIMS)
        if vct == PID
        else (world.registry_key, REGISTRY_ID, RESIDENCE_CLAIMS)
    )
    text = issue(
        signer,
        issuer=issuer,
        vct=vct,
        claims=claims,
        holder=store.holder_public_key(key_id),
        now=min(NOW, expires_at - DAY),
        expires_at=expires_at,
    )
    return store.add_credential(sd_jwt=text, vct=vct, issuer=issuer, holder_key_id=key_id)


def credential_query(query_id: str, vct: str, *paths: list[Any], **extra: Any) -> dict[str, Any]:
    claims = [{"path": path} for path in paths]
    return {
        "id": query_id,
        "format": "dc+sd-jwt",
        "meta": {"vct_values": [vct]},
        "claims": claims,
        **extra,
    }


def request(
    *credentials: dict[str, Any],
    purpose: str = CHILD_BENEFIT,
    expires_at: int = NOW + 600,
    credential_sets: list[dict[str, Any]] | None = None,
) -> PresentationRequest:
    query: dict[str, Any] = {"credentials": list(credentials)}
    if credential_sets is not None:
        query["credential_sets"] = credential_sets
    return build_presentation_request(
        exchange_id=EXCHANGE,
        verifier_id=FAMILY_ID,
        verifier_name=NAME,
        query=DcqlQuery.model_validate(query),
        claim_labels=[LocalizedText(de="Angaben", en="claims")],
        purpose=Purpose(code=purpose, text=LocalizedText(de="Kindergeld", en="child benefit")),
        nonce=NONCE,
        expires_at=expires_at,
    )


class Recorder:
    """A consent callback that remembers what it was shown and answers as told."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.plans: list[DisclosurePlan] = []

    def __call__(self, plan: DisclosurePlan) -> bool:
        self.plans.append(plan)
        return self.answer


def answer(
    store: WalletStore,
    world: World,
    req: PresentationRequest,
    consent: Recorder,
    *,
    sender: str = FAMILY_USER,
    now: int = NOW,
) -> Answer:
    return answer_request(
        store,
        req,
        sender=sender,
        trust=world.trust,
        consent=consent,
        now=now,
        request_event_id="$request:gov.example",
    )


def verify(world: World, presentation: str) -> VerifiedCredential:
    policy = VerificationPolicy(expected_audience=FAMILY_ID, expected_nonce=NONCE)
    return verify_presentation(
        presentation, issuer_key=world.trust.issuer_key_resolver(), policy=policy, now=NOW
    )


def _user_claims(verified: VerifiedCredential) -> set[str]:
    return set(verified.claims) - {"iss", "iat", "exp", "vct", "cnf", "status", "nbf"}


def test_minimal_disclosure_verifies_and_is_recorded(store: WalletStore, world: World) -> None:
    credential_id = hold(store, world, RESIDENCE)
    hold(store, world, PID)
    req = request(credential_query("residence", RESIDENCE, ["address"], ["birthdate"]))
    consent = Recorder(True)

    result = answer(store, world, req, consent)

    assert result.presented and result.error is None
    response = result.response
    assert response.refusal is None and response.vp_token is not None
    assert response.exchange_id == EXCHANGE
    assert response.request_event_id == "$request:gov.example"
    (presentation,) = response.vp_token["residence"]
    verified = verify(world, presentation)
    assert verified.key_binding is not None and verified.key_binding.nonce == NONCE
    assert _user_claims(verified) == {"address", "birthdate"}
    assert verified.claims["address"] == RESIDENCE_CLAIMS["address"]
    claims_satisfy(parse_query(req.query.model_dump(mode="json")), {"residence": verified.claims})
    # The citizen was shown exactly what the verifier now sees.
    (plan,) = consent.plans
    assert plan.verifier.name.de == "Familienkasse Berlin"
    assert plan.purpose.text.de == "Kindergeldantrag"
    (item,) = plan.presentations
    assert item.visible == {
        "address": RESIDENCE_CLAIMS["address"],
        "birthdate": RESIDENCE_CLAIMS["birthdate"],
    }
    (entry,) = store.disclosure_history()
    assert (entry.outcome, entry.credential_id, entry.verifier_id) == (
        "disclosed",
        credential_id,
        FAMILY_ID,
    )
    assert entry.verifier_user == FAMILY_USER and entry.purpose == CHILD_BENEFIT
    # The history names every leaf the verifier saw.
    assert set(entry.claim_paths) == {
        ("address", "street_address"),
        ("address", "postal_code"),
        ("address", "locality"),
        ("address", "country"),
        ("birthdate",),
    }


def test_nested_claim_array_index_and_values(store: WalletStore, world: World) -> None:
    hold(store, world, PID)
    req = request(
        {
            "id": "pid",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": [PID]},
            "claims": [
                {"path": ["address", "locality"]},
                {"path": ["nationalities", 1]},
                {"path": ["age_over_18"], "values": [True]},
            ],
        }
    )
    result = answer(store, world, req, Recorder(True))
    assert result.response.vp_token is not None
    (presentation,) = result.response.vp_token["pid"]
    verified = verify(world, presentation)
    assert verified.claims["address"] == {"locality": "Köln"}
    # Index 1 discloses "FR" only; element 0 stays hidden (OpenID4VP: nothing unselected).
    assert verified.claims["nationalities"] == ["FR"]
    assert verified.claims["age_over_18"] is True
    assert _user_claims(verified) == {"address", "nationalities", "age_over_18"}
    # The verifier's check counts the hidden element, so index 1 is still "FR".
    seen = parse_sd_jwt(presentation)
    view = positioned_claims(seen.claims, seen.claim_paths)
    assert view["nationalities"] == [HIDDEN, "FR"]
    claims_satisfy(parse_query(req.query.model_dump(mode="json")), {"pid": view})


def test_values_mismatch_goes_to_consent_and_is_refused_like_a_no(
    store: WalletStore, world: World
) -> None:
    hold(store, world, PID)
    req = request(
        {
            "id": "pid",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": [PID]},
            "claims": [{"path": ["age_over_18"], "values": [False]}],
        }
    )
    consent = Recorder(True)
    result = answer(store, world, req, consent)
    # The citizen is involved before anything leaves: she is shown that nothing fits.
    (plan,) = consent.plans
    assert plan.presentations == () and isinstance(plan.unanswerable, QueryNotSatisfied)
    assert plan.unanswerable.detail["reason"] == "value_mismatch"
    # The verifier gets what a "no" gets: the same code, no message, nothing else.
    refused = answer(store, world, req, Recorder(False))
    assert result.response.refusal is not None
    assert result.response.refusal.code is RefusalCode.CONSENT_DENIED
    assert result.response.refusal == refused.response.refusal
    assert result.response.refusal.message is None
    # Her history keeps the precise reason.
    assert [entry.outcome for entry in store.disclosure_history()] == ["failed", "failed"]


def test_credential_sets_choose_the_first_satisfiable_option(
    store: WalletStore, world: World
) -> None:
    hold(store, world, PID)
    req = request(
        credential_query("residence", RESIDENCE, ["address"]),
        credential_query("pid", PID, ["address", "locality"]),
        credential_sets=[{"options": [["residence"], ["pid"]]}],
    )
    result = answer(store, world, req, Recorder(True))
    assert result.response.vp_token is not None
    assert set(result.response.vp_token) == {"pid"}


def test_over_asking_is_refused_before_the_citizen_sees_it(
    store: WalletStore, world: World
) -> None:
    hold(store, world, RESIDENCE)
    req = request(credential_query("residence", RESIDENCE, ["address"], ["given_name"]))
    consent = Recorder(True)
    result = answer(store, world, req, consent)
    refusal = result.response.refusal
    assert refusal is not None and refusal.code is RefusalCode.NOT_AUTHORIZED_TO_REQUEST
    assert refusal.message is not None and "given_name" in refusal.message.en
    assert result.response.vp_token is None and consent.plans == []
    (entry,) = store.disclosure_history()
    assert entry.outcome == "failed" and entry.credential_id is None
    assert ("given_name",) in entry.claim_paths


def test_unregistered_purpose_is_refused(store: WalletStore, world: World) -> None:
    hold(store, world, RESIDENCE)
    req = request(credential_query("residence", RESIDENCE, ["address"]), purpose="marketing")
    result = answer(store, world, req, Recorder(True))
    assert result.response.refusal is not None
    assert result.response.refusal.code is RefusalCode.NOT_AUTHORIZED_TO_REQUEST


def test_type_outside_the_registration_is_refused(store: WalletStore, world: World) -> None:
    hold(store, world, RESIDENCE)
    req = request(credential_query("vehicle", "urn:onceonly:credential:vehicle:1", ["plate"]))
    result = answer(store, world, req, Recorder(True))
    assert result.response.refusal is not None
    assert result.response.refusal.code is RefusalCode.NOT_AUTHORIZED_TO_REQUEST


def test_sender_not_speaking_for_the_verifier_is_refused_and_not_recorded(
    store: WalletStore, world: World
) -> None:
    hold(store, world, RESIDENCE)
    req = request(credential_query("residence", RESIDENCE, ["address"]))
    consent = Recorder(True)
    result = answer(store, world, req, consent, sender=ROGUE_USER)
    assert result.response.refusal is not None
    assert result.response.refusal.code is RefusalCode.UNTRUSTED_PARTY
    assert consent.plans == [] and store.disclosure_history() == []


def test_expired_request_is_refused(store: WalletStore, world: World) -> None:
    hold(store, world, RESIDENCE)
    req = request(credential_query("residence", RESIDENCE, ["address"]), expires_at=NOW - 1)
    result = answer(store, world, req, Recorder(True))
    assert result.response.refusal is not None
    assert result.response.refusal.code is RefusalCode.REQUEST_EXPIRED


def test_declined_consent_sends_a_refusal_and_records_it(store: WalletStore, world: World) -> None:
    hold(store, world, RESIDENCE)
    req = request(credential_query("residence", RESIDENCE, ["birthdate"]))
    consent = Recorder(False)
    result = answer(store, world, req, consent)
    assert result.response.refusal is not None
    assert result.response.refusal.code is RefusalCode.CONSENT_DENIED
    assert result.response.vp_token is None and len(consent.plans) == 1
    assert result.error is not None and result.error.code == "consent_denied"
    (entry,) = store.disclosure_history()
    assert entry.outcome == "declined" and entry.claim_paths == (("birthdate",),)


def test_nothing_held_is_not_satisfied(store: WalletStore, world: World) -> None:
    req = request(credential_query("residence", RESIDENCE, ["address"]))
    consent = Recorder(True)
    result = answer(store, world, req, consent)
    assert result.response.refusal is not None
    assert result.response.refusal.code is RefusalCode.CONSENT_DENIED
    assert len(consent.plans) == 1 and consent.plans[0].unanswerable is not None


def test_expired_credential_is_not_offered(store: WalletStore, world: World) -> None:
    hold(store, world, RESIDENCE, expires_at=NOW - 1)
    req = request(credential_query("residence", RESIDENCE, ["address"]))
    result = answer(store, world, req, Recorder(True))
    assert result.response.refusal is not None
    assert result.response.refusal.code is RefusalCode.CONSENT_DENIED
    assert isinstance(result.error, QueryNotSatisfied)


def test_present_disclosures_refuses_a_foreign_disclosure(store: WalletStore, world: World) -> None:
    credential_id = hold(store, world, RESIDENCE)
    stored = store.credential(credential_id)
    sd_jwt = parse_sd_jwt(stored.sd_jwt)
    foreign = jose.b64url_encode(b'["c2FsdHNhbHRzYWx0", "birthdate", "2000-01-01"]')
    assert stored.holder_key_id is not None
    with pytest.raises(InvalidDisclosure):
        present_disclosures(
            sd_jwt,
            disclosures=[foreign],
            holder_key=store.holder_key(stored.holder_key_id),
            aud=FAMILY_ID,
            nonce=NONCE,
            now=NOW,
        )


def test_holdings_cache_reuses_parsed_credentials_until_they_change(
    store: WalletStore, world: World
) -> None:
    kept = hold(store, world, RESIDENCE)
    dropped = hold(store, world, PID)
    cache: dict[str, Holding] = {}
    first = usable_holdings(store, trust=world.trust, now=NOW, cache=cache)
    assert set(cache) == {kept, dropped}
    again = usable_holdings(store, trust=world.trust, now=NOW, cache=cache)
    assert [h.sd_jwt for h in again] == [h.sd_jwt for h in first]
    assert all(a is b for a, b in zip(again, first, strict=True))
    store.set_label(kept, "Meine Meldebescheinigung")
    store.delete_credential(dropped)
    (relabelled,) = usable_holdings(store, trust=world.trust, now=NOW, cache=cache)
    assert relabelled.stored.label == "Meine Meldebescheinigung"
    assert set(cache) == {kept}
    # Expiry is judged at each call, cached or not.
    assert usable_holdings(store, trust=world.trust, now=NOW + 400 * DAY, cache=cache) == []


def test_several_candidates_one_or_all_with_multiple(store: WalletStore, world: World) -> None:
    older = hold(store, world, RESIDENCE)
    newer = hold(store, world, RESIDENCE)
    single = answer(
        store, world, request(credential_query("r", RESIDENCE, ["birthdate"])), Recorder(True)
    )
    assert single.plan is not None
    # The newest credential answers (a re-issued one replaces the one before it).
    assert [p.holding.stored.credential_id for p in single.plan.presentations] == [newer]
    assert single.response.vp_token is not None and len(single.response.vp_token["r"]) == 1
    both = answer(
        store,
        world,
        request(credential_query("r", RESIDENCE, ["birthdate"], multiple=True)),
        Recorder(True),
    )
    assert both.plan is not None
    assert [p.holding.stored.credential_id for p in both.plan.presentations] == [newer, older]
    assert both.response.vp_token is not None
    presented = both.response.vp_token["r"]
    assert len(presented) == 2
    # Each is bound to its own holder key, both to the request's nonce and audience.
    keys = [verify(world, text).holder_key for text in presented]
    assert len({key.thumbprint() for key in keys if key is not None}) == 2
