"""The ``onceonly`` command line: a root group each party adds subcommands to.

Subcommand groups are imported lazily, so ``onceonly --version`` or
``onceonly audit`` do not pay for importing matrix-nio or Synapse.
Every failure exits non-zero: :class:`~onceonly.errors.OnceOnlyError` prints its
code and message (as JSON with ``--json``) and exits 1; usage errors exit 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from typing import Any

import click

from onceonly import __version__
from onceonly.errors import OnceOnlyError

# name -> "module:attribute" of a click command or group. Parties register here.
SUBCOMMANDS: dict[str, str] = {
    "audit": "verifier.audit_cli:audit",
    "homeserver": "onceonly.matrix.cli:homeserver",
    "account": "onceonly.matrix.cli:account",
    "trust": "onceonly.trust_cli:trust",
    "issuer": "issuer.cli:issuer",
    "wallet": "wallet.cli:wallet",
    "verifier": "verifier.cli:verifier",
    "demo": "scenario.cli:demo",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        available = [name for name in self._lazy if self._importable(name)]
        return sorted({*super().list_commands(ctx), *available})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy and self._importable(cmd_name):
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _importable(self, name: str) -> bool:
        module_name = self._lazy[name].split(":", 1)[0]
        try:
            return importlib.util.find_spec(module_name) is not None
        except ModuleNotFoundError:  # the parent package itself is absent
            return False

    def _load(self, name: str) -> click.Command:
        module_name, attr = self._lazy[name].split(":", 1)
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self._lazy[name]} is not a click command")
        return command


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_root().ensure_object(dict)["json"] = True


def json_option(func: Any) -> Any:
    """Decorator: give a subcommand its own ``--json`` flag (same effect as the root one)."""
    return click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_json,
        help="Machine-readable JSON output.",
    )(func)


def emit(ctx: click.Context, data: Any, human: str | None = None) -> None:
    """Print ``data`` as JSON when ``--json`` is set, else ``human`` (or pretty JSON)."""
    if ctx.find_root().obj.get("json") or human is None:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True))
    else:
        click.echo(human)


def fail(ctx: click.Context, error: OnceOnlyError) -> None:
    """Report ``error`` on stderr (JSON on stdout with ``--json``) and exit 1."""
    if ctx.find_root().obj.get("json"):
        click.echo(json.dumps({"error": error.to_dict()}, ensure_ascii=False))
    else:
        click.echo(f"error: {error.code}: {error.message}", err=True)
    ctx.exit(1)


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
@click.version_option(__version__, prog_name="onceonly")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.pass_context
def cli(ctx: click.Context, as_json: bool) -> None:
    """onceonly: signed attestations between agencies and citizens over encrypted Matrix."""
    ctx.ensure_object(dict)
    ctx.obj["json"] = as_json


def main() -> None:
    """Console-script entry point: any OnceOnlyError that escapes exits 1 with its code."""
    try:
        # Without standalone mode click returns (not raises) the code of ctx.exit(n).
        code = cli.main(standalone_mode=False, obj={})
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except OnceOnlyError as exc:
        if "--json" in sys.argv[1:]:
            click.echo(json.dumps({"error": exc.to_dict()}, ensure_ascii=False))
        else:
            click.echo(f"error: {exc.code}: {exc.message}", err=True)
        sys.exit(1)
