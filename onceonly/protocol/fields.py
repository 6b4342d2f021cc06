"""Shared building blocks of every protocol event content.

Bounded string types, bilingual text, the Matrix encrypted-attachment object
and the two base classes every content model derives from. Everything here is
a frozen pydantic model or an ``Annotated`` type: validation only, no I/O.

Bounds are deliberately tight. A content is at most 64 KiB serialized, but each
field also has its own limit so that one oversized field cannot crowd out the
rest or make a log line, a database row or a rendered notification explode.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

NAMESPACE: Final = "eu.onceonly.v1."
"""Prefix of every event type. The ``v1`` segment is the protocol major version."""

PROTOCOL_REVISION: Final = 1
"""Value of the ``v`` field every content carries (revision within the namespace)."""

MAX_CONTENT_BYTES: Final = 64 * 1024
"""Hard bound on one serialized content (compact JSON, UTF-8)."""

MAX_CONTENT_DEPTH: Final = 12
"""Hard bound on JSON nesting of one content (the deepest valid content needs 7)."""

INLINE_CONTENT_LIMIT: Final = 40 * 1024
"""Senders move a credential or ``vp_token`` into an attachment above this content size.

Megolm encryption grows a content by about a third (base64) plus its envelope, and
the whole encrypted event must stay under Matrix's 64 KiB event limit.
"""

MAX_INLINE_TOKEN_CHARS: Final = 48 * 1024
"""Largest SD-JWT (or presentation) carried inline; larger ones go in an attachment."""

HTML_FORMAT: Final = "org.matrix.custom.html"

# --- bounded strings -----------------------------------------------------------

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
"""A name or label shown to people."""

LongText = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
"""A sentence or short paragraph shown to people."""

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
"""A machine code: snake_case, at most 64 characters (error codes, purpose codes)."""

ExchangeIdStr = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,128}$")]
"""Correlation id: 16-128 URL-safe characters; senders use >= 128 random bits."""

Nonce = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{22,128}$")]
"""Single-use challenge: base64url of >= 16 random bytes (22 characters)."""

UserIdStr = Annotated[str, StringConstraints(pattern=r"^@[^:\s]{1,200}:[^\s]{1,230}$")]
"""A Matrix user id, ``@localpart:server``."""

RoomIdStr = Annotated[str, StringConstraints(pattern=r"^![^\s]{1,254}$")]
"""A Matrix room id."""

EventIdStr = Annotated[str, StringConstraints(pattern=r"^\$[^\s]{1,254}$")]
"""A Matrix event id."""

DeviceIdStr = Annotated[str, StringConstraints(pattern=r"^[^\s]{1,128}$")]
"""A Matrix device id."""

PartyId = Annotated[str, StringConstraints(pattern=r"^[^\s]{1,255}$")]
"""An agency identifier as registered in the trust list (used as JWT ``aud``/``iss``)."""

VctStr = Annotated[str, StringConstraints(pattern=r"^[^\s]{1,512}$")]
"""An SD-JWT VC type (``vct``), normally an https URI."""

CompactJwsStr = Annotated[
    str,
    StringConstraints(
        pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$", max_length=16 * 1024
    ),
]
"""A compact JWS (three base64url parts) of at most 16 KiB."""

SdJwtStr = Annotated[
    str,
    StringConstraints(
        pattern=r"^[A-Za-z0-9_.~-]+$", min_length=1, max_length=MAX_INLINE_TOKEN_CHARS
    ),
]
"""An SD-JWT in compact form (JWS, ``~``-separated disclosures, optional KB-JWT)."""

UnpaddedB64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]+$", max_length=128)]
"""Unpadded standard base64, as the Matrix spec uses for attachment ivs and hashes."""

Timestamp = Annotated[int, Field(ge=0, le=253402300799)]
"""Seconds since the Unix epoch (up to year 9999)."""


class Frozen(BaseModel):
    """Base of every protocol model: immutable, closed, no coercion surprises."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class LocalizedText(Frozen):
    """The same text in German and English; both are required.

    Attributes:
        de: German text.
        en: English text.
    """

    de: LongText
    en: LongText


# --- Matrix encrypted attachments -----------------------------------------------


class AttachmentKey(Frozen):
    """The AES-256-CTR key of an encrypted attachment, as a JWK (Matrix spec format)."""

    kty: Literal["oct"]
    key_ops: tuple[Literal["encrypt", "decrypt"], ...] = Field(min_length=2, max_length=2)
    alg: Literal["A256CTR"]
    k: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]
    ext: Literal[True]

    @field_validator("key_ops")
    @classmethod
    def _both_ops(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if set(value) != {"encrypt", "decrypt"}:
            raise ValueError("key_ops must contain 'encrypt' and 'decrypt'")
        return value


class AttachmentHashes(Frozen):
    """Hashes of the ciphertext; SHA-256 is the one every client supports."""

    sha256: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{43}$")]


class EncryptedFile(Frozen):
    """An encrypted attachment reference (Matrix client-server spec, ``EncryptedFile``).

    The ciphertext lives in the media repository at ``url``; only holders of this
    content (i.e. of the room's Megolm session) can decrypt it.
    """

    url: Annotated[str, StringConstraints(pattern=r"^mxc://[^/\s]{1,255}/[A-Za-z0-9_-]{1,255}$")]
    key: AttachmentKey
    iv: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{22}$")]
    hashes: AttachmentHashes
    v: Literal["v2"]


class Attachment(Frozen):
    """A payload carried as an encrypted file instead of inline.

    Attributes:
        file: Where and how to fetch and decrypt it.
        size: Plaintext size in bytes (receivers refuse to download more than
            they accept for this field).
        mimetype: Media type of the plaintext.
    """

    file: EncryptedFile
    size: int = Field(ge=1, le=4 * 1024 * 1024)
    mimetype: Literal["application/dc+sd-jwt", "application/json"]


# --- base contents --------------------------------------------------------------


def _schema_rules(schema: dict[str, Any], cls: type) -> None:
    # Put the cross-field rules that JSON Schema can express into the generated
    # schemas, so that other implementations validating with them get the same
    # answer as the models for these cases.
    required = schema.setdefault("required", [])
    if "v" not in required:
        required.insert(0, "v")
    if "formatted_body" in schema.get("properties", {}):
        schema["dependentRequired"] = {"format": ["formatted_body"], "formatted_body": ["format"]}
        # Room messages may carry Matrix's own members (m.mentions, a reply's
        # m.relates_to); receivers strip them before validation (spec 3.2).
        schema["patternProperties"] = {r"^m\.": {}}
    alternatives: tuple[str, ...] = getattr(cls, "ONE_OF_REQUIRED", ())
    if alternatives:
        schema["oneOf"] = [{"required": [name]} for name in alternatives]


class Content(Frozen):
    """Fields every event content has.

    Attributes:
        v: Protocol revision within the namespace (currently 1).
    """

    # ``v`` has a default so that builders need not repeat it, yet on the wire it is
    # required: the parser checks its presence and the schema lists it as required.
    model_config = ConfigDict(json_schema_extra=_schema_rules)

    EVENT_TYPE: ClassVar[str]
    """The event type without the namespace prefix (set by each concrete class)."""

    v: Literal[1] = PROTOCOL_REVISION

    @field_validator("v", mode="before")
    @classmethod
    def _exact_int(cls, value: Any) -> Any:
        # Literal[1] alone accepts True and 1.0, which are not the revision number.
        if type(value) is not int:
            raise ValueError("v must be an integer")
        return value


class MessageContent(Content):
    """A room message a person may read: it carries a bilingual ``body``.

    Attributes:
        body: Plain-text German and English description, shown by any Matrix client.
        format: ``org.matrix.custom.html`` when ``formatted_body`` is present.
        formatted_body: The same text as restricted HTML.
    """

    body: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    format: Literal["org.matrix.custom.html"] | None = None
    formatted_body: Annotated[str, StringConstraints(min_length=1, max_length=8000)] | None = None

    @model_validator(mode="after")
    def _format_pairs_with_formatted_body(self) -> Self:
        if (self.format is None) != (self.formatted_body is None):
            raise ValueError("format and formatted_body go together")
        return self


class ExchangeContent(MessageContent):
    """A message that belongs to one exchange.

    Attributes:
        exchange_id: Chosen by the party that opens the exchange; every later
            event of the exchange repeats it.
    """

    exchange_id: ExchangeIdStr
