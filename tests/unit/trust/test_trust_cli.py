"""``onceonly trust``: init, add-agency, sign, show, verify (files only)."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from onceonly import jose
from onceonly.cli import cli
from onceonly.trust import verify_trust_list

PID = "urn:eudi:pid:de:1"
RESIDENCE = "https://onceonly.example/vct/residence"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["trust", *map(str, args)], obj={})


def run_json(*args: str | Path) -> dict:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def error_of(result: Result) -> dict:
    assert result.exit_code == 1, result.output
    return json.loads(result.output)["error"]


def write_jwk(path: Path, key: jose.PrivateKey, *, private: bool = False) -> Path:
    path.write_text(json.dumps(key.to_jwk() if private else key.public().to_jwk()))
    return path


@pytest.fixture
def authority(tmp_path: Path) -> Path:
    directory = tmp_path / "authority"
    out = run_json(
        "init", "--dir", directory, "--id", "https://trust.example",
        "--name-de", "Vertrauensstelle", "--name-en", "Trust authority",
    )  # fmt: skip
    assert out["alg"] == "ES256"
    return directory


def add_registry(authority: Path, tmp_path: Path) -> tuple[jose.PrivateKey, jose.PrivateKey]:
    old = jose.generate_private_key(jose.ES256, kid="reg-2025")
    new = jose.generate_private_key(jose.EDDSA)  # no kid: the thumbprint becomes its kid
    run_json(
        "add-agency", "--dir", authority,
        "--id", "https://registry.example",
        "--name-de", "Bürgeramt", "--name-en", "Citizens' office",
        "--matrix-user", "@registry:gov.example", "--did", "did:web:registry.example",
        "--key", f"{write_jwk(tmp_path / 'old.jwk', old)}@2025-01-01..2026-01-01",
        "--key", f"{write_jwk(tmp_path / 'new.jwk', new)}@2026-01-01..",
        "--may-issue", PID, "--may-issue", RESIDENCE,
    )  # fmt: skip
    return old, new


def add_tax(authority: Path, tmp_path: Path) -> None:
    key = jose.generate_private_key(jose.ES256, kid="tax-1")
    out = run_json(
        "add-agency", "--dir", authority,
        "--id", "https://tax.example", "--name-de", "Finanzamt", "--name-en", "Tax office",
        "--matrix-user", "@tax:gov.example", "--key", write_jwk(tmp_path / "tax.jwk", key),
        "--may-request", f"{RESIDENCE}:address", "--may-request", f"{RESIDENCE}:nationalities.*",
        "--may-request", f"{PID}:family_name",
        "--purpose", "tax_residence:Steuerlicher Wohnsitz:Tax residence: where you live",
    )  # fmt: skip
    assert out["agencies"] == 2


def test_init_creates_private_key_0600_and_refuses_to_overwrite(authority: Path) -> None:
    private = authority / "authority-key.jwk"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    jose.private_key_from_jwk(json.loads(private.read_text()))  # a usable private key
    public = json.loads((authority / "authority-key.pub.jwk").read_text())
    assert "d" not in public
    before = private.read_text()
    again = run("init", "--dir", authority, "--id", "x", "--name-de", "x", "--name-en", "x")
    assert again.exit_code == 1 and "refusing to replace" in again.output
    assert private.read_text() == before


def test_round_trip_sign_show_verify(authority: Path, tmp_path: Path) -> None:
    _old, new = add_registry(authority, tmp_path)
    add_tax(authority, tmp_path)
    signed = run_json("sign", "--dir", authority, "--valid-days", "7")
    assert signed["seq"] == 1
    assert signed["exp"] - signed["iat"] == 7 * 86_400
    assert signed["agencies"] == ["https://registry.example", "https://tax.example"]
    assert json.loads((authority / "draft.json").read_text())["sequence"] == 1
    assert run_json("sign", "--dir", authority)["seq"] == 2  # every signing bumps it

    token_file = authority / "trust-list.jwt"
    anchor = authority / "authority-key.pub.jwk"
    verified = run_json("verify", token_file, "--authority-key", anchor)
    assert verified["valid"] is True and verified["seq"] == 2

    shown = run_json("show", token_file, "--authority-key", anchor)
    assert shown["verified"] is True
    registry, tax = shown["trust_list"]["agencies"]
    assert [k["valid_from"] for k in registry["keys"]] == [1_735_689_600, 1_767_225_600]
    assert registry["keys"][0]["valid_until"] == 1_767_225_600
    assert registry["keys"][1]["jwk"]["kid"] == new.public().thumbprint()
    assert tax["purposes"][0]["text"]["en"] == "Tax residence: where you live"
    residence_paths = [["address"], ["nationalities", None]]
    assert tax["may_request"] == [
        {"vct": RESIDENCE, "paths": residence_paths, "purposes": ["tax_residence"]},
        {"vct": PID, "paths": [["family_name"]], "purposes": ["tax_residence"]},
    ]

    human = run("show", "--dir", authority)
    assert human.exit_code == 0
    assert "signature not checked" in human.output
    assert "may request " + RESIDENCE + ": address, nationalities.*" in human.output

    # The signed file is a plain trust list any party verifies with the library too.
    anchors = [jose.public_key_from_jwk(json.loads(anchor.read_text()))]
    listed = verify_trust_list(token_file.read_text().strip(), anchors, now=int(time.time()))
    assert listed.trust_list.may_issue("did:web:registry.example", PID, 1_740_000_000)
    assert not listed.trust_list.may_issue("https://tax.example", PID, int(time.time()))


def test_verify_failures_exit_1_with_code(authority: Path, tmp_path: Path) -> None:
    add_registry(authority, tmp_path)
    anchor = authority / "authority-key.pub.jwk"
    run_json("sign", "--dir", authority, "--out", tmp_path / "one.jwt")
    run_json("sign", "--dir", authority, "--out", tmp_path / "two.jwt", "--valid-days", "1")

    other = write_jwk(tmp_path / "other.jwk", jose.generate_private_key())
    wrong_key = run("verify", tmp_path / "two.jwt", "--authority-key", other, "--json")
    assert error_of(wrong_key)["code"] == "invalid_signature"

    expired = run(
        "verify", tmp_path / "two.jwt", "--authority-key", anchor, "--now", "2100-01-01", "--json"
    )
    assert error_of(expired)["code"] == "expired"
    early = run("verify", tmp_path / "two.jwt", "--authority-key", anchor, "--now", "2020-01-01")
    assert early.exit_code == 1 and "not_yet_valid" in early.output

    rollback = run(
        "verify", tmp_path / "one.jwt", "--authority-key", anchor,
        "--cached", tmp_path / "two.jwt", "--json",
    )  # fmt: skip
    assert error_of(rollback) == {
        "code": "trust_list_rollback",
        "message": "trust list 1 is older than the cached list 2",
        "detail": {"seq": 1, "cached_seq": 2},
    }

    text = (tmp_path / "two.jwt").read_text().strip()
    header, payload, signature = text.split(".")
    (tmp_path / "bad.jwt").write_text(f"{header}.{payload}x.{signature}")
    malformed = run("verify", tmp_path / "bad.jwt", "--authority-key", anchor, "--json")
    assert error_of(malformed)["code"] == "malformed"
    missing = run("verify", tmp_path / "none.jwt", "--authority-key", anchor, "--json")
    assert error_of(missing)["code"] == "store_error"


def test_add_agency_refusals_leave_the_draft_alone(authority: Path, tmp_path: Path) -> None:
    add_registry(authority, tmp_path)
    draft = (authority / "draft.json").read_text()
    secret = write_jwk(tmp_path / "secret.jwk", jose.generate_private_key(), private=True)
    base = ["add-agency", "--dir", authority, "--name-de", "A", "--name-en", "A"]
    cases = {
        "private-key": [*base, "--id", "a", "--matrix-user", "@a:x", "--key", secret],
        "duplicate": [*base, "--id", "https://registry.example", "--matrix-user", "@b:x"],
        "same-matrix-user": [*base, "--id", "c", "--matrix-user", "@registry:gov.example"],
        "no-purpose": [*base, "--id", "d", "--matrix-user", "@d:x", "--may-request", "v:a"],
        "bad-purpose": [*base, "--id", "e", "--matrix-user", "@e:x", "--purpose", "Bad Code:x:y"],
        "bad-window": [
            *base, "--id", "f", "--matrix-user", "@f:x",
            "--key", f"{tmp_path / 'old.jwk'}@2026-01-01..2025-01-01",
        ],
        "bad-time": [
            *base, "--id", "g", "--matrix-user", "@g:x", "--key", f"{tmp_path / 'old.jwk'}@soon..",
        ],
        "bad-user": [*base, "--id", "h", "--matrix-user", "not-a-user"],
        "bad-did": [*base, "--id", "i", "--matrix-user", "@i:x", "--did", "did:ion:123"],
        "bad-path": [*base, "--id", "j", "--matrix-user", "@j:x", "--may-request", "v:a..b"],
    }  # fmt: skip
    for name, args in cases.items():
        result = run(*args, "--json")
        assert error_of(result)["code"] == "malformed", name
        assert (authority / "draft.json").read_text() == draft, name


def test_replace_agency(authority: Path, tmp_path: Path) -> None:
    add_registry(authority, tmp_path)
    out = run_json(
        "add-agency", "--dir", authority, "--replace", "--id", "https://registry.example",
        "--name-de", "Neues Bürgeramt", "--name-en", "New office",
        "--matrix-user", "@r2:gov.example",
    )  # fmt: skip
    assert out["agencies"] == 1
    assert out["agency"]["name"]["en"] == "New office"


def test_sign_without_key_or_with_broken_draft(tmp_path: Path) -> None:
    missing = run("sign", "--dir", tmp_path / "nothing", "--json")
    assert error_of(missing)["code"] == "config_error"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "draft.json").write_text('{"iss": "x", "iss": "y"}')
    assert error_of(run("sign", "--dir", broken, "--json"))["code"] == "duplicate_json_key"


def test_verify_check_dids(authority: Path, tmp_path: Path) -> None:
    from onceonly.dids import did_key_for

    key, stranger = jose.generate_private_key(jose.EDDSA), jose.generate_private_key()
    for agency_id, user, did, own_key in [
        ("https://a.example", "@a:gov.example", did_key_for(key.public()), key),
        ("https://b.example", "@b:gov.example", did_key_for(stranger.public()), None),
    ]:
        own_key = own_key or jose.generate_private_key()
        run_json(
            "add-agency", "--dir", authority, "--id", agency_id, "--name-de", "A", "--name-en", "A",
            "--matrix-user", user, "--did", did, "--key", write_jwk(tmp_path / "k.jwk", own_key),
        )  # fmt: skip
    run_json("sign", "--dir", authority)
    token_file, anchor = authority / "trust-list.jwt", authority / "authority-key.pub.jwk"
    plain = run_json("verify", token_file, "--authority-key", anchor)
    assert "dids" not in plain  # without the flag nothing is resolved

    # Agency b lists a DID whose key is not one of b's keys.
    mismatch = run("verify", token_file, "--authority-key", anchor, "--check-dids", "--json")
    error = error_of(mismatch)
    assert error["code"] == "did_resolution_failed"
    assert error["detail"] == {"did": did_key_for(stranger.public()), "agency": "https://b.example"}

    run_json("add-agency", "--dir", authority, "--replace", "--id", "https://b.example",
             "--name-de", "B", "--name-en", "B", "--matrix-user", "@b:gov.example")  # fmt: skip
    run_json("sign", "--dir", authority)
    checked = run_json("verify", token_file, "--authority-key", anchor, "--check-dids")
    assert checked["dids"] == {did_key_for(key.public()): [key.public().thumbprint()]}

    bad_base = run(
        "verify", token_file, "--authority-key", anchor, "--check-dids",
        "--did-web-base", "no-equals-sign", "--json",
    )  # fmt: skip
    assert error_of(bad_base)["code"] == "config_error"


def test_fetch_from_file_into_party_cache(authority: Path, tmp_path: Path) -> None:
    add_registry(authority, tmp_path)
    run_json("sign", "--dir", authority, "--out", tmp_path / "one.jwt")
    run_json("sign", "--dir", authority, "--out", tmp_path / "two.jwt")
    anchor, party = authority / "authority-key.pub.jwk", tmp_path / "party"
    base = ["fetch", "--authority-key", anchor, "--data-dir", party]

    first = run_json(*base, "--file", tmp_path / "two.jwt")
    assert first["updated"] is True and first["seq"] == 2
    cached = (party / "trust-list.jwt").read_text()
    assert cached.strip() == (tmp_path / "two.jwt").read_text().strip()
    again = run_json(*base, "--file", tmp_path / "two.jwt")
    assert again["updated"] is False and again["seq"] == 2

    older = error_of(run(*base, "--file", tmp_path / "one.jwt", "--json"))
    assert older["code"] == "trust_list_rollback" and older["detail"]["cached_seq"] == 2
    assert (party / "trust-list.jwt").read_text() == cached

    assert error_of(run(*base, "--json"))["code"] == "config_error"
    both = run(*base, "--file", tmp_path / "one.jwt", "--room", "trust", "--json")
    assert error_of(both)["code"] == "config_error"
