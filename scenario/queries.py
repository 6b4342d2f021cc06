"""The family benefits office's query: address and birthdate from a residence attestation."""

from __future__ import annotations

from typing import Final

from issuer.register import RESIDENCE_VCT
from onceonly.query import DcqlQuery, parse_query
from scenario import cast

QUERY_ID: Final = "residence"


def child_benefit_query(extra_paths: tuple[tuple[str, ...], ...] = ()) -> DcqlQuery:
    """The office's DCQL query: address and birthdate from a residence attestation."""
    paths = [*cast.CHILD_BENEFIT_CLAIMS, *extra_paths]
    return parse_query(
        {
            "credentials": [
                {
                    "id": QUERY_ID,
                    "format": "dc+sd-jwt",
                    "meta": {"vct_values": [RESIDENCE_VCT]},
                    "claims": [{"path": list(path)} for path in paths],
                }
            ]
        }
    )
