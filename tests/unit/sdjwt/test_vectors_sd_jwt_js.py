"""The published vectors in the OpenWallet Foundation's @sd-jwt libraries (TypeScript, via node).

An implementation independent of onceonly and of the IETF reference: every valid
compact vector must verify there with the same processed claims, and the negatives
whose rule it enforces must fail there too (so the harness can fail). The libraries
are installed by ``make test`` (``npm ci`` into tests/interop/node); the test is
skipped only where npm is absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.unit.sdjwt.vectors import case_dirs, load_case

NODE_DIR = Path(__file__).resolve().parents[2] / "interop" / "node"
NODE, NPM = shutil.which("node"), shutil.which("npm")
pytestmark = pytest.mark.skipif(
    NODE is None or NPM is None, reason="node/npm absent: @sd-jwt interop not run"
)

# Negative vectors whose broken rule @sd-jwt enforces as well.
ALSO_REJECTED = {
    "alg_none",
    "signature_invalid",
    "embedded_jwk_not_a_key_source",
    "expired",
    "nbf_in_future",
    "iat_in_future",
    "kb_missing",
    "kb_wrong_key",
    "kb_wrong_nonce",
    "kb_wrong_audience",
    "kb_sd_hash_mismatch",
}


def _item(case: Path) -> dict[str, Any]:
    inputs, presentation, _ = load_case(case)
    policy = inputs["policy"]
    bound = policy["require_key_binding"]
    return {
        "name": case.name,
        "presentation": presentation,
        "issuer_jwk": inputs["issuer_key"],
        "now": inputs["now"],
        "skew": policy["leeway_seconds"],
        "aud": policy["expected_audience"] if bound else None,
        "nonce": policy["expected_nonce"] if bound else None,
    }


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, Any]]:
    if not (NODE_DIR / "node_modules" / "@sd-jwt" / "sd-jwt-vc").is_dir():
        pytest.fail("@sd-jwt libraries not installed: run `make node-interop` (part of make test)")
    compact = [case for case in case_dirs() if not load_case(case)[1].startswith("{")]
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(NODE_DIR / "verify_vectors.mjs")],
        input=json.dumps([_item(case) for case in compact]),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return {item["name"]: item for item in json.loads(done.stdout)}


VALID = [c for c in case_dirs() if load_case(c)[2]["valid"] and not load_case(c)[1].startswith("{")]


@pytest.mark.parametrize("case", VALID, ids=[c.name for c in VALID])
def test_valid_vector_verifies_in_sd_jwt_js(case: Path, results: dict[str, Any]) -> None:
    outcome = results[case.name]
    assert outcome["ok"], outcome.get("error")
    assert outcome["claims"] == load_case(case)[2]["claims"]


@pytest.mark.parametrize("name", sorted(ALSO_REJECTED))
def test_negative_vector_fails_in_sd_jwt_js_too(name: str, results: dict[str, Any]) -> None:
    assert load_case(case_dirs()[0].parent / name)[2]["valid"] is False
    assert results[name]["ok"] is False


def test_the_new_valid_vectors_are_among_them() -> None:
    names = {case.name for case in VALID}
    assert {"valid_type_metadata", "valid_rfc9864_ed25519", "valid_kb_exp_nbf"} <= names
