"""``onceonly audit sd-jwt``: exit codes, JSON output, stdin, key files, every vector."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from onceonly.cli import cli
from tests.unit.sdjwt.vectors import case_dirs, load_case

VALID = Path(__file__).resolve().parents[2] / "specs" / "vectors" / "sdjwt" / "valid_basic"
# The policy members the CLI exposes; vectors needing others (or a Type Metadata
# document) are skipped here.
CLI_DEFAULTS = {
    "leeway_seconds": 60,
    "max_kb_age_seconds": 300,
    "allowed_algs": ["ES256", "EdDSA"],
    "accepted_hash_algs": ["sha-256"],
    "max_presentation_bytes": 262144,
    "max_disclosures": 1024,
    "max_depth": 32,
    "expected_context": None,  # the auditor checks presentations: no KB-JWT context
}


def cli_args(inputs: dict[str, Any], key_file: Path, presentation: str) -> list[str]:
    policy = inputs["policy"]
    args = ["audit", "sd-jwt", presentation, "--issuer-key", str(key_file)]
    args += ["--now", str(inputs["now"])]
    if policy["require_key_binding"]:
        args += ["--nonce", policy["expected_nonce"], "--aud", policy["expected_audience"]]
    else:
        args.append("--no-key-binding")
        if policy["expected_nonce"]:
            args += ["--nonce", policy["expected_nonce"]]
        if policy["expected_audience"]:
            args += ["--aud", policy["expected_audience"]]
    if policy["expected_vct"]:
        args += ["--vct", policy["expected_vct"]]
    if policy["accept_legacy_typ"]:
        args.append("--accept-legacy-typ")
    return args


def write_key(tmp_path: Path, jwk: Any) -> Path:
    path = tmp_path / "issuer.jwk"
    path.write_text(json.dumps(jwk))
    return path


def run(args: list[str], stdin: bytes | None = None) -> Any:
    return CliRunner().invoke(cli, args, obj={}, input=stdin)


ENTRY = [sys.executable, "-c", "from onceonly.cli import main; main()"]
CLI_CASES = [
    case
    for case in case_dirs()
    if all(load_case(case)[0]["policy"][k] == v for k, v in CLI_DEFAULTS.items())
    # The CLI takes no Type Metadata document.
    and "type_metadata" not in load_case(case)[0]
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.name for c in CLI_CASES])
def test_every_vector_through_the_cli(case: Path, tmp_path: Path) -> None:
    inputs, _, expected = load_case(case)
    key_file = write_key(tmp_path, inputs["issuer_key"])
    result = run(["--json", *cli_args(inputs, key_file, str(case / "presentation.txt"))])
    output = json.loads(result.output)
    if expected["valid"]:
        assert result.exit_code == 0, result.output
        assert output["claims"] == expected["claims"]
        assert output["key_binding"] == expected["key_binding"]
    else:
        assert result.exit_code == 1
        assert output["error"]["code"] == expected["error"]


def test_enough_vectors_run_through_the_cli() -> None:
    assert len(CLI_CASES) >= 70


def test_human_error_on_stderr_and_exit_1(tmp_path: Path) -> None:
    inputs, _, _ = load_case(VALID)
    key_file = write_key(tmp_path, inputs["issuer_key"])
    args = cli_args(inputs, key_file, str(VALID / "presentation.txt"))
    args[args.index("--nonce") + 1] = "another-nonce"
    result = run(args)
    assert result.exit_code == 1
    assert "error: nonce_mismatch:" in result.stderr
    assert result.stdout == ""


def test_stdin(tmp_path: Path) -> None:
    inputs, presentation, expected = load_case(VALID)
    key_file = write_key(tmp_path, inputs["issuer_key"])
    result = run(cli_args(inputs, key_file, "-"), stdin=(presentation + "\n").encode())
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["claims"] == expected["claims"]


def test_nonce_and_aud_required_with_key_binding(tmp_path: Path) -> None:
    inputs, _, _ = load_case(VALID)
    key_file = write_key(tmp_path, inputs["issuer_key"])
    result = run(
        ["audit", "sd-jwt", str(VALID / "presentation.txt"), "--issuer-key", str(key_file)]
    )
    assert result.exit_code == 2
    assert "--nonce and --aud" in result.output


def test_jwk_set_selects_by_kid(tmp_path: Path) -> None:
    inputs, _, expected = load_case(VALID)
    other = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    jwks = {"keys": [{**other, "kid": "old"}, inputs["issuer_key"]]}
    key_file = write_key(tmp_path, jwks)
    result = run(["--json", *cli_args(inputs, key_file, str(VALID / "presentation.txt"))])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["claims"] == expected["claims"]

    key_file = write_key(tmp_path, {"keys": [{**other, "kid": "old"}]})
    result = run(["--json", *cli_args(inputs, key_file, str(VALID / "presentation.txt"))])
    assert result.exit_code == 1
    assert json.loads(result.output)["error"]["code"] == "unknown_key"


@pytest.mark.parametrize(
    ("key_content", "code"),
    [(None, "config_error"), ("[1]", "malformed"), ('{"kty": "RSA"}', "unsupported_algorithm")],
    ids=["missing-file", "not-an-object", "rsa"],
)
def test_bad_key_files(tmp_path: Path, key_content: str | None, code: str) -> None:
    inputs, _, _ = load_case(VALID)
    key_file = tmp_path / "key.jwk"
    if key_content is not None:
        key_file.write_text(key_content)
    result = run(["--json", *cli_args(inputs, key_file, str(VALID / "presentation.txt"))])
    assert result.exit_code == 1
    assert json.loads(result.output)["error"]["code"] == code


def test_binary_input_is_malformed(tmp_path: Path) -> None:
    inputs, _, _ = load_case(VALID)
    key_file = write_key(tmp_path, inputs["issuer_key"])
    result = run(["--json", *cli_args(inputs, key_file, "-")], stdin=b"\xff\xfe~")
    assert result.exit_code == 1
    assert json.loads(result.output)["error"]["code"] == "malformed"


def test_real_subprocess(tmp_path: Path) -> None:
    inputs, presentation, expected = load_case(VALID)
    key_file = write_key(tmp_path, inputs["issuer_key"])
    proc = subprocess.run(
        [*ENTRY, *cli_args(inputs, key_file, "-")],
        input=presentation,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["claims"] == expected["claims"]

    bad = subprocess.run(
        [*ENTRY, *cli_args(inputs, key_file, "-"), "--now", "1"],
        input=presentation,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert bad.returncode == 1
    assert "error: not_yet_valid:" in bad.stderr


def test_group_also_carries_the_audit_log_commands() -> None:
    result = run(["audit", "--help"])
    assert result.exit_code == 0
    for command in ("sd-jwt", "log", "export-log"):
        assert command in result.output
