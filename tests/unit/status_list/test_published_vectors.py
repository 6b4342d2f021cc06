"""Run every published vector in specs/vectors/status_list/ and check it is reproducible."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from onceonly.errors import OnceOnlyError
from onceonly.jose import public_key_from_jwk
from onceonly.status_list import check_status, parse_status_claim

VECTORS = Path(__file__).resolve().parents[3] / "specs" / "vectors" / "status_list"
CASES = sorted(path.name for path in VECTORS.iterdir() if (path / "input.json").is_file())


def run_case(case_dir: Path) -> dict[str, Any]:
    """What a conforming verifier concludes for one case, in the expected.json shape."""
    inputs = json.loads((case_dir / "input.json").read_text("utf-8"))
    text = (case_dir / "token.txt").read_text("utf-8").removesuffix("\n")
    token: str | bytes = text if inputs["form"] == "jwt" else bytes.fromhex(text)
    policy = inputs["policy"]
    try:
        status = check_status(
            parse_status_claim(inputs["status"]),
            token,
            issuer_key=public_key_from_jwk(inputs["issuer_key"]),
            now=inputs["now"],
            leeway=policy["leeway_seconds"],
            accepted=frozenset(policy["accepted_statuses"]),
            max_token_bytes=policy["max_token_bytes"],
            max_list_bytes=policy["max_list_bytes"],
        )
    except OnceOnlyError as exc:
        return {"valid": False, "error": exc.code}
    return {"valid": True, "status": status}


@pytest.mark.parametrize("name", CASES)
def test_vector(name: str) -> None:
    expected = json.loads((VECTORS / name / "expected.json").read_text("utf-8"))
    assert run_case(VECTORS / name) == expected


def test_every_negative_case_breaks_a_valid_sibling() -> None:
    outcomes: Counter[str] = Counter()
    for name in CASES:
        inputs = json.loads((VECTORS / name / "input.json").read_text("utf-8"))
        expected = json.loads((VECTORS / name / "expected.json").read_text("utf-8"))
        if expected["valid"]:
            assert "valid_sibling" not in inputs
            outcomes["valid"] += 1
            continue
        outcomes[expected["error"]] += 1
        sibling = json.loads((VECTORS / inputs["valid_sibling"] / "expected.json").read_text())
        assert sibling["valid"] is True
    assert outcomes["valid"] >= 5
    for code in ("revoked", "suspended", "invalid_signature", "expired", "too_large", "malformed"):
        assert outcomes[code] >= 1, code


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("status_list_vectors", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve string annotations through sys.modules.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_generator_reproduces_the_files() -> None:
    tree = _generator().expected_tree()
    stale = [path for path, text in tree.items() if (VECTORS / path).read_text("utf-8") != text]
    assert not stale, f"regenerate the vectors: {stale[:5]}"
    assert len(tree) == 1 + 3 * len(CASES)
