"""The root command: version, help, unknown commands exit non-zero."""

import subprocess
import sys

from click.testing import CliRunner

from onceonly import __version__
from onceonly.cli import cli


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"], obj={})
    assert result.exit_code == 0
    assert __version__ in result.output


def test_unknown_command_fails() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"], obj={})
    assert result.exit_code == 2


def test_console_script_exit_code_on_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from onceonly.cli import main; main()", "no-such-command"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "no-such-command" in proc.stderr


def test_help_lists_the_parties_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"], obj={})
    assert result.exit_code == 0
    for name in ("audit", "homeserver", "account", "trust"):
        assert f"  {name}" in result.output
