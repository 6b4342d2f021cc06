"""Audit-log commands: ``log`` (auditor: check an export), ``export-log`` (verifier: write one).

These are plain click commands, exported as :data:`log_commands` for the ``audit``
group to attach::

    onceonly audit log export.jsonl --verifier-key verifier.pub.jwk [--exported-after T] [--json]
    onceonly audit export-log --store audit.sqlite3 --out export.jsonl --signing-key key.jwk

``log`` exits 0 when the export is clean and 1 when there is any finding (warnings
included: an auditor should not have to read the output to learn that part of the
log is unprotected), listing every finding with its entry and line.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from onceonly.cli import emit, fail, json_option
from onceonly.errors import ConfigError, MalformedInput, OnceOnlyError
from onceonly.jose import (
    PrivateKey,
    PublicKey,
    private_key_from_jwk,
    public_key_from_jwk,
    strict_json_loads,
)
from onceonly.sql import is_postgres_location
from verifier.audit import audit_file
from verifier.audit_log import AuditLog, ExportSummary
from verifier.audit_report import AuditReport, Severity

_MAX_JWK_BYTES = 16 * 1024


def _read_jwk(value: str) -> Any:
    """A JWK given inline (``{...}``) or as a file name."""
    if value.lstrip().startswith("{"):
        return strict_json_loads(value, max_bytes=_MAX_JWK_BYTES)
    path = Path(value)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path.name!r}: {exc.strerror}") from exc
    return strict_json_loads(data, max_bytes=_MAX_JWK_BYTES)


def load_public_key(value: str) -> PublicKey:
    """Load the verifier's public key from an inline JWK or a JWK file.

    Raises:
        ConfigError: the file cannot be read.
        MalformedInput, UnsupportedAlgorithm: it is not a public P-256/Ed25519 JWK.
    """
    return public_key_from_jwk(_read_jwk(value))


def load_private_key(value: str) -> PrivateKey:
    """Load the verifier's signing key from a private JWK file (or inline JWK).

    Raises:
        ConfigError: the file cannot be read.
        MalformedInput, UnsupportedAlgorithm: it is not a private P-256/Ed25519 JWK.
    """
    jwk = _read_jwk(value)
    if not isinstance(jwk, dict):
        raise MalformedInput("JWK must be a JSON object")
    return private_key_from_jwk(jwk)


def render_report(report: AuditReport, source: str) -> str:
    """The human form of an audit report."""
    signed = (
        "no valid signed head"
        if report.last_signed_seq is None
        else f"signed up to entry {report.last_signed_seq}"
    )
    if report.exported_at is not None:
        signed += f", export signed at {report.exported_at} (epoch seconds)"
    lines = [
        f"audit log {report.log_id or '(unknown)'} from {source}: {report.entries} entries, "
        f"{report.heads} signed heads ({report.valid_heads} valid), {signed}"
    ]
    if report.clean:
        lines.append("clean: chain intact and covered by valid signed heads")
        return "\n".join(lines)
    lines.append(f"{len(report.findings)} finding(s):")
    for finding in report.findings:
        where = []
        if finding.seq is not None:
            where.append(f"entry {finding.seq}")
        if finding.line is not None:
            where.append(f"line {finding.line}")
        place = f" [{', '.join(where)}]" if where else ""
        label = "ERROR" if finding.severity is Severity.ERROR else "WARNING"
        lines.append(f"  {label} {finding.code}{place}: {finding.message}")
    return "\n".join(lines)


@click.command("log")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--verifier-key",
    required=True,
    help="The verifier's public JWK: a file, or the JSON itself.",
)
@click.option(
    "--evidence",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The verifier's evidence directory: re-verify every recorded presentation "
    "against the trust and status lists it names.",
)
@click.option(
    "--trust-anchor",
    "trust_anchors",
    multiple=True,
    help="A trust authority public JWK (file or JSON) for --evidence; repeatable.",
)
@click.option(
    "--exported-after",
    type=int,
    metavar="EPOCH",
    help="When you asked for the export (epoch seconds): an export signed earlier is "
    "reported as audit_export_stale (an old export may lack recent entries).",
)
@json_option
@click.pass_context
def log_command(
    ctx: click.Context,
    file: Path,
    verifier_key: str,
    evidence: Path | None,
    trust_anchors: tuple[str, ...],
    exported_after: int | None,
) -> None:
    """Check an exported audit log FILE: chain, hashes and signed heads.

    With --evidence, also re-verify every recorded presentation (reported as
    audit_reverify_mismatch when the verdict differs). Exits 0 when clean, 1 when
    anything is found (every finding is listed).
    """
    ctx.find_root().ensure_object(dict)
    if evidence is not None and not trust_anchors:
        raise click.UsageError("--evidence needs at least one --trust-anchor")
    try:
        reverify = None
        if evidence is not None:
            # Imported here: the chain check alone needs none of the SD-JWT machinery.
            from verifier.evidence import EvidenceArchive
            from verifier.reverify import (
                Reverifier,
                nonce_consumers,
                read_export_entries,
                recorded_requests,
            )

            entries = read_export_entries(file)
            reverify = Reverifier(
                evidence=EvidenceArchive(evidence),
                anchors=[load_public_key(anchor) for anchor in trust_anchors],
                consumers=nonce_consumers(entries),
                requests=recorded_requests(entries),
            )
        report = audit_file(
            file,
            verifier_key=load_public_key(verifier_key),
            reverify=reverify,
            exported_after=exported_after,
        )
    except OnceOnlyError as exc:
        fail(ctx, exc)
        return
    emit(ctx, report.to_dict(), render_report(report, file.name))
    ctx.exit(0 if report.clean else 1)


@click.command("export-log")
@click.option(
    "--store",
    required=True,
    help="The verifier's audit log: a SQLite file or a postgresql:// DSN.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The JSON Lines file to write.",
)
@click.option(
    "--signing-key",
    required=True,
    help="The verifier's private JWK (file or JSON): signs the current head and the "
    "export head that vouches for where the export ends.",
)
@json_option
@click.pass_context
def export_log_command(ctx: click.Context, store: str, out: Path, signing_key: str) -> None:
    """Export the verifier's audit log for an auditor (entries verbatim, signed heads, and
    an export head over the last entry)."""
    ctx.find_root().ensure_object(dict)
    try:
        summary = _export(store, out, signing_key)
    except OnceOnlyError as exc:
        fail(ctx, exc)
        return
    data = {
        "log_id": summary.log_id,
        "entries": summary.entries,
        "heads": summary.heads,
        "last_seq": summary.last_seq,
        "out": str(out),
    }
    emit(
        ctx,
        data,
        f"exported {summary.entries} entries and {summary.heads} signed heads "
        f"of audit log {summary.log_id} to {out}",
    )


def _export(store: str, out: Path, signing_key: str) -> ExportSummary:
    # Opening a missing SQLite file would create an empty log and export that:
    # a typo in --store must not look like an empty audit trail.
    if not is_postgres_location(store) and not Path(store).is_file():
        raise ConfigError(f"no audit log at {store!r}")
    key = load_private_key(signing_key)
    now = int(time.time())
    with AuditLog.open(store, signing_key=key) as log:
        log.sign_head(now=now)
        return log.export(out, now=now)


log_commands: list[click.Command] = [log_command, export_log_command]
"""The audit-log commands, for the ``audit`` group to ``add_command``."""
