"""Load and run the published SD-JWT vectors (shared by the vector test and the CLI test)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from onceonly import jose
from onceonly.sdjwt import ProcessingLimits, VerificationPolicy, VerifiedCredential
from onceonly.sdjwt.type_metadata import TypeMetadata

VECTORS_DIR = Path(__file__).resolve().parents[3] / "specs" / "vectors"
SDJWT_DIR = VECTORS_DIR / "sdjwt"


def case_dirs() -> list[Path]:
    return sorted(p for p in SDJWT_DIR.iterdir() if (p / "expected.json").is_file())


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_sdjwt", VECTORS_DIR / "generate_sdjwt.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve annotations through sys.modules while the module runs.
    sys.modules[spec.name] = module
    if str(VECTORS_DIR) not in sys.path:
        sys.path.insert(0, str(VECTORS_DIR))
    spec.loader.exec_module(module)
    return module


def policy_from_json(data: dict[str, Any], type_metadata: str | None = None) -> VerificationPolicy:
    """The vector's policy; ``type_metadata`` is the input's Type Metadata document, if any."""
    metadata = None if type_metadata is None else TypeMetadata.from_document(type_metadata.encode())
    return VerificationPolicy(
        require_key_binding=data["require_key_binding"],
        expected_audience=data["expected_audience"],
        expected_nonce=data["expected_nonce"],
        leeway_seconds=data["leeway_seconds"],
        max_kb_age_seconds=data["max_kb_age_seconds"],
        allowed_algs=frozenset(data["allowed_algs"]),
        accepted_hash_algs=frozenset(data["accepted_hash_algs"]),
        expected_vct=data["expected_vct"],
        expected_context=data["expected_context"],
        accept_legacy_typ=data["accept_legacy_typ"],
        max_presentation_bytes=data["max_presentation_bytes"],
        limits=ProcessingLimits(
            max_disclosures=data["max_disclosures"], max_depth=data["max_depth"]
        ),
        type_metadata=None if metadata is None else {metadata.vct: metadata}.get,
    )


def load_case(path: Path) -> tuple[dict[str, Any], str, dict[str, Any]]:
    inputs = json.loads((path / "input.json").read_text("utf-8"))
    presentation = (path / "presentation.txt").read_text("utf-8").rstrip("\n")
    expected = json.loads((path / "expected.json").read_text("utf-8"))
    return inputs, presentation, expected


def issuer_key(inputs: dict[str, Any]) -> jose.PublicKey:
    return jose.public_key_from_jwk(inputs["issuer_key"])


def outcome(result: VerifiedCredential) -> dict[str, Any]:
    """The verifier's result in the vectors' ``expected.json`` shape."""
    kb = result.key_binding
    return {
        "valid": True,
        "claims": result.claims,
        "disclosed_paths": sorted((list(p) for p in result.disclosed_paths), key=json.dumps),
        "key_binding": None if kb is None else {"aud": kb.aud, "nonce": kb.nonce, "iat": kb.iat},
    }
