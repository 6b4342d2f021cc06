"""The hostile suite runs against the same real Synapse fixtures as the integration tests."""

from tests.integration.conftest import synapse

__all__ = ["synapse"]
