"""``onceonly issuer init`` then ``run`` against a real Synapse, with a signed trust list file."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from issuer.register import RESIDENCE_VCT
from onceonly import jose
from onceonly.cli import cli
from onceonly.matrix.accounts import save_credentials
from onceonly.matrix.homeserver import Homeserver
from onceonly.trust import Agency, AgencyKey, LocalizedText, TrustList, sign_trust_list
from onceonly.trust_cache import TRUST_LIST_FILENAME
from tests.integration.test_transport_support import unique

pytestmark = pytest.mark.integration
SAMPLE = Path(__file__).resolve().parents[2] / "issuer" / "sample_data" / "registry_office.json"


def invoke(*args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, ["--json", *args], obj={}, catch_exceptions=False)
    try:
        return result.exit_code, json.loads(result.output)
    except json.JSONDecodeError:
        return result.exit_code, result.output


def _agency(synapse: Homeserver, tmp_path: Path) -> tuple[Path, Path, Path, str]:
    """A new agency on Synapse: its config, the authority key, a trust list file and it."""
    account = synapse.register(unique("meldeamt"), unlimited=True)
    code, created = invoke(
        "issuer", "init", str(tmp_path / "amt"), "--id", "https://amt.example",
        "--name-de", "Meldeamt", "--name-en", "Registration office",
        "--matrix-user", account.user_id, "--vct", RESIDENCE_VCT, "--register", str(SAMPLE),
    )  # fmt: skip
    assert code == 0, created
    config = Path(created["config"])
    save_credentials(config.parent / "matrix", account)
    authority = jose.generate_private_key(jose.ES256, kid="authority")
    anchor = tmp_path / "authority.jwk.json"
    anchor.write_text(json.dumps(authority.public().to_jwk()))
    now = int(time.time())
    listed = Agency(
        id="https://amt.example",
        name=LocalizedText(de="Meldeamt", en="Registration office"),
        matrix_user_id=account.user_id,
        keys=(AgencyKey(jwk=created["public_jwk"], valid_from=now - 60),),
        may_issue=(RESIDENCE_VCT,),
    )
    signed = sign_trust_list(
        TrustList(
            iss="https://trust.example", name=LocalizedText(de="V", en="T"), seq=1,
            iat=now, nbf=now - 60, exp=now + 3600, agencies=(listed,),
        ),
        authority,
    )  # fmt: skip
    trust_file = tmp_path / "trust.jwt"
    trust_file.write_text(signed)
    return config, anchor, trust_file, signed


def test_init_and_run_with_a_trust_list_file(synapse: Homeserver, tmp_path: Path) -> None:
    config, anchor, trust_file, signed = _agency(synapse, tmp_path)

    # Without a trust list the service refuses to start, with a typed error.
    code, refused = invoke("issuer", "run", "--config", str(config), "--authority-key",
                           str(anchor), "--for", "1")  # fmt: skip
    assert code == 1
    assert refused["error"]["code"] == "config_error"

    code, output = invoke(
        "issuer", "run", "--config", str(config), "--authority-key", str(anchor),
        "--trust-list", str(trust_file), "--for", "3", "--offer-interval", "1",
    )  # fmt: skip
    assert code == 0, output
    # The verified list is cached for the next start; the register is untouched by a run
    # with nobody bound to offer to.
    assert (config.parent / "matrix" / TRUST_LIST_FILENAME).read_text().strip() == signed
    code, status = invoke("issuer", "status", "--config", str(config))
    assert code == 0
    assert len(status["pending_life_events"]) == 3
    code, output = invoke(
        "issuer", "run", "--config", str(config), "--authority-key", str(anchor), "--for", "1"
    )
    assert code == 0, output


def _spawn_run(config: Path, anchor: Path, trust_file: Path) -> subprocess.Popen[str]:
    command = [
        str(Path(sys.executable).with_name("onceonly")), "--json", "issuer", "run",
        "--config", str(config), "--authority-key", str(anchor), "--trust-list", str(trust_file),
    ]  # fmt: skip
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True)


def _wait_running(process: subprocess.Popen[str]) -> None:
    # "running as" is printed once the service (and so its lock) is up.
    assert process.stderr is not None
    for line in process.stderr:
        if "running as" in line:
            return
    raise AssertionError(f"issuer run ended before running (exit {process.wait()})")


def test_a_second_issuer_run_on_the_same_agency_exits_with_already_running(
    synapse: Homeserver, tmp_path: Path
) -> None:
    config, anchor, trust_file, _ = _agency(synapse, tmp_path)
    first = _spawn_run(config, anchor, trust_file)
    try:
        _wait_running(first)
        started = time.monotonic()
        code, refused = invoke(
            "issuer", "run", "--config", str(config), "--authority-key", str(anchor),
            "--trust-list", str(trust_file), "--for", "30",
        )  # fmt: skip
        assert code == 1, refused
        assert refused["error"]["code"] == "already_running"
        assert refused["error"]["detail"] == {"pid": first.pid}
        assert f"process {first.pid}" in refused["error"]["message"]
        assert time.monotonic() - started < 25  # at once, not after its --for
        assert first.poll() is None  # the running one is untouched

        # A holder killed without any cleanup does not block the next start.
        first.kill()
        first.wait(timeout=60)
        code, output = invoke(
            "issuer", "run", "--config", str(config), "--authority-key", str(anchor),
            "--trust-list", str(trust_file), "--for", "1",
        )  # fmt: skip
        assert code == 0, output
    finally:
        if first.poll() is None:
            first.kill()
        first.wait(timeout=60)
