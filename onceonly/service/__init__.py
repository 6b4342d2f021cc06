"""The party runtime shared by the issuer, wallet and verifier services.

* :class:`ProtocolService` - transport + wire envelope + per-exchange state machines +
  error answers, calling a party's :data:`Handler` per content type, and telling an
  optional :data:`RefusalHook` about every inbound event it refused (:class:`Refused`).
* :class:`PartyService` - the start/stop skeleton the issuer, wallet and verifier
  services share (resources, runtime, background loops).
* :class:`ExchangeStore` - the durable exchange states (SQLite in the data directory).
* :class:`Transport` - the slice of the Matrix transport the runtime needs.
"""

from onceonly.service.exchange_store import ExchangeRecord, ExchangeStore
from onceonly.service.inbound import Handler, Received
from onceonly.service.lifecycle import PartyService
from onceonly.service.refused import RefusalHook, Refused
from onceonly.service.runtime import EXCHANGE_DB, ProtocolService
from onceonly.service.transport import SentEvent, Transport, TransportFactory

__all__ = [
    "EXCHANGE_DB",
    "ExchangeRecord",
    "ExchangeStore",
    "Handler",
    "PartyService",
    "ProtocolService",
    "Received",
    "RefusalHook",
    "Refused",
    "SentEvent",
    "Transport",
    "TransportFactory",
]
