"""Step 6: an auditor checks the family benefits office's audit log, offline, from files.

The office exports its hash-chained audit log (with signed heads) and hands the
auditor the export, its evidence archive (the trust and status list tokens its
verdicts relied on) and the public key of its audit heads. The auditor trusts
only the trust authority's key: it re-verifies every recorded presentation
against the recorded lists, checks the chain and the head signatures - and, to
show that the check has teeth, also audits a copy with one entry altered.
"""

from __future__ import annotations

import json
from pathlib import Path

from onceonly.errors import AuditLogError
from scenario import cast
from scenario.narrator import Outcome
from scenario.parties import services_of
from scenario.scene import Scene
from scenario.world import AUDIT_PUBLIC_KEY
from verifier.audit import audit_file
from verifier.evidence import EvidenceArchive
from verifier.reverify import Reverifier

EXPORT_FILE = "audit-export.jsonl"
TAMPERED_FILE = "audit-export-tampered.jsonl"


def tampered_copy(export: Path, target: Path) -> int:
    """Copy ``export`` to ``target`` with the first verification entry's time changed.

    Returns:
        The ``seq`` of the altered entry.

    Raises:
        AuditLogError: the export holds no verification entry to alter.
    """
    lines = export.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        record = json.loads(line)
        entry = record.get("entry")
        if isinstance(entry, dict) and entry.get("outcome") is not None:
            entry["time"] += 1  # a quiet back-dating of one verdict
            lines[number] = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
            target.write_text("\n".join(lines) + "\n", encoding="utf-8")
            return int(entry["seq"])
    raise AuditLogError("the export holds no verification entry")


async def audit(scene: Scene) -> None:
    """Step 6: export, audit offline, and show that tampering is found."""
    world, narrator = scene.world, scene.narrator
    services = await services_of(scene)
    office = services.family_benefits
    directory = world.data_dir / "auditor"
    directory.mkdir(exist_ok=True)
    export = directory / EXPORT_FILE
    now = office.runtime.now()
    office.audit.sign_head(now=now)
    summary = office.audit.export(export, now=now)
    narrator.say(
        cast.FAMILY_BENEFITS.name_de,
        f"exports its audit log: {summary.entries} entries, {summary.heads} signed heads",
    )
    evidence = EvidenceArchive(world.family_benefits.data_dir / office.config.evidence_dir)

    def reverifier() -> Reverifier:
        return Reverifier(evidence=evidence, anchors=world.anchors)

    report = audit_file(export, verifier_key=world.audit_key, reverify=reverifier())
    narrator.say(
        "Auditor",
        f"checks chain and heads, re-verifies {report.reverified} presentations offline:"
        f" {'clean' if report.clean else ', '.join(report.codes())}",
    )
    narrator.note(
        "same check on the command line: onceonly audit log"
        f" {export} --verifier-key {world.family_benefits.data_dir / AUDIT_PUBLIC_KEY}"
    )
    altered_seq = tampered_copy(export, directory / TAMPERED_FILE)
    tampered = audit_file(
        directory / TAMPERED_FILE, verifier_key=world.audit_key, reverify=reverifier()
    )
    narrator.say(
        "Auditor",
        f"a copy with entry {altered_seq} back-dated by one second: {', '.join(tampered.codes())}",
    )
    caught = "audit_altered" in tampered.codes()
    narrator.end(
        Outcome.DONE if report.clean and report.reverified > 0 and caught else Outcome.FAILED,
        f"{summary.entries} entries, {report.reverified} re-verified, clean={report.clean};"
        f" tampered copy flagged {sorted(set(tampered.codes()))}",
        entries=summary.entries,
        heads=summary.heads,
        reverified=report.reverified,
        clean=report.clean,
        findings=report.codes(),
        tampered_findings=tampered.codes(),
    )
