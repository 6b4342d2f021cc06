"""The verifier party of onceonly."""
