"""A verifier agency's configuration: ``verifier.json`` in its data directory, plus its key.

Layout created by :func:`init_verifier` (``onceonly verifier init``)::

    <data_dir>/verifier.json          this configuration (0600: the store may be a DSN
                                      with a password)
    <data_dir>/keys/<kid>.jwk.json    the private key that signs audit log heads (0600)
    <data_dir>/account.json           the Matrix login (``onceonly account ...``)
    <data_dir>/trust-list.jwt         the cached trust list (``onceonly trust fetch``)
    <data_dir>/evidence/              trust and status list tokens the verdicts used

Relative paths in the file are relative to the data directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from issuer.signing_keys import new_signing_key, read_private_key, write_private_key
from onceonly import jose
from onceonly.errors import ConfigError, OnceOnlyError
from onceonly.sql import is_postgres_location

FORMAT: Final = "onceonly-verifier/1"
CONFIG_FILE: Final = "verifier.json"
_MAX_CONFIG_BYTES: Final = 256 * 1024


class VerifierConfig(BaseModel):
    """The verifier's settings.

    Attributes:
        verifier_id: Our agency id on the trust list (the ``aud`` we require).
        store: Nonces, requests and audit log: a SQLite file or ``postgresql://`` DSN.
        evidence_dir: Where the tokens verdicts relied on are kept.
        keys_dir: Directory of the audit signing key.
        signing_kid: The audit signing key's id.
        signing_alg: Its algorithm.
        trust_anchors: Public JWKs of the trust authorities we accept.
        request_ttl: Default seconds a request stays answerable.
        head_every: Sign the audit log head every this many entries.
        trust_room: Room where the trust authority publishes the list: its
            ``#onceonly-trust.<account>:<server>`` alias (the account must have created
            the room and sent the list) or a room id; the service refreshes its cached
            list from there. ``None``: only
            ``onceonly trust fetch`` updates it.
        refused_per_sender: Refused answers of one sender recorded in the audit log
            per window; beyond it they are only counted, and the count recorded.
        refused_window_seconds: The length of that window.
        nonce_retention_seconds: How long after its expiry a nonce is kept (an
            expired nonce is refused either way; purging it only frees space).
        request_retention_seconds: How long after its expiry a request is kept in
            the request store (the audit log keeps it for good).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["onceonly-verifier/1"] = FORMAT
    verifier_id: Annotated[str, Field(min_length=1, max_length=255)]
    store: Annotated[str, Field(min_length=1)] = "verifier.sqlite3"
    evidence_dir: str = "evidence"
    keys_dir: str = "keys"
    signing_kid: str
    signing_alg: Literal["ES256", "EdDSA"] = "ES256"
    trust_anchors: tuple[dict[str, Any], ...] = Field(min_length=1)
    request_ttl: Annotated[int, Field(ge=10, le=7 * 24 * 3600)] = 900
    head_every: Annotated[int, Field(ge=0)] = 100
    trust_room: Annotated[str, Field(min_length=2, max_length=255)] | None = None
    refused_per_sender: Annotated[int, Field(ge=0)] = 20
    refused_window_seconds: Annotated[int, Field(ge=60)] = 3600
    nonce_retention_seconds: Annotated[int, Field(ge=0)] = 24 * 3600
    request_retention_seconds: Annotated[int, Field(ge=0)] = 30 * 24 * 3600

    def store_location(self, data_dir: Path) -> str:
        """The store as :func:`~onceonly.sql.open_database` expects it."""
        if is_postgres_location(self.store):
            return self.store
        return str(data_dir / self.store)

    def anchors(self) -> list[jose.PublicKey]:
        """The trust anchors as keys.

        Raises:
            ConfigError: an anchor is not a public P-256/Ed25519 JWK.
        """
        try:
            return [jose.public_key_from_jwk(jwk) for jwk in self.trust_anchors]
        except OnceOnlyError as exc:
            raise ConfigError(f"invalid trust anchor in {CONFIG_FILE}: {exc.message}") from exc

    def signing_key(self, data_dir: Path) -> jose.PrivateKey:
        """The audit signing key (permissions checked).

        Raises:
            ConfigError: missing, unreadable or too widely readable.
        """
        path = data_dir / self.keys_dir / f"{self.signing_kid}.jwk.json"
        return read_private_key(path, kid=self.signing_kid, alg=self.signing_alg)


def init_verifier(
    data_dir: Path,
    *,
    verifier_id: str,
    anchors: list[jose.PublicKey],
    store: str | None = None,
    alg: str = jose.ES256,
    trust_room: str | None = None,
) -> tuple[VerifierConfig, jose.PublicKey]:
    """Create the configuration and a fresh audit signing key.

    Returns:
        The configuration and the signing key's public half (for auditors).

    Raises:
        ConfigError: a configuration exists already, or an argument is invalid.
    """
    path = data_dir / CONFIG_FILE
    if path.exists():
        raise ConfigError(f"{CONFIG_FILE} exists already in this data directory")
    key = new_signing_key(alg)
    assert key.kid is not None  # new_signing_key sets the thumbprint as kid
    try:
        config = VerifierConfig(
            verifier_id=verifier_id,
            store=store or "verifier.sqlite3",
            signing_kid=key.kid,
            signing_alg="EdDSA" if alg == jose.EDDSA else "ES256",
            trust_anchors=tuple(anchor.to_jwk() for anchor in anchors),
            trust_room=trust_room,
        )
    except ValidationError as exc:
        raise ConfigError(f"invalid verifier configuration: {exc.errors()[0]['msg']}") from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    keys_dir = data_dir / config.keys_dir
    keys_dir.mkdir(mode=0o700, exist_ok=True)
    write_private_key(keys_dir, key)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(config.model_dump(mode="json"), indent=2) + "\n")
    return config, key.public()


def load_config(data_dir: Path) -> VerifierConfig:
    """Read ``verifier.json`` from the data directory.

    Raises:
        ConfigError: missing, unreadable or invalid.
    """
    path = data_dir / CONFIG_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {CONFIG_FILE}: {exc.strerror}") from exc
    try:
        return VerifierConfig.model_validate(
            jose.strict_json_loads(data, max_bytes=_MAX_CONFIG_BYTES)
        )
    except OnceOnlyError as exc:
        raise ConfigError(f"{CONFIG_FILE} is not valid JSON: {exc.message}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{CONFIG_FILE}: {where}: {first['msg']}") from exc
