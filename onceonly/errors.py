"""Typed errors shared by every party.

Every error has a stable machine ``code`` (sent to the other party in an
``error`` event and printed by the CLI) and a human message. Codes never
change meaning once published; add new classes instead of reusing a code.

The tree is shallow on purpose: callers catch the family they can handle
(e.g. :class:`VerificationError`) and report ``err.code`` for everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class OnceOnlyError(Exception):
    """Root of every error onceonly raises on purpose.

    Attributes:
        code: Stable machine-readable code, ``snake_case``.
        message: Human-readable explanation (English).
        detail: Optional structured context that is safe to show the other party
            (never secrets, never claim values).
    """

    code: ClassVar[str] = "onceonly_error"

    def __init__(self, message: str, *, detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail: dict[str, Any] = dict(detail or {})

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form used in error events and ``--json`` output."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail:
            out["detail"] = self.detail
        return out


# --- input shape -----------------------------------------------------------


class MalformedInput(OnceOnlyError):
    """Input is not well-formed (bad encoding, bad JSON, wrong structure)."""

    code = "malformed"


class DuplicateJsonKey(MalformedInput):
    """A JSON object repeats a member name (RFC 8259 leaves this undefined; we reject)."""

    code = "duplicate_json_key"


class InputTooLarge(MalformedInput):
    """Input exceeds a configured size, depth or count bound."""

    code = "too_large"


class UnknownEventType(MalformedInput):
    """A Matrix event type in the protocol namespace that this revision does not define."""

    code = "unknown_event_type"


class UnsupportedVersion(MalformedInput):
    """An event content's protocol revision (``v``) is not one this side implements."""

    code = "unsupported_version"


# --- signatures and tokens ---------------------------------------------------


class VerificationError(OnceOnlyError):
    """A credential, presentation or signed document failed verification."""

    code = "verification_failed"


class UnsupportedAlgorithm(VerificationError):
    """The ``alg`` is not on the allow-list (never ``none``, never HS*)."""

    code = "unsupported_algorithm"


class InvalidTokenType(VerificationError):
    """The JOSE ``typ`` header is not the exact value expected."""

    code = "invalid_typ"


class InvalidSignature(VerificationError):
    """A signature does not verify under the key the verifier chose."""

    code = "invalid_signature"


class UnknownKey(VerificationError):
    """No key is known for the signer (issuer key resolution failed)."""

    code = "unknown_key"


class InvalidDisclosure(VerificationError):
    """A disclosure is malformed, unreferenced, repeated or conflicts with a claim."""

    code = "invalid_disclosure"


class InvalidClaim(VerificationError):
    """A required claim is missing or has the wrong type or value."""

    code = "invalid_claim"


class ClaimMetadataViolation(InvalidClaim):
    """A claim breaks its type metadata: ``sd: always`` in plain view, ``sd: never`` disclosed."""

    code = "claim_metadata_violation"


class IntegrityMismatch(VerificationError):
    """A document does not match its ``#integrity`` value (e.g. ``vct#integrity``)."""

    code = "integrity_mismatch"


class Expired(VerificationError):
    """The token or request is past its ``exp`` (beyond the leeway)."""

    code = "expired"


class NotYetValid(VerificationError):
    """The token's ``nbf`` or ``iat`` lies in the future (beyond the leeway)."""

    code = "not_yet_valid"


class KeyBindingError(VerificationError):
    """The Key Binding JWT is missing, malformed or does not match."""

    code = "key_binding"


class KeyBindingMissing(KeyBindingError):
    """Policy requires key binding and the presentation has none."""

    code = "key_binding_missing"


class NonceMismatch(KeyBindingError):
    """The KB-JWT ``nonce`` is not the one the verifier issued."""

    code = "nonce_mismatch"


class AudienceMismatch(KeyBindingError):
    """The KB-JWT ``aud`` is not the verifier."""

    code = "audience_mismatch"


class ContextMismatch(KeyBindingError):
    """The KB-JWT was signed for another kind of exchange (its ``onceonly_context``).

    An identity-binding presentation made to obtain a credential is not a
    consented answer to a presentation request, and vice versa.
    """

    code = "context_mismatch"


class SdHashMismatch(KeyBindingError):
    """The KB-JWT ``sd_hash`` does not cover the presented SD-JWT."""

    code = "sd_hash_mismatch"


class Revoked(VerificationError):
    """The credential's status list entry says revoked (or suspended)."""

    code = "revoked"


class StatusUnavailable(VerificationError):
    """The status list could not be fetched or verified."""

    code = "status_unavailable"


class Suspended(Revoked):
    """The credential's status list entry says suspended (temporarily invalid)."""

    code = "suspended"


class UnrecognisedStatus(VerificationError):
    """The status list entry holds a value the verifier's policy does not accept."""

    code = "unrecognised_status"


class StatusIndexOutOfRange(StatusUnavailable):
    """The credential's status index lies outside the status list it references."""

    code = "status_index_out_of_range"


# --- issuing -------------------------------------------------------------------


class IssuanceError(OnceOnlyError):
    """An issuer refused or failed to build a credential."""

    code = "issuance_failed"


class ForbiddenDisclosableClaim(IssuanceError):
    """An always-visible claim (iss, nbf, exp, cnf, vct, status) was made disclosable."""

    code = "forbidden_disclosable_claim"


class ClaimMetadataNotMet(IssuanceError):
    """The credential would break its type metadata (``sd``, ``mandatory``): not issued."""

    code = "claim_metadata_not_met"


class UnknownStatusEntry(IssuanceError):
    """The issuer's status registry has no entry for this status list URI and index."""

    code = "unknown_status_entry"


class StatusChangeForbidden(IssuanceError):
    """A status change is not allowed (a revoked entry never becomes valid again)."""

    code = "status_change_forbidden"


class ReservedClaimName(IssuanceError):
    """A claim set uses ``_sd``/``...``, or a claim the issuer sets from its arguments."""

    code = "reserved_claim_name"


class UnsupportedCredentialType(IssuanceError):
    """The agency does not issue this ``vct`` (not configured, or not allowed by the trust list)."""

    code = "unsupported_credential_type"


# --- trust and policy ----------------------------------------------------------


class TrustError(OnceOnlyError):
    """Trust list problems: bad signature, expired, rolled back, malformed."""

    code = "trust_error"


class UntrustedIssuer(TrustError):
    """The issuer is not on the trust list, or may not issue this ``vct``."""

    code = "untrusted_issuer"


class UntrustedParty(TrustError):
    """A Matrix user is not the agency it claims to be."""

    code = "untrusted_party"


class NotAuthorizedToRequest(TrustError):
    """A verifier asked for claims or a purpose its registration does not allow."""

    code = "not_authorized_to_request"


class TrustListRollback(TrustError):
    """A trust list's sequence number is lower than the cached one."""

    code = "trust_list_rollback"


class TrustListConflict(TrustError):
    """A trust list has the cached sequence number but different content."""

    code = "trust_list_conflict"


class DidResolutionError(TrustError):
    """A DID could not be resolved (unsupported method, fetch failed, bad document)."""

    code = "did_resolution_failed"


class DeviceKeyMismatch(TrustError):
    """A device's identity keys are not the ones the citizen confirmed (or it has none)."""

    code = "device_key_mismatch"


# --- exchanges -----------------------------------------------------------------


class ExchangeError(OnceOnlyError):
    """A protocol exchange cannot proceed."""

    code = "exchange_error"


class ReplayDetected(ExchangeError):
    """A nonce or response was used before (also: a second answer to a presentation request)."""

    code = "replay"


class UnknownExchange(ExchangeError):
    """An event refers to an exchange this party does not know."""

    code = "unknown_exchange"


class UnexpectedEvent(ExchangeError):
    """An event is not allowed in the exchange's current state."""

    code = "unexpected_event"


class RequestExpired(ExchangeError):
    """A presentation or credential request is past its expiry."""

    code = "request_expired"


class QueryNotSatisfied(ExchangeError):
    """The presented claims do not satisfy the query (a wallet refuses with ``consent_denied``)."""

    code = "query_not_satisfied"


class ConsentDenied(ExchangeError):
    """The wallet does not present: the citizen declined, or her credentials cannot answer."""

    code = "consent_denied"


class UnknownSubject(ExchangeError):
    """The issuer's register has no record for the requester."""

    code = "unknown_subject"


class IdentityNotBound(ExchangeError):
    """The requester's Matrix account is not bound to a register identity."""

    code = "identity_not_bound"


class AmbiguousSubject(ExchangeError):
    """Several register records match the presented identity; the issuer will not guess."""

    code = "ambiguous_subject"


class IdentityBindingConflict(ExchangeError):
    """The Matrix account is already bound to another register identity."""

    code = "identity_binding_conflict"


class ExchangeTimeout(ExchangeError):
    """An exchange did not reach the awaited state in the time allowed."""

    code = "exchange_timeout"


class RemoteProtocolError(ExchangeError):
    """The other party reported an error (its code is in ``detail['remote_code']``)."""

    code = "remote_protocol_error"


# --- infrastructure ------------------------------------------------------------


class TransportError(OnceOnlyError):
    """Matrix transport failure (homeserver unreachable, upload failed, ...)."""

    code = "transport_error"


class UndecryptableEvent(TransportError):
    """An encrypted event's room key never arrived, or the event failed to decrypt."""

    code = "undecryptable"


class RoomNotOwned(TransportError):
    """A public room (status or trust list) was not created, or its state not set, by its owner.

    The account a public room belongs to (named by the room's ``#onceonly-<kind>.<localpart>``
    alias, or the agency's account on the trust list) must have created the room and
    sent the state read from it; anything else is a squatted or hijacked room.
    """

    code = "room_not_owned"


class InternalError(OnceOnlyError):
    """This party failed unexpectedly; details stay in its own log, never on the wire."""

    code = "internal_error"


class AlreadyRunning(OnceOnlyError):
    """Another process already runs a party on this data directory (its Matrix device)."""

    code = "already_running"


class HomeserverError(OnceOnlyError):
    """The local homeserver could not be started, stopped or configured."""

    code = "homeserver_error"


class HomeserverAlreadyRunning(HomeserverError):
    """A homeserver is already running from this data dir."""

    code = "homeserver_already_running"


class HomeserverPortInUse(HomeserverError):
    """Another program listens on the homeserver's port."""

    code = "homeserver_port_in_use"


class HomeserverStartFailed(HomeserverError):
    """The homeserver process exited or did not answer in time while starting."""

    code = "homeserver_start_failed"


class AccountError(OnceOnlyError):
    """A Matrix account could not be registered, logged in or loaded."""

    code = "account_error"


class AccountExists(AccountError):
    """Registration failed because the user id is already taken."""

    code = "account_exists"


class LoginFailed(AccountError):
    """The homeserver refused the login (wrong user or password)."""

    code = "login_failed"


class StoreError(OnceOnlyError):
    """A persistent store is unreadable, locked, or at an unknown schema version."""

    code = "store_error"


class WalletLocked(StoreError):
    """The wallet passphrase is wrong or missing."""

    code = "wallet_locked"


class StoreCorrupt(StoreError):
    """A stored record fails authentication or does not decode (tampered or damaged)."""

    code = "store_corrupt"


class BackupInvalid(StoreError):
    """A wallet backup file is malformed, truncated or was altered."""

    code = "backup_invalid"


class ConfigError(OnceOnlyError):
    """A configuration file or option is missing or invalid."""

    code = "config_error"


class WeakPassphrase(ConfigError):
    """A new wallet or backup passphrase is below the strength floor (the message says which)."""

    code = "weak_passphrase"


# --- audit log ------------------------------------------------------------------
# The codes of the offline auditor's findings. An auditor reports every finding at
# once (it does not stop at the first), so these are mostly used as codes in its
# report; they are also raised when a caller wants a failing log to be an error.


class AuditLogError(OnceOnlyError):
    """An exported audit log does not verify (see the finding codes below)."""

    code = "audit_log_error"


class AuditGap(AuditLogError):
    """Entries are missing from the chain (a sequence number gap)."""

    code = "audit_gap"


class AuditAltered(AuditLogError):
    """An entry's content does not match its hash or its successor's ``prev_hash``."""

    code = "audit_altered"


class AuditReordered(AuditLogError):
    """Entries appear out of chain order."""

    code = "audit_reordered"


class AuditDuplicate(AuditLogError):
    """Two entries claim the same sequence number."""

    code = "audit_duplicate"


class AuditBadHeadSignature(AuditLogError):
    """A signed head's JWS does not verify under the verifier's key."""

    code = "audit_bad_head_signature"


class AuditHeadMismatch(AuditLogError):
    """A correctly signed head names a hash or log the exported chain does not have."""

    code = "audit_head_mismatch"


class AuditTruncated(AuditLogError):
    """A signed head covers entries that are absent from the export."""

    code = "audit_truncated"


class AuditUnsignedTail(AuditLogError):
    """Entries after the last signed head: their truncation cannot be detected."""

    code = "audit_unsigned_tail"


class AuditReverifyMismatch(AuditLogError):
    """Re-verifying a recorded presentation gives a different outcome than recorded."""

    code = "audit_reverify_mismatch"


class AuditExportUnsigned(AuditLogError):
    """The export carries no valid export head: where it ends is not vouched for."""

    code = "audit_export_unsigned"


class AuditExportStale(AuditLogError):
    """The export head was signed before the time the auditor asked for the export."""

    code = "audit_export_stale"


class AuditMissingEvidence(AuditLogError):
    """A verdict recorded as verified lacks the presentation or trust list it rests on."""

    code = "audit_missing_evidence"


class AuditTrustRollback(AuditLogError):
    """A verdict relied on an older trust list than an earlier verdict had used."""

    code = "audit_trust_rollback"


# Add new error classes above this line, in the section of their area.


def _all_subclasses(cls: type[OnceOnlyError]) -> list[type[OnceOnlyError]]:
    out: list[type[OnceOnlyError]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


def error_class_for_code(code: str) -> type[OnceOnlyError]:
    """Return the error class registered for ``code``, or :class:`OnceOnlyError`.

    Used to turn a remote party's error event back into a typed exception.
    """
    return all_error_codes().get(code, OnceOnlyError)


def all_error_codes() -> dict[str, type[OnceOnlyError]]:
    """Return every published code and its class (for the spec and uniqueness tests)."""
    classes: list[type[OnceOnlyError]] = [OnceOnlyError, *_all_subclasses(OnceOnlyError)]
    return {cls.code: cls for cls in classes}
