"""Property: whatever a (registered) verifier asks of the PID, it sees what it asked and no more.

For random sets of claim paths (nested members, whole objects, array wildcards and
indices, booleans), the wallet's answer must verify with key binding, satisfy the
query as the verifier checks it (array positions as issued), and reveal only claims
under a requested path - the one extra being plain members of an object opened to
reach a requested one, which the citizen was shown: the consent screen lists
exactly the leaves the verifier ends up seeing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from onceonly.protocol.bodies import build_presentation_request
from onceonly.protocol.events import Purpose
from onceonly.protocol.fields import LocalizedText
from onceonly.query import HIDDEN, claims_satisfy, parse_query, positioned_claims
from onceonly.sdjwt import VerificationPolicy, parse_sd_jwt, verify_presentation
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
from wallet.present import TECHNICAL_CLAIMS
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


def _leaves(value: Any, path: ClaimPath = ()) -> list[ClaimPath]:
    """Every leaf a reader of ``value`` sees (``HIDDEN`` array slots are not seen)."""
    if isinstance(value, dict) and value:
        return [leaf for name, child in value.items() for leaf in _leaves(child, (*path, name))]
    if isinstance(value, list) and any(child is not HIDDEN for child in value):
        return [
            leaf
            for index, child in enumerate(value)
            if child is not HIDDEN
            for leaf in _leaves(child, (*path, index))
        ]
    return [path]


def _allowed(revealed: ClaimPath, asked: list[ClaimPath], disclosed: frozenset[ClaimPath]) -> bool:
    if any(path_covers(path, revealed) for path in asked):
        return True
    # A plain member of an object the answer had to open to reach an asked claim.
    return revealed not in disclosed and any(
        revealed[:-1] == path[: len(revealed) - 1] for path in asked if len(path) >= len(revealed)
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
        consent = Recorder(True)
        result = answer_request(
            store, request, sender=FAMILY_USER, trust=trust, consent=consent, now=NOW
        )
        assert result.response.vp_token is not None, result.error
        (presentation,) = result.response.vp_token["pid"]
        verified = verify_presentation(
            presentation,
            issuer_key=trust.issuer_key_resolver(),
            policy=VerificationPolicy(expected_audience=FAMILY_ID, expected_nonce=NONCE),
            now=NOW,
        )
        seen = parse_sd_jwt(presentation)
        view = positioned_claims(seen.claims, seen.claim_paths)
        claims_satisfy(parse_query(query), {"pid": view})
        user_view = {k: v for k, v in view.items() if k not in TECHNICAL_CLAIMS}
        leaves = _leaves(user_view)
        for revealed in leaves:
            assert _allowed(revealed, asked, verified.disclosed_paths), (revealed, asked)
        (plan,) = consent.plans
        (item,) = plan.presentations
        assert sorted(map(str, leaves)) == sorted(str(path) for path, _ in item.shown)

    check()
    store.close()
