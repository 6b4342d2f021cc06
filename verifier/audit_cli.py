"""``onceonly audit``: offline re-verification for auditors.

``onceonly audit sd-jwt FILE --issuer-key JWK_FILE [--nonce N --aud A] [--no-key-binding]``
verifies an SD-JWT VC presentation completely (RFC 9901 §7) and prints the
disclosed claims as JSON (exit 0), or the error code and message (exit 1).
FILE may be ``-`` for stdin. The audit-log commands (``log``, ``export-log``)
hang off the same group.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import click

from onceonly import jose
from onceonly.cli import emit, fail, json_option
from onceonly.errors import ConfigError, InputTooLarge, MalformedInput, OnceOnlyError, UnknownKey
from onceonly.sdjwt import VerificationPolicy, VerifiedCredential, verify_presentation
from onceonly.sdjwt.serialization import DEFAULT_MAX_PRESENTATION_BYTES
from verifier.audit_log_cli import log_commands

_MAX_KEY_FILE_BYTES = 64 * 1024


@click.group()
def audit() -> None:
    """Re-verify presentations and audit logs offline, from files."""


def load_issuer_keys(path: str) -> jose.PublicKey | jose.KeyResolver:
    """Read a public JWK, or a JWK Set (then the token's ``kid`` picks the key).

    Raises:
        ConfigError: unreadable file or a JWK Set without usable keys.
        MalformedInput, UnsupportedAlgorithm: not a public P-256/Ed25519 JWK.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read issuer key file {path!r}: {exc.strerror}") from exc
    document = jose.strict_json_loads(data, max_bytes=_MAX_KEY_FILE_BYTES)
    if not isinstance(document, dict):
        raise MalformedInput("the issuer key file must hold a JWK or a JWK Set object")
    if "keys" not in document:
        return jose.public_key_from_jwk(document)
    if not isinstance(document["keys"], list) or not document["keys"]:
        raise ConfigError("the JWK Set has no keys")
    by_kid = {}
    for jwk in document["keys"]:
        key = jose.public_key_from_jwk(jwk)
        if key.kid is None:
            raise ConfigError("every key of a JWK Set needs a 'kid'")
        by_kid[key.kid] = key

    def resolve(header: Mapping[str, Any], _payload: Mapping[str, Any]) -> jose.PublicKey:
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in by_kid:
            raise UnknownKey(f"no issuer key with kid {kid!r}")
        return by_kid[kid]

    return resolve


def read_presentation(stream: BinaryIO) -> str:
    """Read a presentation (bounded), decode UTF-8 and drop surrounding whitespace.

    Raises:
        InputTooLarge, MalformedInput.
    """
    data = stream.read(DEFAULT_MAX_PRESENTATION_BYTES + 1)
    if len(data) > DEFAULT_MAX_PRESENTATION_BYTES:
        raise InputTooLarge(f"presentation larger than {DEFAULT_MAX_PRESENTATION_BYTES} bytes")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise MalformedInput("the presentation is not UTF-8 text") from exc


def describe(result: VerifiedCredential) -> dict[str, Any]:
    """The JSON report of a verified presentation."""
    kb = result.key_binding
    return {
        "valid": True,
        "issuer": result.issuer,
        "vct": result.vct,
        "claims": result.claims,
        "disclosed_paths": sorted(
            (list(path) for path in result.disclosed_paths), key=lambda p: repr(p)
        ),
        "key_binding": None if kb is None else {"aud": kb.aud, "nonce": kb.nonce, "iat": kb.iat},
        "issued_at": result.issued_at,
        "expires_at": result.expires_at,
    }


@audit.command("sd-jwt")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--issuer-key",
    "issuer_key_file",
    required=True,
    metavar="JWK_FILE",
    help="The issuer's public JWK, or a JWK Set (the token's kid picks the key).",
)
@click.option("--nonce", help="The nonce the verifier issued (required with key binding).")
@click.option("--aud", help="The verifier's audience value (required with key binding).")
@click.option(
    "--no-key-binding",
    is_flag=True,
    help="Accept a presentation without KB-JWT (one that is present is still verified).",
)
@click.option("--vct", "expected_vct", help="Require this credential type.")
@click.option("--now", type=int, help="Verify as of this time (epoch seconds; default: now).")
@click.option("--accept-legacy-typ", is_flag=True, help="Also accept typ vc+sd-jwt.")
@json_option
@click.pass_context
def sd_jwt_command(
    ctx: click.Context,
    file: BinaryIO,
    issuer_key_file: str,
    nonce: str | None,
    aud: str | None,
    no_key_binding: bool,
    expected_vct: str | None,
    now: int | None,
    accept_legacy_typ: bool,
) -> None:
    """Verify the SD-JWT VC presentation in FILE ('-' for stdin) and print its claims."""
    ctx.find_root().ensure_object(dict)
    if not no_key_binding and (not nonce or not aud):
        raise click.UsageError("--nonce and --aud are required unless --no-key-binding is given")
    policy = VerificationPolicy(
        require_key_binding=not no_key_binding,
        expected_audience=aud,
        expected_nonce=nonce,
        expected_vct=expected_vct,
        accept_legacy_typ=accept_legacy_typ,
    )
    try:
        issuer_key = load_issuer_keys(issuer_key_file)
        result = verify_presentation(
            read_presentation(file),
            issuer_key=issuer_key,
            policy=policy,
            now=int(time.time()) if now is None else now,
        )
    except OnceOnlyError as error:
        fail(ctx, error)
        return
    emit(ctx, describe(result))


for _command in log_commands:
    audit.add_command(_command)
