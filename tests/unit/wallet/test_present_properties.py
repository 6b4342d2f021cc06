"""Property: whatever a (registered) verifier asks of the PID, it sees what it asked and no more.

For random sets of claim paths (nested members, whole objects, array wildcards and
indices, booleans), the wallet's answer must verify with key binding, satisfy the
query, and reveal only claims under a requested path - the one allowed extra being
earlier array elements that keep an index query pointing at the right element.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from onceonly.protocol.bodies import build_presentation_request
from onceonly.protocol.events import Purpose
from onceonly.protocol.fields import LocalizedText
from onceonly.query import claims_satisfy, parse_query
from onceonly.sdjwt import VerificationPolicy, verify_presentation
from onceonly.trust import Agency, RequestGrant, TrustList
from onceonly.trust import LocalizedText as TrustText
from onceonly.trust import Purpose as TrustPurpose
from onceonly.trust.claim_paths import ClaimPath, path_covers
from tests.unit.wallet.agencies import (
    CHILD_BENEFIT,
    FAMILY_ID,
    FAMILY_USER,
    NOW,
    PID,
    World,
    make_world,
)
from tests.unit.wallet.test_present import Recorder, hold
from wallet.answer import answer_request
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.policy import revealed_leaves
from wallet.store import WalletStore

NONCE = "property-nonce-0000000000"
QUERY_PATHS: list[ClaimPath] = [
    ("given_name",),
    ("family_name",),
    ("birthdate",),
    ("age_over_18",),
    ("address",),
    ("address", "locality"),
    ("address", "postal_code"),
    ("place_of_birth", "locality"),
    ("nationalities", None),
    ("nationalities", 0),
    ("nationalities", 1),
]


def _wide_trust(world: World) -> TrustList:
    # The family office registered for every PID claim: this property is about the
    # wallet's minimality, not about over-asking (tested elsewhere).
    wide = Agency(
        id=FAMILY_ID,
        name=TrustText(de="Familienkasse", en="Family office"),
        matrix_user_id=FAMILY_USER,
        purposes=(TrustPurpose(code=CHILD_BENEFIT, text=TrustText(de="K", en="C")),),
        may_request=(
            RequestGrant(
                vct=PID,
                paths=tuple((name,) for name in {p[0] for p in QUERY_PATHS}),
                purposes=(CHILD_BENEFIT,),
            ),
        ),
    )
    others = tuple(a for a in world.trust.agencies if a.id != FAMILY_ID)
    return world.trust.model_copy(update={"agencies": (*others, wide)})


def _allowed(revealed: ClaimPath, asked: list[ClaimPath]) -> bool:
    if any(path_covers(path, revealed) for path in asked):
        return True
    # An earlier element of an array some asked index lies behind.
    return any(
        len(path) >= 2
        and path[:1] == revealed[:1]
        and isinstance(path[1], int)
        and isinstance(revealed[1], int)
        and revealed[1] < path[1]
        for path in asked
        if len(revealed) >= 2
    )


def test_answers_reveal_only_what_was_asked(tmp_path: Path) -> None:
    world = make_world()
    trust = _wide_trust(world)
    store = WalletStore.create(
        tmp_path / "w.db", passphrase="present properties", scrypt=FAST_SCRYPT_FOR_TESTS
    )
    hold(store, world, PID)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.sampled_from(QUERY_PATHS), min_size=1, max_size=6, unique=True))
    def check(asked: list[ClaimPath]) -> None:
        query: dict[str, Any] = {
            "credentials": [
                {
                    "id": "pid",
                    "format": "dc+sd-jwt",
                    "meta": {"vct_values": [PID]},
                    "claims": [{"path": list(path)} for path in asked],
                }
            ]
        }
        request = build_presentation_request(
            exchange_id="xch_property_0000000001",
            verifier_id=FAMILY_ID,
            verifier_name=LocalizedText(de="Familienkasse", en="Family office"),
            query=parse_query(query),
            claim_labels=[],
            purpose=Purpose(code=CHILD_BENEFIT, text=LocalizedText(de="K", en="C")),
            nonce=NONCE,
            expires_at=NOW + 600,
        )
        result = answer_request(
            store, request, sender=FAMILY_USER, trust=trust, consent=Recorder(True), now=NOW
        )
        assert result.response.vp_token is not None, result.error
        (presentation,) = result.response.vp_token["pid"]
        verified = verify_presentation(
            presentation,
            issuer_key=trust.issuer_key_resolver(),
            policy=VerificationPolicy(expected_audience=FAMILY_ID, expected_nonce=NONCE),
            now=NOW,
        )
        claims_satisfy(parse_query(query), {"pid": verified.claims})
        for revealed in revealed_leaves(verified.disclosed_paths):
            assert _allowed(revealed, asked), (revealed, asked)

    check()
    store.close()
