"""verifier.reverify: the auditor redoes every recorded verification from the export alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from onceonly.jose import generate_private_key
from onceonly.query import parse_query
from verifier.audit import AuditReport, audit_file
from verifier.audit_format import (
    EntryKind,
    StatusListVersion,
    TrustListVersion,
    VerificationOutcome,
)
from verifier.audit_log import AuditLog
from verifier.evidence import EvidenceArchive
from verifier.requests import PendingRequest
from verifier.reverify import (
    Reverifier,
    nonce_consumers,
    read_export_entries,
    recorded_requests,
)
from verifier.verification import request_details

from .test_verification import Setup, make_setup
from .verification_world import (
    CITIZEN,
    ISSUER_ID,
    NOW,
    PURPOSE,
    RESIDENCE,
    STATUS_URI,
    VERIFIER_ID,
    World,
    exchange,
)


async def record_mixed_history(setup: Setup) -> None:
    """Verified, replayed, wrong nonce, revoked, untrusted and expired responses."""
    world = setup.world
    good = setup.request()
    presentation = world.present(world.credential(), nonce=good.nonce)
    assert (await setup.answer(good, presentation)).verified
    assert (await setup.answer(good, presentation, now=NOW + 6)).error_code == "replay"
    other = setup.request()
    stale = world.present(world.credential(), nonce=good.nonce)
    assert (await setup.answer(other, stale)).error_code == "nonce_mismatch"
    rogue = world.credential(signer=generate_private_key(kid="x"), issuer_id="https://x.example")
    untrusted = setup.request()
    result = await setup.answer(untrusted, world.present(rogue, nonce=untrusted.nonce))
    assert result.error_code == "untrusted_issuer"
    late = setup.request(ttl=30)
    result = await setup.answer(
        late, world.present(world.credential(), nonce=late.nonce), now=NOW + 31
    )
    assert result.error_code == "request_expired"
    world.revoke(9)
    revoked = setup.request(now=NOW + 890)
    presentation = world.present(world.credential(idx=9), nonce=revoked.nonce, now=NOW + 900)
    # A new status token (the cached one predates the revocation) after its ttl.
    assert (await setup.answer(revoked, presentation, now=NOW + 900)).error_code == "revoked"


def audit(setup: Setup, exported: Path, **reverifier: Any) -> AuditReport:
    """Audit ``exported`` with a reverifier over the setup's evidence and authority."""
    arguments: dict[str, Any] = {
        "evidence": setup.evidence,
        "anchors": [setup.world.authority.public()],
    } | reverifier
    return audit_file(
        exported, verifier_key=setup.world.verifier.public(), reverify=Reverifier(**arguments)
    )


def export(setup: Setup, tmp_path: Path) -> Path:
    setup.audit.sign_head(now=NOW + 1000)
    out = tmp_path / "audit.jsonl"
    setup.audit.export(out, now=NOW + 1000)
    return out


async def test_every_recorded_verdict_is_reproduced(tmp_path: Path) -> None:
    setup = make_setup(World(), str(tmp_path / "v.sqlite3"), tmp_path)
    await record_mixed_history(setup)
    report = audit(setup, export(setup, tmp_path))
    assert report.reverified == 6
    assert report.clean, [finding.message for finding in report.findings]


async def test_a_lying_verdict_is_found(tmp_path: Path) -> None:
    setup = make_setup(World(), str(tmp_path / "v.sqlite3"), tmp_path)
    setup.world.revoke(3)
    pending = setup.request()
    presentation = setup.world.present(setup.world.credential(idx=3), nonce=pending.nonce)
    honest = await setup.answer(pending, presentation)
    assert honest.error_code == "revoked"
    (entry,) = setup.audit.entries()
    # A verifier that claims it accepted the revoked credential: the chain is intact
    # (the entry is appended properly), only re-verification can tell.
    setup.audit.append(
        kind=EntryKind.VERIFICATION,
        exchange_id=entry.exchange_id,
        now=entry.time + 1,
        presentation=entry.presentation,
        outcome=VerificationOutcome(verified=True, disclosed=("residence:address",)),
        trust_list=entry.trust_list,
        status_lists=entry.status_lists,
        details={**entry.details, "nonce": "bm90LXRoZS1zYW1lLW5vbmNlLWF0LWFsbA"},
    )
    report = audit(setup, export(setup, tmp_path))
    codes = [(finding.code, finding.seq) for finding in report.findings]
    assert codes == [("audit_reverify_mismatch", 2)]


async def test_missing_or_foreign_evidence_is_a_mismatch(tmp_path: Path) -> None:
    setup = make_setup(World(), str(tmp_path / "v.sqlite3"), tmp_path)
    pending = setup.request()
    presentation = setup.world.present(setup.world.credential(), nonce=pending.nonce)
    assert (await setup.answer(pending, presentation)).verified
    exported = export(setup, tmp_path)
    report = audit(setup, exported, evidence=EvidenceArchive(tmp_path / "none"))
    assert [finding.code for finding in report.findings] == ["audit_reverify_mismatch"]
    assert "store_error" in report.findings[0].message
    # Evidence present, but the auditor trusts another authority.
    report = audit(setup, exported, anchors=[generate_private_key().public()])
    assert [finding.code for finding in report.findings] == ["audit_reverify_mismatch"]


async def test_edited_presentation_in_the_export_fails_reverification(tmp_path: Path) -> None:
    setup = make_setup(World(), str(tmp_path / "v.sqlite3"), tmp_path)
    pending = setup.request()
    presentation = setup.world.present(setup.world.credential(), nonce=pending.nonce)
    assert (await setup.answer(pending, presentation)).verified
    exported = export(setup, tmp_path)
    lines = exported.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[1])
    vp = json.loads(record["entry"]["presentation"])
    vp["residence"][0] = vp["residence"][0][:-3] + "AAA"  # break the KB-JWT signature
    record["entry"]["presentation"] = json.dumps(vp)
    lines[1] = json.dumps(record)
    exported.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = audit(setup, exported)
    codes = sorted({finding.code for finding in report.findings})
    assert "audit_altered" in codes and "audit_reverify_mismatch" in codes


async def test_a_replay_recorded_before_its_consumer_is_explained_by_the_prescan(
    tmp_path: Path,
) -> None:
    # Two verifier processes: the one that lost the nonce race appended first.
    setup = make_setup(World(), str(tmp_path / "v.sqlite3"), tmp_path)
    pending = setup.request()
    presentation = setup.world.present(setup.world.credential(), nonce=pending.nonce)
    assert (await setup.answer(pending, presentation)).verified
    assert (await setup.answer(pending, presentation)).error_code == "replay"
    consumer, replay = setup.audit.entries()
    swapped = AuditLog.open(tmp_path / "swapped.sqlite3", signing_key=setup.world.verifier)
    for entry in (replay, consumer):
        swapped.append(
            kind=entry.kind,
            exchange_id=entry.exchange_id,
            now=entry.time,
            presentation=entry.presentation,
            outcome=entry.outcome,
            trust_list=entry.trust_list,
            status_lists=entry.status_lists,
            details=entry.details,
        )
    swapped.sign_head(now=NOW + 100)
    exported = tmp_path / "swapped.jsonl"
    swapped.export(exported, now=NOW + 100)
    swapped.close()
    consumers = nonce_consumers(read_export_entries(exported))
    assert consumers == {pending.nonce: 2}
    assert audit(setup, exported, consumers=consumers).clean
    # Without the pre-scan the first entry in the chain would count as the consumer.
    assert not audit(setup, exported).clean


async def test_two_entries_claiming_one_nonce_are_found(tmp_path: Path) -> None:
    setup = make_setup(World(), str(tmp_path / "v.sqlite3"), tmp_path)
    pending = setup.request()
    presentation = setup.world.present(setup.world.credential(), nonce=pending.nonce)
    assert (await setup.answer(pending, presentation)).verified
    (entry,) = setup.audit.entries()
    setup.audit.append(  # a second "verified" for the same nonce: an accepted replay
        kind=entry.kind,
        exchange_id=entry.exchange_id,
        now=entry.time + 1,
        presentation=entry.presentation,
        outcome=entry.outcome,
        trust_list=entry.trust_list,
        status_lists=entry.status_lists,
        details=entry.details,
    )
    exported = export(setup, tmp_path)
    report = audit(setup, exported, consumers=nonce_consumers(read_export_entries(exported)))
    assert [(finding.code, finding.seq) for finding in report.findings] == [
        ("audit_reverify_mismatch", 2)
    ]


def over_asking_request(setup: Setup) -> PendingRequest:
    """A request for a claim the verifier is not registered for (family_name), made
    behind prepare_request's back (which would refuse it)."""
    query = parse_query(
        {
            "credentials": [
                {
                    "id": "residence",
                    "format": "dc+sd-jwt",
                    "meta": {"vct_values": [RESIDENCE]},
                    "claims": [{"path": ["family_name"]}],
                }
            ]
        }
    )
    issued = setup.nonces.issue(exchange_id=exchange(99), audience=VERIFIER_ID, now=NOW, ttl=600)
    return PendingRequest(
        exchange_id=exchange(99),
        citizen=CITIZEN,
        verifier_id=VERIFIER_ID,
        nonce=issued.nonce,
        query=query,
        purpose=PURPOSE,
        created_at=NOW,
        expires_at=issued.expires_at,
    )


async def test_over_asking_is_refused_online(tmp_path: Path) -> None:
    setup = make_setup(World(), str(tmp_path / "v.sqlite3"), tmp_path)
    pending = over_asking_request(setup)
    disclosed = setup.world.present(
        setup.world.credential(), nonce=pending.nonce, disclose=[("family_name",)]
    )
    result = await setup.answer(pending, disclosed)
    assert (result.verified, result.error_code) == (False, "not_authorized_to_request")
    # ... and the auditor agrees with that verdict.
    assert audit(setup, export(setup, tmp_path)).clean


async def test_over_asking_recorded_as_verified_is_found(tmp_path: Path) -> None:
    setup = make_setup(World(), str(tmp_path / "v.sqlite3"), tmp_path)
    world = setup.world
    pending = over_asking_request(setup)
    disclosed = world.present(world.credential(), nonce=pending.nonce, disclose=[("family_name",)])
    status = world.status_token()
    # A verifier that asked for more than it is registered for and recorded the answer
    # as verified, with all the evidence an honest verdict would have.
    setup.audit.append(
        kind=EntryKind.VERIFICATION,
        exchange_id=pending.exchange_id,
        now=NOW + 5,
        presentation=json.dumps({"residence": [disclosed]}),
        outcome=VerificationOutcome(
            verified=True,
            issuer=ISSUER_ID,
            vct=RESIDENCE,
            disclosed=("residence:family_name",),
        ),
        trust_list=TrustListVersion(sequence=1, hash=setup.evidence.put(world.trust_token())),
        status_lists=(StatusListVersion(uri=STATUS_URI, hash=setup.evidence.put(status)),),
        details=request_details(pending),
    )
    report = audit(setup, export(setup, tmp_path))
    assert [(finding.code, finding.seq) for finding in report.findings] == [
        ("audit_reverify_mismatch", 1)
    ]
    assert "rejected (not_authorized_to_request)" in report.findings[0].message


async def test_verdicts_are_bound_to_the_recorded_request(tmp_path: Path) -> None:
    setup = make_setup(World(), str(tmp_path / "v.sqlite3"), tmp_path)
    world = setup.world
    asked = setup.request()
    setup.audit.append(
        kind=EntryKind.REQUEST,
        exchange_id=asked.exchange_id,
        now=NOW,
        details=request_details(asked),
    )
    presentation = world.present(world.credential(), nonce=asked.nonce)
    assert (await setup.answer(asked, presentation)).verified
    # Another request of the same verifier, never recorded in the log: its verdict
    # entry, though honestly verified, is bound to no recorded request.
    unrecorded = setup.request()
    other = world.present(world.credential(), nonce=unrecorded.nonce)
    assert (await setup.answer(unrecorded, other)).verified
    # A verdict recorded for the first exchange but under another nonce and audience:
    # its KB-JWT (made for that nonce and audience) verifies against its own details,
    # but not against what the recorded request asked.
    forged = world.present(world.credential(), nonce=unrecorded.nonce, aud="https://x.example")
    verified = setup.audit.entries()[1]
    setup.audit.append(
        kind=EntryKind.VERIFICATION,
        exchange_id=asked.exchange_id,
        now=NOW + 7,
        presentation=json.dumps({"residence": [forged]}),
        outcome=verified.outcome,
        trust_list=verified.trust_list,
        status_lists=verified.status_lists,
        details=request_details(asked)
        | {"nonce": "Zm9yZ2VkLW5vbmNlLWZvcmdlZC1ub25jZQ", "audience": "https://x.example"},
    )
    exported = export(setup, tmp_path)
    entries = read_export_entries(exported)
    report = audit(setup, exported, requests=recorded_requests(entries))
    assert [(finding.code, finding.seq) for finding in report.findings] == [
        ("audit_reverify_mismatch", 3),
        ("audit_reverify_mismatch", 4),
    ]
    assert all("nonce_mismatch" in finding.message for finding in report.findings)
    # Without the recorded requests only the verdicts' own details count.
    assert [finding.seq for finding in audit(setup, exported).findings] == [4]
