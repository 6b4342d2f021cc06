"""presentation.request carries the one DCQL model, onceonly.query's."""

from __future__ import annotations

import pytest

from onceonly import protocol, query
from onceonly.errors import MalformedInput
from onceonly.protocol import NAMESPACE, PresentationRequest, parse_event
from tests.unit.protocol.samples import sample_dict

PRES_REQ = NAMESPACE + "presentation.request"


def test_the_event_field_is_the_query_packages_model() -> None:
    assert PresentationRequest.model_fields["query"].annotation is query.DcqlQuery
    assert protocol.DcqlQuery is query.DcqlQuery
    assert protocol.ClaimsQuery is query.ClaimsQuery
    parsed = parse_event(PRES_REQ, sample_dict(PRES_REQ))
    assert isinstance(parsed, PresentationRequest)
    assert isinstance(parsed.query, query.DcqlQuery)
    # What the wallet and verifier get from the event works with the query functions.
    assert query.requested_paths_by_vct(parsed.query)


def test_unknown_query_members_are_ignored_but_unknown_event_members_are_not() -> None:
    content = sample_dict(PRES_REQ)
    content["query"]["future_member"] = {"x": 1}
    content["query"]["credentials"][0]["future_member"] = [{"type": "aki", "values": ["x"]}]
    parsed = parse_event(PRES_REQ, content)
    assert isinstance(parsed, PresentationRequest)
    assert parsed.query == parse_event(PRES_REQ, sample_dict(PRES_REQ)).query  # type: ignore[union-attr]
    content["surprise"] = 1
    with pytest.raises(MalformedInput):
        parse_event(PRES_REQ, content)


@pytest.mark.parametrize(
    ("credential_update", "why"),
    [
        ({"trusted_authorities": []}, "trusted_authorities must not be empty"),
        ({"multiple": 1}, "multiple must be a JSON boolean"),
        ({"claims": [{"path": ["x"], "values": [1.5]}]}, "float value"),
    ],
)
def test_query_rules_apply_inside_the_event(credential_update: dict[str, object], why: str) -> None:
    content = sample_dict(PRES_REQ)
    credential = content["query"]["credentials"][0]
    credential.update(credential_update)
    credential.pop("claim_sets", None)
    with pytest.raises(MalformedInput):
        parse_event(PRES_REQ, content)
