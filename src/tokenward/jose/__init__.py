"""tokenward.jose: a strict, fast JOSE codec (JWS compact, JWT, JWK/JWKS) on ``cryptography``.

>>> from tokenward.jose import Key, jwt
>>> key = Key.generate("ES256")
>>> claims = jwt.decode(jwt.encode({"sub": "ada"}, key), key, algorithms=["ES256"])
>>> claims
{'sub': 'ada'}

The module is pure: no I/O, no clock reads beyond the default ``now``, no globals
that change. See ``docs/jose.md`` for the strict profile it implements.
"""

from __future__ import annotations

from tokenward.jose import jws, jwt
from tokenward.jose._algorithms import ALGORITHMS, Algorithm
from tokenward.jose._claims import ClaimRules
from tokenward.jose._compact import DEFAULT_MAX_SIZE, HARD_MAX_SIZE
from tokenward.jose._keys import Key
from tokenward.jose._keyset import KeyResolver, KeySet

__all__ = [
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
]
