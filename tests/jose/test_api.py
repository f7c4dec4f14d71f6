"""Pin the public API: exported names, their order, and the stable error codes."""

from __future__ import annotations

import importlib
from types import MappingProxyType, ModuleType

import pytest

import tokenward.errors
import tokenward.jose
from tokenward.errors import TokenwardError
from tokenward.jose import ALGORITHMS

EXPORTS = {
    "tokenward.jose": [
        "ALGORITHMS",
        "DEFAULT_MAX_SIZE",
        "HARD_MAX_SIZE",
        "Algorithm",
        "ClaimRules",
        "Key",
        "KeyResolver",
        "KeySet",
        "jws",
        "jwt",
    ],
    "tokenward.jose.jws": [
        "UnverifiedJWS",
        "inspect_unverified",
        "sign",
        "verify",
        "verify_with_header",
    ],
    "tokenward.jose.jwt": [
        "ClaimRules",
        "UnverifiedJWT",
        "decode",
        "decode_with_header",
        "encode",
        "inspect_unverified",
    ],
    "tokenward.errors": [
        "AlgorithmNotAllowedError",
        "BadSignatureError",
        "ClaimError",
        "ConfigurationError",
        "ExpiredTokenError",
        "ImmatureTokenError",
        "InvalidKeyError",
        "InvalidTokenError",
        "InvalidTypeError",
        "KeyMismatchError",
        "KeyNotFoundError",
        "MalformedTokenError",
        "MissingClaimError",
        "TokenwardError",
        "UnsupportedHeaderError",
    ],
}

# Error class -> (parent class, stable code). Codes are a wire contract: the HTTP layer
# maps them to statuses and clients may log them, so a change here is a breaking change.
ERRORS = {
    "TokenwardError": ("Exception", "error"),
    "InvalidTokenError": ("TokenwardError", "invalid_token"),
    "MalformedTokenError": ("InvalidTokenError", "malformed_token"),
    "UnsupportedHeaderError": ("InvalidTokenError", "unsupported_header"),
    "AlgorithmNotAllowedError": ("InvalidTokenError", "algorithm_not_allowed"),
    "KeyMismatchError": ("InvalidTokenError", "key_mismatch"),
    "KeyNotFoundError": ("InvalidTokenError", "key_not_found"),
    "BadSignatureError": ("InvalidTokenError", "bad_signature"),
    "InvalidTypeError": ("InvalidTokenError", "invalid_typ"),
    "ClaimError": ("InvalidTokenError", "invalid_claim"),
    "ExpiredTokenError": ("ClaimError", "token_expired"),
    "ImmatureTokenError": ("ClaimError", "token_not_yet_valid"),
    "MissingClaimError": ("ClaimError", "missing_claim"),
    "InvalidKeyError": ("TokenwardError", "invalid_key"),
    "ConfigurationError": ("TokenwardError", "configuration_error"),
}


def _isort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions and modules.
    if name.isupper():
        return 0, name
    if name[:1].isupper():
        return 1, name
    return 2, name


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.parametrize("module_name", sorted(EXPORTS))
def test_all_is_pinned(module_name: str) -> None:
    assert list(_module(module_name).__all__) == EXPORTS[module_name]


@pytest.mark.parametrize("module_name", sorted(EXPORTS))
def test_all_is_sorted_without_duplicates(module_name: str) -> None:
    names = list(_module(module_name).__all__)
    assert names == sorted(names, key=_isort_key)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("module_name", sorted(EXPORTS))
def test_every_exported_name_resolves(module_name: str) -> None:
    module = _module(module_name)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    namespace: dict[str, object] = {}
    exec(f"from {module_name} import *", namespace)  # noqa: S102
    assert set(namespace) - {"__builtins__"} == set(module.__all__)


def test_reexports_are_the_same_objects() -> None:
    assert tokenward.jose.jwt.ClaimRules is tokenward.jose.ClaimRules
    assert tokenward.jose.jws is importlib.import_module("tokenward.jose.jws")
    assert tokenward.jose.jwt is importlib.import_module("tokenward.jose.jwt")


def test_error_tree_and_codes_are_pinned() -> None:
    assert set(ERRORS) == set(tokenward.errors.__all__)
    tree = {}
    for name in tokenward.errors.__all__:
        cls = getattr(tokenward.errors, name)
        assert issubclass(cls, TokenwardError)
        (parent,) = cls.__bases__
        tree[name] = (parent.__name__, cls.code)
    assert tree == ERRORS


def test_error_codes_are_distinct() -> None:
    codes = [code for _, code in ERRORS.values()]
    assert len(set(codes)) == len(codes)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_code_is_on_the_class_and_the_instance(name: str) -> None:
    cls = getattr(tokenward.errors, name)
    kwargs = (
        {"claim": "exp", "reason": "expired"}
        if issubclass(cls, tokenward.errors.ClaimError)
        else {}
    )
    error = cls("details for the log", **kwargs)
    assert error.code == ERRORS[name][1]
    assert error.message == "details for the log"
    assert str(error) == "details for the log"
    assert repr(error) == f"{name}(code={ERRORS[name][1]!r}, message='details for the log')"


def test_claim_errors_carry_claim_and_reason() -> None:
    error = tokenward.errors.ExpiredTokenError("expired", claim="exp", reason="expired")
    assert (error.claim, error.reason) == ("exp", "expired")
    with pytest.raises(TypeError):
        tokenward.errors.ClaimError("no claim given")  # type: ignore[call-arg]


def test_algorithm_registry_is_pinned_and_read_only() -> None:
    assert sorted(ALGORITHMS) == [
        "ES256",
        "ES256K",
        "ES384",
        "ES512",
        "Ed25519",
        "Ed448",
        "EdDSA",
        "HS256",
        "HS384",
        "HS512",
        "PS256",
        "PS384",
        "PS512",
        "RS256",
        "RS384",
        "RS512",
    ]
    assert "none" not in ALGORITHMS
    assert isinstance(ALGORITHMS, MappingProxyType)
    with pytest.raises(TypeError):
        ALGORITHMS["none"] = ALGORITHMS["HS256"]  # type: ignore[index]
    assert all(name == alg.name for name, alg in ALGORITHMS.items())
