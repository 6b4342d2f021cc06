"""Compact (``<jwt>~<d1>~...~[<kb>]``) and JWS JSON (RFC 9901 §8) serializations.

Splitting is purely structural: nothing here is trusted or verified. The one
derived value that matters for security is :attr:`RawSdJwt.sd_hash_input`, the
exact string the KB-JWT's ``sd_hash`` must cover; for the JSON forms it is the
compact-equivalent string (RFC 9901 §8.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from onceonly.errors import InputTooLarge, MalformedInput
from onceonly.jose import json_dumps_compact, strict_json_loads

SEPARATOR: Final = "~"
DISCLOSURES_MEMBER: Final = "disclosures"
KB_JWT_MEMBER: Final = "kb_jwt"
DEFAULT_MAX_PRESENTATION_BYTES: Final = 256 * 1024

Form = Literal["compact", "json-flattened", "json-general"]


@dataclass(frozen=True, slots=True)
class RawSdJwt:
    """The parts of an SD-JWT or SD-JWT+KB, as received.

    Attributes:
        issuer_jwt: The issuer-signed JWT in compact form ``header.payload.signature``.
        disclosures: The encoded disclosures, in the order received.
        kb_jwt: The Key Binding JWT, or ``None``.
        form: Which serialization it came in.
    """

    issuer_jwt: str
    disclosures: tuple[str, ...]
    kb_jwt: str | None
    form: Form = "compact"

    @property
    def sd_hash_input(self) -> str:
        """``<issuer jwt>~<d1>~...~<dN>~``: what ``sd_hash`` is computed over."""
        return compact_without_kb(self.issuer_jwt, self.disclosures)


def compact_without_kb(issuer_jwt: str, disclosures: Sequence[str]) -> str:
    """Join an issuer JWT and disclosures, ending with the ``~`` an SD-JWT requires."""
    return SEPARATOR.join((issuer_jwt, *disclosures)) + SEPARATOR


def serialize_compact(
    issuer_jwt: str, disclosures: Sequence[str], kb_jwt: str | None = None
) -> str:
    """Compact serialization; with ``kb_jwt`` it is an SD-JWT+KB."""
    return compact_without_kb(issuer_jwt, disclosures) + (kb_jwt or "")


def serialize_json(
    issuer_jwt: str,
    disclosures: Sequence[str],
    kb_jwt: str | None = None,
    *,
    general: bool = False,
) -> str:
    """JWS JSON serialization with ``disclosures`` (and ``kb_jwt``) in the unprotected header."""
    protected, payload, signature = issuer_jwt.split(".")
    header: dict[str, Any] = {DISCLOSURES_MEMBER: list(disclosures)}
    if kb_jwt is not None:
        header[KB_JWT_MEMBER] = kb_jwt
    signature_entry = {"protected": protected, "header": header, "signature": signature}
    if general:
        return json_dumps_compact({"payload": payload, "signatures": [signature_entry]})
    return json_dumps_compact({"payload": payload, **signature_entry})


def split_sd_jwt(
    text: str,
    *,
    max_bytes: int = DEFAULT_MAX_PRESENTATION_BYTES,
    max_disclosures: int = 1024,
) -> RawSdJwt:
    """Split either serialization into its parts (no verification).

    Raises:
        InputTooLarge: longer than ``max_bytes`` or more than ``max_disclosures``.
        MalformedInput: missing trailing ``~``, an empty component, or a bad JSON form.
    """
    if not isinstance(text, str):
        raise MalformedInput("an SD-JWT must be text")
    if len(text) > max_bytes:
        raise InputTooLarge(f"SD-JWT of {len(text)} characters exceeds {max_bytes}")
    raw = _split_json(text, max_bytes) if text.startswith("{") else _split_compact(text)
    if len(raw.disclosures) > max_disclosures:
        raise InputTooLarge(f"more than {max_disclosures} disclosures")
    return raw


def _split_compact(text: str) -> RawSdJwt:
    if SEPARATOR not in text:
        raise MalformedInput("an SD-JWT must end with '~' (no '~' found)")
    parts = text.split(SEPARATOR)
    issuer_jwt, disclosures, last = parts[0], parts[1:-1], parts[-1]
    if not issuer_jwt:
        raise MalformedInput("the issuer-signed JWT is empty")
    if "" in disclosures:
        raise MalformedInput("empty disclosure component ('~~')")
    return RawSdJwt(issuer_jwt, tuple(disclosures), last or None, "compact")


def _string_member(container: dict[str, Any], name: str) -> str:
    value = container.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedInput(f"JWS JSON member {name!r} must be a non-empty string")
    return value


def _split_json(text: str, max_bytes: int) -> RawSdJwt:
    document = strict_json_loads(text, max_bytes=max_bytes)
    if not isinstance(document, dict):
        raise MalformedInput("JWS JSON serialization must be an object")
    form: Form
    if "signatures" in document:
        if set(document) != {"payload", "signatures"}:
            raise MalformedInput("unexpected members in general JWS JSON")
        signatures = document["signatures"]
        if not isinstance(signatures, list) or len(signatures) != 1:
            raise MalformedInput("exactly one issuer signature is supported")
        entry = signatures[0]
        if not isinstance(entry, dict):
            raise MalformedInput("a JWS JSON signature entry must be an object")
        form = "json-general"
    else:
        entry = document
        form = "json-flattened"
    allowed = {"protected", "header", "signature"} | ({"payload"} if entry is document else set())
    if not set(entry) <= allowed:
        raise MalformedInput("unexpected members in JWS JSON")
    header = entry.get("header")
    if not isinstance(header, dict) or not set(header) <= {DISCLOSURES_MEMBER, KB_JWT_MEMBER}:
        raise MalformedInput("unprotected header must hold only 'disclosures' and 'kb_jwt'")
    disclosures = header.get(DISCLOSURES_MEMBER)
    if not isinstance(disclosures, list) or not all(
        isinstance(item, str) and item for item in disclosures
    ):
        raise MalformedInput("'disclosures' must be an array of non-empty strings")
    kb_jwt = header.get(KB_JWT_MEMBER)
    if kb_jwt is not None and (not isinstance(kb_jwt, str) or not kb_jwt):
        raise MalformedInput("'kb_jwt' must be a non-empty string")
    issuer_jwt = ".".join(
        (
            _string_member(entry, "protected"),
            _string_member(document, "payload"),
            _string_member(entry, "signature"),
        )
    )
    if SEPARATOR in issuer_jwt or any(SEPARATOR in item for item in disclosures):
        raise MalformedInput("'~' inside a JWS JSON member")
    return RawSdJwt(issuer_jwt, tuple(disclosures), kb_jwt, form)


def reserialize(raw: RawSdJwt, disclosures: Sequence[str], kb_jwt: str | None) -> str:
    """Serialize ``raw``'s issuer JWT with other disclosures / KB-JWT, keeping its form."""
    if raw.form == "compact":
        return serialize_compact(raw.issuer_jwt, disclosures, kb_jwt)
    return serialize_json(raw.issuer_jwt, disclosures, kb_jwt, general=raw.form == "json-general")
