"""Everything Matrix: the only package that talks to homeservers (and imports nio).

The local homeserver runner (:mod:`.homeserver`) and the account helpers
(:mod:`.accounts`) speak plain HTTP to the homeserver and run Synapse as a
separate process; the E2EE client modules use matrix-nio. Importing this
package imports neither nio nor Synapse.
"""

from onceonly.matrix.accounts import Credentials
from onceonly.matrix.homeserver import Homeserver, HomeserverStatus

__all__ = ["Credentials", "Homeserver", "HomeserverStatus"]
