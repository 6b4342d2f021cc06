"""The credential types onceonly ships: SD-JWT VC type metadata and JSON Schemas.

Each type lives in ``schemas/credentials/<name>.vct.json`` (SD-JWT VC type
metadata: display names in German and English, claim labels, which claims are
selectively disclosable) beside ``<name>.schema.json`` (the JSON Schema an issued
credential's processed payload must satisfy).

The current SD-JWT VC draft has no member for a JSON Schema, so the schema's file
name sits under onceonly's own, collision-resistant member
``"urn:onceonly:type-metadata": {"schema_uri": ...}`` (other consumers ignore it,
as the draft requires of members they do not understand). The document's octets
are kept: our issuer signs ``vct#integrity`` over them and holders and verifiers
check it against their copy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from onceonly.errors import ConfigError, InvalidClaim, MalformedInput
from onceonly.sdjwt.type_metadata import TypeMetadata
from onceonly.types import Vct

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "credentials"

ONCEONLY_MEMBER = "urn:onceonly:type-metadata"
"""Our extension member of a type metadata document (holds ``schema_uri``)."""

ClaimPath = tuple[str | int | None, ...]


@dataclass(frozen=True)
class ClaimDisplay:
    """How one claim is labelled for people."""

    path: ClaimPath
    label_de: str
    label_en: str
    selectively_disclosable: bool
    mandatory: bool


@dataclass(frozen=True)
class CredentialType:
    """One credential type: its ``vct``, names, claim labels and schema."""

    key: str
    vct: Vct
    name_de: str
    name_en: str
    claims: tuple[ClaimDisplay, ...]
    schema: Mapping[str, Any]
    metadata: Mapping[str, Any]
    type_metadata: TypeMetadata

    @property
    def disclosable_paths(self) -> tuple[ClaimPath, ...]:
        """Claim paths the issuer makes selectively disclosable (``sd`` not ``never``)."""
        return tuple(c.path for c in self.claims if c.selectively_disclosable)

    def label(self, path: ClaimPath, lang: str = "en") -> str:
        """Human label of ``path`` in ``lang`` ("de" or "en"); the dotted path if unknown."""
        for claim in self.claims:
            if claim.path == path:
                return claim.label_de if lang == "de" else claim.label_en
        return ".".join("*" if p is None else str(p) for p in path)

    def validate(self, payload: Mapping[str, Any]) -> None:
        """Check a processed credential payload against the type's JSON Schema.

        Raises:
            InvalidClaim: naming the first violation's location.
        """
        validator = jsonschema.Draft202012Validator(
            self.schema, format_checker=jsonschema.FormatChecker()
        )
        error = jsonschema.exceptions.best_match(validator.iter_errors(payload))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise InvalidClaim(
                f"credential does not match {self.vct} schema at {where}: {error.message}"
            )


def _display(entries: list[Mapping[str, Any]], locale_prefix: str, field: str) -> str:
    for entry in entries:
        if str(entry.get("locale", "")).startswith(locale_prefix):
            return str(entry[field])
    raise ConfigError(f"type metadata lacks a {locale_prefix} {field}")


def _load(path: Path) -> CredentialType:
    try:
        parsed = TypeMetadata.from_document(path.read_bytes())
    except MalformedInput as exc:
        raise ConfigError(f"type metadata {path.name}: {exc.message}") from exc
    metadata = parsed.content
    ours = metadata.get(ONCEONLY_MEMBER)
    schema_name = ours.get("schema_uri") if isinstance(ours, dict) else None
    if not isinstance(schema_name, str) or Path(schema_name).name != schema_name:
        raise ConfigError(f"type metadata {path.name} names no schema file in {ONCEONLY_MEMBER}")
    schema = json.loads(path.with_name(schema_name).read_text(encoding="utf-8"))
    claims = tuple(
        ClaimDisplay(
            path=tuple(c["path"]),
            label_de=_display(c["display"], "de", "label"),
            label_en=_display(c["display"], "en", "label"),
            selectively_disclosable=c.get("sd", "allowed") != "never",
            mandatory=bool(c.get("mandatory", False)),
        )
        for c in metadata["claims"]
    )
    return CredentialType(
        key=path.name.removesuffix(".vct.json"),
        vct=Vct(metadata["vct"]),
        name_de=_display(metadata["display"], "de", "name"),
        name_en=_display(metadata["display"], "en", "name"),
        claims=claims,
        schema=schema,
        metadata=metadata,
        type_metadata=parsed,
    )


@cache
def all_types(directory: Path = SCHEMA_DIR) -> dict[Vct, CredentialType]:
    """Every shipped credential type, by ``vct``."""
    types = [_load(p) for p in sorted(directory.glob("*.vct.json"))]
    return {t.vct: t for t in types}


def type_metadata(vct: str) -> TypeMetadata | None:
    """The shipped Type Metadata for ``vct``, or ``None`` (a ``VerificationPolicy`` resolver)."""
    credential_type = all_types().get(Vct(vct))
    return None if credential_type is None else credential_type.type_metadata


def get_type(vct: str, directory: Path = SCHEMA_DIR) -> CredentialType:
    """The credential type for ``vct``.

    Raises:
        ConfigError: no such type is shipped.
    """
    try:
        return all_types(directory)[Vct(vct)]
    except KeyError:
        raise ConfigError(f"unknown credential type {vct!r}") from None
