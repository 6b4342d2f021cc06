"""The agency's credentials follow their type metadata and name its digest (``vct#integrity``)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from issuer.issuance import handle_credential_request
from onceonly.credential_types import SCHEMA_DIR, type_metadata
from onceonly.sdjwt import VerificationPolicy, parse_sd_jwt, verify_presentation
from onceonly.types import UserId
from tests.unit.issuer.issuer_world import IDENTITY_ID, NOW, PID_VCT, Citizen, World, make_world
from tests.unit.issuer.test_issuance import JUERGEN_CARD, eid_bind


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = make_world(tmp_path)
    yield built
    built.close()


async def test_issued_pid_carries_vct_integrity_of_the_shipped_document(world: World) -> None:
    citizen = Citizen(UserId("@juergen:localhost"))
    eid_bind(world, citizen, JUERGEN_CARD)
    request = citizen.request(audience=IDENTITY_ID, vct=PID_VCT)
    issued = await handle_credential_request(
        world.identity.context, request, sender=citizen.user_id, now=NOW
    )
    sd_jwt = parse_sd_jwt(issued.sd_jwt)
    # Over the exact octets of the file a holder or verifier reads.
    octets = (SCHEMA_DIR / "pid.vct.json").read_bytes()
    expected = "sha256-" + base64.b64encode(hashlib.sha256(octets).digest()).decode()
    assert sd_jwt.claims["vct#integrity"] == expected
    # The signed payload shows it; no disclosure carries it.
    assert all(d.disclosure.name != "vct#integrity" for d in sd_jwt.disclosures)
    # Every sd=always claim the person has arrived as a disclosure of its own,
    # and the wallet's check against the shipped metadata passes.
    disclosed = {d.path for d in sd_jwt.disclosures}
    assert ("given_name",) in disclosed and ("address", "locality") in disclosed
    policy = VerificationPolicy(require_key_binding=False, type_metadata=type_metadata)
    resolver = world.trust.issuer_key_resolver()
    verified = verify_presentation(issued.sd_jwt, issuer_key=resolver, policy=policy, now=NOW)
    assert verified.claims["vct#integrity"] == expected
