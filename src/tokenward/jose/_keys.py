"""Typed keys (RFC 7517, RFC 7518 sec. 6, RFC 8037 sec. 2, RFC 7638).

A :class:`Key` is built only by its classmethods, never guessed from a ``str | bytes |
dict``. It knows its type (``kty``), its curve, its optional bound algorithm, and which
algorithms it may sign and verify with; those are worked out once, when the key is
built, so verification needs one dictionary lookup to find the primitive.

Decisions where the RFCs leave a choice (SECURITY_PROFILE Part C):

* A key bound to an ``alg`` is used with that algorithm only (RFC 8725 sec. 3.1). An
  unbound key is used with every algorithm its type, curve and size fit.
* ``use`` other than ``sig`` and ``key_ops`` without ``sign``/``verify`` forbid those
  operations (RFC 7517 sec. 4.2, 4.3: enforced here, not advisory).
* Verification only ever uses the public half; a private JWK may be loaded for
  verification and is then used as its public key. Private members never appear in
  ``repr`` or in errors.
* JWK members are decoded with the strict base64url decoder; Base64urlUInt values must
  use the minimum number of octets and coordinates their exact size (RFC 7518 sec. 2,
  6.2.1.2, 6.3.1); EC points must be on the curve (RFC 8725 sec. 3.4).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Self

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from tokenward.errors import InvalidKeyError, KeyMismatchError, MalformedTokenError
from tokenward.jose._algorithms import ALGORITHMS, Algorithm
from tokenward.jose._b64 import b64u_decode, b64u_encode
from tokenward.jose._crypto import (
    PrivateKey,
    PublicKey,
    Signer,
    VerifiedHeader,
    Verifier,
    build_signer,
    build_verifier,
)

__all__ = ["Key"]

_EC_CURVES: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "P-256": (ec.SECP256R1, 32),
    "P-384": (ec.SECP384R1, 48),
    "P-521": (ec.SECP521R1, 66),
    "secp256k1": (ec.SECP256K1, 32),
}
_EC_NAMES = {cls().name: crv for crv, (cls, _) in _EC_CURVES.items()}
_OKP_SIZES = {"Ed25519": 32, "Ed448": 57}
_MEMBERS = {
    "oct": frozenset({"k"}),
    "RSA": frozenset({"n", "e", "d", "p", "q", "dp", "dq", "qi", "oth"}),
    "EC": frozenset({"crv", "x", "y", "d"}),
    "OKP": frozenset({"crv", "x", "d"}),
}
_RSA_PRIVATE = ("d", "p", "q", "dp", "dq", "qi")
_DEFAULT_RSA_BITS = 2048


def _member(jwk: Mapping[str, Any], name: str, *, required: bool = True) -> bytes | None:
    value = jwk.get(name)
    if value is None:
        if required:
            raise InvalidKeyError(f"JWK is missing the {name!r} member")
        return None
    if type(value) is not str:
        raise InvalidKeyError(f"JWK member {name!r} must be a base64url string")
    try:
        return b64u_decode(value)
    except MalformedTokenError:
        raise InvalidKeyError(f"JWK member {name!r} is not canonical base64url") from None


def _uint(jwk: Mapping[str, Any], name: str) -> int:
    raw = _member(jwk, name)
    if not raw or raw[0] == 0:
        # RFC 7518 sec. 2 (Base64urlUInt): the minimum number of octets, and zero is "AA".
        raise InvalidKeyError(f"JWK member {name!r} is not a minimal Base64urlUInt")
    return int.from_bytes(raw, "big")


def _fixed(jwk: Mapping[str, Any], name: str, size: int, *, required: bool = True) -> bytes | None:
    raw = _member(jwk, name, required=required)
    if raw is not None and len(raw) != size:
        raise InvalidKeyError(f"JWK member {name!r} must be exactly {size} octets")
    return raw


def _text(jwk: Mapping[str, Any], name: str) -> str | None:
    value = jwk.get(name)
    if value is not None and type(value) is not str:
        raise InvalidKeyError(f"JWK member {name!r} must be a string")
    return value


def _uint_bytes(value: int) -> str:
    return b64u_encode(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


class Key:
    """A signing or verification key, bound to at most one algorithm.

    Build one with :meth:`generate`, :meth:`from_jwk`, :meth:`from_pem` or
    :meth:`from_secret`::

        >>> key = Key.generate("ES256", kid="k1")
        >>> key.alg, key.kid, key.kty
        ('ES256', 'k1', 'EC')
        >>> sorted(key.public_key().to_jwk())
        ['alg', 'crv', 'kid', 'kty', 'x', 'y']
    """

    __slots__ = (
        "_alg",
        "_crv",
        "_decode_memo",
        "_header_segments",
        "_headers",
        "_key_ops",
        "_kid",
        "_kty",
        "_private",
        "_public",
        "_secret",
        "_signers",
        "_size",
        "_use",
        "_verifiers",
    )

    _kty: str
    _alg: str | None
    _kid: str | None
    _crv: str | None
    _use: str | None
    _key_ops: tuple[str, ...] | None
    _secret: bytes | None
    _private: PrivateKey | None
    _public: PublicKey | None
    _size: int
    _verifiers: Mapping[str, Verifier]
    _signers: Mapping[str, Signer]
    _headers: dict[bytes, VerifiedHeader]
    _header_segments: dict[tuple[str, str | None], bytes]
    _decode_memo: dict[Any, Any]

    def __init__(self) -> None:
        raise TypeError("build keys with Key.generate, from_jwk, from_pem or from_secret")

    # -- construction -----------------------------------------------------------------

    @classmethod
    def _build(
        cls,
        kty: str,
        *,
        alg: str | None,
        kid: str | None,
        crv: str | None = None,
        secret: bytes | None = None,
        private: PrivateKey | None = None,
        public: PublicKey | None = None,
        use: str | None = None,
        key_ops: tuple[str, ...] | None = None,
    ) -> Self:
        key = object.__new__(cls)
        # Parsed headers of tokens this key verified (see _compact.verify_compact): a
        # private memo of a pure function, bounded, not part of the key's value.
        key._headers = {}
        key._header_segments = {}
        key._decode_memo = {}
        key._kty = kty
        key._alg = alg
        key._kid = kid
        key._crv = crv
        key._use = use
        key._key_ops = key_ops
        key._secret = secret
        key._private = private
        key._public = public
        if secret is not None:
            key._size = len(secret)
        elif isinstance(public, rsa.RSAPublicKey):
            key._size = public.key_size
        else:
            key._size = 0
        if alg is not None:
            algorithm = ALGORITHMS.get(alg) if type(alg) is str else None
            if algorithm is None:
                raise InvalidKeyError(f"{alg!r} is not a supported signature algorithm")
            problem = key._unfit(algorithm)
            if problem:
                raise InvalidKeyError(f"key cannot be used with {alg}: {problem}")
        elif kty == "oct" and key._size < ALGORITHMS["HS256"].min_key_size:
            raise InvalidKeyError("HMAC keys must be at least 32 octets (RFC 7518 sec. 3.2)")
        elif kty == "RSA" and key._size < _DEFAULT_RSA_BITS:
            raise InvalidKeyError("RSA keys must be at least 2048 bits (RFC 7518 sec. 3.3)")
        fits = [a for a in ALGORITHMS.values() if not key._unfit(a)]
        verify_ok = use in (None, "sig") and (key_ops is None or "verify" in key_ops)
        sign_ok = use in (None, "sig") and (key_ops is None or "sign" in key_ops)
        verify_material = secret if secret is not None else public
        key._verifiers = MappingProxyType(
            {a.name: build_verifier(a, verify_material, crv) for a in fits}
            if verify_ok and verify_material is not None
            else {}
        )
        sign_material = secret if secret is not None else private
        key._signers = MappingProxyType(
            {a.name: build_signer(a, sign_material) for a in fits}
            if sign_ok and sign_material is not None
            else {}
        )
        return key

    def _unfit(self, algorithm: Algorithm) -> str | None:
        """Say why ``algorithm`` cannot be used with this key, or return None."""
        if self._alg is not None and algorithm.name != self._alg:
            return f"the key is bound to {self._alg}"
        if algorithm.kty != self._kty:
            return f"{algorithm.name} needs a {algorithm.kty} key, not {self._kty}"
        if algorithm.curves and self._crv not in algorithm.curves:
            return f"{algorithm.name} needs curve {' or '.join(algorithm.curves)}"
        if algorithm.family == "HMAC" and self._size < algorithm.min_key_size:
            return f"{algorithm.name} needs a secret of at least {algorithm.min_key_size} octets"
        if algorithm.kty == "RSA" and self._size < algorithm.min_key_size:
            return f"{algorithm.name} needs an RSA modulus of at least 2048 bits"
        return None

    @classmethod
    def generate(cls, alg: str, *, kid: str | None = None, rsa_bits: int = 2048) -> Self:
        """Create a new private key for ``alg``, bound to it; ``kid`` defaults to its thumbprint.

        >>> Key.generate("EdDSA").crv
        'Ed25519'
        """
        algorithm = ALGORITHMS.get(alg) if type(alg) is str else None
        if algorithm is None:
            raise InvalidKeyError(f"{alg!r} is not a supported signature algorithm")
        private: PrivateKey
        if algorithm.family == "HMAC":
            import secrets

            key = cls._build(
                "oct", alg=alg, kid=kid, secret=secrets.token_bytes(algorithm.min_key_size)
            )
        else:
            if algorithm.kty == "RSA":
                if rsa_bits < _DEFAULT_RSA_BITS:
                    raise InvalidKeyError("RSA keys must be at least 2048 bits")
                private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
            elif algorithm.kty == "EC":
                private = ec.generate_private_key(_EC_CURVES[algorithm.curves[0]][0]())
            elif algorithm.curves[0] == "Ed25519":
                private = ed25519.Ed25519PrivateKey.generate()
            else:
                private = ed448.Ed448PrivateKey.generate()
            key = cls._from_crypto(private, alg=alg, kid=kid)
        if kid is None:
            key._kid = key.thumbprint()
        return key

    @classmethod
    def from_secret(cls, secret: bytes, *, alg: str, kid: str | None = None) -> Self:
        """Wrap random octets as an HMAC key for ``alg`` (HS256/384/512).

        The secret must be at least as long as the hash output; passwords are not keys
        (RFC 8725 sec. 3.5), so text is refused.

        >>> Key.from_secret(bytes(32), alg="HS256").kty
        'oct'
        """
        if type(secret) is not bytes:
            raise InvalidKeyError("an HMAC secret must be bytes (random octets, not a password)")
        algorithm = ALGORITHMS.get(alg) if type(alg) is str else None
        if algorithm is None or algorithm.family != "HMAC":
            raise InvalidKeyError(f"{alg!r} is not an HMAC algorithm")
        return cls._build("oct", alg=alg, kid=kid, secret=secret)

    @classmethod
    def from_pem(
        cls,
        data: bytes | str,
        *,
        alg: str | None = None,
        kid: str | None = None,
        password: bytes | None = None,
    ) -> Self:
        """Load a PEM private key, public key or X.509 certificate (its public key).

        >>> pem = Key.generate("ES256").to_pem()
        >>> Key.from_pem(pem, alg="ES256").alg
        'ES256'
        """
        raw = data.encode("ascii", "replace") if isinstance(data, str) else data
        if type(raw) is not bytes:
            raise InvalidKeyError("PEM data must be bytes or str")
        material: Any
        try:
            if b"PRIVATE KEY-----" in raw:
                material = serialization.load_pem_private_key(raw, password=password)
            elif b"-----BEGIN CERTIFICATE-----" in raw:
                from cryptography import x509

                material = x509.load_pem_x509_certificate(raw).public_key()
            else:
                material = serialization.load_pem_public_key(raw)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise InvalidKeyError("data is not a usable PEM key or certificate") from None
        return cls._from_crypto(material, alg=alg, kid=kid)

    @classmethod
    def _from_crypto(cls, material: object, *, alg: str | None, kid: str | None) -> Self:
        private: PrivateKey | None = None
        public: PublicKey
        if isinstance(
            material,
            rsa.RSAPrivateKey
            | ec.EllipticCurvePrivateKey
            | ed25519.Ed25519PrivateKey
            | ed448.Ed448PrivateKey,
        ):
            private = material
            public = material.public_key()
        elif isinstance(
            material,
            rsa.RSAPublicKey
            | ec.EllipticCurvePublicKey
            | ed25519.Ed25519PublicKey
            | ed448.Ed448PublicKey,
        ):
            public = material
        else:
            raise InvalidKeyError("only RSA, EC (P-256/384/521, secp256k1) and Ed25519/Ed448 keys")
        crv: str | None = None
        if isinstance(public, rsa.RSAPublicKey):
            kty = "RSA"
            _check_rsa_public(public.public_numbers())
        elif isinstance(public, ec.EllipticCurvePublicKey):
            kty = "EC"
            crv = _EC_NAMES.get(public.curve.name)
            if crv is None:
                raise InvalidKeyError(f"curve {public.curve.name} is not supported")
        else:
            kty = "OKP"
            crv = "Ed25519" if isinstance(public, ed25519.Ed25519PublicKey) else "Ed448"
        return cls._build(kty, alg=alg, kid=kid, crv=crv, private=private, public=public)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any], *, alg: str | None = None) -> Self:
        """Load a JWK (RFC 7517). ``alg`` binds an unbound key; it must agree with the JWK's.

        >>> Key.from_jwk({"kty": "oct", "k": "A" * 43, "alg": "HS256"}).alg
        'HS256'
        """
        if not isinstance(jwk, Mapping):
            raise InvalidKeyError("a JWK must be a JSON object")
        kty = jwk.get("kty")
        if type(kty) is not str or kty not in _MEMBERS:
            raise InvalidKeyError(f"JWK kty {kty!r} is not supported")
        for other, members in _MEMBERS.items():
            if other != kty:
                stray = (members - _MEMBERS[kty] - {"d"}) & jwk.keys()
                if stray:
                    raise InvalidKeyError(f"JWK of kty {kty} has {other} members {sorted(stray)}")
        jwk_alg = _text(jwk, "alg")
        if alg is not None and jwk_alg is not None and alg != jwk_alg:
            raise InvalidKeyError(f"JWK is bound to {jwk_alg}, not {alg}")
        bound = alg if alg is not None else jwk_alg
        kid = _text(jwk, "kid")
        use = _text(jwk, "use")
        ops = jwk.get("key_ops")
        key_ops: tuple[str, ...] | None = None
        if ops is not None:
            if type(ops) is not list or not all(type(o) is str for o in ops):
                raise InvalidKeyError("JWK key_ops must be an array of strings")
            if len(set(ops)) != len(ops):
                raise InvalidKeyError("JWK key_ops has duplicate values")
            key_ops = tuple(ops)
        common: dict[str, Any] = {"alg": bound, "kid": kid, "use": use, "key_ops": key_ops}
        if kty == "oct":
            secret = _member(jwk, "k")
            return cls._build("oct", secret=secret, **common)
        if kty == "RSA":
            private, public = _rsa_from_jwk(jwk)
            return cls._build("RSA", private=private, public=public, **common)
        crv = _text(jwk, "crv")
        if kty == "EC":
            ec_private, ec_public = _ec_from_jwk(jwk, crv)
            return cls._build("EC", crv=crv, private=ec_private, public=ec_public, **common)
        okp_private, okp_public = _okp_from_jwk(jwk, crv)
        return cls._build("OKP", crv=crv, private=okp_private, public=okp_public, **common)

    # -- properties -------------------------------------------------------------------

    @property
    def kty(self) -> str:
        """JWK key type: ``oct``, ``RSA``, ``EC`` or ``OKP``."""
        return self._kty

    @property
    def alg(self) -> str | None:
        """The algorithm this key is bound to, or None for an unbound key."""
        return self._alg

    @property
    def kid(self) -> str | None:
        """Key identifier, or None."""
        return self._kid

    @property
    def crv(self) -> str | None:
        """Curve name for EC and OKP keys."""
        return self._crv

    @property
    def is_private(self) -> bool:
        """True when the key can sign (HMAC secrets and private asymmetric keys)."""
        return self._secret is not None or self._private is not None

    @property
    def algorithms(self) -> frozenset[str]:
        """The algorithms this key may verify with."""
        return frozenset(self._verifiers)

    def __repr__(self) -> str:
        parts = [f"kty={self._kty!r}"]
        if self._crv:
            parts.append(f"crv={self._crv!r}")
        parts += [f"alg={self._alg!r}", f"kid={self._kid!r}", f"private={self.is_private}"]
        return f"Key({', '.join(parts)})"

    # -- use ----------------------------------------------------------------------------

    def verifier_for(self, alg: str) -> Verifier:
        """Return the verification primitive for ``alg`` or raise :class:`KeyMismatchError`."""
        verify = self._verifiers.get(alg)
        if verify is None:
            raise KeyMismatchError(self._refusal(alg, "verify"))
        return verify

    def signer_for(self, alg: str | None) -> tuple[str, Signer]:
        """Return ``(alg, signer)``; ``alg`` defaults to the key's bound algorithm."""
        if alg is None:
            if self._alg is None:
                raise InvalidKeyError("this key is not bound to an algorithm; pass alg=")
            alg = self._alg
        sign = self._signers.get(alg)
        if sign is None:
            raise InvalidKeyError(self._refusal(alg, "sign"))
        return alg, sign

    def _refusal(self, alg: str, operation: str) -> str:
        algorithm = ALGORITHMS.get(alg)
        if algorithm is None:
            return f"{alg!r} is not a supported algorithm"
        problem = self._unfit(algorithm)
        if problem:
            return problem
        if self._use not in (None, "sig"):
            return f"the key's use is {self._use!r}, not 'sig'"
        if self._key_ops is not None and operation not in self._key_ops:
            return f"the key's key_ops do not allow {operation!r}"
        return f"this is a public key; it cannot {operation}"

    def public_key(self) -> Key:
        """Return the public half (raises for HMAC keys, which have none)."""
        if self._kty == "oct":
            raise InvalidKeyError("an HMAC key has no public part")
        return type(self)._build(
            self._kty,
            alg=self._alg,
            kid=self._kid,
            crv=self._crv,
            public=self._public,
            use=self._use,
            key_ops=self._key_ops,
        )

    def to_jwk(self, *, private: bool = False) -> dict[str, Any]:
        """Export as a JWK; private members only with ``private=True``.

        An HMAC key is all secret, so it exports only with ``private=True``.
        """
        jwk: dict[str, Any] = {"kty": self._kty}
        if self._kty == "oct":
            if not private:
                raise InvalidKeyError("an HMAC key is secret; export it with private=True")
            jwk["k"] = b64u_encode(self._secret or b"")
        else:
            jwk.update(self._public_members())
            if private and self._private is not None:
                jwk.update(_private_members(self._private, self._crv))
        if self._alg is not None:
            jwk["alg"] = self._alg
        if self._kid is not None:
            jwk["kid"] = self._kid
        if self._use is not None:
            jwk["use"] = self._use
        if self._key_ops is not None:
            jwk["key_ops"] = list(self._key_ops)
        return jwk

    def _public_members(self) -> dict[str, str]:
        public = self._public
        if isinstance(public, rsa.RSAPublicKey):
            numbers = public.public_numbers()
            return {"n": _uint_bytes(numbers.n), "e": _uint_bytes(numbers.e)}
        if isinstance(public, ec.EllipticCurvePublicKey):
            size = _EC_CURVES[self._crv or ""][1]
            point = public.public_numbers()
            return {
                "crv": self._crv or "",
                "x": b64u_encode(point.x.to_bytes(size, "big")),
                "y": b64u_encode(point.y.to_bytes(size, "big")),
            }
        if isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return {"crv": self._crv or "", "x": b64u_encode(raw)}
        return {}

    def thumbprint(self) -> str:
        """RFC 7638 JWK thumbprint (SHA-256, base64url) over the required members."""
        if self._kty == "oct":
            members: dict[str, str] = {"k": b64u_encode(self._secret or b""), "kty": "oct"}
        else:
            members = {**self._public_members(), "kty": self._kty}
        # RFC 7638 sec. 3.2: members in lexicographic order, no whitespace.
        text = ",".join(f'"{name}":"{members[name]}"' for name in sorted(members))
        return b64u_encode(hashlib.sha256(("{" + text + "}").encode()).digest())

    def to_pem(self, *, private: bool = False, password: bytes | None = None) -> bytes:
        """Export as PEM: SubjectPublicKeyInfo, or PKCS#8 with ``private=True``."""
        if self._kty == "oct":
            raise InvalidKeyError("HMAC keys have no PEM form")
        if private:
            if self._private is None:
                raise InvalidKeyError("this is a public key")
            encryption: serialization.KeySerializationEncryption = (
                serialization.BestAvailableEncryption(password)
                if password
                else serialization.NoEncryption()
            )
            return self._private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            )
        if self._public is None:
            raise InvalidKeyError("key has no public part")
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _check_rsa_public(numbers: rsa.RSAPublicNumbers) -> None:
    # RFC 8017 sec. 3.1: e odd, 3 <= e <= n - 1 (e = 1 makes "signatures" trivial).
    if numbers.e < 3 or numbers.e % 2 == 0 or numbers.e >= numbers.n:
        raise InvalidKeyError("RSA public exponent must be odd and in [3, n-1]")


def _rsa_from_jwk(jwk: Mapping[str, Any]) -> tuple[rsa.RSAPrivateKey | None, rsa.RSAPublicKey]:
    n = _uint(jwk, "n")
    e = _uint(jwk, "e")
    numbers = rsa.RSAPublicNumbers(e, n)
    _check_rsa_public(numbers)
    if n.bit_length() < _DEFAULT_RSA_BITS:
        raise InvalidKeyError("RSA keys must be at least 2048 bits (RFC 7518 sec. 3.3)")
    present = [name for name in _RSA_PRIVATE if name in jwk]
    if "oth" in jwk:
        raise InvalidKeyError("multi-prime RSA keys (oth) are not supported")
    if not present:
        try:
            return None, numbers.public_key()
        except ValueError:
            raise InvalidKeyError("RSA public key is invalid") from None
    if len(present) != len(_RSA_PRIVATE):
        raise InvalidKeyError("an RSA private JWK needs d, p, q, dp, dq and qi")
    d, p, q, dp, dq, qi = (_uint(jwk, name) for name in _RSA_PRIVATE)
    try:
        private = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, numbers).private_key()
    except ValueError:
        raise InvalidKeyError("RSA private key members are inconsistent") from None
    return private, private.public_key()


def _ec_from_jwk(
    jwk: Mapping[str, Any], crv: str | None
) -> tuple[ec.EllipticCurvePrivateKey | None, ec.EllipticCurvePublicKey]:
    if crv not in _EC_CURVES:
        raise InvalidKeyError(f"EC curve {crv!r} is not supported")
    curve_cls, size = _EC_CURVES[crv]
    x = int.from_bytes(_fixed(jwk, "x", size) or b"", "big")
    y = int.from_bytes(_fixed(jwk, "y", size) or b"", "big")
    try:
        public = ec.EllipticCurvePublicNumbers(x, y, curve_cls()).public_key()
    except ValueError:
        raise InvalidKeyError("EC point is not on the curve") from None
    d_raw = _fixed(jwk, "d", size, required=False)
    if d_raw is None:
        return None, public
    try:
        private = ec.derive_private_key(int.from_bytes(d_raw, "big"), curve_cls())
    except ValueError:
        raise InvalidKeyError("EC private scalar is out of range") from None
    if private.public_key().public_numbers() != public.public_numbers():
        raise InvalidKeyError("EC private key does not match x and y")
    return private, public


def _okp_from_jwk(
    jwk: Mapping[str, Any], crv: str | None
) -> tuple[
    ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | None,
    ed25519.Ed25519PublicKey | ed448.Ed448PublicKey,
]:
    if crv not in _OKP_SIZES:
        # RFC 8037 sec. 3.2: X25519/X448 are key agreement keys, never signature keys.
        raise InvalidKeyError(f"OKP curve {crv!r} is not a signature curve")
    size = _OKP_SIZES[crv]
    x = _fixed(jwk, "x", size) or b""
    d = _fixed(jwk, "d", size, required=False)
    module: Any = ed25519 if crv == "Ed25519" else ed448
    prefix = "Ed25519" if crv == "Ed25519" else "Ed448"
    try:
        public = getattr(module, prefix + "PublicKey").from_public_bytes(x)
    except ValueError:
        raise InvalidKeyError(f"{crv} public key is invalid") from None
    if d is None:
        return None, public
    private = getattr(module, prefix + "PrivateKey").from_private_bytes(d)
    raw = serialization.Encoding.Raw
    if private.public_key().public_bytes(raw, serialization.PublicFormat.Raw) != x:
        raise InvalidKeyError(f"{crv} private key does not match x")
    return private, public


def _private_members(private: PrivateKey, crv: str | None) -> dict[str, str]:
    if isinstance(private, rsa.RSAPrivateKey):
        numbers = private.private_numbers()
        return {
            "d": _uint_bytes(numbers.d),
            "p": _uint_bytes(numbers.p),
            "q": _uint_bytes(numbers.q),
            "dp": _uint_bytes(numbers.dmp1),
            "dq": _uint_bytes(numbers.dmq1),
            "qi": _uint_bytes(numbers.iqmp),
        }
    if isinstance(private, ec.EllipticCurvePrivateKey):
        size = _EC_CURVES[crv or ""][1]
        return {"d": b64u_encode(private.private_numbers().private_value.to_bytes(size, "big"))}
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return {"d": b64u_encode(raw)}
