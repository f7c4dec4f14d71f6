"""The sealed successor: HKDF written out, AES-GCM bound to the token, the session and
the generation."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tokenward.jose._b64 import b64u_decode, is_b64u
from tokenward.service import TokenPair
from tokenward.service._seal import hkdf_sha256_32, open_successor, seal_successor
from tokenward.service._service import _token_id


def test_hkdf_matches_rfc_5869_test_case_1() -> None:
    # RFC 5869 A.1; with L = 32 the output is the first 32 octets of the stated OKM.
    okm = hkdf_sha256_32(
        bytes.fromhex("0b" * 22),
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
    )
    assert okm.hex() == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"


@pytest.mark.parametrize(
    ("ikm", "salt", "info"),
    [
        (b"jti-1", b"s-abc", b"tokenward/successor/v1"),
        (b"x" * 43, b"s-" + b"y" * 22, b""),
        (bytes(range(256)), b"\x00", b"info"),
    ],
)
def test_hkdf_gives_the_same_octets_as_cryptography(ikm: bytes, salt: bytes, info: bytes) -> None:
    reference = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)
    assert hkdf_sha256_32(ikm, salt=salt, info=info) == reference


def test_hkdf_refuses_an_empty_salt() -> None:
    with pytest.raises(ValueError, match="salt"):
        hkdf_sha256_32(b"ikm", salt=b"", info=b"")


def test_only_the_same_token_session_and_generation_open_a_sealed_successor() -> None:
    sealed = seal_successor("jti-1", "s-abc", 3, b"the pair")
    assert open_successor("jti-1", "s-abc", 3, sealed) == b"the pair"
    assert open_successor("jti-2", "s-abc", 3, sealed) is None
    assert open_successor("jti-1", "s-abd", 3, sealed) is None
    assert open_successor("jti-1", "s-abc", 4, sealed) is None
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    assert open_successor("jti-1", "s-abc", 3, tampered) is None
    assert open_successor("jti-1", "s-abc", 3, sealed[:5]) is None


def test_each_seal_uses_a_fresh_nonce() -> None:
    assert seal_successor("j", "s", 1, b"p") != seal_successor("j", "s", 1, b"p")


def test_a_sealed_pair_round_trips_and_the_earlier_json_form_still_opens() -> None:
    pair = TokenPair("a.b.c", "d.e.f", 900, "read write", "s-abc", 1_800_000_000)
    assert TokenPair._from_bytes(pair._to_bytes()) == pair
    legacy = json.dumps(["a.b.c", "d.e.f", 900, "read write", "s-abc", 1_800_000_000]).encode()
    assert TokenPair._from_bytes(legacy) == pair


@pytest.mark.parametrize("field", ["access_token", "refresh_token", "scope", "sid"])
def test_a_pair_with_a_line_break_in_any_text_field_still_round_trips(field: str) -> None:
    fields = {"access_token": "a.b.c", "refresh_token": "d.e.f", "scope": "read", "sid": "s-1"}
    fields[field] = "x\ny"
    pair = TokenPair(
        fields["access_token"], fields["refresh_token"], 900, fields["scope"], fields["sid"], 1
    )
    assert TokenPair._from_bytes(pair._to_bytes()) == pair


def test_token_ids_are_256_random_bits_as_unpadded_base64url() -> None:
    ids = {_token_id() for _ in range(64)}
    assert len(ids) == 64
    assert all(len(i) == 43 and is_b64u(i) and len(b64u_decode(i)) == 32 for i in ids)
