"""``onceonly wallet devices``: the parts that need no homeserver (store and error paths).

Listing and approving real devices is tested on Synapse in
``tests/integration/test_wallet_devices.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from onceonly.cli import cli
from onceonly.matrix.own_devices import AccountDevice, DeviceKeys
from tests.unit.wallet.agencies import NOW
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.devices import approve_device
from wallet.store import WalletStore

PASSPHRASE = "devices cli passphrase"
ENV = {"ONCEONLY_WALLET_PASSPHRASE": PASSPHRASE}
ELEMENT = DeviceKeys("ELEMENTDEV", "E" * 43, "e" * 43)


def invoke(*args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, ["--json", *args], env=ENV, catch_exceptions=False)
    return result.exit_code, json.loads(result.output) if result.output.strip() else None


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A wallet dir with one approved device and no Matrix account."""
    directory = tmp_path / "wallet"
    directory.mkdir()
    with WalletStore.create(
        directory / "wallet.db", passphrase=PASSPHRASE, scrypt=FAST_SCRYPT_FOR_TESTS
    ) as store:
        approve_device(
            store,
            AccountDevice(ELEMENT.device_id, "Element", ELEMENT),
            own_device_id="WALLETDEV",
            expected_ed25519=None,
            now=NOW,
        )
    return directory


def test_revoke_marks_the_device_and_refuses_twice(data_dir: Path) -> None:
    code, out = invoke("wallet", "devices", "revoke", "ELEMENTDEV", "--data-dir", str(data_dir))
    assert code == 0 and (out["device_id"], out["state"]) == ("ELEMENTDEV", "revoked")
    with WalletStore.open(data_dir / "wallet.db", passphrase=PASSPHRASE) as store:
        [record] = store.devices()
    assert (record.state, record.announced) == ("revoked", False)
    code, out = invoke("wallet", "devices", "revoke", "ELEMENTDEV", "--data-dir", str(data_dir))
    assert code == 1 and out["error"]["code"] == "store_error"


def test_revoke_of_an_unknown_device_fails(data_dir: Path) -> None:
    code, out = invoke("wallet", "devices", "revoke", "NEVERSEEN", "--data-dir", str(data_dir))
    assert code == 1 and out["error"]["code"] == "store_error"


@pytest.mark.parametrize("command", [["list"], ["approve", "ELEMENTDEV", "--yes"]])
def test_commands_that_ask_the_homeserver_need_the_account(
    data_dir: Path, command: list[str]
) -> None:
    code, out = invoke("wallet", "devices", *command, "--data-dir", str(data_dir))
    assert code == 1 and out["error"]["code"] == "account_error"


def test_wrong_passphrase_is_refused(data_dir: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--json", "wallet", "devices", "revoke", "ELEMENTDEV", "--data-dir", str(data_dir)],
        env={"ONCEONLY_WALLET_PASSPHRASE": "wrong"},
    )
    assert result.exit_code == 1
    assert json.loads(result.output)["error"]["code"] == "wallet_locked"
    with WalletStore.open(data_dir / "wallet.db", passphrase=PASSPHRASE) as store:
        assert store.devices()[0].state == "approved"
