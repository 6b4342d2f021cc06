"""DCQL options a third-party verifier may send: holder binding off, trusted authorities."""

from __future__ import annotations

import pytest

from onceonly.query import AGENCY_AUTHORITY_TYPE
from tests.unit.wallet.agencies import (
    IDENTITY_ID,
    PID,
    REGISTRY_ID,
    RESIDENCE,
    World,
    make_world,
)
from tests.unit.wallet.test_present import Recorder, answer, credential_query, hold, request, verify
from wallet.store import WalletStore


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def test_holder_binding_not_required_is_still_answered_with_key_binding(
    store: WalletStore, world: World
) -> None:
    hold(store, world, RESIDENCE)
    req = request(
        credential_query(
            "residence", RESIDENCE, ["address"], require_cryptographic_holder_binding=False
        )
    )
    result = answer(store, world, req, Recorder(True))
    assert result.presented and result.response.vp_token is not None
    (presentation,) = result.response.vp_token["residence"]
    verified = verify(world, presentation)
    assert verified.key_binding is not None


def test_trusted_authorities_choose_among_issuers(store: WalletStore, world: World) -> None:
    hold(store, world, RESIDENCE)
    hold(store, world, PID)
    by_registry = [{"type": AGENCY_AUTHORITY_TYPE, "values": [REGISTRY_ID]}]
    accepted = answer(
        store,
        world,
        request(credential_query("r", RESIDENCE, ["address"], trusted_authorities=by_registry)),
        Recorder(True),
    )
    assert accepted.presented


def test_a_credential_whose_issuer_is_not_named_is_not_offered(
    store: WalletStore, world: World
) -> None:
    hold(store, world, RESIDENCE)
    consent = Recorder(True)
    by_identity_agency = [{"type": AGENCY_AUTHORITY_TYPE, "values": [IDENTITY_ID]}]
    refused = answer(
        store,
        world,
        request(
            credential_query("r", RESIDENCE, ["address"], trusted_authorities=by_identity_agency)
        ),
        consent,
    )
    assert not refused.presented
    assert refused.response.vp_token is None and refused.response.refusal is not None
