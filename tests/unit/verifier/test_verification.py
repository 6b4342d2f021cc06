"""verifier.verification: every check of a presentation response, each failure by its code."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from onceonly.jose import generate_private_key
from onceonly.sdjwt import parse_sd_jwt, present_without_key_binding
from onceonly.status_cache import StatusCache
from onceonly.trust_cache import TrustCache
from verifier.audit_format import EntryKind
from verifier.audit_log import AuditLog
from verifier.evidence import EvidenceArchive
from verifier.nonce_store import NonceStore
from verifier.requests import PendingRequest, prepare_request
from verifier.verification import VerificationResult, Verifier

from .verification_world import (
    CITIZEN,
    DAY,
    NOW,
    PURPOSE,
    VERIFIER_ID,
    World,
    address_query,
)


@dataclass
class Setup:
    world: World
    nonces: NonceStore
    audit: AuditLog
    evidence: EvidenceArchive
    verifier: Verifier

    def request(self, *, now: int = NOW, ttl: int = 600, birthdate: bool = False) -> PendingRequest:
        prepared = prepare_request(
            trust_list=self.world.verified_trust().trust_list,
            verifier_id=VERIFIER_ID,
            citizen=CITIZEN,
            query=address_query(with_birthdate=birthdate),
            purpose=PURPOSE,
            nonces=self.nonces,
            now=now,
            ttl=ttl,
        )
        return prepared.pending

    async def answer(
        self, pending: PendingRequest, presentation: str, *, now: int = NOW + 5
    ) -> VerificationResult:
        return await self.verifier.verify_response(pending, {"residence": [presentation]}, now=now)


def make_setup(world: World, location: str, tmp_path: Path) -> Setup:
    nonces = NonceStore.open(location)
    audit = AuditLog.open(location, signing_key=world.verifier, head_every=0)
    evidence = EvidenceArchive(tmp_path / "evidence")
    trust = world.verified_trust()
    verifier = Verifier(
        verifier_id=VERIFIER_ID,
        trust=lambda _now: trust,
        nonces=nonces,
        audit=audit,
        status=StatusCache(world.fetch),
        evidence=evidence,
    )
    return Setup(world, nonces, audit, evidence, verifier)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    built = make_setup(World(), str(tmp_path / "verifier.sqlite3"), tmp_path)
    yield built
    built.nonces.close()
    built.audit.close()


async def test_minimal_disclosure_is_verified_and_audited(setup: Setup) -> None:
    pending = setup.request()
    presentation = setup.world.present(setup.world.credential(), nonce=pending.nonce)
    result = await setup.answer(pending, presentation)
    assert result.verified, result.error_code
    (accepted,) = result.credentials["residence"]
    assert accepted.claims == {"address": {"locality": "Köln"}}
    # The address object's own disclosure is needed to reach its locality.
    assert accepted.disclosed_paths == ("address", "address.locality")
    assert accepted.status is not None and accepted.status.idx == 3
    assert accepted.issuer == "https://buergeramt.example"
    # The audit entry holds the exact presentation, the outcome and the versions used.
    (entry,) = setup.audit.entries()
    assert entry.kind is EntryKind.VERIFICATION and entry.seq == result.audit_seq
    assert presentation in (entry.presentation or "")
    assert entry.outcome is not None and entry.outcome.verified
    assert entry.outcome.disclosed == ("residence:address", "residence:address.locality")
    assert entry.details["nonce"] == pending.nonce
    assert entry.trust_list is not None and entry.trust_list.sequence == 1
    assert setup.evidence.get(entry.trust_list.hash) == setup.world.trust_token()
    (status_version,) = entry.status_lists
    assert setup.evidence.get(status_version.hash).count(".") == 2
    assert result.to_json()["credentials"]["residence"][0]["claims"]["address"] == {
        "locality": "Köln"
    }


async def expect_rejected(setup: Setup, result: VerificationResult, code: str) -> None:
    assert not result.verified
    assert result.error_code == code, result.message
    assert result.credentials == {}
    entries = setup.audit.entries()
    assert entries[-1].outcome is not None
    assert entries[-1].outcome.error_code == code


async def test_replayed_response_is_rejected(setup: Setup) -> None:
    pending = setup.request()
    presentation = setup.world.present(setup.world.credential(), nonce=pending.nonce)
    assert (await setup.answer(pending, presentation)).verified
    await expect_rejected(setup, await setup.answer(pending, presentation, now=NOW + 6), "replay")


async def test_presentation_for_another_request_is_a_nonce_mismatch(setup: Setup) -> None:
    first, second = setup.request(), setup.request()
    presentation = setup.world.present(setup.world.credential(), nonce=first.nonce)
    await expect_rejected(setup, await setup.answer(second, presentation), "nonce_mismatch")


async def test_wrong_audience_is_rejected(setup: Setup) -> None:
    pending = setup.request()
    presentation = setup.world.present(
        setup.world.credential(), nonce=pending.nonce, aud="https://other.example"
    )
    await expect_rejected(setup, await setup.answer(pending, presentation), "audience_mismatch")


async def test_revoked_credential_is_rejected(setup: Setup) -> None:
    setup.world.revoke(3)
    pending = setup.request()
    presentation = setup.world.present(setup.world.credential(idx=3), nonce=pending.nonce)
    await expect_rejected(setup, await setup.answer(pending, presentation), "revoked")


async def test_untrusted_issuer_is_rejected(setup: Setup) -> None:
    pending = setup.request()
    rogue = setup.world.credential(
        signer=generate_private_key(kid="rogue"), issuer_id="https://rogue.example"
    )
    presentation = setup.world.present(rogue, nonce=pending.nonce)
    await expect_rejected(setup, await setup.answer(pending, presentation), "untrusted_issuer")


async def test_listed_issuer_name_with_foreign_key_is_rejected(setup: Setup) -> None:
    pending = setup.request()
    forged = setup.world.credential(signer=generate_private_key(kid="buergeramt-1"))
    presentation = setup.world.present(forged, nonce=pending.nonce)
    await expect_rejected(setup, await setup.answer(pending, presentation), "invalid_signature")


async def test_expired_request_is_rejected(setup: Setup) -> None:
    pending = setup.request(ttl=60)
    presentation = setup.world.present(setup.world.credential(), nonce=pending.nonce, now=NOW + 60)
    result = await setup.answer(pending, presentation, now=NOW + 60)
    await expect_rejected(setup, result, "request_expired")


async def test_claims_not_asked_for_do_not_satisfy_the_query(setup: Setup) -> None:
    pending = setup.request(birthdate=True)
    presentation = setup.world.present(setup.world.credential(), nonce=pending.nonce)
    await expect_rejected(setup, await setup.answer(pending, presentation), "query_not_satisfied")


async def test_presentation_without_key_binding_is_rejected(setup: Setup) -> None:
    pending = setup.request()
    unbound = present_without_key_binding(
        parse_sd_jwt(setup.world.credential()), disclose=[("address", "locality")]
    )
    await expect_rejected(setup, await setup.answer(pending, unbound), "key_binding_missing")


async def test_credential_without_status_is_rejected(setup: Setup) -> None:
    pending = setup.request()
    presentation = setup.world.present(
        setup.world.credential(with_status=False), nonce=pending.nonce
    )
    await expect_rejected(setup, await setup.answer(pending, presentation), "invalid_claim")


async def test_unreachable_status_list_fails_closed(setup: Setup) -> None:
    setup.world.fetch_fails = True
    pending = setup.request()
    presentation = setup.world.present(setup.world.credential(), nonce=pending.nonce)
    await expect_rejected(setup, await setup.answer(pending, presentation), "status_unavailable")


async def test_status_list_signed_by_another_key_fails_closed(setup: Setup) -> None:
    setup.world.status_signer = generate_private_key(kid="buergeramt-1")
    pending = setup.request()
    presentation = setup.world.present(setup.world.credential(), nonce=pending.nonce)
    result = await setup.answer(pending, presentation)
    await expect_rejected(setup, result, "status_unavailable")


async def test_garbage_presentation_is_a_typed_rejection(setup: Setup) -> None:
    pending = setup.request()
    await expect_rejected(setup, await setup.answer(pending, "not-an-sd-jwt~"), "malformed")


async def test_refusal_uses_up_the_nonce(setup: Setup) -> None:
    pending = setup.request()
    refused = setup.verifier.record_refusal(pending, "consent_denied", now=NOW + 1)
    assert refused.refused and refused.error_code == "consent_denied"
    presentation = setup.world.present(setup.world.credential(), nonce=pending.nonce)
    await expect_rejected(setup, await setup.answer(pending, presentation), "replay")
    kinds = [entry.kind for entry in setup.audit.entries()]
    assert kinds == [EntryKind.RESPONSE, EntryKind.VERIFICATION]


async def test_no_trust_list_rejects(setup: Setup, tmp_path: Path) -> None:
    verifier = Verifier(
        verifier_id=VERIFIER_ID,
        trust=lambda _now: None,
        nonces=setup.nonces,
        audit=setup.audit,
        status=StatusCache(setup.world.fetch),
        evidence=setup.evidence,
    )
    pending = setup.request()
    presentation = setup.world.present(setup.world.credential(), nonce=pending.nonce)
    result = await verifier.verify_response(pending, {"residence": [presentation]}, now=NOW + 5)
    await expect_rejected(setup, result, "trust_error")


async def test_replay_is_rejected_after_a_restart(store_location: str, tmp_path: Path) -> None:
    world = World()
    first = make_setup(world, store_location, tmp_path)
    pending = first.request()
    presentation = world.present(world.credential(), nonce=pending.nonce)
    assert (await first.answer(pending, presentation)).verified
    first.nonces.close()
    first.audit.close()
    # A new process (fresh stores and caches) on the same database.
    second = make_setup(world, store_location, tmp_path)
    try:
        result = await second.answer(pending, presentation, now=NOW + 7)
        assert result.error_code == "replay"
        assert [e.outcome.verified for e in second.audit.entries() if e.outcome] == [True, False]
    finally:
        second.nonces.close()
        second.audit.close()


async def test_status_list_is_fetched_once_within_its_ttl(setup: Setup) -> None:
    credential = setup.world.credential()
    for offset in range(3):
        pending = setup.request()
        presentation = setup.world.present(credential, nonce=pending.nonce)
        assert (await setup.answer(pending, presentation, now=NOW + 5 + offset)).verified
    assert setup.world.fetches == 1
    assert len({e.status_lists[0].hash for e in setup.audit.entries()}) == 1


async def test_an_expired_trust_list_is_the_verifiers_problem(setup: Setup, tmp_path: Path) -> None:
    cache = TrustCache.in_data_dir(tmp_path / "trust", [setup.world.authority.public()])
    cache.offer(setup.world.trust_token(), now=NOW)
    verifier = Verifier(
        verifier_id=VERIFIER_ID,
        trust=lambda now: cache.current(now=now),
        nonces=setup.nonces,
        audit=setup.audit,
        status=StatusCache(setup.world.fetch),
        evidence=setup.evidence,
    )
    late = NOW + 40 * DAY  # the list is valid for 30 days
    pending = setup.request(now=late - 10)
    presentation = setup.world.present(setup.world.credential(), nonce=pending.nonce, now=late)
    result = await verifier.verify_response(pending, {"residence": [presentation]}, now=late)
    await expect_rejected(setup, result, "trust_error")
