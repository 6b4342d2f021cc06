"""`onceonly homeserver start|status|stop` against real Synapse processes.

Each test runs its own homeserver in a tmp data dir (the session fixture is
not touched), through the click runner, and checks exit codes and output.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from onceonly.cli import cli
from onceonly.errors import TransportError
from onceonly.matrix.homeserver import PID_FILE, Homeserver
from onceonly.matrix.homeserver_http import request_json
from onceonly.matrix.homeserver_process import free_loopback_port, process_alive

pytestmark = pytest.mark.integration


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj={})


def versions_status(port: int) -> int:
    return request_json("GET", f"http://127.0.0.1:{port}/_matrix/client/versions").status


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_start_status_stop_round_trip(tmp_path: Path) -> None:
    data_dir, port = str(tmp_path / "hs"), free_loopback_port()
    started = invoke("homeserver", "start", "--data-dir", data_dir, "--port", str(port))
    try:
        assert started.exit_code == 0, started.output
        assert f"running at http://127.0.0.1:{port}" in started.stdout
        assert "Synapse ready" in started.stderr  # progress goes to stderr
        assert versions_status(port) == 200

        status = invoke("homeserver", "status", "--data-dir", data_dir, "--json")
        assert status.exit_code == 0
        info = json.loads(status.stdout)
        assert info["running"] is True
        assert info["base_url"] == f"http://127.0.0.1:{port}"
        assert info["database"] == "sqlite"
        pid = info["pid"]
        assert process_alive(pid)

        again = invoke("homeserver", "start", "--data-dir", data_dir)
        assert again.exit_code == 1
        assert "homeserver_already_running" in again.stderr
        assert str(pid) in again.stderr
        assert process_alive(pid)  # the failed second start left the first one alone
    finally:
        stopped = invoke("homeserver", "stop", "--data-dir", data_dir)
    assert stopped.exit_code == 0
    assert "stopped the homeserver" in stopped.stdout
    assert not process_alive(pid)
    assert not (Path(data_dir) / PID_FILE).exists()
    with pytest.raises(TransportError):
        versions_status(port)

    status = invoke("homeserver", "status", "--data-dir", data_dir)
    assert status.exit_code == 3
    assert status.stdout.startswith("stopped")
    second_stop = invoke("homeserver", "stop", "--data-dir", data_dir, "--json")
    assert second_stop.exit_code == 0
    assert json.loads(second_stop.stdout) == {"stopped": False, "stale_pid_file_removed": False}


def test_stale_pid_file_is_reported_and_cleaned(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "hs", free_loopback_port()
    Homeserver.from_data_dir(data_dir, port=port).ensure_config()
    pid_file = data_dir / PID_FILE

    pid_file.write_text(f"{dead_pid()}\n")
    status = invoke("homeserver", "status", "--data-dir", str(data_dir), "--json")
    assert status.exit_code == 3
    assert json.loads(status.stdout)["stale_pid_file"] is True
    stop = invoke("homeserver", "stop", "--data-dir", str(data_dir))
    assert stop.exit_code == 0
    assert "removed a stale pid file" in stop.stdout
    assert not pid_file.exists()

    # A reused pid (here: this test process) must not be taken for Synapse, nor signalled.
    pid_file.write_text(f"{os.getpid()}\n")
    assert invoke("homeserver", "status", "--data-dir", str(data_dir)).exit_code == 3
    assert invoke("homeserver", "stop", "--data-dir", str(data_dir)).exit_code == 0
    assert not pid_file.exists()

    pid_file.write_text(f"{dead_pid()}\n")
    started = invoke("homeserver", "start", "--data-dir", str(data_dir))
    try:
        assert started.exit_code == 0, started.output
        assert "removing stale pid file" in started.stderr
        assert versions_status(port) == 200
    finally:
        assert invoke("homeserver", "stop", "--data-dir", str(data_dir)).exit_code == 0


def test_port_in_use_by_another_program(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        data_dir = str(tmp_path / "hs")
        result = invoke("homeserver", "start", "--data-dir", data_dir, "--port", str(port))
        assert result.exit_code == 1
        assert "homeserver_port_in_use" in result.stderr
        assert f"port {port}" in result.stderr

        # The port given first is remembered for the next start of this data dir.
        try:
            as_json = invoke("--json", "homeserver", "start", "--data-dir", data_dir)
        finally:
            invoke("homeserver", "stop", "--data-dir", data_dir)
        assert as_json.exit_code == 1
        assert json.loads(as_json.stdout)["error"]["code"] == "homeserver_port_in_use"
    assert not (Path(data_dir) / PID_FILE).exists()


def test_synapse_that_cannot_start_reports_why(tmp_path: Path) -> None:
    # Port 1 on loopback has no PostgreSQL: Synapse exits during start-up.
    dsn = "postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2"
    data_dir = str(tmp_path / "hs")
    result = invoke(
        "homeserver", "start", "--data-dir", data_dir, "--port", str(free_loopback_port()),
        "--postgres", dsn, "--timeout", "120",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "homeserver_start_failed" in result.stderr
    assert "exited with code" in result.stderr
    assert not (Path(data_dir) / PID_FILE).exists()


def test_server_name_cannot_change_after_creation(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "hs")
    Homeserver.from_data_dir(data_dir, server_name="agency.test").ensure_config()
    result = invoke("homeserver", "start", "--data-dir", data_dir, "--server-name", "other.test")
    assert result.exit_code == 1
    assert "config_error" in result.stderr
    assert "agency.test" in result.stderr
