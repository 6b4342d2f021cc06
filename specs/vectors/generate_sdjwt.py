"""Generate the SD-JWT VC test vectors in ``sdjwt/`` (fixed keys, salts and time).

Usage (from the repository root)::

    python specs/vectors/generate_sdjwt.py          # (re)write specs/vectors/sdjwt/
    python specs/vectors/generate_sdjwt.py --check  # exit 1 if the files differ

The cases live in ``sdjwt_generator/``: valid ones, and negative ones each
crafted from a valid sibling so that exactly one rule is broken.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sdjwt_generator.context import NegativeContext
from sdjwt_generator.fixtures import (
    HOLDER_KEY,
    HOLDER_KEY_ES256,
    ISSUER_KEY,
    ISSUER_KEY_ES256,
    OTHER_KEY,
    Case,
)
from sdjwt_generator.negative_claims import (
    claim_cases,
    key_binding_cases,
    serialization_cases,
)
from sdjwt_generator.negative_tokens import disclosure_cases, header_cases
from sdjwt_generator.profile_cases import algorithm_cases, kb_window_cases, metadata_cases
from sdjwt_generator.valid_cases import valid_cases
from vector_files import vector_tree, write_or_check

OUT_DIR = Path(__file__).resolve().parent / "sdjwt"


def build_cases() -> list[Case]:
    """Every vector, valid ones first."""
    cases, base = valid_cases()
    context = NegativeContext(base)
    for section in (
        header_cases,
        disclosure_cases,
        claim_cases,
        key_binding_cases,
        serialization_cases,
        kb_window_cases,
        metadata_cases,
        algorithm_cases,
    ):
        section(context)
    names = [case.name for case in cases + context.cases]
    if len(names) != len(set(names)):
        raise SystemExit("duplicate case names")
    return cases + context.cases


def render(case: Case) -> dict[str, str]:
    """The files of one case directory, as text."""
    inputs: dict[str, Any] = {
        "description": case.description,
        "reference": case.reference,
        "now": case.now,
        "issuer_key": case.issuer_key.to_jwk(),
        "policy": case.policy,
    }
    if case.sibling:
        inputs["valid_sibling"] = case.sibling
    if case.issuance:
        inputs["issuance"] = case.issuance
    if case.type_metadata is not None:
        inputs["type_metadata"] = case.type_metadata
    return {
        "input.json": json.dumps(inputs, indent=2, ensure_ascii=False) + "\n",
        "presentation.txt": case.presentation + "\n",
        "expected.json": json.dumps(case.expected, indent=2, ensure_ascii=False, sort_keys=True)
        + "\n",
    }


def expected_tree() -> dict[str, str]:
    """Relative path -> content for the whole vector directory.

    ``keys.json`` holds the fixed test keys, private parts included: they protect nothing.
    """
    keys = {
        "issuer": ISSUER_KEY.to_jwk(),
        "holder": HOLDER_KEY.to_jwk(),
        "attacker": OTHER_KEY.to_jwk(),
        "issuer_es256": ISSUER_KEY_ES256.to_jwk(),
        "holder_es256": HOLDER_KEY_ES256.to_jwk(),
    }
    return vector_tree(keys, build_cases(), render)


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) the vector directory."""
    return write_or_check(
        expected_tree,
        description="Generate the SD-JWT VC test vectors.",
        out_dir=OUT_DIR,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
