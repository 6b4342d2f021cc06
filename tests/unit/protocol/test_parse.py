"""parse_event: round trips, strict shapes, bounds, safe error reports."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from onceonly.errors import InputTooLarge, MalformedInput, UnknownEventType, UnsupportedVersion
from onceonly.protocol import (
    EVENT_TYPES,
    INLINE_CONTENT_LIMIT,
    MAX_CONTENT_BYTES,
    NAMESPACE,
    STATE_EVENT_TYPES,
    CredentialIssue,
    PresentationResponse,
    event_type_of,
    is_protocol_type,
    parse_event,
    parse_state_event,
    serialized_size,
    to_content,
)
from tests.unit.protocol.samples import ATTACHMENT, SD_JWT, refusal_response, sample_dict, samples

OFFER = NAMESPACE + "credential.offer"
REQUEST = NAMESPACE + "credential.request"
ISSUE = NAMESPACE + "credential.issue"
PRES_REQ = NAMESPACE + "presentation.request"
PRES_RESP = NAMESPACE + "presentation.response"
STATUS = NAMESPACE + "exchange.status"
ERROR = NAMESPACE + "error"
DEVICES = NAMESPACE + "device.list"
ATTACHMENT_JSON = ATTACHMENT.model_dump(mode="json")


def test_every_type_has_a_sample() -> None:
    assert set(samples()) == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_round_trip(event_type: str) -> None:
    model = samples()[event_type]
    content = to_content(model)
    # Through real JSON, as it travels.
    parsed = parse_event(event_type, json.loads(json.dumps(content)))
    assert parsed == model
    assert type(parsed) is EVENT_TYPES[event_type]
    assert event_type_of(parsed) == event_type
    assert to_content(parsed) == content


def test_refusal_and_attachment_forms_round_trip() -> None:
    refusal = refusal_response()
    assert parse_event(PRES_RESP, to_content(refusal)) == refusal
    content = sample_dict(ISSUE)
    del content["credential"]
    content["credential_file"] = ATTACHMENT_JSON
    parsed = parse_event(ISSUE, content)
    assert isinstance(parsed, CredentialIssue)
    assert parsed.credential is None
    assert parsed.credential_file == ATTACHMENT


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(content: dict[str, Any]) -> None:
        target: Any = content
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda content: content.pop(key)


_REMOVE = object()

# (event type, mutation, location expected in the error report)
INVALID: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (OFFER, _drop("exchange_id"), "exchange_id"),
    (OFFER, _set("exchange_id", "short"), "exchange_id"),
    (OFFER, _set("nonce", "not a nonce!"), "nonce"),
    (OFFER, _set("offer_expires_at", "1780000000"), "offer_expires_at"),  # no coercion
    (OFFER, _set("offer_expires_at", True), "offer_expires_at"),
    (OFFER, _set("display.name", {"de": "nur Deutsch"}), "display.name.en"),
    (OFFER, _set("reason_code", "Registered Move"), "reason_code"),
    (OFFER, _set("surprise", 1), "surprise"),  # extra fields are refused
    (OFFER, _set("body", ""), "body"),
    (OFFER, _set("body", "x" * 4001), "body"),
    (OFFER, _drop("formatted_body"), "(content)"),  # format without formatted_body
    (OFFER, _set("v", True), "v"),
    (OFFER, _set("v", "1"), "v"),
    (REQUEST, _set("holder_jwk.d", "x" * 43), "holder_jwk.EC.d"),  # private key leak
    (REQUEST, _set("holder_jwk.kty", "RSA"), "holder_jwk"),
    (REQUEST, _set("holder_jwk.x", "short"), "holder_jwk.EC.x"),
    (REQUEST, _set("proof", "only.two"), "proof"),
    (REQUEST, _set("offer_event_id", "no-dollar"), "offer_event_id"),
    (ISSUE, _drop("credential"), "(content)"),  # neither form
    (ISSUE, _set("credential_file", ATTACHMENT_JSON), "(content)"),  # both forms
    (ISSUE, _set("credential", "has spaces ~"), "credential"),
    (PRES_REQ, _set("query.credentials", []), "query.credentials"),
    (PRES_REQ, _set("query.credentials.0.format", "mso_mdoc"), "query.credentials.0.format"),
    (
        PRES_REQ,
        _set("query.credentials.0.require_cryptographic_holder_binding", "no"),
        "query.credentials.0.require_cryptographic_holder_binding",
    ),
    (PRES_REQ, _set("query.credentials.1.id", "residence"), "query"),  # duplicate ids
    (PRES_REQ, _set("query.credential_sets.0.options", [["nope"]]), "query"),
    (PRES_REQ, _set("query.credentials.0.claims.0.path", []), "query.credentials.0.claims.0.path"),
    (PRES_REQ, _set("query.credentials.0.claims.0.path.0", -1), "query.credentials.0.claims.0"),
    (PRES_REQ, _set("query.credentials.0.claims.0.path.0", 1.5), "query.credentials.0.claims.0"),
    (PRES_REQ, _set("query.credentials.0.claim_sets", [["addr", "zzz"]]), "query.credentials.0"),
    (PRES_REQ, _set("query.credentials.0.meta.vct_values", []), "query.credentials.0.meta"),
    (PRES_REQ, _set("purpose.code", ""), "purpose.code"),
    (PRES_REQ, _drop("expires_at"), "expires_at"),
    (PRES_RESP, _set("refusal", {"code": "consent_denied"}), "(content)"),  # both answers
    (PRES_RESP, _set("vp_token", {}), "vp_token"),
    (PRES_RESP, _set("vp_token", {"residence": []}), "vp_token.residence"),
    (PRES_RESP, _set("vp_token", {"bad id!": [SD_JWT]}), "vp_token.bad id!.[key]"),
    (STATUS, _set("outcome", "maybe"), "outcome"),
    (ERROR, _set("code", "Not-A-Code"), "code"),
    (ERROR, _set("event_id", "!room:x"), "event_id"),
    (DEVICES, _set("device_list", "x"), "device_list"),
]


@pytest.mark.parametrize(("event_type", "mutate", "loc"), INVALID)
def test_invalid_shape_is_malformed(
    event_type: str, mutate: Callable[[dict[str, Any]], None], loc: str
) -> None:
    content = sample_dict(event_type)
    mutate(content)
    with pytest.raises(MalformedInput) as caught:
        parse_event(event_type, content)
    err = caught.value
    assert type(err) is MalformedInput
    assert err.detail["event_type"] == event_type
    locations = [item["loc"] for item in err.detail["errors"]]
    assert any(location.startswith(loc) for location in locations), locations


def test_refusal_code_must_be_known() -> None:
    content = to_content(refusal_response())
    content["refusal"]["code"] = "because"
    with pytest.raises(MalformedInput, match=r"refusal\.code"):
        parse_event(PRES_RESP, content)


def test_attachment_with_wrong_key_ops_or_media_type() -> None:
    content = sample_dict(ISSUE)
    del content["credential"]
    bad = copy.deepcopy(ATTACHMENT_JSON)
    bad["file"]["key"]["key_ops"] = ["encrypt", "encrypt"]
    content["credential_file"] = bad
    with pytest.raises(MalformedInput, match=r"credential_file\.file\.key\.key_ops"):
        parse_event(ISSUE, content)
    content["credential_file"] = {**ATTACHMENT_JSON, "mimetype": "application/json"}
    with pytest.raises(MalformedInput, match="invalid"):
        parse_event(ISSUE, content)


def test_error_report_never_echoes_values() -> None:
    secret = "Musterstraße 1, 10115 Berlin"
    content = sample_dict(OFFER)
    content["nonce"] = secret
    content["offer_expires_at"] = secret
    with pytest.raises(MalformedInput) as caught:
        parse_event(OFFER, content)
    assert secret not in str(caught.value)
    assert secret not in json.dumps(caught.value.to_dict())


def test_error_report_is_capped() -> None:
    content = {"v": 1}
    content.update({f"extra_{i}": i for i in range(20)})
    with pytest.raises(MalformedInput) as caught:
        parse_event(OFFER, content)
    assert len(caught.value.detail["errors"]) == 5
    assert "more" in caught.value.message


def test_unknown_type() -> None:
    with pytest.raises(UnknownEventType) as caught:
        parse_event(NAMESPACE + "credential.gift", {"v": 1})
    assert caught.value.code == "unknown_event_type"
    with pytest.raises(UnknownEventType):
        parse_event("m.room.message", {"body": "hi", "msgtype": "m.text"})


def test_is_protocol_type() -> None:
    assert is_protocol_type(NAMESPACE + "anything.new")
    assert not is_protocol_type("m.room.message")


def test_future_revision_is_unsupported_version() -> None:
    content = sample_dict(OFFER)
    content["v"] = 2
    with pytest.raises(UnsupportedVersion) as caught:
        parse_event(OFFER, content)
    assert caught.value.detail["v"] == 2


def test_content_must_be_an_object() -> None:
    with pytest.raises(MalformedInput, match="JSON object"):
        parse_event(OFFER, ["not", "an", "object"])  # type: ignore[arg-type]


def test_non_json_values_are_malformed() -> None:
    content = sample_dict(OFFER)
    content["offer_expires_at"] = float("nan")
    with pytest.raises(MalformedInput, match="not a JSON object"):
        parse_event(OFFER, content)
    content["offer_expires_at"] = b"bytes"
    with pytest.raises(MalformedInput, match="not a JSON object"):
        parse_event(OFFER, content)


def test_size_bound() -> None:
    content = sample_dict(STATUS)
    overhead = len(json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode())
    # Exactly at the bound the parser reaches validation (and the body bound rejects).
    content["padding"] = "x" * (MAX_CONTENT_BYTES - overhead - len(',"padding":""'))
    with pytest.raises(MalformedInput) as at_bound:
        parse_event(STATUS, content)
    assert not isinstance(at_bound.value, InputTooLarge)
    content["padding"] += "x"
    with pytest.raises(InputTooLarge) as caught:
        parse_event(STATUS, content)
    assert caught.value.detail["size"] == MAX_CONTENT_BYTES + 1


def test_size_counts_utf8_bytes() -> None:
    content = sample_dict(STATUS)
    content["body"] = "ä" * (MAX_CONTENT_BYTES // 2)  # 2 bytes each in UTF-8
    with pytest.raises(InputTooLarge):
        parse_event(STATUS, content)


def test_depth_bound() -> None:
    nested: Any = "leaf"
    for _ in range(5000):  # far beyond Python's recursion limit
        nested = {"a": nested}
    content = sample_dict(STATUS)
    content["deep"] = nested
    with pytest.raises(InputTooLarge, match="nested deeper"):
        parse_event(STATUS, content)


def test_depth_just_inside_bound_reaches_validation() -> None:
    content = sample_dict(STATUS)
    nested: Any = 1
    for _ in range(10):  # content (1) + 11 levels = 12, the limit
        nested = [nested]
    content["deep"] = nested
    with pytest.raises(MalformedInput) as caught:
        parse_event(STATUS, content)
    assert not isinstance(caught.value, InputTooLarge)


def test_large_credential_must_use_an_attachment() -> None:
    content = sample_dict(ISSUE)
    content["credential"] = "a" * (48 * 1024 + 1)
    with pytest.raises(MalformedInput, match="credential"):
        parse_event(ISSUE, content)


def test_presentation_response_forms() -> None:
    content = sample_dict(PRES_RESP)
    del content["vp_token"]
    content["vp_token_file"] = {**ATTACHMENT_JSON, "mimetype": "application/json"}
    parsed = parse_event(PRES_RESP, content)
    assert isinstance(parsed, PresentationResponse)
    assert parsed.vp_token_file is not None
    del content["vp_token_file"]
    with pytest.raises(MalformedInput, match="exactly one"):
        parse_event(PRES_RESP, content)


@pytest.mark.parametrize("event_type", sorted(STATE_EVENT_TYPES))
def test_state_events_with_their_state_keys(event_type: str) -> None:
    content = sample_dict(event_type)
    good = {
        NAMESPACE + "mailbox": "",
        NAMESPACE + "trust.list": "did:web:trust.example",
        NAMESPACE + "status.list": content.get("uri", ""),
    }[event_type]
    assert parse_state_event(event_type, good, content) == samples()[event_type]
    with pytest.raises(MalformedInput, match="state_key"):
        parse_state_event(event_type, "" if good else "other", content)


def test_state_parser_refuses_room_events() -> None:
    with pytest.raises(UnknownEventType):
        parse_state_event(OFFER, "", sample_dict(OFFER))


def test_missing_revision_is_malformed() -> None:
    content = sample_dict(STATUS)
    del content["v"]
    with pytest.raises(MalformedInput) as caught:
        parse_event(STATUS, content)
    assert caught.value.detail["errors"] == [{"loc": "v", "type": "missing"}]


def test_serialized_size_and_inline_limit() -> None:
    small = samples()[ISSUE]
    assert serialized_size(small) == len(
        json.dumps(to_content(small), separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert serialized_size(small) < INLINE_CONTENT_LIMIT
    big = small.model_copy(update={"credential": "a" * 45_000})
    assert serialized_size(big) > INLINE_CONTENT_LIMIT  # the sender must use an attachment
