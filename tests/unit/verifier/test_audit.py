"""verifier.audit: the offline auditor finds every deletion, alteration and reordering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onceonly import errors
from onceonly.jose import EDDSA, ES256, PrivateKey, generate_private_key, sign_compact
from tests.unit.verifier.audit_samples import (
    OUTCOME,
    build_export,
    cut_tail,
    entry_line,
    entry_of,
    export_of,
    verdict,
)
from verifier.audit import Severity, audit_file, audit_lines
from verifier.audit_format import (
    HEAD_TYP,
    AuditEntry,
    EntryKind,
    VerificationOutcome,
)


@pytest.fixture(params=[ES256, EDDSA])
def key(request: pytest.FixtureRequest) -> PrivateKey:
    return generate_private_key(request.param, kid="verifier-1")


def located(report: object) -> list[tuple[str, int | None]]:
    return [(f.code, f.seq) for f in report.findings]  # type: ignore[attr-defined]


def audit(lines: list[str], key: PrivateKey, **kwargs: object) -> object:
    return audit_lines(lines, verifier_key=key.public(), **kwargs)  # type: ignore[arg-type]


def test_clean_log_verifies(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    report = audit_file(tmp_path / "export.jsonl", verifier_key=key.public())
    assert report.clean, report.findings
    assert (report.entries, report.last_seq, report.last_signed_seq) == (30, 30, 30)
    assert report.heads == report.valid_heads == 4  # every 10 entries, plus the final one
    assert len(lines) == 1 + 30 + 4 + 1  # header, entries, heads, export head
    assert report.exported_at == json.loads(lines[0])["log"]["exported_at"]


def test_deleted_entry_is_a_gap(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    del lines[5]
    report = audit(lines, key)
    assert located(report) == [("audit_gap", 5)]
    assert "entries 5 are missing" in report.findings[0].message  # type: ignore[attr-defined]


def test_deleted_range_is_one_gap(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    del lines[12:15]
    assert located(audit(lines, key)) == [("audit_gap", 12)]


def test_deleted_first_entry(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    del lines[1]
    assert located(audit(lines, key)) == [("audit_gap", 1)]


def test_altered_entry_found(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    entry = entry_of(lines[14])  # a verification entry: the presentation is in it
    entry["presentation"] = entry["presentation"] + "X"
    lines[14] = entry_line(entry)
    report = audit(lines, key)
    assert located(report) == [("audit_altered", 14)]
    assert report.findings[0].line == 15  # type: ignore[attr-defined]


def test_altered_and_rehashed_entry_found_at_its_link(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    entry = entry_of(lines[13])
    entry["exchange_id"] = "ex-forged"
    lines[13] = entry_line(entry, rehash=True)
    assert located(audit(lines, key)) == [("audit_altered", 13)]


def test_rewritten_chain_is_caught_by_signed_heads(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    prev_hash = None
    for seq in range(12, 31):  # the forger rewrites every hash after the change
        entry = entry_of(lines[seq])
        if seq == 12:
            entry["details"] = {"status": "forged"}
        else:
            entry["prev_hash"] = prev_hash
        lines[seq] = entry_line(entry, rehash=True)
        prev_hash = entry_of(lines[seq])["entry_hash"]
    report = audit(lines, key)
    # The chain is consistent again; only the heads at 20 and 30 (twice) and the
    # export head expose it, and nothing after the last matching head (10) is covered
    # by a signature any more.
    assert located(report) == [
        ("audit_head_mismatch", 20),
        ("audit_head_mismatch", 30),
        ("audit_head_mismatch", 30),
        ("audit_head_mismatch", 30),
        ("audit_unsigned_tail", 11),
    ]
    assert report.last_signed_seq == 10  # type: ignore[attr-defined]


def test_reordered_pair_found(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    lines[20], lines[21] = lines[21], lines[20]
    report = audit(lines, key)
    assert located(report) == [("audit_reordered", 20)]
    assert report.findings[0].line == 22  # type: ignore[attr-defined]


def test_deleted_altered_and_reordered_all_found(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    entry = entry_of(lines[14])
    entry["outcome"]["disclosed"] = ["given_name", "birth_date"]
    lines[14] = entry_line(entry)
    lines[20], lines[21] = lines[21], lines[20]
    del lines[5]
    report = audit(lines, key)
    assert sorted(located(report)) == [
        ("audit_altered", 14),
        ("audit_gap", 5),
        ("audit_reordered", 20),
    ]
    assert all(f.severity is Severity.ERROR for f in report.findings)  # type: ignore[attr-defined]


def test_duplicate_entry_found(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    lines.insert(8, lines[7])
    assert located(audit(lines, key)) == [("audit_duplicate", 7)]


def test_bad_head_signature(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    other = generate_private_key(key.alg)
    head_index = 31  # first head line (seq 10)
    jws = lines[head_index].split('"head":"')[1].rstrip('"}')
    payload = jws.split(".")[1]
    forged = sign_compact({"x": 1}, other, typ=HEAD_TYP).split(".")
    lines[head_index] = '{"head":"' + ".".join([jws.split(".")[0], payload, forged[2]]) + '"}'
    report = audit(lines, key)
    assert [(f.code, f.line) for f in report.findings] == [  # type: ignore[attr-defined]
        ("audit_bad_head_signature", head_index + 1)
    ]


def test_wrong_verifier_key_rejects_every_head(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    report = audit_lines(lines, verifier_key=generate_private_key(key.alg).public())
    codes = report.codes()
    assert codes.count("audit_bad_head_signature") == 5  # four heads and the export head
    assert codes[-1] == "audit_unsigned_tail"
    assert report.valid_heads == 0 and report.last_signed_seq is None


def test_head_signed_for_another_log(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    entry = entry_of(lines[30])
    forged = sign_compact(
        {"seq": 30, "entry_hash": entry["entry_hash"], "time": 1, "log_id": "other-log"},
        key,
        typ=HEAD_TYP,
    )
    lines.append('{"head":"' + forged + '"}')
    assert located(audit(lines, key)) == [("audit_head_mismatch", 30)]


def test_truncation_below_a_signed_head(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    del lines[26:31]
    report = audit(lines, key)
    assert located(report) == [("audit_truncated", 26), ("audit_unsigned_tail", 21)]
    assert "26..30 were removed" in report.findings[0].message  # type: ignore[attr-defined]


def test_tail_cut_back_to_an_earlier_signed_head_is_truncation(
    tmp_path: Path, key: PrivateKey
) -> None:
    lines = build_export(tmp_path, key, entries=30)
    # Entries 21..30 and the heads over them removed: what is left ends exactly at
    # the signed head of entry 20, so every regular head still matches.
    cut = cut_tail(lines, 20, keep_export_head=True)
    report = audit(cut, key)
    assert [(f.code, f.seq, f.line) for f in report.findings] == [  # type: ignore[attr-defined]
        ("audit_truncated", 21, len(cut))
    ]
    assert "21..30 were removed" in report.findings[0].message  # type: ignore[attr-defined]
    # Dropping the export head as well leaves an export whose end nobody signed.
    report = audit(cut_tail(lines, 20, keep_export_head=False), key)
    assert located(report) == [("audit_export_unsigned", 21)]
    assert report.errors  # type: ignore[attr-defined]


def test_export_head_bound_to_the_export(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=12)
    (tmp_path / "later").mkdir()
    later = build_export(tmp_path / "later", key, entries=3)
    # An export head of another export (another log) does not vouch for this one.
    swapped = [*lines[:-1], later[-1]]
    assert located(audit(swapped, key)) == [("audit_head_mismatch", 3)]
    # The header's export time is what the export head signed.
    retimed = [lines[0].replace('"exported_at":', '"exported_at":1'), *lines[1:]]
    assert located(audit(retimed, key)) == [("audit_head_mismatch", 12)]
    # Entries added after the export head's end, and a second export head.
    assert located(audit([*lines, lines[-1]], key)) == [("malformed", None)]
    extra = entry_of(lines[12])
    extra["seq"], extra["prev_hash"] = 13, extra["entry_hash"]
    grown = [*lines[:13], entry_line(extra, rehash=True), *lines[13:]]
    assert located(audit(grown, key)) == [
        ("audit_head_mismatch", 13),
        ("audit_unsigned_tail", 13),
    ]


def test_unsigned_tail_is_a_warning(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=25, final_head=False, export_head=False)
    report = audit(lines, key)
    assert located(report) == [("audit_export_unsigned", 26), ("audit_unsigned_tail", 21)]
    assert [f.severity for f in report.findings] == [  # type: ignore[attr-defined]
        Severity.ERROR,
        Severity.WARNING,
    ]


def test_export_head_signs_the_tail(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=25, final_head=False)
    report = audit(lines, key)
    assert report.clean and report.last_signed_seq == 25  # type: ignore[attr-defined]


def test_empty_log_with_head_is_clean(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=0)
    report = audit(lines, key)
    assert report.clean and report.last_signed_seq == 0  # type: ignore[attr-defined]


def test_malformed_lines_are_located_and_the_rest_still_checked(
    tmp_path: Path, key: PrivateKey
) -> None:
    lines = build_export(tmp_path, key, entries=30)
    lines.insert(4, "this is not json")
    bad = entry_of(lines[10])
    bad["extra"] = "field"
    lines[10] = entry_line(bad)  # entry 9 (shifted by the insertion)
    lines.insert(2, '{"entry": {"seq": 1}, "head": "x"}')
    report = audit(lines, key)
    assert [(f.code, f.line, f.seq) for f in report.findings] == [  # type: ignore[attr-defined]
        ("malformed", 3, None),
        ("malformed", 6, None),
        ("malformed", 12, 9),
        ("audit_gap", 13, 9),
    ]


def test_missing_header_reported(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=10)
    report = audit(lines[1:], key)
    assert located(report) == [("malformed", None)]
    assert report.log_id is None  # type: ignore[attr-defined]


def test_first_entry_from_another_log(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=10)
    lines[0] = lines[0].replace('"log_id":"', '"log_id":"x')
    codes = located(audit(lines, key))
    assert ("audit_altered", 1) in codes
    assert codes.count(("audit_head_mismatch", 10)) == 3  # two heads and the export head


def test_reverify_hook_agreeing_is_clean(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)
    seen: list[int] = []

    def reverify(entry: AuditEntry) -> VerificationOutcome:
        seen.append(entry.seq)
        return OUTCOME

    report = audit_lines(lines, verifier_key=key.public(), reverify=reverify)
    assert report.clean
    assert seen == list(range(2, 31, 4)) and report.reverified == len(seen)


def test_reverify_hook_mismatches_reported(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=30)

    def reverify(entry: AuditEntry) -> VerificationOutcome:
        if entry.seq == 6:
            raise errors.Revoked("credential revoked since")
        if entry.seq == 10:
            return VerificationOutcome(verified=True, disclosed=("family_name",))
        return OUTCOME

    report = audit_lines(lines, verifier_key=key.public(), reverify=reverify)
    assert located(report) == [("audit_reverify_mismatch", 6), ("audit_reverify_mismatch", 10)]
    assert "rejected (revoked)" in report.findings[0].message


def test_audit_file_errors(tmp_path: Path, key: PrivateKey) -> None:
    with pytest.raises(errors.StoreError):
        audit_file(tmp_path / "missing.jsonl", verifier_key=key.public())
    (tmp_path / "latin1.jsonl").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(errors.MalformedInput):
        audit_file(tmp_path / "latin1.jsonl", verifier_key=key.public())


def test_empty_log_head_naming_another_hash(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=0, final_head=False)
    log_id = json.loads(lines[0])["log"]["log_id"]
    forged = sign_compact(
        {"seq": 0, "entry_hash": "00" * 32, "time": 1, "log_id": log_id}, key, typ=HEAD_TYP
    )
    report = audit([*lines, '{"head":"' + forged + '"}'], key)
    assert located(report) == [("audit_head_mismatch", 0)]


def test_oversized_and_deep_lines_are_findings_not_crashes(tmp_path: Path, key: PrivateKey) -> None:
    lines = build_export(tmp_path, key, entries=3)
    lines.insert(2, '{"entry": "' + "a" * (1024 * 1024) + '"}')
    lines.insert(3, "[" * 100_000 + "]" * 100_000)
    report = audit(lines, key)
    assert [(f.code, f.line) for f in report.findings] == [  # type: ignore[attr-defined]
        ("too_large", 3),
        ("too_large", 4),
    ]


def test_verified_without_evidence_is_a_finding(tmp_path: Path, key: PrivateKey) -> None:
    lines = export_of(
        tmp_path,
        key,
        [
            verdict(7),
            verdict(7, presentation=None),  # "verified", but nothing to re-verify
            {"kind": EntryKind.VERIFICATION, "presentation": "{}", "outcome": OUTCOME},
            verdict(7, presentation=None, verified=False),  # a rejection needs none
        ],
    )
    report = audit(lines, key)
    assert [(f.code, f.seq, f.line) for f in report.findings] == [  # type: ignore[attr-defined]
        ("audit_missing_evidence", 2, 3),
        ("audit_missing_evidence", 3, 4),
    ]
    assert "without its presentation" in report.findings[0].message  # type: ignore[attr-defined]
    assert "without its trust list" in report.findings[1].message  # type: ignore[attr-defined]


def test_trust_list_rollback_is_a_finding(tmp_path: Path, key: PrivateKey) -> None:
    lines = export_of(
        tmp_path,
        key,
        [
            verdict(3),
            verdict(5),
            {"kind": EntryKind.REQUEST, "details": {"nonce": "n"}},
            verdict(4, verified=False),  # judged under a list it had already replaced
            verdict(5),
            verdict(6),
            verdict(3),
        ],
    )
    report = audit(lines, key)
    assert [(f.code, f.seq) for f in report.findings] == [  # type: ignore[attr-defined]
        ("audit_trust_rollback", 4),
        ("audit_trust_rollback", 7),
    ]
    assert "trust list 4 after entry 2 had used trust list 5" in report.findings[0].message  # type: ignore[attr-defined]
