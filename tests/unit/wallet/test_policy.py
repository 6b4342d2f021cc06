"""Policy files: approve exactly the named verifier, purpose, types and claims; deny the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onceonly.errors import ConfigError
from tests.unit.wallet.agencies import (
    CHILD_BENEFIT,
    FAMILY_ID,
    FAMILY_USER,
    NOW,
    PID,
    REGISTRY_ID,
    RESIDENCE,
    World,
    make_world,
    with_family_pid_paths,
)
from tests.unit.wallet.test_present import credential_query, hold, request
from wallet.answer import answer_request
from wallet.policy import DENY_ALL, ConsentPolicy, load_policy, parse_policy
from wallet.present import DisclosurePlan, plan_presentation, usable_holdings
from wallet.records import PendingOffer
from wallet.store import WalletStore

POLICY_TOML = f"""
[[presentations]]
verifier = "{FAMILY_ID}"
purposes = ["{CHILD_BENEFIT}"]
vcts = ["{RESIDENCE}"]
claims = ["address", "birthdate"]

[[presentations]]
verifier = "{FAMILY_ID}"
purposes = ["{CHILD_BENEFIT}"]
vcts = ["{PID}"]
claims = ["nationalities.*"]

[[offers]]
issuer = "{REGISTRY_ID}"
vcts = ["{RESIDENCE}"]
"""


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture
def policy() -> ConsentPolicy:
    return parse_policy(POLICY_TOML, is_json=False)


def one_rule(vct: str, path: list[object]) -> ConsentPolicy:
    rule = {"verifier": FAMILY_ID, "purposes": [CHILD_BENEFIT], "vcts": [vct], "claims": [path]}
    return parse_policy(json.dumps({"presentations": [rule]}), is_json=True)


def plan_for(store: WalletStore, world: World, *credentials: dict[str, object]) -> DisclosurePlan:
    return plan_presentation(
        request(*credentials),
        sender=FAMILY_USER,
        holdings=usable_holdings(store, trust=world.trust, now=NOW),
        trust=world.trust,
        now=NOW,
    )


def test_covered_request_is_approved(
    store: WalletStore, world: World, policy: ConsentPolicy
) -> None:
    hold(store, world, RESIDENCE)
    plan = plan_for(store, world, credential_query("r", RESIDENCE, ["address", "locality"]))
    assert policy.approves(plan)


def test_claim_outside_the_rule_is_denied(store: WalletStore, world: World) -> None:
    narrow = one_rule(RESIDENCE, ["address", "locality"])
    hold(store, world, RESIDENCE)
    assert narrow.approves(
        plan_for(store, world, credential_query("r", RESIDENCE, ["address", "locality"]))
    )
    # The whole address reveals street and postal code too: not approved.
    assert not narrow.approves(
        plan_for(store, world, credential_query("r", RESIDENCE, ["address"]))
    )
    assert not narrow.approves(
        plan_for(store, world, credential_query("r", RESIDENCE, ["birthdate"]))
    )


def test_other_type_is_denied(store: WalletStore, world: World, policy: ConsentPolicy) -> None:
    hold(store, world, PID)
    assert not policy.approves(
        plan_for(store, world, credential_query("p", PID, ["address", "locality"]))
    )
    assert policy.approves(
        plan_for(store, world, credential_query("p", PID, ["nationalities", None]))
    )


def test_an_index_rule_covers_that_element_only(store: WalletStore, world: World) -> None:
    only_second = one_rule(PID, ["nationalities", 1])
    hold(store, world, PID)
    # An index discloses its element alone, so a rule for that element is enough...
    plan = plan_for(store, world, credential_query("p", PID, ["nationalities", 1]))
    assert plan.presentations[0].candidate.disclosures == {("nationalities",), ("nationalities", 1)}
    assert plan.presentations[0].candidate.revealed == (("nationalities", 1),)
    assert only_second.approves(plan)
    # ...and does not stretch to the other one.
    plan = plan_for(store, world, credential_query("p", PID, ["nationalities", 0]))
    assert not only_second.approves(plan)


def test_plain_members_of_an_opened_object_must_be_covered(store: WalletStore) -> None:
    # Registered for the whole place of birth, so only the policy decides here.
    world = with_family_pid_paths(make_world(), ("place_of_birth",))
    locality_only = one_rule(PID, ["place_of_birth", "locality"])
    hold(store, world, PID)
    plan = plan_for(store, world, credential_query("p", PID, ["place_of_birth", "locality"]))
    (item,) = plan.presentations
    # Opening place_of_birth to reach the locality shows its plain country too.
    assert set(item.candidate.revealed) == {
        ("place_of_birth", "locality"),
        ("place_of_birth", "country"),
    }
    assert not locality_only.approves(plan)
    assert one_rule(PID, ["place_of_birth"]).approves(plan)


def test_an_unanswerable_plan_is_never_approved(
    store: WalletStore, world: World, policy: ConsentPolicy
) -> None:
    # Nothing held: the plan still reaches the policy, which cannot approve it.
    plan = plan_for(store, world, credential_query("r", RESIDENCE, ["address"]))
    assert plan.unanswerable is not None and plan.presentations == ()
    assert not policy.approves(plan)


def test_other_verifier_or_purpose_is_denied(
    store: WalletStore, world: World, policy: ConsentPolicy
) -> None:
    hold(store, world, RESIDENCE)
    plan = plan_for(store, world, credential_query("r", RESIDENCE, ["address"]))
    other_purpose = POLICY_TOML.replace(f'purposes = ["{CHILD_BENEFIT}"]', 'purposes = ["other"]')
    assert not parse_policy(other_purpose, is_json=False).approves(plan)
    other_verifier = POLICY_TOML.replace(f'verifier = "{FAMILY_ID}"', 'verifier = "did:web:x"')
    assert not parse_policy(other_verifier, is_json=False).approves(plan)
    assert policy.approves(plan)


def test_deny_all_and_empty_policy_deny(store: WalletStore, world: World) -> None:
    hold(store, world, RESIDENCE)
    plan = plan_for(store, world, credential_query("r", RESIDENCE, ["address"]))
    assert not DENY_ALL.approves(plan)
    assert not parse_policy("", is_json=False).approves(plan)


def test_policy_drives_answer_request(
    store: WalletStore, world: World, policy: ConsentPolicy
) -> None:
    hold(store, world, RESIDENCE)
    approved = answer_request(
        store,
        request(credential_query("r", RESIDENCE, ["birthdate"])),
        sender=FAMILY_USER,
        trust=world.trust,
        consent=policy,
        now=NOW,
    )
    assert approved.response.vp_token is not None
    denied = answer_request(
        store,
        request(credential_query("p", PID, ["nationalities"])),
        sender=FAMILY_USER,
        trust=world.trust,
        consent=policy,
        now=NOW,
    )
    assert denied.response.vp_token is None


def test_offer_rules(policy: ConsentPolicy) -> None:
    offer = PendingOffer(offer_id="o1", issuer=REGISTRY_ID, vct=RESIDENCE, received_at=NOW)
    assert policy.accepts_offer(offer)
    assert not policy.accepts_offer(offer.model_copy(update={"vct": PID}))
    assert not policy.accepts_offer(offer.model_copy(update={"issuer": FAMILY_ID}))
    assert not DENY_ALL.accepts_offer(offer)


@pytest.mark.parametrize(
    ("text", "is_json", "fragment"),
    [
        ("[[presentations]]\nverifier = 'x'\nvcts = ['v']\nclaims = ['a']\n", False, "purposes"),
        (
            "[[presentations]]\nverifier='x'\npurposes=['p']\nvcts=['v']\nclaims=[]\n",
            False,
            "claims",
        ),
        ('{"presentations": [], "surprise": 1}', True, "surprise"),
        (
            '{"presentations": [{"verifier": "x", "purposes": ["p"], "vcts": ["v"], '
            '"claims": [[true]]}]}',
            True,
            "claims",
        ),
        ("{not json", True, "JSON"),
        ("= broken", False, "TOML"),
        ("[1, 2]", True, "object"),
    ],
)
def test_invalid_policies_are_config_errors(text: str, is_json: bool, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, is_json=is_json)
    assert fragment in caught.value.message


def test_load_policy_by_suffix(tmp_path: Path) -> None:
    toml_file = tmp_path / "policy.toml"
    toml_file.write_text(POLICY_TOML, encoding="utf-8")
    json_file = tmp_path / "policy.json"
    json_file.write_text(json.dumps({"offers": [{"issuer": "i", "vcts": ["v"]}]}), encoding="utf-8")
    assert len(load_policy(toml_file).presentations) == 2
    assert len(load_policy(json_file).offers) == 1
    with pytest.raises(ConfigError):
        load_policy(tmp_path / "missing.toml")
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (300 * 1024))
    with pytest.raises(ConfigError):
        load_policy(big)
