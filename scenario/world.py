"""Setting the stage: a local Synapse, the parties' accounts, agencies and the trust list.

:func:`build_world` creates, in one demo data directory::

    <data-dir>/.onceonly-demo        marker: this directory belongs to the demo
    <data-dir>/homeserver/           Synapse (SQLite), on 127.0.0.1
    <data-dir>/trust-authority/      authority key pair and the signed trust list
    <data-dir>/identity-agency/      agency.toml, keys/, matrix/account.json, register
    <data-dir>/registry-office/      the same for the registry office
    <data-dir>/family-benefits/      the verifier: verifier.json, keys/, account.json
    <data-dir>/citizen/              Erika's wallet data (account.json, ...)

Every party's Matrix login is written to its data directory, so its service (or
the ``onceonly`` command line) can be started there later. A directory from an
earlier demo run is recognised by its marker, its homeserver stopped and the
directory replaced; any other non-empty directory is refused.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import issuer
from issuer.config import AgencyConfig, init_agency, public_jwks
from issuer.register import PID_VCT, RESIDENCE_VCT, Register
from onceonly import jose
from onceonly.errors import ConfigError
from onceonly.matrix.accounts import Credentials, save_credentials
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.homeserver_process import free_loopback_port, port_in_use
from onceonly.matrix.state_rooms import (
    ensure_public_room,
    publish_trust_list,
    state_client,
    trust_room_alias,
)
from onceonly.trust import (
    Agency,
    AgencyKey,
    LocalizedText,
    Purpose,
    RequestGrant,
    TrustList,
    TrustListDraft,
    build_trust_list,
    sign_trust_list,
)
from onceonly.trust_cache import write_atomically
from onceonly.types import UserId
from scenario import cast
from verifier.config import init_verifier

MARKER: Final = ".onceonly-demo"
DEFAULT_PORT: Final = 8008
TRUST_LIST_VALID_SECONDS: Final = 30 * 86_400
AUTHORITY_PUBLIC_KEY: Final = "authority-key.pub.jwk"
AUTHORITY_PRIVATE_KEY: Final = "authority-key.jwk"
TRUST_LIST_FILE: Final = "trust-list.jwt"
AUDIT_PUBLIC_KEY: Final = "audit-key.pub.jwk"
SAMPLE_DATA: Final = Path(issuer.__file__).resolve().parent / "sample_data"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Party:
    """One party's Matrix account and where its data lives.

    Attributes:
        name: Display name.
        data_dir: The party's data directory.
        matrix_dir: The directory holding its ``account.json`` (its transport data dir).
        credentials: Its logged-in device.
    """

    name: str
    data_dir: Path
    matrix_dir: Path
    credentials: Credentials

    @property
    def user_id(self) -> UserId:
        """Its Matrix user id."""
        return self.credentials.user_id


@dataclass(frozen=True)
class World:
    """Everything :func:`build_world` set up.

    Attributes:
        data_dir: The demo data directory.
        homeserver: The running Synapse.
        authority: The trust authority's Matrix account.
        authority_key: The trust authority's signing key.
        trust_list: The signed list's payload.
        trust_list_token: The signed list (compact JWS).
        trust_room: The alias of the public trust-list room.
        identity_agency: The PID issuer.
        registry_office: The residence issuer.
        family_benefits: The verifier.
        citizen: Erika's wallet account.
        citizen_password: Erika's password (for logging in with Element).
        agency_configs: Issuer configurations by :attr:`~scenario.cast.AgencyRole.key`.
        audit_key: The public key of the family benefits office's audit log heads.
        now: The moment the world was built (Unix seconds).
    """

    data_dir: Path
    homeserver: Homeserver
    authority: Party
    authority_key: jose.PrivateKey
    trust_list: TrustList
    trust_list_token: str
    trust_room: str
    identity_agency: Party
    registry_office: Party
    family_benefits: Party
    citizen: Party
    citizen_password: str
    agency_configs: dict[str, AgencyConfig]
    audit_key: jose.PublicKey
    now: int

    @property
    def anchors(self) -> list[jose.PublicKey]:
        """The trust anchors every party configures: the authority's public key."""
        return [self.authority_key.public()]

    @property
    def authority_public_key_file(self) -> Path:
        """The authority's public JWK file (what an auditor or a party is given)."""
        return self.data_dir / "trust-authority" / AUTHORITY_PUBLIC_KEY


def prepare_data_dir(data_dir: Path, progress: Progress) -> None:
    """Make ``data_dir`` an empty demo directory, clearing an earlier demo run.

    Raises:
        ConfigError: the directory is not empty and was not made by the demo.
    """
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).exists():
            raise ConfigError(
                f"{data_dir} is not empty and not a demo directory; choose another --data-dir"
            )
        previous = Homeserver.from_data_dir(data_dir / "homeserver")
        if previous.stop():
            progress("stopped the homeserver of the previous demo run")
        shutil.rmtree(data_dir)
        progress(f"removed the previous demo run in {data_dir}")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (data_dir / MARKER).write_text("created by `onceonly demo`; safe to delete\n")


def choose_port(port: int | None) -> int:
    """The given port, else :data:`DEFAULT_PORT` if free, else any free loopback port."""
    if port is not None:
        return port
    return DEFAULT_PORT if not port_in_use("127.0.0.1", DEFAULT_PORT) else free_loopback_port()


def start_homeserver(
    data_dir: Path, port: int | None, progress: Progress, *, timeout: float = 180.0
) -> Homeserver:
    """Start the demo's Synapse in ``<data_dir>/homeserver``."""
    homeserver = Homeserver.from_data_dir(data_dir / "homeserver", port=choose_port(port))
    homeserver.start(timeout=timeout, progress=progress)
    return homeserver


def _register(
    homeserver: Homeserver, localpart: str, name: str, data_dir: Path, matrix_dir: Path
) -> Party:
    credentials = homeserver.register(localpart, displayname=name, unlimited=True)
    save_credentials(matrix_dir, credentials)
    return Party(name=name, data_dir=data_dir, matrix_dir=matrix_dir, credentials=credentials)


def _agency_party(homeserver: Homeserver, role: cast.AgencyRole, data_dir: Path) -> Party:
    directory = data_dir / role.key
    # An issuer keeps its Matrix data in matrix/ (issuer.config); a verifier in its data dir.
    matrix_dir = directory / "matrix" if role.issues else directory
    return _register(homeserver, role.localpart, role.name_de, directory, matrix_dir)


def _init_issuer(role: cast.AgencyRole, party: Party, progress: Progress) -> AgencyConfig:
    config = init_agency(
        party.data_dir,
        agency_id=role.agency_id,
        name_de=role.name_de,
        name_en=role.name_en,
        matrix_user_id=party.user_id,
        credentials=list(role.issues),
    )
    with Register.open(config.register_database) as register:
        if role.sample_register is not None:
            persons, moves = register.import_file(SAMPLE_DATA / role.sample_register)
            progress(f"{role.name_de}: imported {persons} register records ({moves} moves)")
        citizen = (
            cast.erika_identity_record()
            if role is cast.IDENTITY_AGENCY
            else cast.erika_residence_record()
        )
        register.put_person(citizen)
    return config


def _purpose(code: str, de: str, en: str) -> Purpose:
    return Purpose(code=code, text=LocalizedText(de=de, en=en))


def trust_list_draft(
    parties: dict[str, Party], configs: dict[str, AgencyConfig], *, now: int
) -> TrustListDraft:
    """The demo's trust list: three agencies, their keys, what each may issue and ask for."""
    pid_identity = (("given_name",), ("family_name",), ("birthdate",), ("place_of_birth",))
    extra: dict[str, dict[str, object]] = {
        cast.REGISTRY_OFFICE.key: {
            # Other issuers identify the citizen by a PID presentation (spec section 11).
            "purposes": (
                _purpose(
                    "identification",
                    "Identifizierung für die Meldebescheinigung",
                    "Identification for the residence certificate",
                ),
            ),
            "may_request": (
                RequestGrant(vct=PID_VCT, paths=pid_identity, purposes=("identification",)),
            ),
        },
        cast.FAMILY_BENEFITS.key: {
            "purposes": (
                _purpose(
                    cast.CHILD_BENEFIT_PURPOSE,
                    "Antrag auf Kindergeld",
                    "Child benefit application",
                ),
            ),
            "may_request": (
                RequestGrant(
                    vct=RESIDENCE_VCT,
                    paths=cast.CHILD_BENEFIT_CLAIMS,
                    purposes=(cast.CHILD_BENEFIT_PURPOSE,),
                ),
            ),
        },
    }
    agencies = []
    for role in cast.AGENCIES:
        config = configs.get(role.key)
        keys = (
            tuple(AgencyKey(jwk=jwk, valid_from=now - 60) for jwk in public_jwks(config))
            if config is not None
            else ()
        )
        agencies.append(
            Agency.model_validate(
                {
                    "id": role.agency_id,
                    "name": LocalizedText(de=role.name_de, en=role.name_en),
                    "matrix_user_id": parties[role.key].user_id,
                    "keys": keys,
                    "may_issue": role.issues,
                    **extra.get(role.key, {}),
                }
            )
        )
    return TrustListDraft(
        iss=cast.TRUST_AUTHORITY_ID,
        name=LocalizedText(de=cast.TRUST_AUTHORITY_NAME_DE, en=cast.TRUST_AUTHORITY_NAME_EN),
        agencies=tuple(agencies),
    )


async def publish_signed_list(authority: Credentials, token: str, trust_list: TrustList) -> str:
    """Publish the signed list in the public trust room; return the room's alias."""
    alias = trust_room_alias(authority.user_id)
    async with state_client(authority) as client:
        room_id, _created = await ensure_public_room(
            client,
            alias,
            name=cast.TRUST_AUTHORITY_NAME_DE,
            topic="Signierte Vertrauensliste / signed trust list (demo)",
        )
        await publish_trust_list(client, room_id, token, trust_list)
    return alias


async def build_world(
    data_dir: Path,
    *,
    port: int | None,
    progress: Progress,
    now: int,
    start_timeout: float = 180.0,
) -> World:
    """Start Synapse and create every account, agency, register and the trust list.

    ``data_dir`` must have been made ready by :func:`prepare_data_dir`. The
    homeserver keeps running when this returns (also when it fails after starting
    it: the caller stops it, see :func:`scenario.runner.run_demo`).

    Raises:
        HomeserverError: Synapse could not be started.
        OnceOnlyError: any other setup step failed.
    """
    data_dir = data_dir.resolve()
    homeserver = start_homeserver(data_dir, port, progress, timeout=start_timeout)
    parties = {role.key: _agency_party(homeserver, role, data_dir) for role in cast.AGENCIES}
    for party in parties.values():
        progress(f"account {party.user_id} ({party.name})")
    password = secrets.token_urlsafe(12)
    citizen_dir = data_dir / "citizen"
    citizen_credentials = homeserver.register(
        cast.CITIZEN_LOCALPART, password, displayname=cast.CITIZEN_NAME
    )
    save_credentials(citizen_dir, citizen_credentials)
    citizen = Party(cast.CITIZEN_NAME, citizen_dir, citizen_dir, citizen_credentials)
    progress(f"account {citizen.user_id} ({citizen.name}, the citizen)")
    authority_dir = data_dir / "trust-authority"
    authority = _register(
        homeserver, "vertrauensliste", cast.TRUST_AUTHORITY_NAME_DE, authority_dir, authority_dir
    )
    configs = {
        role.key: _init_issuer(role, parties[role.key], progress)
        for role in cast.AGENCIES
        if role.issues
    }
    authority_key = jose.generate_private_key(jose.ES256)
    write_atomically(
        authority_dir / AUTHORITY_PUBLIC_KEY,
        jose.json_dumps_compact(authority_key.public().to_jwk()),
    )
    private_path = authority_dir / AUTHORITY_PRIVATE_KEY
    write_atomically(private_path, jose.json_dumps_compact(authority_key.to_jwk()), mode=0o600)
    verifier_dir = parties[cast.FAMILY_BENEFITS.key].data_dir
    _config, audit_key = init_verifier(
        verifier_dir, verifier_id=cast.FAMILY_BENEFITS.agency_id, anchors=[authority_key.public()]
    )
    write_atomically(verifier_dir / AUDIT_PUBLIC_KEY, jose.json_dumps_compact(audit_key.to_jwk()))
    draft = trust_list_draft(parties, configs, now=now)
    trust_list = build_trust_list(
        draft, sequence=1, now=now, valid_for_seconds=TRUST_LIST_VALID_SECONDS
    )
    token = sign_trust_list(trust_list, authority_key)
    write_atomically(authority_dir / TRUST_LIST_FILE, token)
    alias = await publish_signed_list(authority.credentials, token, trust_list)
    progress(f"trust list {trust_list.seq} signed and published in {alias}")
    return World(
        data_dir=data_dir,
        homeserver=homeserver,
        authority=authority,
        authority_key=authority_key,
        trust_list=trust_list,
        trust_list_token=token,
        trust_room=alias,
        identity_agency=parties[cast.IDENTITY_AGENCY.key],
        registry_office=parties[cast.REGISTRY_OFFICE.key],
        family_benefits=parties[cast.FAMILY_BENEFITS.key],
        citizen=citizen,
        citizen_password=password,
        agency_configs=configs,
        audit_key=audit_key,
        now=now,
    )
