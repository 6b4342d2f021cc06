"""``#integrity`` values (SD-JWT VC draft "Integrity of Referenced Documents").

The value is a W3C Subresource Integrity "integrity metadata" string: one or more
whitespace-separated ``<alg>-<base64 digest>[?options]`` expressions, e.g.
``sha256-vJKakJAQkDYkIhGrT1M3nxRuSj9udH0l1PXB06QHto8=``. A consumer hashes the
octets of the referenced document with the strongest algorithm it supports among
those listed and accepts the document if that digest equals any expression of that
algorithm; a value with no supported algorithm rejects the document. Pure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Final, NamedTuple

from onceonly.errors import IntegrityMismatch, MalformedInput

# Weakest to strongest: the order in which "strongest supported" is chosen.
_DIGEST_SIZES: Final[dict[str, int]] = {"sha256": 32, "sha384": 48, "sha512": 64}
_STRENGTH: Final = tuple(_DIGEST_SIZES)
# SRI §3.5 hash-with-options; base64-value is standard base64 with its padding.
_EXPRESSION: Final = re.compile(
    r"(?P<alg>[A-Za-z0-9]+)-(?P<digest>[A-Za-z0-9+/]+={0,2})(?:\?[\x21-\x7e]*)?"
)
_MAX_CHARS: Final = 2048


class HashExpression(NamedTuple):
    """One ``<alg>-<digest>`` expression of an integrity value (a supported ``alg``)."""

    alg: str
    digest: bytes


def parse_integrity(value: object) -> tuple[HashExpression, ...]:
    """Parse an integrity metadata string; return the expressions with a supported algorithm.

    Expressions with an algorithm we do not know are skipped (SRI); their syntax
    must still be right.

    Raises:
        MalformedInput: not a string, not integrity metadata syntax, a digest of the
            wrong length for its algorithm, or no supported algorithm at all.
    """
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_CHARS:
        raise MalformedInput("an integrity value must be a non-empty SRI string")
    expressions: list[HashExpression] = []
    for token in value.split():
        match = _EXPRESSION.fullmatch(token)
        if match is None:
            raise MalformedInput(f"{token[:80]!r} is not an SRI hash expression")
        alg = match["alg"]
        if alg not in _DIGEST_SIZES:
            continue
        try:
            digest = base64.b64decode(match["digest"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedInput(f"the {alg} digest is not base64") from exc
        if len(digest) != _DIGEST_SIZES[alg]:
            raise MalformedInput(f"a {alg} digest has {_DIGEST_SIZES[alg]} bytes")
        expressions.append(HashExpression(alg, digest))
    if not expressions:
        raise MalformedInput("the integrity value names no supported hash algorithm")
    return tuple(expressions)


def integrity_of(document: bytes, alg: str = "sha256") -> str:
    """The integrity metadata string for ``document`` (one expression, ``alg``)."""
    if alg not in _DIGEST_SIZES:
        raise ValueError(f"unsupported integrity algorithm {alg!r}")
    digest = hashlib.new(alg, document).digest()
    return f"{alg}-{base64.b64encode(digest).decode('ascii')}"


def verify_integrity(value: object, document: bytes, *, what: str) -> None:
    """Check ``document`` (its exact octets) against the integrity value.

    Args:
        value: The ``#integrity`` value as received.
        document: The referenced document's octets.
        what: Names the reference in messages (e.g. ``vct#integrity``).

    Raises:
        MalformedInput: ``value`` is not usable integrity metadata.
        IntegrityMismatch: the document's digest matches no expression of the
            strongest listed algorithm.
    """
    expressions = parse_integrity(value)
    strongest = max((e.alg for e in expressions), key=_STRENGTH.index)
    actual = hashlib.new(strongest, document).digest()
    if not any(hmac.compare_digest(actual, e.digest) for e in expressions if e.alg == strongest):
        raise IntegrityMismatch(
            f"the document does not match {what}", detail={"claim": what, "alg": strongest}
        )
