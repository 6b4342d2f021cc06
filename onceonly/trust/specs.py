"""Command-line forms of trust list entries, and a human-readable rendering (pure).

* times: Unix seconds or ISO 8601 (``2026-01-31``, ``2026-01-31T12:00:00+01:00``; UTC if
  no offset);
* key windows: ``FROM..UNTIL`` (either side may be empty);
* requests: ``VCT:PATH`` with a dotted claim path (``address.locality``, ``list.*``);
* purposes: ``CODE:DE:EN``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from onceonly import jose
from onceonly.errors import MalformedInput
from onceonly.trust.claim_paths import ClaimPath, format_claim_path, parse_claim_path
from onceonly.trust.model import AgencyKey, LocalizedText, Purpose, TrustList


def validation_summary(exc: ValidationError) -> str:
    """The first pydantic error as ``location: message``."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def parse_time(text: str) -> int:
    """Unix seconds from an integer or an ISO 8601 date/date-time (UTC unless given).

    Raises:
        MalformedInput: neither form.
    """
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MalformedInput(f"not a time: {text!r} (use 2026-01-31 or Unix seconds)") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def iso_time(seconds: int) -> str:
    """Render Unix seconds as an ISO 8601 UTC time (``...Z``)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def parse_window(window: str, *, default_from: int) -> tuple[int, int | None]:
    """``FROM..UNTIL`` -> (valid_from, valid_until); empty FROM means ``default_from``.

    Raises:
        MalformedInput: a bad time, or text without ``..`` that is not empty.
    """
    if window and ".." not in window:
        raise MalformedInput(f"key window must be FROM..UNTIL, got {window!r}")
    start, _, end = window.partition("..")
    return (parse_time(start) if start else default_from, parse_time(end) if end else None)


def agency_keys(
    jwk_data: Any, *, valid_from: int, valid_until: int | None, source: str
) -> list[AgencyKey]:
    """Agency keys from a decoded JWK or JWK Set, all with the same issuance window.

    Keys without ``kid`` get their RFC 7638 thumbprint as ``kid``. Private JWKs are
    refused: only public keys belong on the list.

    Raises:
        MalformedInput: no key, a private or unsupported key, or a bad window.
    """
    is_set = isinstance(jwk_data, Mapping) and "keys" in jwk_data
    jwks = jwk_data["keys"] if is_set else [jwk_data]
    if not isinstance(jwks, list) or not jwks:
        raise MalformedInput(f"{source} holds no JWK")
    keys = []
    for jwk in jwks:
        public = jose.public_key_from_jwk(jwk)  # refuses private members
        listed = {**public.to_jwk(), "kid": public.kid or public.thumbprint()}
        try:
            keys.append(AgencyKey(jwk=listed, valid_from=valid_from, valid_until=valid_until))
        except ValidationError as exc:
            raise MalformedInput(f"key in {source}: {validation_summary(exc)}") from exc
    return keys


def parse_request_spec(spec: str) -> tuple[str, ClaimPath]:
    """``VCT:PATH``: split at the last colon (a ``vct`` URI has colons, a path has none).

    Raises:
        MalformedInput: no colon, empty vct or a bad path.
    """
    vct, sep, path = spec.rpartition(":")
    if not sep or not vct:
        raise MalformedInput(f"--may-request wants VCT:PATH, got {spec!r}")
    return vct, parse_claim_path(path)


def parse_purpose_spec(spec: str) -> Purpose:
    """``CODE:DE:EN`` (the English text may contain colons, the German one not).

    Raises:
        MalformedInput: wrong shape or an invalid code.
    """
    parts = spec.split(":", 2)
    if len(parts) != 3:  # code, German text, English text
        raise MalformedInput(f"--purpose wants CODE:DE:EN, got {spec!r}")
    try:
        return Purpose(code=parts[0], text=LocalizedText(de=parts[1], en=parts[2]))
    except ValidationError as exc:
        raise MalformedInput(f"--purpose {spec!r}: {validation_summary(exc)}") from exc


def summary_of(trust_list: TrustList) -> dict[str, Any]:
    """The identifying facts of a list (for ``--json`` output and logs)."""
    return {
        "iss": trust_list.iss,
        "seq": trust_list.seq,
        "iat": trust_list.iat,
        "nbf": trust_list.nbf,
        "exp": trust_list.exp,
        "agencies": [agency.id for agency in trust_list.agencies],
    }


def describe(trust_list: TrustList, verified: bool | None) -> str:
    """A readable multi-line description of a list for people."""
    state = {True: "signature verified", False: "NOT verified", None: "signature not checked"}
    lines = [
        f"Trust list {trust_list.seq} of {trust_list.name.en} ({trust_list.iss}), "
        f"{state[verified]}",
        f"  valid {iso_time(trust_list.nbf)} .. {iso_time(trust_list.exp)}",
    ]
    for agency in trust_list.agencies:
        lines.append(f"- {agency.name.de} / {agency.name.en}  [{agency.id}]")
        lines.append(f"    matrix: {agency.matrix_user_id}")
        lines.extend(f"    did:    {did}" for did in agency.dids)
        for key in agency.keys:
            until = iso_time(key.valid_until) if key.valid_until is not None else "open"
            window = f"{iso_time(key.valid_from)} .. {until}"
            lines.append(f"    key {key.kid} ({key.public_key().alg}): {window}")
        lines.extend(f"    may issue {vct}" for vct in agency.may_issue)
        for grant in agency.may_request:
            paths = ", ".join(format_claim_path(path) for path in grant.paths)
            lines.append(f"    may request {grant.vct}: {paths} for {', '.join(grant.purposes)}")
    return "\n".join(lines)
