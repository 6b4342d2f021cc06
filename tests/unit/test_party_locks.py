"""Every party service takes the data-directory lock before it opens anything.

The mechanism lives in :class:`~onceonly.service.PartyService`; this checks that
the issuer, the wallet and the verifier each lock the directory that holds their
Matrix device (a held lock makes ``start`` fail at once, with no Matrix, no config
read and no store opened). Real two-process runs on Synapse are in
``tests/integration/test_party_lock.py``, ``test_issuer_cli.py`` and ``test_wallet_run.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from issuer.service import IssuerService
from onceonly.errors import AlreadyRunning
from onceonly.service import PartyService
from onceonly.service.instance_lock import InstanceLock
from tests.unit.issuer.issuer_world import (
    REGISTRY_ID,
    REGISTRY_USER,
    RESIDENCE_VCT,
    listed,
    make_agency,
    trust_list,
)
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.store import WalletStore

Made = tuple[PartyService, Path, Callable[[], None]]
"""A service not started, the directory it must lock, and what closes its setup."""


def _issuer(tmp_path: Path) -> Made:
    agency = make_agency(
        tmp_path / "amt", agency_id=REGISTRY_ID, user_id=REGISTRY_USER,
        name=("Meldebehörde", "Registration office"), credentials=[RESIDENCE_VCT],
        register_file="registry_office.json",
    )  # fmt: skip
    agency.close()
    matrix_dir = agency.config.matrix_data_dir
    matrix_dir.mkdir(parents=True, exist_ok=True)
    return IssuerService(agency.config, trust_list(listed(agency))), matrix_dir, lambda: None


def _wallet(tmp_path: Path) -> Made:
    from wallet.service import WalletService

    store = WalletStore.create(
        tmp_path / "wallet.db", passphrase="party lock passphrase", scrypt=FAST_SCRYPT_FOR_TESTS
    )
    service = WalletService(data_dir=tmp_path, store=store, trust=lambda now: trust_list())
    return service, tmp_path, store.close


def _verifier(tmp_path: Path) -> Made:
    from verifier.service import VerifierService

    return VerifierService(tmp_path), tmp_path, lambda: None


@pytest.mark.parametrize(
    "party", [_issuer, _wallet, _verifier], ids=["issuer", "wallet", "verifier"]
)
async def test_each_party_locks_its_device_directory(
    party: Callable[[Path], Made], tmp_path: Path
) -> None:
    service, directory, close = party(tmp_path)
    with InstanceLock(directory):
        with pytest.raises(AlreadyRunning, match=f"the {service.label} already runs") as caught:
            await service.start()
        assert caught.value.detail == {"pid": os.getpid()}
    with pytest.raises(RuntimeError, match="not started"):
        service.runtime  # noqa: B018
    close()
