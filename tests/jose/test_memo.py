"""The per-key header memos: faster, and never a way around a check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenward.errors import (
    AlgorithmNotAllowedError,
    BadSignatureError,
    ClaimError,
    ConfigurationError,
    InvalidTypeError,
    TokenwardError,
)
from tokenward.jose import Key, KeySet, jws, jwt

NOW = 1_800_000_000


def test_cached_header_does_not_excuse_a_bad_signature() -> None:
    key = Key.generate("HS256", kid="k")
    good = jwt.encode({"exp": NOW + 60}, key)
    assert jwt.decode(good, key, algorithms=["HS256"], now=NOW) == {"exp": NOW + 60}
    forged = jwt.encode({"exp": NOW + 60, "admin": True}, Key.generate("HS256", kid="k"))
    assert forged.split(".")[0] == good.split(".")[0]  # same header, now memoised
    with pytest.raises(BadSignatureError):
        jwt.decode(forged, key, algorithms=["HS256"], now=NOW)


def test_returned_headers_are_copies() -> None:
    key = Key.generate("ES256", kid="k")
    token = jwt.encode({"exp": NOW + 60}, key, typ="at+jwt")
    header, _ = jwt.decode_with_header(
        token, key, algorithms=["ES256"], rules=jwt.ClaimRules.create(typ="at+jwt"), now=NOW
    )
    header["typ"] = "JWT"
    header["alg"] = "none"
    again, _ = jwt.decode_with_header(
        token, key, algorithms=["ES256"], rules=jwt.ClaimRules.create(typ="at+jwt"), now=NOW
    )
    assert again == {"alg": "ES256", "kid": "k", "typ": "at+jwt"}
    verified, _ = jws.verify_with_header(token, key, algorithms=["ES256"])
    verified.clear()
    assert jws.verify_with_header(token, key, algorithms=["ES256"])[0]["alg"] == "ES256"


def test_typ_is_checked_even_for_a_memoised_header() -> None:
    key = Key.generate("EdDSA", kid="k")
    token = jwt.encode({"exp": NOW + 60}, key, typ="rt+jwt")
    jwt.decode(token, key, algorithms=["EdDSA"], typ="rt+jwt", now=NOW)
    with pytest.raises(InvalidTypeError):
        jwt.decode(token, key, algorithms=["EdDSA"], typ="at+jwt", now=NOW)


@pytest.mark.parametrize("holder", ["key", "keyset"])
def test_a_memoised_header_is_still_held_to_each_call_s_allow_list(holder: str) -> None:
    # The memo remembers the alg and the closure a header chose; the allow-list is a
    # per-call argument and is checked on every call, remembered header or not.
    key = Key.generate("HS256", kid="k")
    verifier: Key | KeySet = key if holder == "key" else KeySet([key])
    token = jwt.encode({"exp": NOW + 60}, key)
    jwt.decode(token, verifier, algorithms=["HS256"], now=NOW)
    assert len(verifier._headers) == 1
    with pytest.raises(AlgorithmNotAllowedError):
        jwt.decode(token, verifier, algorithms=["HS384"], now=NOW)
    with pytest.raises(AlgorithmNotAllowedError):
        jws.verify(token, verifier, algorithms=["ES256", "HS512"])


def test_a_memoised_header_selects_the_key_it_verified_with() -> None:
    # Two keys in a set: each header segment (each kid) remembers its own key.
    first, second = Key.generate("HS256", kid="a"), Key.generate("HS256", kid="b")
    keys = KeySet([first, second])
    for key in (first, second, first, second):
        token = jwt.encode({"exp": NOW + 60}, key)
        assert jwt.decode(token, keys, algorithms=["HS256"], now=NOW) == {"exp": NOW + 60}
    impostor = jwt.encode({"exp": NOW + 60}, Key.generate("HS256", kid="b"))
    with pytest.raises(BadSignatureError):
        jwt.decode(impostor, keys, algorithms=["HS256"], now=NOW)


@pytest.mark.parametrize("holder", ["key", "keyset"])
def test_memo_is_bounded(holder: str) -> None:
    key = Key.generate("HS256", kid="k")
    verifier: Key | KeySet = key if holder == "key" else KeySet([key])
    for i in range(40):
        token = jwt.encode({"exp": NOW + 60}, key, typ=f"type-{i}")
        jwt.decode(token, verifier, algorithms=["HS256"], now=NOW)
    assert len(verifier._headers) <= 8


def test_signing_headers_follow_arguments() -> None:
    key = Key.generate("ES256", kid="k")
    headers = []
    for typ in ("JWT", "at+jwt", None, "JWT"):
        headers.append(jwt.inspect_unverified(jwt.encode({}, key, typ=typ)).header)
    with_extra = jwt.encode({}, key, typ="at+jwt", headers={"cty": "x"})
    assert headers == [
        {"alg": "ES256", "kid": "k", "typ": "JWT"},
        {"alg": "ES256", "kid": "k", "typ": "at+jwt"},
        {"alg": "ES256", "kid": "k"},
        {"alg": "ES256", "kid": "k", "typ": "JWT"},
    ]
    assert jwt.inspect_unverified(with_extra).header == {
        "alg": "ES256",
        "kid": "k",
        "typ": "at+jwt",
        "cty": "x",
    }
    assert len(key._header_segments) <= 8


def test_decode_arguments_are_validated_on_every_spelling() -> None:
    key = Key.generate("HS256", kid="k")
    token = jwt.encode({"exp": NOW + 60, "aud": "api", "iss": "me"}, key)
    for _ in range(2):  # the second round is answered from the key's memo
        assert jwt.decode(
            token, key, algorithms=["HS256"], audience="api", issuer="me", now=NOW
        ) == {"exp": NOW + 60, "aud": "api", "iss": "me"}
        with pytest.raises(ClaimError):
            jwt.decode(token, key, algorithms=["HS256"], audience="other", issuer="me", now=NOW)
        with pytest.raises(ConfigurationError):
            jwt.decode(token, key, algorithms=[], audience="api", issuer="me", now=NOW)
        with pytest.raises(ConfigurationError):
            jwt.decode(token, key, algorithms="HS256", audience="api", issuer="me", now=NOW)
    # Unhashable arguments work too, without a memo entry.
    assert jwt.decode(token, key, algorithms={"HS256"}, audience={"api"}, issuer="me", now=NOW)
    assert len(key._decode_memo) <= 8


# -- the one-pass path for remembered headers --------------------------------------------

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_ODD = "+/=.! \n\x00é~"


def _outcome(token: str | bytes, keys: Key | KeySet) -> object:
    try:
        return jwt.decode(token, keys, algorithms=["HS256", "ES256"], audience="api", now=NOW)
    except TokenwardError as exc:
        return (type(exc), exc.code, str(exc))


@pytest.mark.parametrize("alg", ["HS256", "ES256"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_remembered_header_changes_no_answer(alg: str, data: st.DataObject) -> None:
    # The same token, mutated in its payload or signature, must get the same answer from
    # a key set that remembers the header (the one-pass path) as from a fresh one.
    key = Key.generate(alg, kid="k")
    good = jwt.encode({"aud": "api", "exp": NOW + 60, "sub": "ada"}, key)
    warm = KeySet([key])
    assert jwt.decode(good, warm, algorithms=[alg], audience="api", now=NOW)["sub"] == "ada"
    head, payload, signature = good.split(".")
    segment = data.draw(st.sampled_from(["payload", "signature"]))
    text = payload if segment == "payload" else signature
    edit = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
    at = data.draw(st.integers(0, len(text)))
    char = data.draw(st.sampled_from(_ALPHABET + _ODD))
    if edit == "replace" and at < len(text):
        text = text[:at] + char + text[at + 1 :]
    elif edit == "insert":
        text = text[:at] + char + text[at:]
    elif edit == "delete" and at < len(text):
        text = text[:at] + text[at + 1 :]
    else:
        text = text[:at]
    mutated = ".".join([head, text, signature] if segment == "payload" else [head, payload, text])
    for token in (mutated, mutated.encode("utf-8")):
        assert _outcome(token, warm) == _outcome(token, KeySet([key]))


@pytest.mark.parametrize("alg", ["HS256", "ES256"])
@pytest.mark.parametrize("segment", [1, 2])
def test_a_remembered_header_does_not_excuse_non_canonical_base64(alg: str, segment: int) -> None:
    # A last character with non-zero unused bits decodes to the same octets; the strict
    # codec refuses it (one signature, one token string), remembered header or not.
    key = Key.generate(alg, kid="k")
    good = next(
        token
        for n in range(4)
        if len(
            (token := jwt.encode({"aud": "api", "exp": NOW + 60, "x": "a" * n}, key)).split(".")[
                segment
            ]
        )
        % 4
        in (2, 3)
    )
    warm = KeySet([key])
    jwt.decode(good, warm, algorithms=[alg], audience="api", now=NOW)
    parts = good.split(".")
    text = parts[segment]
    assert len(text) % 4 in (2, 3)  # a final character with unused bits
    last = _ALPHABET.index(text[-1])
    parts[segment] = text[:-1] + _ALPHABET[last | 1]  # same data bits, a low bit set
    forged = ".".join(parts)
    assert _outcome(forged, warm) == _outcome(forged, KeySet([key]))
    assert isinstance(_outcome(forged, warm), tuple)  # refused
