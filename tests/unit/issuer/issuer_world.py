"""A small government for issuer tests: the identity agency, a registry office, a trust list.

Both agencies are created with :func:`issuer.config.init_agency` in a temporary
directory and read the shipped sample registers; the trust list is built from
their real configured keys. Citizens are wallet-side helpers built from the
protocol and SD-JWT libraries, not from the issuer code under test.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from issuer.config import AgencyConfig, init_agency, load_signing_key
from issuer.issuance import IssuerContext
from issuer.issuance_log import IssuanceLog
from issuer.nonce_ledger import NonceLedger
from issuer.offers import new_exchange_id, new_nonce
from issuer.register import PID_VCT, RESIDENCE_VCT, VEHICLE_VCT, Register
from issuer.status_registry import StatusRegistry
from onceonly import jose
from onceonly.protocol import CredentialRequest, make_key_proof
from onceonly.protocol.bodies import build_credential_request
from onceonly.protocol.events import PublicJwk
from onceonly.protocol.fields import LocalizedText
from onceonly.protocol.proofs import IDENTITY_BINDING_CONTEXT
from onceonly.sdjwt import parse_sd_jwt, present
from onceonly.status_list import StatusReference, check_status
from onceonly.trust import Agency, AgencyKey, TrustList
from onceonly.trust import LocalizedText as TrustText
from onceonly.types import UserId

NOW = 1_800_000_000
SAMPLE_DATA = Path(__file__).resolve().parents[3] / "issuer" / "sample_data"
IDENTITY_ID = "https://ausweis.berlin.example"
REGISTRY_ID = "https://meldebehoerde.berlin.example"
IDENTITY_USER = "@ausweisbehoerde:localhost"
REGISTRY_USER = "@meldebehoerde:localhost"
PID_IDENTITY_PATHS = (("given_name",), ("family_name",), ("birthdate",), ("place_of_birth",))

_JWK_ADAPTER: TypeAdapter[Any] = TypeAdapter(PublicJwk)


@dataclass
class AgencyUnderTest:
    """One agency's stores and configuration (its context needs the trust list)."""

    config: AgencyConfig
    register: Register
    registry: StatusRegistry
    log: IssuanceLog
    ledger: NonceLedger
    key: jose.PrivateKey
    ctx: IssuerContext | None = None

    @property
    def context(self) -> IssuerContext:
        assert self.ctx is not None
        return self.ctx

    def make_context(self, trust: TrustList, pid_status_check: Any) -> IssuerContext:
        """A handler context over this agency's stores under ``trust``."""
        return IssuerContext(
            config=self.config,
            register=self.register,
            status_registry=self.registry,
            issuance_log=self.log,
            ledger=self.ledger,
            signing_key=self.key,
            trust_list=trust,
            pid_status_check=pid_status_check,
        )

    def close(self) -> None:
        for store in (self.register, self.registry, self.log, self.ledger):
            store.close()


def make_agency(
    directory: Path,
    *,
    agency_id: str,
    user_id: str,
    name: tuple[str, str],
    credentials: list[str],
    register_file: str,
    issuer_database: str | None = None,
    register_database: str | None = None,
    alg: str = jose.ES256,
) -> AgencyUnderTest:
    """Create an agency directory and open its stores (SQLite unless DSNs are given)."""
    config = init_agency(
        directory,
        agency_id=agency_id,
        name_de=name[0],
        name_en=name[1],
        matrix_user_id=user_id,
        credentials=credentials,
        alg=alg,
        register_database=register_database or "register.sqlite3",
        issuer_database=issuer_database or "issuer.sqlite3",
    )
    register = Register.open(config.register_database)
    register.import_file(SAMPLE_DATA / register_file)
    return AgencyUnderTest(
        config=config,
        register=register,
        registry=StatusRegistry.open(
            config.issuer_database,
            base_uri=config.status_base_uri,
            bits=config.status_bits,
            list_size=1024,
        ),
        log=IssuanceLog.open(config.issuer_database),
        ledger=NonceLedger.open(config.issuer_database),
        key=load_signing_key(config),
    )


def listed(
    agency: AgencyUnderTest, *, may_issue: tuple[str, ...] | None = None, now: int = NOW
) -> Agency:
    """The trust-list entry of ``agency`` with its real key."""
    config = agency.config
    return Agency(
        id=config.agency_id,
        name=TrustText(de=config.name_de, en=config.name_en),
        matrix_user_id=config.matrix_user_id,
        keys=(AgencyKey(jwk=agency.key.public().to_jwk(), valid_from=now - 86_400),),
        may_issue=may_issue if may_issue is not None else config.issues(),
    )


def trust_list(*agencies: Agency, now: int = NOW) -> TrustList:
    """A trust list payload (its signature is the trust package's business, tested there)."""
    return TrustList(
        iss="https://trust.example",
        name=TrustText(de="Vertrauensstelle", en="Trust authority"),
        seq=1,
        iat=now - 60,
        nbf=now - 60,
        exp=now + 30 * 86_400,
        agencies=agencies,
    )


def local_status_check(identity: AgencyUnderTest) -> Any:
    """A PID status check that reads the identity agency's current list directly."""

    async def check(reference: StatusReference, issuer_id: str) -> None:
        assert issuer_id == identity.config.agency_id
        token = identity.registry.sign_jwt(reference.uri, identity.key, now=NOW)
        check_status(reference, token, issuer_key=identity.key.public(), now=NOW)

    return check


@dataclass
class World:
    """The two agencies and the trust list that links them."""

    identity: AgencyUnderTest
    registry_office: AgencyUnderTest
    trust: TrustList = field(init=False)

    def __post_init__(self) -> None:
        self.set_trust(trust_list(listed(self.identity), listed(self.registry_office)))

    def set_trust(self, trust: TrustList) -> None:
        self.trust = trust
        check = local_status_check(self.identity)
        for agency in (self.identity, self.registry_office):
            agency.ctx = agency.make_context(trust, check)

    def close(self) -> None:
        self.identity.close()
        self.registry_office.close()


def make_world(directory: Path) -> World:
    identity = make_agency(
        directory / "identity",
        agency_id=IDENTITY_ID,
        user_id=IDENTITY_USER,
        name=("Personalausweisbehörde Berlin", "Berlin Identity Card Authority"),
        credentials=[PID_VCT],
        register_file="identity_agency.json",
    )
    registry = make_agency(
        directory / "registry",
        agency_id=REGISTRY_ID,
        user_id=REGISTRY_USER,
        name=("Meldebehörde Berlin", "Berlin Registration Office"),
        credentials=[RESIDENCE_VCT],
        register_file="registry_office.json",
        alg=jose.EDDSA,
    )
    return World(identity, registry)


@dataclass
class Citizen:
    """The wallet side, reduced to what a request needs."""

    user_id: UserId
    key: jose.PrivateKey = field(default_factory=lambda: jose.generate_private_key(jose.ES256))
    pid: str | None = None

    @property
    def jwk(self) -> Any:
        return _JWK_ADAPTER.validate_python(self.key.public().to_jwk())

    def request(
        self,
        *,
        audience: str,
        vct: str,
        nonce: str | None = None,
        exchange_id: str | None = None,
        offer_event_id: str | None = None,
        identity_for: str | None = None,
        proof_key: jose.PrivateKey | None = None,
        proof_audience: str | None = None,
        iat: int = NOW,
        kb_nonce: str | None = None,
        kb_audience: str | None = None,
        identity_paths: tuple[tuple[str, ...], ...] = PID_IDENTITY_PATHS,
        kb_context: str | None = IDENTITY_BINDING_CONTEXT,
    ) -> CredentialRequest:
        """A ``credential.request``; ``identity_for`` adds a PID presentation for that audience."""
        nonce = nonce or new_nonce(secrets.token_bytes)
        proof = make_key_proof(
            proof_key or self.key, audience=proof_audience or audience, nonce=nonce, now=iat
        )
        presentation = None
        if identity_for is not None:
            assert self.pid is not None, "the citizen holds no PID yet"
            presentation = present(
                parse_sd_jwt(self.pid),
                disclose=identity_paths,
                holder_key=self.key,
                aud=kb_audience or identity_for,
                nonce=kb_nonce or nonce,
                now=NOW,
                context=kb_context,
            )
        return build_credential_request(
            exchange_id=exchange_id or new_exchange_id(secrets.token_bytes),
            vct=vct,
            holder_jwk=self.jwk,
            proof=proof,
            credential_name=LocalizedText(de="Nachweis", en="credential"),
            offer_event_id=offer_event_id,
            identity_presentation=presentation,
        )


__all__ = [
    "IDENTITY_ID",
    "IDENTITY_USER",
    "NOW",
    "PID_VCT",
    "REGISTRY_ID",
    "REGISTRY_USER",
    "RESIDENCE_VCT",
    "VEHICLE_VCT",
    "AgencyUnderTest",
    "Citizen",
    "World",
    "listed",
    "make_agency",
    "make_world",
    "trust_list",
]
