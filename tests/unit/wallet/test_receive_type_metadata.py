"""The wallet checks a received credential against its type metadata before keeping it."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from onceonly.credential_types import get_type
from onceonly.sdjwt import issue_sd_jwt_vc
from onceonly.sdjwt.serialization import serialize_compact
from onceonly.sdjwt.type_metadata import TypeMetadata
from onceonly.types import Vct
from tests.unit.wallet.agencies import (
    DAY,
    NOW,
    REGISTRY_ID,
    RESIDENCE,
    RESIDENCE_CLAIMS,
    World,
    make_world,
)
from tests.unit.wallet.test_receive import _assert_rejected, _await, _receive
from wallet.store import WalletStore


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def _issue(
    world: World, store: WalletStore, key_id: str, disclosable: list[Any], **options: Any
) -> str:
    issued = issue_sd_jwt_vc(
        issuer=REGISTRY_ID,
        vct=RESIDENCE,
        claims=RESIDENCE_CLAIMS,
        disclosable=disclosable,
        holder_key=store.holder_public_key(key_id),
        signing_key=world.registry_key,
        now=NOW,
        expires_at=NOW + 365 * DAY,
        random_bytes=os.urandom,
        **options,
    )
    return serialize_compact(issued.issuer_jwt, [d.disclosure.encoded for d in issued.disclosures])


def _present_paths() -> list[Any]:
    return [p for p in get_type(Vct(RESIDENCE)).disclosable_paths if p[0] in RESIDENCE_CLAIMS]


def test_sd_always_claim_in_plain_view_is_refused(store: WalletStore, world: World) -> None:
    always = get_type(Vct(RESIDENCE)).type_metadata.paths_with("always")
    plain = next(p for p in always if len(p) == 1 and p[0] in RESIDENCE_CLAIMS)
    key_id = _await(store)
    text = _issue(world, store, key_id, [p for p in _present_paths() if p[0] != plain[0]])
    receipt = _receive(store, world, text)
    _assert_rejected(store, receipt, "claim_metadata_violation")


def test_credential_with_type_metadata_integrity_is_kept(store: WalletStore, world: World) -> None:
    key_id = _await(store)
    metadata = get_type(Vct(RESIDENCE)).type_metadata
    text = _issue(world, store, key_id, _present_paths(), type_metadata=metadata)
    assert _receive(store, world, text).accepted


def test_integrity_over_another_document_is_refused(store: WalletStore, world: World) -> None:
    shipped = get_type(Vct(RESIDENCE)).type_metadata
    altered = json.loads(shipped.document)
    altered["name"] = "altered by the issuer"
    other = TypeMetadata.from_document(json.dumps(altered).encode())
    key_id = _await(store)
    text = _issue(world, store, key_id, _present_paths(), type_metadata=other)
    _assert_rejected(store, _receive(store, world, text), "integrity_mismatch")
