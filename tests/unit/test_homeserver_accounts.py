"""Account files, URL and name checks, process helpers, and CLI paths that need no Synapse."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from onceonly.cli import cli
from onceonly.errors import AccountError, ConfigError, MalformedInput, TransportError
from onceonly.matrix.accounts import (
    Credentials,
    load_credentials,
    localpart_of,
    save_credentials,
)
from onceonly.matrix.homeserver_http import normalise_base_url, request_json
from onceonly.matrix.homeserver_process import (
    free_loopback_port,
    port_in_use,
    process_alive,
    process_runs,
    read_pid,
    terminate_group,
)
from onceonly.types import DeviceId, UserId


def credentials(password: str | None = None) -> Credentials:
    return Credentials(
        homeserver="http://127.0.0.1:8008",
        user_id=UserId("@tax:localhost"),
        device_id=DeviceId("DEVICEONE"),
        access_token="syt_secret_token",
        password=password,
    )


def test_account_file_is_private_and_never_holds_the_password(tmp_path: Path) -> None:
    path = save_credentials(tmp_path / "party", credentials(password="hunter2"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "homeserver": "http://127.0.0.1:8008",
        "user_id": "@tax:localhost",
        "device_id": "DEVICEONE",
        "access_token": "syt_secret_token",
    }
    loaded = load_credentials(tmp_path / "party")
    assert loaded == credentials()
    assert loaded.password is None
    assert "syt_secret_token" not in repr(loaded)


def test_missing_account_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(AccountError, match="onceonly account create"):
        load_credentials(tmp_path)


@pytest.mark.parametrize(
    "content",
    ["not json", "{}", '{"homeserver": "h", "user_id": "@a:b", "device_id": "D"}', "[]"],
)
def test_malformed_account_file(tmp_path: Path, content: str) -> None:
    (tmp_path / "account.json").write_text(content)
    with pytest.raises(MalformedInput):
        load_credentials(tmp_path)


@pytest.mark.parametrize(
    ("user", "localpart"),
    [("tax-office", "tax-office"), ("@tax.office:agency.test", "tax.office"), ("a_b=c/d+e", None)],
)
def test_localpart_of_valid_names(user: str, localpart: str | None) -> None:
    assert localpart_of(user) == (localpart or user)


@pytest.mark.parametrize("user", ["", "Alice", "al ice", "@:server", "ä", "x" * 201, "a\x00b"])
def test_localpart_of_rejects_invalid_names(user: str) -> None:
    with pytest.raises(MalformedInput):
        localpart_of(user)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8008/", "http://127.0.0.1:8008"),
        ("http://localhost:8008", "http://localhost:8008"),
        ("http://[::1]:8008", "http://[::1]:8008"),
        ("https://matrix.agency.example/", "https://matrix.agency.example"),
    ],
)
def test_normalise_base_url_accepts(url: str, expected: str) -> None:
    assert normalise_base_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://matrix.agency.example",  # clear text to a real network
        "http://10.0.0.1:8008",
        "ftp://127.0.0.1",
        "127.0.0.1:8008",
        "http://127.0.0.1:8008/?x=1",
        "http://user@127.0.0.1:8008",
    ],
)
def test_normalise_base_url_rejects(url: str) -> None:
    with pytest.raises(ConfigError):
        normalise_base_url(url)


def test_unreachable_homeserver_is_a_transport_error() -> None:
    port = free_loopback_port()  # nothing listens there
    with pytest.raises(TransportError, match="not reachable"):
        request_json("GET", f"http://127.0.0.1:{port}/_matrix/client/versions", timeout=2)


def test_port_in_use_sees_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
    assert not port_in_use("127.0.0.1", port)


def test_process_liveness_and_identity(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "print('up', flush=True); import time; time.sleep(9)", "marker-xyz"],
        stdout=subprocess.PIPE,
    )
    try:
        # Right after fork the child's cmdline is still the parent's; wait until it runs.
        assert child.stdout is not None and child.stdout.readline() == b"up\n"
        assert process_alive(child.pid)
        assert process_runs(child.pid, "marker-xyz")
        assert not process_runs(child.pid, "some-other-config.yaml")
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)
    assert not process_runs(os.getpid(), str(tmp_path / "homeserver.yaml"))


@pytest.mark.parametrize(("content", "pid"), [("123\n", 123), ("garbage", None), ("0", None)])
def test_read_pid(tmp_path: Path, content: str, pid: int | None) -> None:
    (tmp_path / "p").write_text(content)
    assert read_pid(tmp_path / "p") == pid
    assert read_pid(tmp_path / "absent") is None


def test_status_of_a_fresh_data_dir_exits_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["homeserver", "status", "--data-dir", str(tmp_path), "--json"], obj={}
    )
    assert result.exit_code == 3
    info = json.loads(result.stdout)
    assert (info["running"], info["pid"], info["database"]) == (False, None, "sqlite")


def test_account_show_needs_a_data_dir_or_user() -> None:
    result = CliRunner().invoke(cli, ["account", "show"], obj={})
    assert result.exit_code == 1
    assert "config_error" in result.stderr


def test_account_show_hides_the_token(tmp_path: Path) -> None:
    save_credentials(tmp_path, credentials())
    result = CliRunner().invoke(
        cli, ["--json", "account", "show", "--data-dir", str(tmp_path)], obj={}
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "homeserver": "http://127.0.0.1:8008",
        "user_id": "@tax:localhost",
        "device_id": "DEVICEONE",
    }
    assert "syt_secret_token" not in result.output


def test_account_create_rejects_both_secret_sources(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["account", "create", "--user", "x", "--data-dir", str(tmp_path),
         "--shared-secret-file", str(tmp_path / "s"), "--homeserver-data-dir", str(tmp_path)],
        obj={},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "not both" in result.stderr


def test_console_script_keeps_exit_codes(tmp_path: Path) -> None:
    def run(*args: str) -> int:
        argv = [sys.executable, "-c", "from onceonly.cli import main; main()", *args]
        return subprocess.run(argv, capture_output=True, check=False).returncode

    assert run("homeserver", "status", "--data-dir", str(tmp_path)) == 3
    assert run("account", "show") == 1


def test_terminate_group_kills_a_process_that_ignores_sigterm() -> None:
    ignores_term = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " print('ready', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", ignores_term], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"  # SIGTERM is ignored from here on
        started = time.monotonic()
        terminate_group(child.pid, grace=0.5)
        assert time.monotonic() - started >= 0.5  # it did wait for the grace period
        # SIGTERM was ignored, so only the SIGKILL can have ended it. (The exit status
        # itself was collected by terminate_group's reaping, so Popen cannot show it.)
        assert not process_alive(child.pid)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
