"""The Homeserver API and `onceonly account` against a real Synapse on loopback."""

from __future__ import annotations

import json
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from onceonly.cli import cli
from onceonly.errors import (
    AccountError,
    AccountExists,
    HomeserverError,
    LoginFailed,
    TransportError,
)
from onceonly.matrix.accounts import (
    Credentials,
    load_credentials,
    login,
    register_with_shared_secret,
    whoami,
)
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.homeserver_http import request_json
from onceonly.matrix.homeserver_process import free_loopback_port

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_register_returns_a_working_device(synapse: Homeserver) -> None:
    name = unique("citizen")
    creds = synapse.register(name, displayname="A Citizen")
    assert creds.user_id == f"@{name}:localhost" == synapse.user_id(name)
    assert creds.homeserver == synapse.base_url
    assert whoami(creds) == (creds.user_id, creds.device_id)
    assert creds.password  # random, kept in memory for a second login
    second = login(synapse.base_url, name, creds.password)
    assert second.user_id == creds.user_id
    assert second.device_id != creds.device_id
    profile = request_json(
        "GET", f"{synapse.base_url}/_matrix/client/v3/profile/{creds.user_id}/displayname"
    )
    assert profile.body == {"displayname": "A Citizen"}


def test_second_registration_of_same_user_fails_clearly(synapse: Homeserver) -> None:
    name = unique("agency")
    synapse.register(name, password="first-password")
    with pytest.raises(AccountExists, match=name) as caught:
        synapse.register(name, password="second-password")
    assert caught.value.code == "account_exists"
    # The existing account is unchanged: its first password still works, the second not.
    assert login(synapse.base_url, name, "first-password").user_id == synapse.user_id(name)
    with pytest.raises(LoginFailed):
        login(synapse.base_url, name, "second-password")


def test_wrong_shared_secret_is_rejected(synapse: Homeserver) -> None:
    with pytest.raises(HomeserverError, match="shared secret"):
        register_with_shared_secret(synapse.base_url, "not-the-secret", unique("intruder"))


def test_admin_flag_makes_a_server_admin(synapse: Homeserver) -> None:
    admin = synapse.register(unique("operator"), admin=True)
    plain = synapse.register(unique("someone"))
    url = f"{synapse.base_url}/_synapse/admin/v1/users/{plain.user_id}/admin"
    assert request_json("GET", url, access_token=admin.access_token).body == {"admin": False}
    assert request_json("GET", url, access_token=plain.access_token).status == 403


def test_account_create_stores_a_usable_token(synapse: Homeserver, tmp_path: Path) -> None:
    name = unique("tax-office")
    party_dir = tmp_path / "party"
    common = ["--homeserver", synapse.base_url, "--homeserver-data-dir", str(synapse.data_dir)]
    argv = ["account", "create", "--user", name, "--password", "pw-1"]
    result = CliRunner().invoke(cli, [*argv, "--data-dir", str(party_dir), *common], obj={})
    assert result.exit_code == 0, result.output
    path = party_dir / "account.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert set(stored) == {"homeserver", "user_id", "device_id", "access_token"}
    creds = load_credentials(party_dir)
    assert whoami(creds) == (f"@{name}:localhost", creds.device_id)

    shown = CliRunner().invoke(
        cli, ["--json", "account", "show", "--data-dir", str(party_dir), "--check"], obj={}
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["token_valid"] is True
    assert creds.access_token not in shown.output

    # Same data dir again: refused, the stored device is kept.
    again = CliRunner().invoke(
        cli, ["account", "create", "--user", name, "--data-dir", str(party_dir), *common], obj={}
    )
    assert again.exit_code == 1
    assert "account_exists" in again.stderr
    assert load_credentials(party_dir) == creds

    # Existing user, new data dir: no password -> clear error; right password -> login.
    other_dir = tmp_path / "other"
    argv = ["account", "create", "--user", name, "--data-dir", str(other_dir), *common]
    no_pw = CliRunner().invoke(cli, argv, obj={})
    assert no_pw.exit_code == 1
    assert "--password" in no_pw.stderr
    bad_pw = CliRunner().invoke(cli, [*argv, "--password", "wrong"], obj={})
    assert bad_pw.exit_code == 1
    assert "login_failed" in bad_pw.stderr
    good = CliRunner().invoke(cli, [*argv, "--password", "pw-1"], obj={})
    assert good.exit_code == 0, good.output
    relogged = load_credentials(other_dir)
    assert relogged.user_id == creds.user_id
    assert relogged.device_id != creds.device_id
    assert whoami(relogged)[0] == creds.user_id


def test_account_create_with_shared_secret_file(synapse: Homeserver, tmp_path: Path) -> None:
    name = unique("registry")
    result = CliRunner().invoke(
        cli,
        ["account", "create", "--homeserver", synapse.base_url, "--user", f"@{name}:localhost",
         "--shared-secret-file", str(synapse.shared_secret_file), "--data-dir", str(tmp_path)],
        obj={},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert whoami(load_credentials(tmp_path))[0] == f"@{name}:localhost"


def test_restart_keeps_port_and_data(synapse: Homeserver) -> None:
    creds = synapse.register(unique("durable"))
    port = synapse.port
    assert synapse.stop() is True
    try:
        with pytest.raises(TransportError):
            whoami(creds)
    finally:
        synapse.start(timeout=180)
    assert synapse.port == port
    assert whoami(creds) == (creds.user_id, creds.device_id)


# --- rate limits: the default homeserver keeps Synapse's limits (0.2 msg/s, burst 10) -------


@pytest.fixture(scope="module")
def strict_synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homeserver]:
    # No rate-limit option: what `onceonly homeserver start` gives by default.
    server = Homeserver.from_data_dir(tmp_path_factory.mktemp("strict"), port=free_loopback_port())
    try:
        server.start(timeout=180)
        yield server
    finally:
        server.stop()


def send_burst(creds: Credentials, count: int, *, until_limited: bool = False) -> list[int]:
    """Send ``count`` messages as fast as possible; return each answer's HTTP status."""
    base = creds.homeserver
    room = request_json(
        "POST", f"{base}/_matrix/client/v3/createRoom", body={}, access_token=creds.access_token
    )
    assert room.status == 200, room.body
    room_id = room.body["room_id"]
    statuses = []
    for n in range(count):
        answer = request_json(
            "PUT",
            f"{base}/_matrix/client/v3/rooms/{room_id}/send/m.room.message/txn{n}",
            body={"msgtype": "m.text", "body": f"message {n}"},
            access_token=creds.access_token,
        )
        statuses.append(answer.status)
        if until_limited and answer.status == 429:
            break  # Synapse pauses ~0.5 s before each further refusal; one is enough
    return statuses


def test_rate_limit_override_lets_fifty_quick_sends_through(strict_synapse: Homeserver) -> None:
    limited = strict_synapse.register(unique("citizen"))
    statuses = send_burst(limited, 50, until_limited=True)
    assert statuses[-1] == 429  # the defaults do bite, so the next assertion means something
    assert len(statuses) < 50

    agency = strict_synapse.register(unique("agency"), unlimited=True)
    assert send_burst(agency, 50) == [200] * 50


def test_failed_logins_are_rate_limited_by_default(strict_synapse: Homeserver) -> None:
    """Password guessing meets Synapse's failed-login limit, also for an agency account.

    The agencies' per-user exemption covers what they send, not failed logins.
    """
    for name, unlimited in (("guessed", False), ("agency", True)):
        account = strict_synapse.register(unique(name), unlimited=unlimited)
        codes: list[str | None] = []
        for _ in range(10):
            with pytest.raises(AccountError) as caught:
                login(strict_synapse.base_url, account.user_id, "wrong password")
            refused = isinstance(caught.value, LoginFailed)  # HTTP 403: wrong password
            codes.append("wrong password" if refused else caught.value.detail.get("errcode"))
            if codes[-1] == "M_LIMIT_EXCEEDED":
                break
        assert codes[0] == "wrong password"  # a real refusal first ...
        assert codes[-1] == "M_LIMIT_EXCEEDED", codes  # ... then the limit bites


def test_relaxed_config_lets_fifty_quick_sends_through(synapse: Homeserver) -> None:
    assert send_burst(synapse.register(unique("busy")), 50) == [200] * 50


# --- PostgreSQL -------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_backed_synapse_registers_users(synapse_postgres: Homeserver) -> None:
    status = synapse_postgres.status()
    assert status.running
    assert status.database == "postgresql"
    creds = synapse_postgres.register(unique("pg-user"), unlimited=True)
    assert whoami(creds) == (creds.user_id, creds.device_id)
    assert send_burst(creds, 20) == [200] * 20
