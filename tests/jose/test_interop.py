"""Interoperability with PyJWT and joserfc, both directions, for every tokenward algorithm.

Direction 1: tokens from ``tokenward.jose.jwt.encode`` verify in the peer, with keys
exported from tokenward (``to_jwk`` / ``to_pem`` / the HMAC secret) and imported the
way a user of the peer would. Direction 2: tokens from the peer verify in
``tokenward.jose.jwt.decode``, with keys the peer made (or exported) imported through
``Key.from_jwk`` / ``Key.from_pem`` / ``Key.from_secret``. Each direction also has one
JWKS test where the verifier picks the key by ``kid``.

PyJWT has no ``now`` argument, so the claims' time window is anchored at the real
clock read once at import (``NOW``) and is an hour wide; tokenward and joserfc get
``now=NOW`` explicitly.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from joserfc import jwk as jjwk
from joserfc import jwt as jjwt
from joserfc.errors import ExpiredTokenError as JoserfcExpiredTokenError

from tokenward.errors import ExpiredTokenError
from tokenward.jose import ALGORITHMS, Key, KeySet, jwt

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet

NOW = int(time.time())
ISSUER = "https://issuer.example"
AUDIENCE = "api://interop"
SUBJECT = "user-42"
EXP = NOW + 3600

Kty = Literal["oct", "RSA", "EC", "OKP"]


@dataclass(frozen=True, slots=True)
class Alg:
    """One parametrized case: a JWS algorithm and the key it is exercised with."""

    name: str
    kty: Kty
    crv: str | None = None
    secret_size: int = 0

    @property
    def id(self) -> str:
        # Polymorphic EdDSA (RFC 8037) is tested once per curve.
        return f"{self.name}-{self.crv}" if self.name == "EdDSA" else self.name


ALGS = (
    Alg("HS256", "oct", secret_size=32),
    Alg("HS384", "oct", secret_size=48),
    Alg("HS512", "oct", secret_size=64),
    Alg("RS256", "RSA"),
    Alg("RS384", "RSA"),
    Alg("RS512", "RSA"),
    Alg("PS256", "RSA"),
    Alg("PS384", "RSA"),
    Alg("PS512", "RSA"),
    Alg("ES256", "EC", "P-256"),
    Alg("ES384", "EC", "P-384"),
    Alg("ES512", "EC", "P-521"),
    Alg("ES256K", "EC", "secp256k1"),
    Alg("EdDSA", "OKP", "Ed25519"),
    Alg("EdDSA", "OKP", "Ed448"),
    Alg("Ed25519", "OKP", "Ed25519"),
    Alg("Ed448", "OKP", "Ed448"),
)
ALG_NAMES = sorted({alg.name for alg in ALGS})

_EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
    "secp256k1": ec.SECP256K1,
}

# Peer gaps, each verified by test_pyjwt_lacks_rfc9864_names below: PyJWT implements
# RFC 8037 "EdDSA" but not the RFC 9864 fully specified names. Its encode raises
# NotImplementedError("Algorithm not supported"), decode raises InvalidAlgorithmError and
# PyJWK raises PyJWKError("Unable to find an algorithm for key").
PYJWT_MISSING = frozenset({"Ed25519", "Ed448"})
_PYJWT_SKIP = pytest.mark.skip(
    reason="PyJWT does not implement the RFC 9864 JWS algorithms 'Ed25519'/'Ed448' "
    "(only polymorphic 'EdDSA'): encode/decode say 'Algorithm not supported'"
)
# joserfc implements EdDSA but warns on every use of it (SecurityWarning "EdDSA is
# deprecated via RFC 9864"); there is no switch to silence it, and the algorithm is
# exactly what these cases test, so the warning is ignored for them alone.
_JOSERFC_EDDSA_WARNING = pytest.mark.filterwarnings(
    "ignore:EdDSA is deprecated via RFC 9864:joserfc.errors.SecurityWarning"
)


def _cases(peer: Literal["pyjwt", "joserfc"]) -> list[ParameterSet]:
    """Every algorithm times both key-import routes: JWK, and PEM (or raw secret)."""
    cases = []
    for alg in ALGS:
        marks: list[pytest.MarkDecorator] = []
        if peer == "pyjwt" and alg.name in PYJWT_MISSING:
            marks.append(_PYJWT_SKIP)
        if peer == "joserfc" and alg.name == "EdDSA":
            marks.append(_JOSERFC_EDDSA_WARNING)
        native = "secret" if alg.kty == "oct" else "pem"
        for route in ("jwk", native):
            cases.append(pytest.param(alg, route, id=f"{alg.id}-{route}", marks=marks))
    return cases


def _claims() -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": AUDIENCE,
        "iat": NOW - 60,
        "nbf": NOW - 60,
        "exp": EXP,
        "jti": secrets.token_urlsafe(12),
        "name": "Zoë Ñandú ✓",  # non-ASCII: both sides must agree on UTF-8 JSON
    }


# -- verifiers --------------------------------------------------------------------------


def _pyjwt_decode(token: str, key: pyjwt.PyJWK | bytes, algorithms: list[str]) -> dict[str, Any]:
    return pyjwt.decode(
        token,
        key,
        algorithms=algorithms,
        audience=AUDIENCE,
        issuer=ISSUER,
        subject=SUBJECT,
        options={"require": ["exp", "iat", "nbf", "iss", "sub", "aud"]},
    )


def _joserfc_decode(
    token: str, key: jjwk.Key | jjwk.KeySet, algorithms: list[str], *, now: int = NOW
) -> dict[str, Any]:
    decoded = jjwt.decode(token, key, algorithms=algorithms)
    assert decoded.header["typ"] == "JWT"
    claims: dict[str, Any] = decoded.claims
    jjwt.JWTClaimsRegistry(
        now=now,
        leeway=0,
        iss={"essential": True, "value": ISSUER},
        sub={"essential": True, "value": SUBJECT},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
        iat={"essential": True},
        nbf={"essential": True},
    ).validate(claims)
    return claims


def _tokenward_decode(token: str, key: Key | KeySet, algorithms: Collection[str]) -> dict[str, Any]:
    claims = jwt.decode(
        token,
        key,
        algorithms=algorithms,
        issuer=ISSUER,
        audience=AUDIENCE,
        typ="JWT",
        require=("exp", "iat", "nbf", "sub", "jti"),
        now=NOW,
    )
    # The peer's exp means the same instant to tokenward: expired exactly at exp.
    with pytest.raises(ExpiredTokenError):
        jwt.decode(token, key, algorithms=algorithms, issuer=ISSUER, audience=AUDIENCE, now=EXP)
    return claims


# -- keys (module scope: RSA generation is slow, so each side makes one modulus) --------


@dataclass(frozen=True, slots=True)
class TokenwardKey:
    key: Key
    secret: bytes | None = None  # the octets an HMAC key was made from


PeerPrivateKey = (
    bytes
    | rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
PeerPublicKey = (
    bytes
    | rsa.RSAPublicKey
    | ec.EllipticCurvePublicKey
    | ed25519.Ed25519PublicKey
    | ed448.Ed448PublicKey
)


@pytest.fixture(scope="module")
def tokenward_keys() -> dict[str, TokenwardKey]:
    rsa_base = Key.generate("RS256")
    keys: dict[str, TokenwardKey] = {}
    for alg in ALGS:
        kid = f"tokenward-{alg.id}"
        if alg.kty == "oct":
            secret = secrets.token_bytes(alg.secret_size)
            keys[alg.id] = TokenwardKey(Key.from_secret(secret, alg=alg.name, kid=kid), secret)
        elif alg.kty == "RSA":
            pem = rsa_base.to_pem(private=True)
            keys[alg.id] = TokenwardKey(Key.from_pem(pem, alg=alg.name, kid=kid))
        elif alg.name == "EdDSA":
            # Key.generate("EdDSA") always picks Ed25519; bind a key of each curve to EdDSA.
            pem = Key.generate(alg.crv or "").to_pem(private=True)
            keys[alg.id] = TokenwardKey(Key.from_pem(pem, alg="EdDSA", kid=kid))
        else:
            keys[alg.id] = TokenwardKey(Key.generate(alg.name, kid=kid))
    return keys


@pytest.fixture(scope="module")
def pyjwt_keys() -> dict[str, PeerPrivateKey]:
    """Private keys as a PyJWT user makes them: random octets or ``cryptography`` keys."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys: dict[str, PeerPrivateKey] = {}
    for alg in ALGS:
        if alg.kty == "oct":
            keys[alg.id] = secrets.token_bytes(alg.secret_size)
        elif alg.kty == "RSA":
            keys[alg.id] = rsa_key
        elif alg.kty == "EC":
            keys[alg.id] = ec.generate_private_key(_EC_CURVES[alg.crv or ""]())
        elif alg.crv == "Ed25519":
            keys[alg.id] = ed25519.Ed25519PrivateKey.generate()
        else:
            keys[alg.id] = ed448.Ed448PrivateKey.generate()
    return keys


@pytest.fixture(scope="module")
def joserfc_keys() -> dict[str, jjwk.Key]:
    """Keys generated by joserfc, each with its own kid and bound to its algorithm."""
    rsa_base = jjwk.RSAKey.generate_key(2048).as_dict(private=True)
    keys: dict[str, jjwk.Key] = {}
    for alg in ALGS:
        params: jjwk.KeyParameters = {"kid": f"joserfc-{alg.id}", "alg": alg.name}
        if alg.kty == "RSA":
            keys[alg.id] = jjwk.RSAKey.import_key(rsa_base, parameters=params)
        elif alg.kty == "oct":
            keys[alg.id] = jjwk.OctKey.generate_key(alg.secret_size * 8, parameters=params)
        else:
            keys[alg.id] = jjwk.JWKRegistry.generate_key(alg.kty, alg.crv, parameters=params)
    return keys


def _public(private: PeerPrivateKey) -> PeerPublicKey:
    return private if isinstance(private, bytes) else private.public_key()


def _public_pem(private: PeerPrivateKey) -> bytes:
    public = _public(private)
    assert not isinstance(public, bytes)
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _pyjwt_jwk(alg: str, private: PeerPrivateKey) -> dict[str, Any]:
    """The JWK PyJWT itself exports for a key (``Algorithm.to_jwk``)."""
    return pyjwt.get_algorithm_by_name(alg).to_jwk(_public(private), as_dict=True)


def _pyjwt_supported(alg: str) -> bool:
    return alg not in PYJWT_MISSING


# -- direction 1: tokenward signs, the peer verifies ------------------------------------


@pytest.mark.parametrize(("alg", "route"), _cases("pyjwt"))
def test_tokenward_to_pyjwt(alg: Alg, route: str, tokenward_keys: dict[str, TokenwardKey]) -> None:
    tw = tokenward_keys[alg.id]
    claims = _claims()
    token = jwt.encode(claims, tw.key)

    key: pyjwt.PyJWK | bytes
    if route == "jwk":
        key = pyjwt.PyJWK(tw.key.to_jwk(private=alg.kty == "oct"))
        assert key.key_id == tw.key.kid
        assert key.algorithm_name == alg.name
    elif route == "secret":
        assert tw.secret is not None
        key = tw.secret
    else:
        key = tw.key.to_pem()

    assert pyjwt.get_unverified_header(token) == {"alg": alg.name, "kid": tw.key.kid, "typ": "JWT"}
    assert _pyjwt_decode(token, key, [alg.name]) == claims


@pytest.mark.parametrize(("alg", "route"), _cases("joserfc"))
def test_tokenward_to_joserfc(
    alg: Alg, route: str, tokenward_keys: dict[str, TokenwardKey]
) -> None:
    tw = tokenward_keys[alg.id]
    claims = _claims()
    token = jwt.encode(claims, tw.key)

    key: jjwk.Key
    if route == "jwk":
        key = jjwk.import_key(tw.key.to_jwk(private=alg.kty == "oct"))
        assert key.kid == tw.key.kid
        assert key.alg == alg.name
    elif route == "secret":
        assert tw.secret is not None
        key = jjwk.OctKey.import_key(tw.secret)
    else:
        key = jjwk.JWKRegistry.import_key(tw.key.to_pem(), alg.kty)

    assert _joserfc_decode(token, key, [alg.name]) == claims
    with pytest.raises(JoserfcExpiredTokenError):
        _joserfc_decode(token, key, [alg.name], now=EXP)


# -- direction 2: the peer signs, tokenward verifies ------------------------------------


@pytest.mark.parametrize(("alg", "route"), _cases("pyjwt"))
def test_pyjwt_to_tokenward(alg: Alg, route: str, pyjwt_keys: dict[str, PeerPrivateKey]) -> None:
    private = pyjwt_keys[alg.id]
    claims = _claims()
    token = pyjwt.encode(claims, private, algorithm=alg.name, headers={"kid": f"pyjwt-{alg.id}"})

    if route == "jwk":
        key = Key.from_jwk(_pyjwt_jwk(alg.name, private), alg=alg.name)
    elif route == "secret":
        assert isinstance(private, bytes)
        key = Key.from_secret(private, alg=alg.name)
    else:
        key = Key.from_pem(_public_pem(private), alg=alg.name)

    assert _tokenward_decode(token, key, [alg.name]) == claims


@pytest.mark.parametrize(("alg", "route"), _cases("joserfc"))
def test_joserfc_to_tokenward(alg: Alg, route: str, joserfc_keys: dict[str, jjwk.Key]) -> None:
    peer = joserfc_keys[alg.id]
    claims = _claims()
    token = jjwt.encode({"alg": alg.name, "kid": peer.kid}, claims, peer, algorithms=[alg.name])

    if route == "jwk":
        key = Key.from_jwk(peer.as_dict(private=alg.kty == "oct"))
        assert (key.alg, key.kid) == (alg.name, peer.kid)
    elif route == "secret":
        assert isinstance(peer, jjwk.OctKey)
        key = Key.from_secret(peer.raw_value, alg=alg.name, kid=peer.kid)
    else:
        assert not isinstance(peer, jjwk.OctKey)
        key = Key.from_pem(peer.as_pem(private=False), alg=alg.name, kid=peer.kid)
        assert key.thumbprint() == peer.thumbprint()

    assert _tokenward_decode(token, key, [alg.name]) == claims


# -- JWKS: the verifier picks the key by kid --------------------------------------------


def _tokenward_set(tokenward_keys: dict[str, TokenwardKey]) -> KeySet:
    """Every asymmetric tokenward key, plus a second ES256 key so a kid must pick one."""
    keys = [tw.key for tw in tokenward_keys.values() if tw.key.kty != "oct"]
    return KeySet([*keys, Key.generate("ES256", kid="tokenward-ES256-second")])


def _signed_by_each(keyset: KeySet) -> Iterator[tuple[Key, dict[str, Any], str]]:
    for key in keyset:
        claims = _claims()
        yield key, claims, jwt.encode(claims, key)


def test_jwks_tokenward_to_pyjwt(tokenward_keys: dict[str, TokenwardKey]) -> None:
    keyset = _tokenward_set(tokenward_keys)
    jwks = pyjwt.PyJWKSet.from_dict(keyset.to_jwks())
    # PyJWKSet skips keys it cannot use (RFC 7517 sec. 5); the RFC 9864 Ed25519/Ed448
    # keys in the set must not stop it loading the rest.
    supported = {key.kid for key in keyset if _pyjwt_supported(key.alg or "")}
    assert supported <= {key.key_id for key in jwks}

    checked = 0
    for key, claims, token in _signed_by_each(keyset):
        if not _pyjwt_supported(key.alg or ""):
            continue
        kid = pyjwt.get_unverified_header(token)["kid"]
        selected = jwks[kid]
        assert selected.algorithm_name == key.alg
        assert _pyjwt_decode(token, selected, [selected.algorithm_name]) == claims
        checked += 1
    assert checked == len(supported) == len(keyset) - len(PYJWT_MISSING)


@_JOSERFC_EDDSA_WARNING
def test_jwks_tokenward_to_joserfc(tokenward_keys: dict[str, TokenwardKey]) -> None:
    keyset = _tokenward_set(tokenward_keys)
    document: jjwk.KeySetSerialization = {"keys": keyset.to_jwks()["keys"]}
    jwks = jjwk.KeySet.import_key_set(document)
    assert {key.kid for key in jwks} == {key.kid for key in keyset}
    for _key, claims, token in _signed_by_each(keyset):
        # joserfc selects the key from the set by the token's kid.
        assert _joserfc_decode(token, jwks, ALG_NAMES) == claims


def test_jwks_pyjwt_to_tokenward(pyjwt_keys: dict[str, PeerPrivateKey]) -> None:
    # PyJWT has no JWKS writer; a user builds the document from Algorithm.to_jwk.
    signers: dict[str, tuple[str, PeerPrivateKey]] = {
        f"pyjwt-{alg.id}": (alg.name, pyjwt_keys[alg.id])
        for alg in ALGS
        if alg.kty != "oct" and _pyjwt_supported(alg.name)
    }
    signers["pyjwt-ES256-second"] = ("ES256", ec.generate_private_key(ec.SECP256R1()))
    jwks = {
        "keys": [
            {**_pyjwt_jwk(name, private), "kid": kid, "alg": name}
            for kid, (name, private) in signers.items()
        ]
    }
    keyset = KeySet.from_jwks(jwks)
    assert {key.kid for key in keyset} == set(signers)

    for kid, (name, private) in signers.items():
        claims = _claims()
        token = pyjwt.encode(claims, private, algorithm=name, headers={"kid": kid})
        assert _tokenward_decode(token, keyset, ALG_NAMES) == claims


@_JOSERFC_EDDSA_WARNING
def test_jwks_joserfc_to_tokenward(joserfc_keys: dict[str, jjwk.Key]) -> None:
    second = jjwk.ECKey.generate_key("P-256", parameters={"alg": "ES256"}, auto_kid=True)
    keys: list[jjwk.Key] = [k for k in joserfc_keys.values() if not isinstance(k, jjwk.OctKey)]
    peer_set = jjwk.KeySet([*keys, second])
    keyset = KeySet.from_jwks(peer_set.as_dict(private=False))
    assert {key.kid for key in keyset} == {key.kid for key in peer_set}

    for peer in peer_set:
        assert peer.kid is not None
        assert keyset[peer.kid].thumbprint() == peer.thumbprint()  # RFC 7638 agrees
        claims = _claims()
        alg = peer.alg
        assert alg is not None
        # joserfc signs with the set's key named by the header's kid.
        token = jjwt.encode({"alg": alg, "kid": peer.kid}, claims, peer_set, algorithms=[alg])
        assert _tokenward_decode(token, keyset, ALG_NAMES) == claims


# -- the skips above stay honest --------------------------------------------------------


def test_every_algorithm_is_covered() -> None:
    assert {alg.name for alg in ALGS} == set(ALGORITHMS)


@pytest.mark.parametrize("name", sorted(PYJWT_MISSING))
def test_pyjwt_lacks_rfc9864_names(name: str, tokenward_keys: dict[str, TokenwardKey]) -> None:
    """If this fails, PyJWT gained the RFC 9864 names: drop PYJWT_MISSING and its skips."""
    tw = tokenward_keys[name].key
    token = jwt.encode(_claims(), tw)
    with pytest.raises(pyjwt.PyJWKError, match="Unable to find an algorithm"):
        pyjwt.PyJWK(tw.to_jwk())
    with pytest.raises(pyjwt.InvalidAlgorithmError, match="Algorithm not supported"):
        _pyjwt_decode(token, tw.to_pem(), [name])
    private: PeerPrivateKey = (
        ed25519.Ed25519PrivateKey.generate()
        if name == "Ed25519"
        else ed448.Ed448PrivateKey.generate()
    )
    with pytest.raises(NotImplementedError, match="Algorithm not supported"):
        pyjwt.encode(_claims(), private, algorithm=name)
