"""``onceonly wallet`` commands on real files: init, list, show, offers, accept, history, backup.

The store-only commands need no homeserver; ``run``/``request`` are covered by the
service test on Synapse. Passphrases come through the environment, as in scripts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from onceonly.cli import cli
from tests.unit.wallet.agencies import (
    FAMILY_ID,
    FAMILY_USER,
    NOW,
    REGISTRY_ID,
    RESIDENCE,
    RESIDENCE_CLAIMS,
    issue,
    make_world,
)
from tests.unit.wallet.test_backup_damage import corrupt
from wallet.cli import EXIT_INCOMPLETE
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.records import CredentialStatusRecord, PendingOffer
from wallet.store import WalletStore

PASSPHRASE = "cli wallet passphrase"
ENV = {"ONCEONLY_WALLET_PASSPHRASE": PASSPHRASE, "ONCEONLY_BACKUP_PASSPHRASE": "backup words"}


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(cli, ["--json", *args], env=env or ENV, catch_exceptions=False)
    return result.exit_code, json.loads(result.output) if result.output.strip() else None


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A wallet dir with one residence credential, one pending offer and one history entry."""
    data_dir = tmp_path / "wallet"
    data_dir.mkdir()
    world = make_world()
    with WalletStore.create(
        data_dir / "wallet.db", passphrase=PASSPHRASE, scrypt=FAST_SCRYPT_FOR_TESTS
    ) as store:
        key_id = store.new_holder_key()
        text = issue(
            world.registry_key,
            issuer=REGISTRY_ID,
            vct=RESIDENCE,
            claims=RESIDENCE_CLAIMS,
            holder=store.holder_public_key(key_id),
        )
        store.add_credential(
            sd_jwt=text,
            vct=RESIDENCE,
            issuer=REGISTRY_ID,
            holder_key_id=key_id,
            credential_id="residence1",
            received_at=NOW,
        )
        store.put_offer(
            PendingOffer(
                offer_id="xch_offer_cli_0000001",
                issuer=REGISTRY_ID,
                vct=RESIDENCE,
                received_at=NOW,
                nonce="q0p8V0xk3mH2uUe1Yf6r9A",
                expires_at=NOW + 10**9,
                reason="Umzug gemeldet / registered move",
            )
        )
        store.record_disclosure(
            verifier_id=FAMILY_ID,
            verifier_user=FAMILY_USER,
            credential_id="residence1",
            claim_paths=(("address",), ("nationalities", None)),
            purpose="child_benefit_application",
            outcome="disclosed",
            at=NOW,
        )
    return data_dir


def test_init_creates_a_wallet_with_anchors(tmp_path: Path) -> None:
    anchor = tmp_path / "authority.pub.jwk"
    anchor.write_text(json.dumps(make_world().registry_key.public().to_jwk()), encoding="utf-8")
    data_dir = tmp_path / "fresh"
    code, out = invoke(
        "wallet", "init", "--data-dir", str(data_dir), "--authority-key", str(anchor)
    )
    assert code == 0 and out == {"wallet": "wallet.db", "anchors": 1}
    assert (data_dir / "wallet.db").is_file()
    assert len(json.loads((data_dir / "trust-anchors.json").read_text())["keys"]) == 1
    code, out = invoke("wallet", "list", "--data-dir", str(data_dir))
    assert code == 0 and out == {"credentials": []}
    # A second init never overwrites the wallet.
    code, out = invoke("wallet", "init", "--data-dir", str(data_dir))
    assert code == 1 and out["error"]["code"] == "store_error"


def test_list_and_show(filled: Path) -> None:
    code, out = invoke("wallet", "list", "--data-dir", str(filled))
    assert code == 0
    [row] = out["credentials"]
    assert (row["id"], row["vct"], row["issuer"]) == ("residence1", RESIDENCE, REGISTRY_ID)
    assert "Meldebescheinigung" in row["name"]
    code, out = invoke("wallet", "show", "residence1", "--data-dir", str(filled))
    assert code == 0 and out["claims"]["address"] == RESIDENCE_CLAIMS["address"]
    assert "cnf" not in out["claims"]
    code, out = invoke("wallet", "show", "nope", "--data-dir", str(filled))
    assert code == 1 and out["error"]["code"] == "store_error"


def test_wrong_passphrase_is_wallet_locked(filled: Path) -> None:
    code, out = invoke(
        "wallet", "list", "--data-dir", str(filled), env={"ONCEONLY_WALLET_PASSPHRASE": "wrong"}
    )
    assert code == 1 and out["error"]["code"] == "wallet_locked"


def test_offers_accept_and_decline(filled: Path) -> None:
    code, out = invoke("wallet", "offers", "--data-dir", str(filled), "--state", "pending")
    assert code == 0 and [o["offer_id"] for o in out["offers"]] == ["xch_offer_cli_0000001"]
    code, out = invoke("wallet", "accept", "xch_offer_cli_0000001", "--data-dir", str(filled))
    assert code == 0 and out["state"] == "approved"
    # Not pending any more: neither accepted again nor declined.
    code, out = invoke(
        "wallet", "accept", "xch_offer_cli_0000001", "--decline", "--data-dir", str(filled)
    )
    assert code == 1 and out["error"]["code"] == "unexpected_event"
    code, out = invoke("wallet", "offers", "--data-dir", str(filled), "--state", "pending")
    assert out == {"offers": []}


def test_history_lists_every_disclosure(filled: Path) -> None:
    code, out = invoke("wallet", "history", "--data-dir", str(filled))
    assert code == 0
    [entry] = out["history"]
    assert (entry["verifier_id"], entry["outcome"]) == (FAMILY_ID, "disclosed")
    assert entry["claim_paths"] == [["address"], ["nationalities", None]]
    human = CliRunner().invoke(cli, ["wallet", "history", "--data-dir", str(filled)], env=ENV)
    assert "nationalities.*" in human.output and FAMILY_ID in human.output


def test_export_then_import_on_a_second_device(filled: Path, tmp_path: Path) -> None:
    backup = tmp_path / "wallet.backup"
    code, out = invoke("wallet", "export", str(backup), "--data-dir", str(filled))
    assert code == 0 and out["credentials"] == 1
    second = tmp_path / "second"
    assert invoke("wallet", "init", "--data-dir", str(second))[0] == 0
    code, out = invoke("wallet", "import", str(backup), "--data-dir", str(second))
    assert code == 0 and out["credentials"] == 1 and out["complete"] is True
    assert out["counts"]["offers"] == 1 and out["counts"]["disclosures"] == 1
    assert any("Matrix login" in what for what in out["not_carried"])
    code, out = invoke("wallet", "show", "residence1", "--data-dir", str(second))
    assert code == 0 and out["claims"]["registered_since"] == RESIDENCE_CLAIMS["registered_since"]
    # Importing into a wallet that holds data is refused.
    code, out = invoke("wallet", "import", str(backup), "--data-dir", str(second))
    assert code == 1 and out["error"]["code"] == "store_error"


def test_run_without_trust_anchors_fails_cleanly(filled: Path) -> None:
    code, out = invoke("wallet", "run", "--data-dir", str(filled), "--unattended")
    assert code == 1 and out["error"]["code"] == "config_error"


def test_missing_wallet_is_reported(tmp_path: Path) -> None:
    code, out = invoke("wallet", "list", "--data-dir", str(tmp_path / "none"))
    assert code == 1 and out["error"]["code"] == "store_error"


def test_a_damaged_credential_is_named_and_the_rest_listed_and_saved(
    filled: Path, tmp_path: Path
) -> None:
    with WalletStore.open(filled / "wallet.db", passphrase=PASSPHRASE) as store:
        first = store.credential("residence1")
        store.add_credential(
            sd_jwt=first.sd_jwt,
            vct=RESIDENCE,
            issuer=REGISTRY_ID,
            holder_key_id=first.holder_key_id,
            credential_id="residence2",
            received_at=NOW,
        )
    corrupt(filled / "wallet.db", "credentials", "residence1")

    code, out = invoke("wallet", "list", "--data-dir", str(filled))
    assert code == EXIT_INCOMPLETE
    assert [row["id"] for row in out["credentials"]] == ["residence2"]
    assert out["damaged"] == [{"table": "credentials", "row_id": "residence1"}]
    [warning] = out["warnings"]
    assert warning["code"] == "store_corrupt" and "residence1" in warning["message"]
    human = CliRunner().invoke(cli, ["wallet", "list", "--data-dir", str(filled)], env=ENV)
    assert human.exit_code == EXIT_INCOMPLETE
    assert "residence2" in human.output
    assert "warning: store_corrupt: credentials record residence1" in human.output

    backup = tmp_path / "partial.backup"
    code, out = invoke("wallet", "export", str(backup), "--data-dir", str(filled))
    assert code == EXIT_INCOMPLETE and backup.is_file()
    assert out["complete"] is False and out["credentials"] == 1
    assert out["damaged"] == [{"table": "credentials", "row_id": "residence1"}]

    second = tmp_path / "second"
    assert invoke("wallet", "init", "--data-dir", str(second))[0] == 0
    code, out = invoke("wallet", "import", str(backup), "--data-dir", str(second))
    assert code == EXIT_INCOMPLETE and out["complete"] is False
    assert out["damaged"] == [{"table": "credentials", "row_id": "residence1"}]
    code, out = invoke("wallet", "list", "--data-dir", str(second))
    assert code == 0 and [row["id"] for row in out["credentials"]] == ["residence2"]


def test_damaged_offers_history_and_verdicts_are_named_not_fatal(filled: Path) -> None:
    with WalletStore.open(filled / "wallet.db", passphrase=PASSPHRASE) as store:
        store.record_status(
            CredentialStatusRecord(
                credential_id="residence1",
                state="revoked",
                checked_at=NOW,
                list_uri="https://status.example/l",
            )
        )
        [entry] = store.disclosure_history()
    corrupt(filled / "wallet.db", "offers", "xch_offer_cli_0000001")
    corrupt(filled / "wallet.db", "disclosures", entry.entry_id)
    corrupt(filled / "wallet.db", "credential_status", "residence1")

    code, out = invoke("wallet", "offers", "--data-dir", str(filled))
    assert code == EXIT_INCOMPLETE and out["offers"] == []
    assert out["damaged"] == [{"table": "offers", "row_id": "xch_offer_cli_0000001"}]
    code, out = invoke("wallet", "history", "--data-dir", str(filled))
    assert code == EXIT_INCOMPLETE and out["history"] == []
    assert out["damaged"] == [{"table": "disclosures", "row_id": entry.entry_id}]
    code, out = invoke("wallet", "list", "--data-dir", str(filled))
    assert code == EXIT_INCOMPLETE
    [row] = out["credentials"]
    assert row["id"] == "residence1" and row["status"] is None  # verdict unknown, not "valid"
    assert out["damaged"] == [{"table": "credential_status", "row_id": "residence1"}]
