"""onceonly: verifiable attestations between agencies and citizens over encrypted Matrix.

The package is the protocol library every party shares. Its pure core
(:mod:`onceonly.sdjwt`, :mod:`onceonly.status_list`, :mod:`onceonly.query`,
:mod:`onceonly.trust`, :mod:`onceonly.protocol`) performs no I/O: keys, the clock
and randomness are arguments. Matrix lives in :mod:`onceonly.matrix` only.
"""

__version__ = "0.1.0"
