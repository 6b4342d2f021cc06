"""The issuer's persistent registry of status lists (SQLite or PostgreSQL).

Each credential the issuer signs gets one entry: a status list URI and an
index in that list, recorded with the credential's ``vct`` and issuance time
(never claim values). The issuer later sets the entry to revoked, suspended or
valid again, and publishes the current list as a signed Status List Token.

Design choices:

- **Indices are not sequential.** Each list has a secret random key; the n-th
  allocation in a list gets ``IndexPermutation(key, size).index_at(n)``. The
  draft recommends this so that an index reveals neither issuance order nor
  how many credentials were issued.
- **Allocation is serialized in the database.** One row
  (``status_registry_meta``) names the list currently being filled; every
  allocation locks it (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN
  IMMEDIATE`` on SQLite), bumps that list's counter and inserts the entry in the
  same transaction. Several issuer processes sharing one database therefore
  never hand out the same index; the ``(list_id, idx)`` primary key is the
  backstop.
- **Full lists roll over.** When the active list is full, the same transaction
  creates the next list (a new URI) and makes it active.
- **Revocation is final.** An ``INVALID`` entry never changes again; a
  ``SUSPENDED`` one may return to ``VALID``.

Open with :meth:`StatusRegistry.open`: a ``postgresql://`` DSN selects
PostgreSQL (psycopg 3), anything else is a SQLite file path.
"""

from issuer.status_registry.registry import (
    DEFAULT_BITS,
    DEFAULT_LIST_SIZE,
    DEFAULT_TOKEN_TTL_SECONDS,
    DEFAULT_TOKEN_VALIDITY_SECONDS,
    StatusEntry,
    StatusRegistry,
)

__all__ = [
    "DEFAULT_BITS",
    "DEFAULT_LIST_SIZE",
    "DEFAULT_TOKEN_TTL_SECONDS",
    "DEFAULT_TOKEN_VALIDITY_SECONDS",
    "StatusEntry",
    "StatusRegistry",
]
