"""Property tests: round trips, single-character mutations, and garbage input.

Keys are generated once at import; Hypothesis only varies claims, payloads and tokens.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tokenward.errors import (
    InvalidKeyError,
    InvalidTokenError,
    MalformedTokenError,
    TokenwardError,
)
from tokenward.jose import HARD_MAX_SIZE, Key, KeySet, jws, jwt
from tokenward.jose._b64 import b64u_decode, decode_strict

NOW = 1_700_000_000
ALGS = ("HS256", "HS512", "RS256", "PS256", "ES256", "ES512", "ES256K", "EdDSA", "Ed448")
SIGNING = {alg: Key.generate(alg, kid=f"k-{alg}") for alg in ALGS}
VERIFYING = {alg: key if key.kty == "oct" else key.public_key() for alg, key in SIGNING.items()}
HS_SECRET = bytes(range(64))
HS_KEY = Key.from_secret(HS_SECRET, alg="HS256", kid="hs")
ES_SET = KeySet([VERIFYING["ES256"], Key.generate("ES256", kid="other").public_key()])
REGISTERED = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})

# Modest budgets keep the file well under 30 s; CI can raise them with a Hypothesis profile.
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND_TRIP = settings(PROPERTY, max_examples=150)

# -- strategies ------------------------------------------------------------------------

text = st.text(st.characters(codec="utf-8"), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=8,
)
private_claims = st.dictionaries(
    text.filter(lambda name: name not in REGISTERED), json_values, max_size=4
)
numeric_dates = st.integers(min_value=0, max_value=2**40) | st.floats(
    min_value=0, max_value=2.0**40, allow_nan=False
)


@st.composite
def claim_sets(draw: st.DrawFn) -> dict[str, Any]:
    """Private claims plus registered claims that are valid at NOW."""
    claims = draw(private_claims)
    for name in ("iss", "sub", "jti"):
        if draw(st.booleans()):
            claims[name] = draw(text)
    if draw(st.booleans()):
        claims["exp"] = NOW + draw(st.integers(1, 10**9) | st.floats(0.001, 1e9))
    if draw(st.booleans()):
        claims["nbf"] = NOW - draw(st.integers(0, 10**9) | st.floats(0, 1e9))
    if draw(st.booleans()):
        claims["iat"] = NOW - draw(st.integers(0, 10**9) | st.floats(0, 1e9))
    if draw(st.booleans()):
        claims["aud"] = draw(text | st.lists(text, min_size=1, max_size=3))
    return claims


def same(a: object, b: object) -> bool:
    """Equality that also compares types (1 == 1.0 == True in Python, not in JSON)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


# -- round trips -----------------------------------------------------------------------


@ROUND_TRIP
@given(alg=st.sampled_from(ALGS), claims=claim_sets())
def test_jwt_round_trip(alg: str, claims: dict[str, Any]) -> None:
    token = jwt.encode(claims, SIGNING[alg])
    aud = claims.get("aud")
    audience = None if aud is None else aud if isinstance(aud, str) else aud[0]
    decoded = jwt.decode(
        token,
        VERIFYING[alg],
        algorithms=[alg],
        issuer=claims.get("iss"),
        audience=audience,
        now=NOW,
        max_size=HARD_MAX_SIZE,
    )
    assert same(decoded, claims)
    assert same(jwt.inspect_unverified(token).claims, claims)


@ROUND_TRIP
@given(
    alg=st.sampled_from(ALGS),
    payload=st.binary(max_size=300),
    extra=st.dictionaries(text.map(lambda name: "x-" + name), json_values, max_size=3),
)
def test_jws_round_trip(alg: str, payload: bytes, extra: dict[str, Any]) -> None:
    token = jws.sign(payload, SIGNING[alg], headers=extra)
    header, verified = jws.verify_with_header(
        token, VERIFYING[alg], algorithms=[alg], max_size=HARD_MAX_SIZE
    )
    assert verified == payload
    assert same(header, {"alg": alg, "kid": f"k-{alg}", **extra})


# -- any single change to a valid token is rejected ------------------------------------

TOKENS = {
    alg: jwt.encode({"sub": "ada", "exp": NOW + 3600, "n": 1.5}, SIGNING[alg]) for alg in ALGS
}
# Characters that matter to the parser, plus the whole Unicode range (surrogates too).
replacements = st.sampled_from(list(".=+/-_ \t\n\"'{}AQgw09\u00e9\uff21\x00")) | st.characters(
    exclude_categories=()
)


@PROPERTY
@given(alg=st.sampled_from(ALGS), position=st.integers(min_value=0), char=replacements)
def test_any_character_change_is_rejected(alg: str, position: int, char: str) -> None:
    token = TOKENS[alg]
    position %= len(token)
    assume(token[position] != char)
    mutated = token[:position] + char + token[position + 1 :]
    with pytest.raises(InvalidTokenError):
        jwt.decode(mutated, VERIFYING[alg], algorithms=[alg], now=NOW)
    with pytest.raises(InvalidTokenError):
        jws.verify(mutated, VERIFYING[alg], algorithms=[alg])


@PROPERTY
@given(
    alg=st.sampled_from(ALGS),
    position=st.integers(min_value=0),
    byte=st.integers(min_value=0, max_value=255),
)
def test_any_byte_change_is_rejected(alg: str, position: int, byte: int) -> None:
    token = bytearray(TOKENS[alg].encode("ascii"))
    position %= len(token)
    assume(token[position] != byte)
    token[position] = byte
    with pytest.raises(InvalidTokenError):
        jwt.decode(bytes(token), VERIFYING[alg], algorithms=[alg], now=NOW)


@PROPERTY
@given(alg=st.sampled_from(ALGS), data=st.data())
def test_any_deletion_or_insertion_is_rejected(alg: str, data: st.DataObject) -> None:
    token = TOKENS[alg]
    start = data.draw(st.integers(0, len(token) - 1))
    end = data.draw(st.integers(start, min(len(token), start + 4)))
    inserted = data.draw(st.text(st.characters(codec="ascii"), max_size=3))
    mutated = token[:start] + inserted + token[end:]
    assume(mutated != token)
    with pytest.raises(InvalidTokenError):
        jwt.decode(mutated, VERIFYING[alg], algorithms=[alg], now=NOW)


def test_mutation_targets_are_valid_tokens() -> None:
    # The mutation properties only mean something if the unmutated tokens verify.
    for alg, token in TOKENS.items():
        claims = jwt.decode(token, VERIFYING[alg], algorithms=[alg], now=NOW)
        assert claims == {"sub": "ada", "exp": NOW + 3600, "n": 1.5}


# -- garbage in, only TokenwardError out -----------------------------------------------


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _only_tokenward_errors(token: str | bytes) -> None:
    """Run every verifier on ``token``; anything but a TokenwardError propagates."""
    for call in (
        lambda: jws.verify(token, HS_KEY, algorithms=["HS256", "HS512"]),
        lambda: jws.verify(token, ES_SET, algorithms=["ES256", "EdDSA"]),
        lambda: jwt.decode(token, HS_KEY, algorithms=["HS256"], now=NOW),
        lambda: jwt.decode(token, HS_KEY, algorithms=["HS256"], audience="api", now=NOW),
        lambda: jwt.inspect_unverified(token),
        lambda: jws.inspect_unverified(token),
    ):
        with contextlib.suppress(TokenwardError):
            call()


base64url_ish = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ "),
    max_size=200,
)


@PROPERTY
@given(token=st.text(st.characters(exclude_categories=())) | base64url_ish)
def test_random_text_raises_only_tokenward_errors(token: str) -> None:
    _only_tokenward_errors(token)


@PROPERTY
@given(token=st.binary(max_size=300))
def test_random_bytes_raise_only_tokenward_errors(token: bytes) -> None:
    _only_tokenward_errors(token)


header_names = st.sampled_from(
    ["alg", "kid", "typ", "cty", "crit", "b64", "zip", "enc", "jwk", "jku", "x5c", "x5u", "x-y"]
)
weird_values = (
    json_values
    | st.sampled_from(["HS256", "ES256", "none", "JWT", "at+jwt", "hs", "other", "DEF"])
    | st.integers(min_value=2**1023, max_value=2**1100).map(lambda n: n * (1 if n % 2 else -1))
)
claim_names = st.sampled_from([*sorted(REGISTERED), "x"])


@PROPERTY
@given(
    header=st.dictionaries(header_names, weird_values, max_size=5),
    claims=st.dictionaries(claim_names, weird_values, max_size=6),
)
def test_validly_signed_garbage_raises_only_tokenward_errors(
    header: dict[str, Any], claims: dict[str, Any]
) -> None:
    # MACed with the verifier's own secret, so the checks behind the signature run too.
    header = {"alg": "HS256", **header} if "alg" not in header else header
    h64 = _b64u(json.dumps(header).encode())
    p64 = _b64u(json.dumps(claims).encode())
    mac = hmac.digest(HS_SECRET, f"{h64}.{p64}".encode(), "sha256")
    _only_tokenward_errors(f"{h64}.{p64}.{_b64u(mac)}")


jwk_members = st.sampled_from(
    ["kty", "alg", "kid", "use", "key_ops", "crv", "x", "y", "d", "n", "e", "k", "p", "oth"]
)


@PROPERTY
@given(
    base=st.sampled_from([SIGNING[alg].to_jwk(private=True) for alg in ALGS]),
    changes=st.dictionaries(
        jwk_members, weird_values | st.sampled_from(["RSA", "EC", "OKP", "oct", "P-256", "AQAB"])
    ),
)
def test_random_jwk_raises_only_invalid_key_error(
    base: dict[str, Any], changes: dict[str, Any]
) -> None:
    with contextlib.suppress(InvalidKeyError):
        Key.from_jwk({**base, **changes})


_SEGMENT_OCTETS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. \n\x00\xff"


@given(
    st.one_of(
        st.lists(st.sampled_from(list(_SEGMENT_OCTETS)), max_size=14).map(bytes),
        st.binary(max_size=14),
    )
)
def test_strict_one_pass_decoding_agrees_with_the_checked_decoder(segment: bytes) -> None:
    # decode_strict (one pass, for remembered headers) accepts exactly what the checked
    # decoder accepts, and decodes it to the same octets.
    try:
        expected: bytes | None = b64u_decode(segment.decode("latin-1"))
    except MalformedTokenError:
        expected = None
    assert decode_strict(segment) == expected
