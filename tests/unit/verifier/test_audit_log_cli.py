"""verifier.audit_log_cli: `log` (auditor) and `export-log` (verifier) through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from onceonly.jose import PrivateKey, generate_private_key
from tests.unit.verifier.audit_samples import (
    append_sample,
    build_export,
    cut_tail,
    export_of,
    verdict,
)
from verifier.audit_log import AuditLog
from verifier.audit_log_cli import export_log_command, log_command, log_commands


@pytest.fixture
def key() -> PrivateKey:
    return generate_private_key(kid="verifier-1")


@pytest.fixture
def public_jwk_file(tmp_path: Path, key: PrivateKey) -> Path:
    path = tmp_path / "verifier.pub.jwk"
    path.write_text(json.dumps(key.public().to_jwk()))
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_log_commands_exported() -> None:
    assert [command.name for command in log_commands] == ["log", "export-log"]
    assert all(isinstance(command, click.Command) for command in log_commands)


def test_clean_log_exits_0(
    tmp_path: Path, key: PrivateKey, public_jwk_file: Path, runner: CliRunner
) -> None:
    build_export(tmp_path, key, entries=12)
    result = runner.invoke(
        log_command, [str(tmp_path / "export.jsonl"), "--verifier-key", str(public_jwk_file)]
    )
    assert result.exit_code == 0, result.output
    assert "12 entries" in result.output and "clean" in result.output


def test_cut_tail_is_reported_in_text_and_json(
    tmp_path: Path, key: PrivateKey, public_jwk_file: Path, runner: CliRunner
) -> None:
    lines = build_export(tmp_path, key, entries=25)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(cut_tail(lines, 20, keep_export_head=True)) + "\n")
    arguments = [str(cut), "--verifier-key", str(public_jwk_file)]
    result = runner.invoke(log_command, arguments)
    assert result.exit_code == 1
    assert "ERROR audit_truncated [entry 21, line 24]" in result.output
    result = runner.invoke(log_command, [*arguments, "--json"])
    [finding] = json.loads(result.output)["findings"]
    assert (finding["code"], finding["seq"], finding["line"]) == ("audit_truncated", 21, 24)


def test_missing_evidence_and_trust_rollback_in_text_and_json(
    tmp_path: Path, key: PrivateKey, public_jwk_file: Path, runner: CliRunner
) -> None:
    export_of(tmp_path, key, [verdict(5), verdict(5, presentation=None), verdict(4)])
    arguments = [str(tmp_path / "custom.jsonl"), "--verifier-key", str(public_jwk_file)]
    result = runner.invoke(log_command, arguments)
    assert result.exit_code == 1
    assert "ERROR audit_missing_evidence [entry 2, line 3]" in result.output
    assert "ERROR audit_trust_rollback [entry 3, line 4]" in result.output
    result = runner.invoke(log_command, [*arguments, "--json"])
    located = [(f["code"], f["seq"], f["line"]) for f in json.loads(result.output)["findings"]]
    assert located == [("audit_missing_evidence", 2, 3), ("audit_trust_rollback", 3, 4)]


def test_an_older_export_is_stale(
    tmp_path: Path, key: PrivateKey, public_jwk_file: Path, runner: CliRunner
) -> None:
    lines = build_export(tmp_path, key, entries=12)
    exported_at = json.loads(lines[0])["log"]["exported_at"]
    arguments = [str(tmp_path / "export.jsonl"), "--verifier-key", str(public_jwk_file)]
    fresh = runner.invoke(log_command, [*arguments, "--exported-after", str(exported_at)])
    assert fresh.exit_code == 0, fresh.output
    # An old, genuine export handed over when a current one was asked for.
    result = runner.invoke(log_command, [*arguments, "--exported-after", str(exported_at + 1)])
    assert result.exit_code == 1
    assert f"ERROR audit_export_stale [entry 13, line {len(lines)}]" in result.output
    result = runner.invoke(
        log_command, [*arguments, "--exported-after", str(exported_at + 1), "--json"]
    )
    [finding] = json.loads(result.output)["findings"]
    assert (finding["code"], finding["seq"]) == ("audit_export_stale", 13)


def test_tampered_log_exits_1_listing_every_finding(
    tmp_path: Path, key: PrivateKey, public_jwk_file: Path, runner: CliRunner
) -> None:
    lines = build_export(tmp_path, key, entries=12)
    lines[3], lines[4] = lines[4], lines[3]
    del lines[8]
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    result = runner.invoke(log_command, [str(tampered), "--verifier-key", str(public_jwk_file)])
    assert result.exit_code == 1
    assert "2 finding(s)" in result.output
    assert "ERROR audit_reordered [entry 3, line 5]" in result.output
    assert "ERROR audit_gap [entry 8, line 9]" in result.output


def test_json_output_and_inline_key(tmp_path: Path, key: PrivateKey, runner: CliRunner) -> None:
    lines = build_export(tmp_path, key, entries=12, final_head=False, export_head=False)
    inline = json.dumps(key.public().to_jwk())
    result = runner.invoke(
        log_command, [str(tmp_path / "export.jsonl"), "--verifier-key", inline, "--json"]
    )
    # No export head, and the tail after the last head (10) is unprotected.
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["clean"] is False and report["entries"] == 12 == len(lines) - 2
    assert report["exported_at"] is None
    assert report["findings"] == [
        {
            "code": "audit_export_unsigned",
            "severity": "error",
            "seq": 13,
            "message": report["findings"][0]["message"],
        },
        {
            "code": "audit_unsigned_tail",
            "severity": "warning",
            "seq": 11,
            "message": report["findings"][1]["message"],
        },
    ]


@pytest.mark.parametrize(
    ("key_text", "code"),
    [
        ("{not json", "malformed"),
        ('{"kty": "RSA", "n": "x", "e": "AQAB"}', "unsupported_algorithm"),
    ],
)
def test_bad_verifier_key_is_a_typed_error(
    tmp_path: Path, key: PrivateKey, runner: CliRunner, key_text: str, code: str
) -> None:
    build_export(tmp_path, key, entries=1)
    result = runner.invoke(
        log_command, [str(tmp_path / "export.jsonl"), "--verifier-key", key_text, "--json"]
    )
    assert result.exit_code == 1
    assert json.loads(result.output)["error"]["code"] == code


def test_private_key_refused_as_verifier_key(
    tmp_path: Path, key: PrivateKey, runner: CliRunner
) -> None:
    build_export(tmp_path, key, entries=1)
    private = tmp_path / "private.jwk"
    private.write_text(json.dumps(key.to_jwk()))
    result = runner.invoke(
        log_command, [str(tmp_path / "export.jsonl"), "--verifier-key", str(private)]
    )
    assert result.exit_code == 1
    assert "error: malformed: public JWK contains private key material" in result.output


def test_missing_key_file_is_config_error(
    tmp_path: Path, key: PrivateKey, runner: CliRunner
) -> None:
    build_export(tmp_path, key, entries=1)
    result = runner.invoke(
        log_command,
        [str(tmp_path / "export.jsonl"), "--verifier-key", str(tmp_path / "nope.jwk"), "--json"],
    )
    assert result.exit_code == 1
    assert json.loads(result.output)["error"]["code"] == "config_error"


def test_export_then_audit(
    tmp_path: Path, key: PrivateKey, public_jwk_file: Path, runner: CliRunner
) -> None:
    store = tmp_path / "audit.sqlite3"
    with AuditLog.open(store, signing_key=key, head_every=10) as log:
        for index in range(1, 16):
            append_sample(log, index)
    unsigned, signed = tmp_path / "unsigned.jsonl", tmp_path / "signed.jsonl"
    # Without the signing key no export head could vouch for the export's end.
    result = runner.invoke(export_log_command, ["--store", str(store), "--out", str(unsigned)])
    assert result.exit_code == 2 and "--signing-key" in result.output
    assert not unsigned.exists()

    private = tmp_path / "verifier.jwk"
    private.write_text(json.dumps(key.to_jwk()))
    result = runner.invoke(
        export_log_command,
        ["--store", str(store), "--out", str(signed), "--signing-key", str(private)],
    )
    assert result.exit_code == 0, result.output
    assert "15 entries and 2 signed heads" in result.output
    audited = runner.invoke(log_command, [str(signed), "--verifier-key", str(public_jwk_file)])
    assert audited.exit_code == 0, audited.output
    assert "export signed at" in audited.output


def test_export_refuses_a_missing_store(tmp_path: Path, key: PrivateKey, runner: CliRunner) -> None:
    private = tmp_path / "verifier.jwk"
    private.write_text(json.dumps(key.to_jwk()))
    arguments = ["--store", str(tmp_path / "typo.sqlite3"), "--out", str(tmp_path / "o.jsonl")]
    arguments += ["--signing-key", str(private), "--json"]
    result = runner.invoke(export_log_command, arguments)
    assert result.exit_code == 1
    assert json.loads(result.output)["error"]["code"] == "config_error"
    assert not (tmp_path / "typo.sqlite3").exists()


def test_export_from_postgres(
    postgres_dsn: str, key: PrivateKey, public_jwk_file: Path, tmp_path: Path, runner: CliRunner
) -> None:
    with AuditLog.open(postgres_dsn, signing_key=key, head_every=5) as log:
        for index in range(1, 11):
            append_sample(log, index)
    out = tmp_path / "pg.jsonl"
    private = tmp_path / "verifier.jwk"
    private.write_text(json.dumps(key.to_jwk()))
    arguments = ["--store", postgres_dsn, "--out", str(out), "--signing-key", str(private)]
    result = runner.invoke(export_log_command, arguments)
    assert result.exit_code == 0, result.output
    audited = runner.invoke(log_command, [str(out), "--verifier-key", str(public_jwk_file)])
    assert audited.exit_code == 0, audited.output
