"""An issuing agency's configuration: one TOML file plus a directory of private keys.

Layout created by :func:`init_agency`::

    <dir>/agency.toml          the configuration (read with tomllib, written by
                               the small writer below; mode 0600 since a
                               PostgreSQL DSN may carry a password)
    <dir>/keys/                0700
    <dir>/keys/<kid>.jwk.json  one private JWK per signing key, 0600

The TOML file::

    format = "onceonly-agency/1"

    [agency]
    id = "https://meldebehoerde.berlin.example"   # the credentials' ``iss``
    name_de = "Meldebehörde Berlin"
    name_en = "Berlin Registration Office"

    [matrix]
    user_id = "@meldebehoerde:localhost"
    data_dir = "matrix"                           # account data (relative to this file)

    [signing]
    keys_dir = "keys"
    active_kid = "..."                            # signs new credentials
    [[signing.keys]]                              # older keys stay for rotation
    kid = "..."
    alg = "ES256"                                 # or "EdDSA"
    file = "<kid>.jwk.json"                       # relative to keys_dir

    [status_list]
    base_uri = "https://meldebehoerde.berlin.example/status"
    bits = 2
    list_size = 131072

    [storage]
    register = "register.sqlite3"                 # a SQLite path or a postgresql:// DSN
    issuer = "issuer.sqlite3"                     # status registry and issuance log
    nonce_retention_seconds = 3600                # expired nonces are purged after this

    [[credentials]]
    vct = "urn:onceonly:credential:residence:1"
    validity_days = 365

Relative paths are relative to the configuration file's directory. Private keys
are refused when their file is readable or writable by anyone but the owner,
when the keys directory is open to others, or when another user owns them
(see :mod:`issuer.signing_keys`).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from issuer.register.model import describe_validation_error
from issuer.signing_keys import (
    check_private_dir,
    check_private_file,
    new_signing_key,
    read_private_key,
    write_private_key,
)
from issuer.status_registry import DEFAULT_BITS, DEFAULT_LIST_SIZE
from onceonly.credential_types import get_type
from onceonly.errors import ConfigError
from onceonly.jose import ES256, PrivateKey
from onceonly.types import Vct

FORMAT: Final = "onceonly-agency/1"
CONFIG_FILE: Final = "agency.toml"
KEYS_DIR: Final = "keys"
DEFAULT_NONCE_RETENTION_SECONDS: Final = 3_600
"""Expired nonces, offers and eID codes are purged an hour after they expire."""
MAX_NONCE_RETENTION_SECONDS: Final = 30 * 86_400
_SECONDS_PER_DAY: Final = 86_400

DEFAULT_VALIDITY_DAYS: Final[Mapping[str, int]] = {
    "urn:onceonly:credential:pid:1": 3650,
    "urn:onceonly:credential:residence:1": 365,
    "urn:onceonly:credential:birth-certificate:1": 3650,
    "urn:onceonly:credential:vehicle-registration:1": 730,
    "urn:onceonly:credential:income-tax-assessment:1": 1095,
}
"""Validity used by :func:`init_agency` when the caller gives none for a type."""


def _is_dsn(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


class SigningKeyRef(BaseModel):
    """Where one signing key lives; the private key itself is loaded on demand."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kid: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")
    alg: Literal["ES256", "EdDSA"]
    file: Path


class IssuedType(BaseModel):
    """A credential type the agency issues and how long its credentials stay valid."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vct: str
    validity_days: int = Field(gt=0, le=36_500)

    @field_validator("vct")
    @classmethod
    def _shipped_type(cls, vct: str) -> str:
        try:
            get_type(vct)
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return vct

    @property
    def validity_seconds(self) -> int:
        """Validity in seconds (``exp - iat``)."""
        return self.validity_days * _SECONDS_PER_DAY


class AgencyConfig(BaseModel):
    """A loaded agency configuration; paths are absolute.

    Attributes:
        path: The configuration file.
        agency_id: The agency's identifier, used as ``iss``.
        name_de: Display name in German.
        name_en: Display name in English.
        matrix_user_id: The agency's Matrix account.
        matrix_data_dir: Where the Matrix account's data lives.
        keys_dir: The private key directory.
        signing_keys: Every key, current and retired (verification of older credentials).
        active_kid: The key that signs new credentials.
        credentials: The types issued, with their validity.
        status_base_uri: Prefix of the status list URIs.
        status_bits: Bits per status entry.
        status_list_size: Entries per status list.
        register_database: SQLite path or PostgreSQL DSN of the register.
        issuer_database: SQLite path or DSN of the status registry and issuance log.
        nonce_retention_seconds: How long expired nonces, offers and eID codes are
            kept before the running service purges them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    agency_id: str = Field(pattern=r"^(https://[^\s/]+|http://(localhost|127\.[0-9.]+)(:\d+)?)")
    name_de: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    matrix_user_id: str = Field(pattern=r"^@[^:\s]+:[^\s]+$")
    matrix_data_dir: Path
    keys_dir: Path
    signing_keys: tuple[SigningKeyRef, ...] = Field(min_length=1)
    active_kid: str
    credentials: tuple[IssuedType, ...]
    status_base_uri: str = Field(pattern=r"^[a-z][a-z0-9+.-]*://\S+$")
    status_bits: Literal[1, 2, 4, 8] = DEFAULT_BITS
    status_list_size: int = Field(default=DEFAULT_LIST_SIZE, ge=8, multiple_of=8)
    register_database: str = Field(min_length=1)
    issuer_database: str = Field(min_length=1)
    nonce_retention_seconds: int = Field(
        default=DEFAULT_NONCE_RETENTION_SECONDS, ge=0, le=MAX_NONCE_RETENTION_SECONDS
    )

    @property
    def active_key(self) -> SigningKeyRef:
        """The reference of the key that signs new credentials."""
        return self.key_ref(self.active_kid)

    def key_ref(self, kid: str) -> SigningKeyRef:
        """The reference of key ``kid``.

        Raises:
            ConfigError: no key has this ``kid``.
        """
        for ref in self.signing_keys:
            if ref.kid == kid:
                return ref
        raise ConfigError(f"no signing key with kid {kid!r} in {self.path.name}")

    def issued_type(self, vct: str) -> IssuedType:
        """The settings for ``vct``.

        Raises:
            ConfigError: the agency does not issue ``vct``.
        """
        for issued in self.credentials:
            if issued.vct == vct:
                return issued
        raise ConfigError(f"{self.agency_id} does not issue {vct}")

    def issues(self) -> tuple[Vct, ...]:
        """The credential types the agency issues."""
        return tuple(Vct(issued.vct) for issued in self.credentials)


# --- reading -----------------------------------------------------------------------


def load_config(path: Path) -> AgencyConfig:
    """Read and check an agency configuration, including its key files' permissions.

    Raises:
        ConfigError: the file is missing, not TOML, invalid, refers to missing
            keys, or a key file or the keys directory is open to other users.
    """
    path = Path(path).resolve()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path.name}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name} is not valid TOML: {exc}") from None
    config = _from_document(document, path)
    check_private_dir(config.keys_dir)
    for ref in config.signing_keys:
        check_private_file(ref.file)
    return config


def _from_document(document: Mapping[str, Any], path: Path) -> AgencyConfig:
    if document.get("format") != FORMAT:
        raise ConfigError(f"{path.name}: 'format' must be {FORMAT!r}")
    base = path.parent

    def section(name: str) -> Mapping[str, Any]:
        value = document.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{path.name}: [{name}] must be a table")
        return value

    unknown = set(document) - {
        "format", "agency", "matrix", "signing", "status_list", "storage", "credentials"
    }  # fmt: skip
    if unknown:
        raise ConfigError(f"{path.name}: unknown setting(s) {', '.join(sorted(unknown))}")
    agency, matrix, signing = section("agency"), section("matrix"), section("signing")
    status, storage = section("status_list"), section("storage")
    keys_dir = _resolve(base, signing.get("keys_dir", KEYS_DIR))
    keys = signing.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise ConfigError(f"{path.name}: [[signing.keys]] must be tables")
    fields: dict[str, Any] = {
        "path": path,
        "agency_id": agency.get("id"),
        "name_de": agency.get("name_de"),
        "name_en": agency.get("name_en"),
        "matrix_user_id": matrix.get("user_id"),
        "matrix_data_dir": _resolve(base, matrix.get("data_dir", "matrix")),
        "keys_dir": keys_dir,
        "signing_keys": [{**k, "file": _resolve(keys_dir, k.get("file", ""))} for k in keys],
        "active_kid": signing.get("active_kid"),
        "credentials": document.get("credentials", []),
        "status_base_uri": status.get("base_uri"),
        "status_bits": status.get("bits", DEFAULT_BITS),
        "status_list_size": status.get("list_size", DEFAULT_LIST_SIZE),
        "register_database": _database(base, storage.get("register", "register.sqlite3")),
        "issuer_database": _database(base, storage.get("issuer", "issuer.sqlite3")),
        "nonce_retention_seconds": storage.get(
            "nonce_retention_seconds", DEFAULT_NONCE_RETENTION_SECONDS
        ),
    }
    try:
        config = AgencyConfig.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError(f"{path.name}: {describe_validation_error(exc)}") from None
    _check_consistency(config)
    return config


def _resolve(base: Path, value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"expected a path, got {value!r}")
    return (base / value).resolve()


def _database(base: Path, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"expected a database path or DSN, got {value!r}")
    return value if _is_dsn(value) else str(_resolve(base, value))


def _check_consistency(config: AgencyConfig) -> None:
    kids = [ref.kid for ref in config.signing_keys]
    if len(set(kids)) != len(kids):
        raise ConfigError(f"{config.path.name}: two signing keys share a kid")
    config.key_ref(config.active_kid)
    vcts = [issued.vct for issued in config.credentials]
    if len(set(vcts)) != len(vcts):
        raise ConfigError(f"{config.path.name}: a credential type is listed twice")


# --- keys ----------------------------------------------------------------------------


def load_signing_key(config: AgencyConfig, kid: str | None = None) -> PrivateKey:
    """Load a private signing key (the active one by default).

    Raises:
        ConfigError: unknown ``kid``, bad permissions, or a file that is not the
            private JWK the configuration names.
    """
    ref = config.key_ref(kid or config.active_kid)
    check_private_dir(config.keys_dir)
    return read_private_key(ref.file, kid=ref.kid, alg=ref.alg)


def public_jwks(config: AgencyConfig) -> list[dict[str, str]]:
    """The public JWKs of every configured key (for the trust list), active first."""
    retired = [ref.kid for ref in config.signing_keys if ref.kid != config.active_kid]
    return [
        load_signing_key(config, kid).public().to_jwk() for kid in [config.active_kid, *retired]
    ]


# --- writing -----------------------------------------------------------------------


def init_agency(
    directory: Path,
    *,
    agency_id: str,
    name_de: str,
    name_en: str,
    matrix_user_id: str,
    credentials: Mapping[str, int] | Sequence[str],
    alg: str = ES256,
    status_base_uri: str | None = None,
    register_database: str = "register.sqlite3",
    issuer_database: str = "issuer.sqlite3",
) -> AgencyConfig:
    """Create an agency directory: configuration, keys directory and a first signing key.

    Args:
        directory: Where to create it (created if missing; must not hold a configuration).
        agency_id: The agency's identifier (``iss``), an ``https://`` URL.
        name_de: German display name.
        name_en: English display name.
        matrix_user_id: The agency's Matrix account.
        credentials: The vcts issued, either mapped to validity days or listed
            (then :data:`DEFAULT_VALIDITY_DAYS` applies).
        alg: ``ES256`` (default) or ``EdDSA``.
        status_base_uri: Status list URI prefix; ``<agency_id>/status`` by default.
        register_database: SQLite path (relative to ``directory``) or DSN.
        issuer_database: SQLite path (relative to ``directory``) or DSN.

    Raises:
        ConfigError: a configuration already exists there, or a setting is invalid.
    """
    directory = Path(directory)
    path = (directory / CONFIG_FILE).resolve()
    if path.exists():
        raise ConfigError(f"{path} already exists; refusing to overwrite an agency")
    days = (
        dict(credentials)
        if isinstance(credentials, Mapping)
        else {vct: DEFAULT_VALIDITY_DAYS.get(vct, 365) for vct in credentials}
    )
    key = new_signing_key(alg)
    keys_dir = path.parent / KEYS_DIR
    document: dict[str, Any] = {
        "format": FORMAT,
        "agency": {"id": agency_id, "name_de": name_de, "name_en": name_en},
        "matrix": {"user_id": matrix_user_id, "data_dir": "matrix"},
        "signing": {
            "keys_dir": KEYS_DIR,
            "active_kid": key.kid,
            "keys": [{"kid": key.kid, "alg": key.alg, "file": f"{key.kid}.jwk.json"}],
        },
        "status_list": {
            "base_uri": status_base_uri or f"{agency_id.rstrip('/')}/status",
            "bits": DEFAULT_BITS,
            "list_size": DEFAULT_LIST_SIZE,
        },
        "storage": {"register": register_database, "issuer": issuer_database},
        "credentials": [{"vct": vct, "validity_days": d} for vct, d in days.items()],
    }
    config = _from_document(document, path)  # validate before touching the disk
    directory.mkdir(parents=True, exist_ok=True)
    keys_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(keys_dir, 0o700)  # mkdir's mode is filtered by the umask
    write_private_key(keys_dir, key)
    save_config(config)
    return load_config(path)


def rotate_signing_key(config: AgencyConfig, *, alg: str | None = None) -> AgencyConfig:
    """Create a new signing key, make it active and keep the old ones for verification.

    Args:
        config: The current configuration (its file is rewritten).
        alg: Algorithm of the new key; the active key's by default.

    Returns:
        The configuration as reloaded from disk.
    """
    check_private_dir(config.keys_dir)
    key = new_signing_key(alg or config.active_key.alg)
    file = write_private_key(config.keys_dir, key)
    ref = SigningKeyRef.model_validate({"kid": key.kid, "alg": key.alg, "file": file})
    updated = config.model_copy(
        update={"signing_keys": (*config.signing_keys, ref), "active_kid": ref.kid}
    )
    save_config(updated)
    return load_config(config.path)


def save_config(config: AgencyConfig) -> None:
    """Write ``config`` to ``config.path`` (atomically, mode 0600)."""
    text = render_config(config)
    tomllib.loads(text)  # the writer is ours: prove it produced TOML before replacing
    temporary = config.path.with_name(f".{config.path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, config.path)


def render_config(config: AgencyConfig) -> str:
    """The TOML text of ``config`` (paths relative to its directory where possible)."""
    base = config.path.parent

    def rel(path: Path, to: Path = base) -> str:
        return path.relative_to(to).as_posix() if path.is_relative_to(to) else path.as_posix()

    def db(target: str) -> str:
        return target if _is_dsn(target) else rel(Path(target))

    lines = [
        f"format = {_toml_string(FORMAT)}",
        "",
        "[agency]",
        f"id = {_toml_string(config.agency_id)}",
        f"name_de = {_toml_string(config.name_de)}",
        f"name_en = {_toml_string(config.name_en)}",
        "",
        "[matrix]",
        f"user_id = {_toml_string(config.matrix_user_id)}",
        f"data_dir = {_toml_string(rel(config.matrix_data_dir))}",
        "",
        "[signing]",
        f"keys_dir = {_toml_string(rel(config.keys_dir))}",
        f"active_kid = {_toml_string(config.active_kid)}",
    ]
    for ref in config.signing_keys:
        lines += [
            "",
            "[[signing.keys]]",
            f"kid = {_toml_string(ref.kid)}",
            f"alg = {_toml_string(ref.alg)}",
            f"file = {_toml_string(rel(ref.file, config.keys_dir))}",
        ]
    lines += [
        "",
        "[status_list]",
        f"base_uri = {_toml_string(config.status_base_uri)}",
        f"bits = {config.status_bits}",
        f"list_size = {config.status_list_size}",
        "",
        "[storage]",
        f"register = {_toml_string(db(config.register_database))}",
        f"issuer = {_toml_string(db(config.issuer_database))}",
        f"nonce_retention_seconds = {config.nonce_retention_seconds}",
    ]
    for issued in config.credentials:
        lines += [
            "",
            "[[credentials]]",
            f"vct = {_toml_string(issued.vct)}",
            f"validity_days = {issued.validity_days}",
        ]
    return "\n".join(lines) + "\n"


def _toml_string(value: str) -> str:
    # A JSON string is a TOML basic string, except that TOML also wants DEL escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
