"""The terminal consent prompt, driven through a simulated terminal (rich, injected input)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from tests.unit.wallet.agencies import (
    FAMILY_USER,
    NOW,
    PID,
    REGISTRY_ID,
    RESIDENCE,
    RESIDENCE_CLAIMS,
    World,
    issue,
    make_world,
    with_family_pid_paths,
)
from tests.unit.wallet.test_present import credential_query, hold, request
from wallet.answer import answer_request
from wallet.consent import TerminalConsent, claim_rows
from wallet.present import DisclosurePlan, plan_presentation, usable_holdings
from wallet.records import PendingOffer
from wallet.store import WalletStore


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def terminal(answers: str) -> tuple[TerminalConsent, io.StringIO]:
    screen = io.StringIO()
    console = Console(file=screen, width=160, color_system=None, force_terminal=False)
    return TerminalConsent(console, stream=io.StringIO(answers)), screen


def plan_for(store: WalletStore, world: World, *paths: list[object]) -> DisclosurePlan:
    return plan_presentation(
        request(credential_query("r", RESIDENCE, *paths)),
        sender=FAMILY_USER,
        holdings=usable_holdings(store, trust=world.trust, now=NOW),
        trust=world.trust,
        now=NOW,
    )


def test_prompt_shows_who_why_what_and_accepts_yes(store: WalletStore, world: World) -> None:
    hold(store, world, RESIDENCE)
    consent, screen = terminal("y\n")
    assert consent(plan_for(store, world, ["address", "postal_code"], ["birthdate"])) is True
    shown = screen.getvalue()
    # Who: the trust-list names (German and English) and the account, not just an id.
    assert "Familienkasse Berlin / Family Benefits Office Berlin" in shown
    assert FAMILY_USER in shown
    # Why: the registered purpose wording.
    assert "Kindergeldantrag" in shown and "child benefit application" in shown
    # What: labels from the type metadata and the exact values.
    assert "Meldebescheinigung" in shown
    assert RESIDENCE_CLAIMS["address"]["postal_code"] in shown
    assert RESIDENCE_CLAIMS["birthdate"] in shown
    assert "Geburtsdatum" in shown
    # Nothing beyond the plan.
    assert RESIDENCE_CLAIMS["address"]["street_address"] not in shown
    assert RESIDENCE_CLAIMS["family_name"] not in shown


@pytest.mark.parametrize("answers", ["n\n", "\n", "", "nein\nn\n"])
def test_anything_but_yes_declines(store: WalletStore, world: World, answers: str) -> None:
    hold(store, world, RESIDENCE)
    consent, _screen = terminal(answers)
    assert consent(plan_for(store, world, ["birthdate"])) is False


def test_declining_at_the_prompt_sends_a_refusal(store: WalletStore, world: World) -> None:
    hold(store, world, RESIDENCE)
    consent, _screen = terminal("n\n")
    result = answer_request(
        store,
        request(credential_query("r", RESIDENCE, ["birthdate"])),
        sender=FAMILY_USER,
        trust=world.trust,
        consent=consent,
        now=NOW,
    )
    assert result.response.refusal is not None
    assert result.response.refusal.code.value == "consent_denied"


def test_values_are_not_interpreted_as_markup(store: WalletStore, world: World) -> None:
    key_id = store.new_holder_key()
    claims = {
        **RESIDENCE_CLAIMS,
        "address": {**RESIDENCE_CLAIMS["address"], "street_address": "[bold]Heide[/bold] 1"},
    }
    text = issue(
        world.registry_key,
        issuer=REGISTRY_ID,
        vct=RESIDENCE,
        claims=claims,
        holder=store.holder_public_key(key_id),
    )
    store.add_credential(sd_jwt=text, vct=RESIDENCE, issuer=REGISTRY_ID, holder_key_id=key_id)
    consent, screen = terminal("y\n")
    consent(plan_for(store, world, ["address"]))
    assert "[bold]Heide[/bold] 1" in screen.getvalue()


def test_claim_rows_label_array_elements_and_booleans() -> None:
    shown = [(("nationalities", 0), "DE"), (("nationalities", 1), "FR"), (("age_over_18",), True)]
    rows = claim_rows(PID, shown)
    assert rows == [
        ("Staatsangehörigkeit 1", "Nationality 1", "DE"),
        ("Staatsangehörigkeit 2", "Nationality 2", "FR"),
        ("Volljährig", "Age over 18", "ja / yes"),
    ]


def test_offer_prompt(store: WalletStore) -> None:
    offer = PendingOffer(
        offer_id="offer-1",
        issuer=REGISTRY_ID,
        vct=RESIDENCE,
        received_at=NOW,
        reason="Umzug gemeldet / registered move",
    )
    consent, screen = terminal("y\n")
    assert consent.accept_offer(offer, issuer_name="Bürgeramt Berlin-Mitte") is True
    assert "Meldebescheinigung" in screen.getvalue() and "Umzug" in screen.getvalue()
    consent, _screen = terminal("\n")
    assert consent.accept_offer(offer, issuer_name="Bürgeramt") is False


def test_a_request_nothing_answers_is_shown_and_acknowledged(
    store: WalletStore, world: World
) -> None:
    # Nothing held: the citizen still sees who asked, and that the wallet will say no.
    consent, screen = terminal("\n")
    plan = plan_for(store, world, ["address"])
    assert plan.unanswerable is not None
    assert consent(plan) is False
    shown = screen.getvalue()
    assert "Familienkasse Berlin / Family Benefits Office Berlin" in shown
    assert "do not answer this request" in shown
    assert plan.unanswerable.message in shown
    # End of input counts as acknowledged, too.
    consent, _ = terminal("")
    assert consent(plan) is False


def test_the_prompt_lists_plain_members_that_ride_along(store: WalletStore) -> None:
    world = with_family_pid_paths(make_world(), ("place_of_birth",))
    hold(store, world, PID)
    consent, screen = terminal("n\n")
    plan = plan_presentation(
        request(credential_query("p", PID, ["place_of_birth", "locality"])),
        sender=FAMILY_USER,
        holdings=usable_holdings(store, trust=world.trust, now=NOW),
        trust=world.trust,
        now=NOW,
    )
    assert consent(plan) is False
    lines = screen.getvalue().splitlines()
    # The verifier would see the country too, so the citizen is shown it.
    assert any("Place of birth (country)" in line and "DE" in line for line in lines)
    assert any("Köln" in line for line in lines)
