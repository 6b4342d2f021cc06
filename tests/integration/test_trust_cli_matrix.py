"""``onceonly trust publish`` / ``fetch`` against a real Synapse."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from onceonly import jose
from onceonly.cli import cli
from onceonly.matrix.accounts import save_credentials
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.homeserver_http import request_json
from onceonly.matrix.homeserver_process import free_loopback_port

pytestmark = pytest.mark.integration


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["trust", *map(str, args), "--json"], obj={})


def ok(result: Result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_publish_and_fetch_through_the_cli(synapse: Homeserver, tmp_path: Path) -> None:
    tag = secrets.token_hex(4)
    authority_dir, party_dir = tmp_path / "authority", tmp_path / "party"
    save_credentials(authority_dir / "account", synapse.register(f"authority-{tag}"))
    authority = f"@authority-{tag}:{synapse.server_name}"
    party = synapse.register(f"party-{tag}")
    save_credentials(party_dir, party)
    agency_key = tmp_path / "agency.jwk"
    agency_key.write_text(json.dumps(jose.generate_private_key().public().to_jwk()))

    ok(run("init", "--dir", authority_dir, "--id", "https://trust.example",
           "--name-de", "Vertrauensstelle", "--name-en", "Trust authority"))  # fmt: skip
    ok(run("add-agency", "--dir", authority_dir, "--id", "https://registry.example",
           "--name-de", "Bürgeramt", "--name-en", "Citizens' office",
           "--matrix-user", f"@registry:{synapse.server_name}", "--key", agency_key,
           "--may-issue", "urn:eudi:pid:de:1"))  # fmt: skip
    ok(run("sign", "--dir", authority_dir))

    room = f"trust-{tag}"
    published = ok(run("publish", "--dir", authority_dir, "--room", room,
                       "--account-dir", authority_dir / "account"))  # fmt: skip
    assert published["created"] is True and published["seq"] == 1
    assert published["room"] == f"#{room}:{synapse.server_name}"

    anchor = authority_dir / "authority-key.pub.jwk"
    # A plain alias could belong to anyone: the party must name the publishing account.
    unbound = run("fetch", "--room", room, "--authority-key", anchor, "--data-dir", party_dir)
    assert unbound.exit_code == 1
    assert json.loads(unbound.output)["error"]["code"] == "config_error"
    fetched = ok(run("fetch", "--room", room, "--authority-key", anchor, "--data-dir", party_dir,
                     "--publisher", authority))  # fmt: skip
    assert fetched["updated"] is True and fetched["seq"] == 1
    cached = party_dir / "trust-list.jwt"
    assert cached.read_text().strip() == (authority_dir / "trust-list.jwt").read_text().strip()

    # A second signing and publishing reaches the party; the room is reused.
    ok(run("sign", "--dir", authority_dir))
    again = ok(run("publish", "--dir", authority_dir, "--room", room,
                   "--account-dir", authority_dir / "account"))  # fmt: skip
    assert again["created"] is False and again["room_id"] == published["room_id"]
    second = ok(run("fetch", "--room", room, "--authority-key", anchor, "--data-dir", party_dir,
                    "--publisher", authority))  # fmt: skip
    assert second["seq"] == 2

    # Without --room the authority publishes in its own #onceonly-trust.<account> room,
    # which a party reads without naming the publisher.
    own = ok(run("publish", "--dir", authority_dir, "--account-dir", authority_dir / "account"))
    assert own["room"] == f"#onceonly-trust.authority-{tag}:{synapse.server_name}"
    assert own["created"] is True and own["room_id"] != published["room_id"]
    same = ok(run("fetch", "--room", own["room"], "--authority-key", anchor,
                  "--data-dir", party_dir))  # fmt: skip
    assert same["seq"] == 2 and same["updated"] is False

    # With the wrong anchor the party refuses the list and keeps its cache.
    other = tmp_path / "other.jwk"
    other.write_text(json.dumps(jose.generate_private_key().public().to_jwk()))
    before = cached.read_text()
    refused = run("fetch", "--room", room, "--authority-key", other, "--data-dir", tmp_path / "p2",
                  "--account-dir", party_dir, "--publisher", authority)  # fmt: skip
    assert refused.exit_code == 1
    assert json.loads(refused.output)["error"]["code"] == "invalid_signature"

    # Offline: exit 1 with transport_error, the cache (seq 2) stays and is reported.
    offline = run(
        "fetch", "--room", room, "--authority-key", anchor, "--data-dir", party_dir,
        "--publisher", authority, "--homeserver", f"http://127.0.0.1:{free_loopback_port()}",
        "--user-id", party.user_id, "--access-token", party.access_token,
    )  # fmt: skip
    assert offline.exit_code == 1
    error = json.loads(offline.output)["error"]
    assert error["code"] == "transport_error" and error["detail"]["cached_seq"] == 2
    assert cached.read_text() == before

    shown = ok(run("show", cached, "--authority-key", anchor))
    assert shown["verified"] is True and shown["trust_list"]["seq"] == 2


def test_publish_refuses_an_unverifiable_file(synapse: Homeserver, tmp_path: Path) -> None:
    authority_dir = tmp_path / "authority"
    ok(run("init", "--dir", authority_dir, "--id", "t", "--name-de", "T", "--name-en", "T"))
    ok(run("sign", "--dir", authority_dir))
    token_file = authority_dir / "trust-list.jwt"
    header, payload, signature = token_file.read_text().strip().split(".")
    token_file.write_text(f"{header}.{payload}.{signature[:-4]}AAAA")
    save_credentials(authority_dir / "account", synapse.register(f"a-{secrets.token_hex(4)}"))
    result = run("publish", "--dir", authority_dir, "--room", "never-created",
                 "--account-dir", authority_dir / "account")  # fmt: skip
    assert result.exit_code == 1
    assert json.loads(result.output)["error"]["code"] == "invalid_signature"


def test_publish_refuses_a_room_id_it_did_not_create(synapse: Homeserver, tmp_path: Path) -> None:
    authority_dir = tmp_path / "authority"
    ok(run("init", "--dir", authority_dir, "--id", "t", "--name-de", "T", "--name-en", "T"))
    ok(run("sign", "--dir", authority_dir))
    save_credentials(authority_dir / "account", synapse.register(f"a-{secrets.token_hex(4)}"))
    hostile = synapse.register(f"h-{secrets.token_hex(4)}")
    created = request_json(
        "POST",
        f"{hostile.homeserver}/_matrix/client/v3/createRoom",
        body={"preset": "public_chat"},
        access_token=hostile.access_token,
    )
    assert created.status == 200, created.body
    result = run("publish", "--dir", authority_dir, "--room", created.body["room_id"],
                 "--account-dir", authority_dir / "account")  # fmt: skip
    assert result.exit_code == 1
    assert json.loads(result.output)["error"]["code"] == "room_not_owned"
