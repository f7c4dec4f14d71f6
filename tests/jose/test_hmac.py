"""HMAC with precomputed keyed states: the same MACs as the standard library's."""

from __future__ import annotations

import hmac

import pytest

from tokenward.jose._crypto import _hmac_of


def test_rfc_4231_test_case_2() -> None:
    # RFC 4231 sec. 4.3: key "Jefe", data "what do ya want for nothing?".
    mac = _hmac_of(b"Jefe", "sha256")
    assert mac(b"what do ya want for nothing?").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


@pytest.mark.parametrize("name", ["sha256", "sha384", "sha512"])
@pytest.mark.parametrize("key_length", [0, 1, 32, 63, 64, 65, 127, 128, 129, 300])
def test_matches_hmac_digest_around_the_block_size(name: str, key_length: int) -> None:
    # Keys longer than the hash's block (64 octets for SHA-256, 128 for SHA-384/512)
    # are hashed first (RFC 2104); shorter ones are padded with zeros.
    key = bytes(range(256))[:key_length] if key_length <= 256 else bytes(key_length)
    mac = _hmac_of(key, name)
    for message in (b"", b"x", bytes(range(256)) * 3):
        assert mac(message) == hmac.digest(key, message, name)
    # The keyed states are copied, never consumed: the same message gives the same MAC.
    assert mac(b"again") == mac(b"again")
