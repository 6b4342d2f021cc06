"""SD-JWT VC Type Metadata: the parts a holder, verifier and issuer must enforce.

The draft's claim metadata says, per claim ``path``, whether the issuer must make
the claim selectively disclosable (``sd: always``), must not (``sd: never``), or may
(``sd: allowed``, the default), and whether it must include it (``mandatory``).
"When a Holder or Verifier processes claim metadata ... it MUST validate the
processed SD-JWT payload against the claim metadata": a claim selected by a path is
selectively disclosable only if it is *itself* a disclosure (not merely inside a
disclosed parent), and integer / ``null`` path components count array elements as
issued, hidden ones included - the same issued-index paths :mod:`processing` gives.

Pure: the document's octets come from the caller (they also feed ``vct#integrity``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from onceonly import jose
from onceonly.errors import ClaimMetadataNotMet, ClaimMetadataViolation, MalformedInput
from onceonly.sdjwt.claims import ClaimPath, format_path, path_matches
from onceonly.sdjwt.integrity import integrity_of

SdRule = Literal["always", "allowed", "never"]
_SD_VALUES: Final[frozenset[str]] = frozenset({"always", "allowed", "never"})
MAX_TYPE_METADATA_BYTES: Final = 256 * 1024


@dataclass(frozen=True)
class ClaimMetadata:
    """One entry of ``claims``: a path and its ``sd`` / ``mandatory`` rules."""

    path: ClaimPath
    sd: SdRule
    mandatory: bool


def _claim_path(value: Any) -> ClaimPath:
    if not isinstance(value, list) or not value:
        raise MalformedInput("claim metadata 'path' must be a non-empty array")
    for component in value:
        if component is None or isinstance(component, str):
            continue
        if isinstance(component, int) and not isinstance(component, bool) and component >= 0:
            continue
        raise MalformedInput(f"claim metadata path component {component!r} is not allowed")
    return tuple(value)


def _claim_metadata(entry: Any) -> ClaimMetadata:
    if not isinstance(entry, dict):
        raise MalformedInput("each claim metadata entry must be an object")
    sd = entry.get("sd", "allowed")
    if sd not in _SD_VALUES:
        raise MalformedInput(f"claim metadata 'sd' must be always, allowed or never: {sd!r}")
    mandatory = entry.get("mandatory", False)
    if not isinstance(mandatory, bool):
        raise MalformedInput("claim metadata 'mandatory' must be a boolean")
    return ClaimMetadata(_claim_path(entry.get("path")), sd, mandatory)


@dataclass(frozen=True)
class TypeMetadata:
    """A parsed Type Metadata document with the exact octets it was read from.

    Attributes:
        vct: The type it describes.
        document: The document's octets, as published (``vct#integrity`` hashes these).
        content: The parsed JSON object.
        claims: The claim metadata entries.
    """

    vct: str
    document: bytes
    content: Mapping[str, Any]
    claims: tuple[ClaimMetadata, ...]

    @classmethod
    def from_document(cls, document: bytes) -> TypeMetadata:
        """Parse and check the structure of a Type Metadata document.

        Raises:
            MalformedInput: not a JSON object, no ``vct`` string, or ``claims`` not
                conforming to the draft's claim metadata structure.
        """
        content = jose.strict_json_loads(document, max_bytes=MAX_TYPE_METADATA_BYTES)
        if not isinstance(content, dict):
            raise MalformedInput("type metadata must be a JSON object")
        vct = content.get("vct")
        if not isinstance(vct, str) or not vct:
            raise MalformedInput("type metadata needs a 'vct' string")
        entries = content.get("claims", [])
        if not isinstance(entries, list):
            raise MalformedInput("type metadata 'claims' must be an array")
        claims = tuple(_claim_metadata(entry) for entry in entries)
        return cls(vct=vct, document=bytes(document), content=content, claims=claims)

    @property
    def integrity(self) -> str:
        """The ``vct#integrity`` value an issuer puts beside ``vct`` (SHA-256)."""
        return integrity_of(self.document)

    def paths_with(self, sd: SdRule) -> tuple[ClaimPath, ...]:
        """The claim paths whose ``sd`` is ``sd``."""
        return tuple(c.path for c in self.claims if c.sd == sd)

    def sd_violations(
        self, *, visible: Iterable[ClaimPath], disclosed: Iterable[ClaimPath]
    ) -> list[str]:
        """Where the ``sd`` rules are broken, as human-readable findings (empty: none).

        Args:
            visible: Every claim path present (issued array indices), disclosed or not.
            disclosed: The paths that are themselves disclosures.
        """
        disclosed_set = set(disclosed)
        always, never = self.paths_with("always"), self.paths_with("never")
        findings = [
            f"{format_path(path)} is marked sd=never but is selectively disclosable"
            for path in sorted(disclosed_set, key=repr)
            if any(path_matches(pattern, path) for pattern in never)
        ]
        if always:
            findings += [
                f"{format_path(path)} is marked sd=always but is not selectively disclosable"
                for path in sorted(set(visible) - disclosed_set, key=repr)
                if any(path_matches(pattern, path) for pattern in always)
            ]
        return findings

    def check_received(
        self, *, visible: Iterable[ClaimPath], disclosed: Iterable[ClaimPath]
    ) -> None:
        """A holder's or verifier's check of a credential against the ``sd`` rules.

        ``mandatory`` is not checked here: a verifier may not take an absent claim
        as the issuer's omission (the draft), and a holder's JSON Schema covers it.

        Raises:
            ClaimMetadataViolation: naming the first broken rule.
        """
        findings = self.sd_violations(visible=visible, disclosed=disclosed)
        if findings:
            raise ClaimMetadataViolation(
                f"credential breaks the claim metadata of {self.vct}: {findings[0]}",
                detail={"vct": self.vct, "findings": findings[:8]},
            )

    def check_issued(self, *, visible: Iterable[ClaimPath], disclosed: Iterable[ClaimPath]) -> None:
        """An issuer's check of what it is about to sign (``sd`` and ``mandatory``).

        Raises:
            ClaimMetadataNotMet: naming the broken rules; the credential must not be issued.
        """
        visible_set = set(visible)
        findings = self.sd_violations(visible=visible_set, disclosed=disclosed)
        findings += [
            f"{format_path(claim.path)} is mandatory but absent"
            for claim in self.claims
            if claim.mandatory and not any(path_matches(claim.path, p) for p in visible_set)
        ]
        if findings:
            raise ClaimMetadataNotMet(
                f"refusing to issue {self.vct}: {'; '.join(findings)}",
                detail={"vct": self.vct, "findings": findings[:8]},
            )


def claim_paths(value: Any, prefix: ClaimPath = ()) -> set[ClaimPath]:
    """Every claim path in a plain (issuer-side) claim set, array indices included."""
    paths: set[ClaimPath] = set()
    stack: list[tuple[Any, ClaimPath]] = [(value, prefix)]
    while stack:
        item, path = stack.pop()
        if path:
            paths.add(path)
        if isinstance(item, Mapping):
            stack.extend((child, (*path, name)) for name, child in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((child, (*path, index)) for index, child in enumerate(item))
    return paths
