"""The issuer party of onceonly."""
