"""Builders of the SD-JWT VC test vectors (run ``specs/vectors/generate_sdjwt.py``)."""
