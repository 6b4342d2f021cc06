"""The onceonly Matrix protocol: event contents, parser, builders, exchange state machines.

Pure: no I/O, no Matrix client. The runtime unwraps received room events with
:func:`from_wire` and sends what the builders produce wrapped by :func:`to_wire`
(``m.room.message`` with the protocol type as ``msgtype``). The DCQL query model
is :mod:`onceonly.query`'s, re-exported here.
The normative description is ``specs/protocol.md``.
"""

from onceonly.protocol.envelope import WIRE_EVENT_TYPE, from_wire, to_wire
from onceonly.protocol.events import (
    KEY_PROOF_TYP,
    CredentialDisplay,
    CredentialIssue,
    CredentialOffer,
    CredentialRequest,
    EcPublicJwk,
    ErrorContent,
    ExchangeStatus,
    OkpPublicJwk,
    Outcome,
    PresentationRequest,
    PresentationResponse,
    Purpose,
    Refusal,
    RefusalCode,
)
from onceonly.protocol.exchange import Exchange, Kind, Role, Signal, State
from onceonly.protocol.fields import (
    INLINE_CONTENT_LIMIT,
    MAX_CONTENT_BYTES,
    MAX_CONTENT_DEPTH,
    NAMESPACE,
    PROTOCOL_REVISION,
    Attachment,
    AttachmentHashes,
    AttachmentKey,
    EncryptedFile,
    LocalizedText,
)
from onceonly.protocol.parse import (
    ACCOUNT_DATA_TYPES,
    EVENT_TYPES,
    STATE_EVENT_TYPES,
    ProtocolEvent,
    event_type_of,
    is_protocol_type,
    parse_event,
    parse_state_event,
    serialized_size,
    to_content,
)
from onceonly.protocol.proofs import (
    make_key_proof,
    sign_device_list,
    verify_device_list,
    verify_key_proof,
)
from onceonly.protocol.rooms import (
    DEVICE_LIST_TYP,
    DeviceEntry,
    DeviceList,
    DeviceListPayload,
    MailboxIndex,
    MailboxMarker,
    StatusListState,
    TrustListState,
)

# The one DCQL model lives in onceonly.query; re-exported because presentation.request
# carries it.
from onceonly.query.model import (
    ClaimsQuery,
    CredentialMeta,
    CredentialQuery,
    CredentialSetQuery,
    DcqlQuery,
)

__all__ = [
    "ACCOUNT_DATA_TYPES",
    "DEVICE_LIST_TYP",
    "EVENT_TYPES",
    "INLINE_CONTENT_LIMIT",
    "KEY_PROOF_TYP",
    "MAX_CONTENT_BYTES",
    "MAX_CONTENT_DEPTH",
    "NAMESPACE",
    "PROTOCOL_REVISION",
    "STATE_EVENT_TYPES",
    "WIRE_EVENT_TYPE",
    "Attachment",
    "AttachmentHashes",
    "AttachmentKey",
    "ClaimsQuery",
    "CredentialDisplay",
    "CredentialIssue",
    "CredentialMeta",
    "CredentialOffer",
    "CredentialQuery",
    "CredentialRequest",
    "CredentialSetQuery",
    "DcqlQuery",
    "DeviceEntry",
    "DeviceList",
    "DeviceListPayload",
    "EcPublicJwk",
    "EncryptedFile",
    "ErrorContent",
    "Exchange",
    "ExchangeStatus",
    "Kind",
    "LocalizedText",
    "MailboxIndex",
    "MailboxMarker",
    "OkpPublicJwk",
    "Outcome",
    "PresentationRequest",
    "PresentationResponse",
    "ProtocolEvent",
    "Purpose",
    "Refusal",
    "RefusalCode",
    "Role",
    "Signal",
    "State",
    "StatusListState",
    "TrustListState",
    "event_type_of",
    "from_wire",
    "is_protocol_type",
    "make_key_proof",
    "parse_event",
    "parse_state_event",
    "serialized_size",
    "sign_device_list",
    "to_content",
    "to_wire",
    "verify_device_list",
    "verify_key_proof",
]
