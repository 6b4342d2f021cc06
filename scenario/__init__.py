"""The once-only scenario: every party, on one local homeserver, telling the story."""
