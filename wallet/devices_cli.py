"""``onceonly wallet devices``: which of the citizen's devices may read her mailboxes.

* ``list`` - every device of the account as the homeserver lists it, with the
  identity keys it published (self-signature checked) and whether it is approved;
* ``approve DEVICE_ID`` - pin the device with the keys shown, after the citizen
  compared the Ed25519 key with the session key her other client (Element:
  Settings, Sessions, the session's details) shows; ``--key`` lets a script give
  that key instead of asking;
* ``revoke DEVICE_ID`` - withdraw an approval.

These commands read the account from ``account.json`` over plain HTTP and write
only the wallet store, so they work while ``wallet run`` is running: the running
wallet signs a new device list and sends it to every agency mailbox within its
poll interval (a stopped wallet does so when it next starts).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from onceonly.cli import emit, json_option
from onceonly.errors import ConsentDenied
from onceonly.matrix.accounts import load_credentials
from onceonly.matrix.own_devices import account_devices
from onceonly.trust_cli.common import reports_errors
from wallet.cli import _data_dir_options, _opened, _when
from wallet.devices import (
    DeviceRow,
    approve_device,
    device_rows,
    find_device,
    fingerprint,
    revoke_device,
)

_LATER = "A running wallet sends the new device list to your agencies within seconds."


@click.group()
def devices() -> None:
    """Your other devices that may read agencies' messages (an Element session, say)."""


@devices.command(name="list")
@_data_dir_options
@json_option
@click.pass_context
@reports_errors
def list_devices(ctx: click.Context, data_dir: Path, passphrase_env: str) -> None:
    """The account's devices, their identity keys and whether each is approved."""
    credentials = load_credentials(data_dir)
    account = account_devices(credentials)
    with _opened(data_dir, passphrase_env) as store:
        rows = device_rows(account, store.devices(), credentials.device_id)
    emit(
        ctx,
        {"devices": [_row_json(row) for row in rows]},
        "\n\n".join(_row_text(row) for row in rows) or "no devices",
    )


@devices.command()
@click.argument("device_id")
@_data_dir_options
@click.option("--key", "expected_key", help="The device's Ed25519 session key, as shown there.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_context
@reports_errors
def approve(
    ctx: click.Context,
    device_id: str,
    data_dir: Path,
    passphrase_env: str,
    expected_key: str | None,
    yes: bool,
) -> None:
    """Let DEVICE_ID read your mailboxes: pin it with the keys it publishes now."""
    credentials = load_credentials(data_dir)
    device = find_device(account_devices(credentials), device_id)
    with _opened(data_dir, passphrase_env) as store:
        if device.keys is not None and not yes:
            # Shown on stderr so that --json output stays one document.
            click.echo(
                f"Device {device.device_id} ({device.display_name or 'no name'})\n"
                f"  session key (Ed25519): {fingerprint(device.keys.ed25519)}\n"
                f"  identity key (Curve25519): {fingerprint(device.keys.curve25519)}\n"
                "Compare the session key with the one your other client shows for this"
                " session.",
                err=True,
            )
            if not click.confirm("Is it the same, and is this your device?", err=True):
                raise ConsentDenied("not approved: the keys were not confirmed")
        record = approve_device(
            store,
            device,
            own_device_id=credentials.device_id,
            expected_ed25519=expected_key,
            now=int(time.time()),
        )
    emit(
        ctx,
        {"device_id": record.device_id, "state": record.state, "ed25519": record.ed25519},
        f"{record.device_id}: approved. {_LATER}",
    )


@devices.command()
@click.argument("device_id")
@_data_dir_options
@json_option
@click.pass_context
@reports_errors
def revoke(ctx: click.Context, device_id: str, data_dir: Path, passphrase_env: str) -> None:
    """Stop DEVICE_ID from receiving keys for new messages."""
    with _opened(data_dir, passphrase_env) as store:
        record = revoke_device(store, device_id, now=int(time.time()))
    emit(
        ctx,
        {"device_id": record.device_id, "state": record.state, "at": record.changed_at},
        f"{record.device_id}: revoked at {_when(record.changed_at)}. {_LATER}",
    )


def _row_json(row: DeviceRow) -> dict[str, Any]:
    return {
        "device_id": row.device_id,
        "display_name": row.display_name,
        "ed25519": row.ed25519,
        "curve25519": row.curve25519,
        "status": row.status,
    }


def _row_text(row: DeviceRow) -> str:
    lines = [f"{row.device_id}  {row.status}  ({row.display_name or 'no name'})"]
    if row.ed25519 is not None and row.curve25519 is not None:
        lines.append(f"  session key (Ed25519):     {fingerprint(row.ed25519)}")
        lines.append(f"  identity key (Curve25519): {fingerprint(row.curve25519)}")
    elif row.status not in ("gone", "revoked"):
        lines.append("  no verifiable keys: cannot be approved")
    return "\n".join(lines)
