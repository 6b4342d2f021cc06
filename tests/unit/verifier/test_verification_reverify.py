"""verifier.reverify: the auditor redoes every recorded verification from the export alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from onceonly.jose import generate_private_key
from verifier.audit import AuditReport, audit_file
from verifier.audit_format import EntryKind, VerificationOutcome
from verifier.audit_log import AuditLog
from verifier.evidence import EvidenceArchive
from verifier.reverify import Reverifier, nonce_consumers, read_export_entries

from .test_verification import Setup, make_setup
from .verification_world import NOW, World


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
