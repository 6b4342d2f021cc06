"""A stranger's requests store nothing; expired nonces are purged after the retention time.

Before, every ``credential.request`` without an offer wrote a ledger row before any
check, from any Matrix account, and nothing purged the rows outside tests.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from issuer.citizen_devices import CitizenDevices
from issuer.config import DEFAULT_NONCE_RETENTION_SECONDS, load_config, save_config
from issuer.eid_check import complete_eid_check, start_eid_check
from issuer.issuance import handle_credential_request
from issuer.nonce_ledger import NonceLedger
from onceonly import jose
from onceonly.errors import (
    ConfigError,
    IdentityNotBound,
    InvalidSignature,
    OnceOnlyError,
    ReplayDetected,
)
from onceonly.sdjwt import issue_sd_jwt_vc
from onceonly.types import UserId
from tests.unit.issuer.issuer_world import (
    IDENTITY_ID,
    NOW,
    PID_VCT,
    REGISTRY_ID,
    RESIDENCE_VCT,
    Citizen,
    World,
    make_world,
)

JUNK = 60
JUERGEN_CARD = "LXH67HC3V"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = make_world(tmp_path)
    yield built
    built.close()


async def refused(ctx: object, request: object, sender: UserId) -> OnceOnlyError:
    with pytest.raises(OnceOnlyError) as caught:
        await handle_credential_request(ctx, request, sender=sender, now=NOW)  # type: ignore[arg-type]
    return caught.value


def forged_pid(citizen: Citizen) -> str:
    """A PID-shaped credential signed by a key no trust list names."""
    issued = issue_sd_jwt_vc(
        issuer=IDENTITY_ID,
        vct=PID_VCT,
        claims={"given_name": "Jürgen", "family_name": "Müller", "birthdate": "1978-05-12"},
        disclosable=[("given_name",), ("family_name",), ("birthdate",)],
        holder_key=citizen.key.public(),
        signing_key=jose.generate_private_key(jose.ES256),
        now=NOW - 60,
        expires_at=NOW + 86_400,
        random_bytes=secrets.token_bytes,
    )
    return issued.serialize()


async def test_junk_requests_from_a_stranger_leave_the_ledgers_unchanged(world: World) -> None:
    identity, office = world.identity, world.registry_office
    before = identity.ledger.count(), office.ledger.count()
    stranger = Citizen(UserId("@stranger:localhost"))
    for _ in range(JUNK):
        # Valid key proofs over fresh nonces, but no eID binding ...
        pid_request = stranger.request(audience=IDENTITY_ID, vct=PID_VCT)
        assert isinstance(await refused(identity.context, pid_request, stranger.user_id),
                          IdentityNotBound)  # fmt: skip
        # ... no PID at all ...
        bare = stranger.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT)
        assert isinstance(await refused(office.context, bare, stranger.user_id), IdentityNotBound)
    # ... or a PID the stranger signed himself.
    stranger.pid = forged_pid(stranger)
    for _ in range(JUNK):
        forged = stranger.request(
            audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID,
            identity_paths=(("given_name",), ("family_name",), ("birthdate",)),
        )  # fmt: skip
        error = await refused(office.context, forged, stranger.user_id)
        assert isinstance(error, InvalidSignature), repr(error)
    assert (identity.ledger.count(), office.ledger.count()) == before

    # An honest citizen is served afterwards, and the nonce is kept against replay.
    juergen = Citizen(UserId("@juergen:localhost"))
    code = start_eid_check(
        identity.register, identity.ledger, JUERGEN_CARD, now=NOW, random_bytes=secrets.token_bytes
    )
    complete_eid_check(
        identity.register, identity.ledger,
        card_number=JUERGEN_CARD, code=code, matrix_user_id=juergen.user_id, now=NOW,
    )  # fmt: skip
    pid_request = juergen.request(audience=IDENTITY_ID, vct=PID_VCT)
    juergen.pid = (
        await handle_credential_request(
            identity.context, pid_request, sender=juergen.user_id, now=NOW
        )
    ).sd_jwt
    residence = juergen.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID)
    issued = await handle_credential_request(
        office.context, residence, sender=juergen.user_id, now=NOW
    )
    assert issued.identity.person_id == "MB-0001"
    assert office.ledger.count() == before[1] + 1
    assert isinstance(await refused(office.context, residence, juergen.user_id), ReplayDetected)


def test_purge_keeps_expired_entries_for_the_retention_time_only(target: str) -> None:
    with NonceLedger.open(target) as ledger:
        check_purge(ledger)


def check_purge(ledger: NonceLedger) -> None:
    for i in range(5):
        ledger.consume_wallet_nonce(
            f"wallet-nonce-{i:012d}", matrix_user_id="@a:localhost", now=NOW + i * 100, window=360
        )
    # Expiry at NOW+360 ... NOW+760; retention 1000: at NOW+1500 the first two are due.
    assert ledger.purge(now=NOW + 1_500, retention=1_000) == 2
    assert ledger.count() == 3
    assert ledger.purge(now=NOW + 1_500, retention=1_000) == 0
    assert ledger.purge(now=NOW + 10_000, retention=1_000) == 3
    assert ledger.count() == 0
    with pytest.raises(ValueError, match="negative"):
        ledger.purge(now=NOW, retention=-1)


def test_nonce_retention_is_configured(world: World) -> None:
    config = world.registry_office.config
    assert config.nonce_retention_seconds == DEFAULT_NONCE_RETENTION_SECONDS
    changed = config.model_copy(update={"nonce_retention_seconds": 120})
    save_config(changed)
    assert load_config(config.path).nonce_retention_seconds == 120
    text = config.path.read_text()
    config.path.write_text(
        text.replace("nonce_retention_seconds = 120", "nonce_retention_seconds = -5")
    )
    with pytest.raises(ConfigError):
        load_config(config.path)


def test_device_lists_nobody_verified_are_purged_after_the_retention(target: str) -> None:
    with CitizenDevices.open(target) as devices:
        for i in range(JUNK):  # anyone may send a device list; it waits for a PID key
            pending = devices.accept_device_list(f"@stranger{i}:localhost", "x" * 100, now=NOW)
            assert pending is False
        devices.pin_device("@pinned:localhost", "WALLET", now=NOW)  # eID check
        devices.learn_pid_key(
            "@citizen:localhost", jose.generate_private_key(jose.ES256).public(), now=NOW
        )
        late = "@late:localhost"
        devices.accept_device_list(late, "y" * 100, now=NOW + 500)
        assert devices.purge_unverified(before=NOW + 100) == JUNK
        assert devices.purge_unverified(before=NOW + 100) == 0
        assert devices.devices_of("@pinned:localhost")
        # The recent one stays until it is old too; citizens with a key or pin stay.
        assert devices.purge_unverified(before=NOW + 10_000) == 1
