"""The error tree: codes are unique, stable, and round-trip through their JSON form."""

import pytest

from onceonly import errors


def test_codes_are_unique_snake_case() -> None:
    classes = [errors.OnceOnlyError, *errors._all_subclasses(errors.OnceOnlyError)]
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes)), "two error classes share a code"
    for code in codes:
        assert code == code.lower() and " " not in code


@pytest.mark.parametrize("cls", errors._all_subclasses(errors.OnceOnlyError))
def test_code_maps_back_to_class(cls: type[errors.OnceOnlyError]) -> None:
    assert errors.error_class_for_code(cls.code) is cls


def test_unknown_code_maps_to_root() -> None:
    assert errors.error_class_for_code("no_such_code") is errors.OnceOnlyError


def test_to_dict_carries_code_message_detail() -> None:
    err = errors.NonceMismatch("nonce differs", detail={"expected": "n1"})
    assert err.to_dict() == {
        "code": "nonce_mismatch",
        "message": "nonce differs",
        "detail": {"expected": "n1"},
    }
    assert isinstance(err, errors.KeyBindingError)
    assert str(err) == "nonce_mismatch: nonce differs"
