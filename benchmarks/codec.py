"""Codec benchmark: tokenward's JWT sign/verify against its peers and against the floor.

Run from the repository root::

    .venv/bin/python benchmarks/codec.py                   # full run, every algorithm
    .venv/bin/python benchmarks/codec.py --quick --algs HS256
    .venv/bin/python benchmarks/codec.py --json bench.json

What is timed, per algorithm and per operation:

* ``sign``: turn the same claims into a compact JWT (header ``alg`` + ``typ``).
* ``verify``: verify the signature AND validate the claims (``exp``, ``iat``, ``iss``,
  ``aud`` checked; ``exp``, ``iat``, ``iss``, ``aud`` required) and return the claims.

for tokenward, PyJWT, joserfc, authlib (``authlib.jose``) and python-jose, plus the
FLOOR: the raw parts alone with no checks at all (split, base64url, ``json``, the raw
``cryptography``/``hmac`` primitive). The floor is what any pure-Python codec on the
same primitives must pay; a codec's ratio to the floor is its own overhead.

Method: for each (algorithm, operation) every implementation runs a batch of N calls
(N calibrated so a batch takes about ``--batch-ms`` of CPU time), with the garbage
collector off. Repetitions are INTERLEAVED: each repetition (a "round") runs one batch of
every implementation, round-robin, starting at a different implementation each time,
so machine noise (this is a shared, noisy 2-core box) hits all of them alike. The
figure reported is the MEDIAN over repetitions of the per-call time; ``paired`` is the
median over rounds of the ratio to the floor's batch in the same round.

Every batch is timed on two clocks: ``time.perf_counter_ns`` (wall, the default for
tables and targets) and ``time.thread_time_ns`` (CPU time of this thread). When other
processes oversubscribe the CPUs, wall time mostly measures waiting for a CPU; the run
then prints a warning, and ``--clock cpu`` makes the CPU clock the primary one. Both
clocks appear in every table and in the ``--json`` output.

Before anything is timed each implementation is sanity-checked: its token must decode
to exactly the expected claims, and its verifier must REJECT a bad signature, a wrong
audience, a wrong issuer, an expired token and tokens missing ``exp`` or ``iat``, so
that a peer which silently skips work cannot look fast.
"""

from __future__ import annotations

import argparse
import binascii
import gc
import hmac
import importlib.metadata
import json
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from tokenward.jose import Key
from tokenward.jose import jwt as tw_jwt

Claims = dict[str, Any]
Signer = Callable[[Claims], str]
Verifier = Callable[[str], Claims]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

ALL_ALGS = ("HS256", "HS384", "HS512", "RS256", "PS256", "ES256", "EdDSA")
OPS = ("sign", "verify")
FLOOR = "floor"
TOKENWARD = "tokenward"
PEERS = ("pyjwt", "joserfc", "authlib", "python-jose")

ISSUER = "https://auth.example.com"
AUDIENCE = "https://api.example.com"
REQUIRED = ("exp", "iat", "iss", "aud")
# One set of claims for everyone, fixed at start-up; exp is far enough ahead for any run.
NOW = int(time.time())
CLAIMS: Claims = {
    "iss": ISSUER,
    "sub": "user-8f14e45f",
    "aud": AUDIENCE,
    "iat": NOW,
    "exp": NOW + 6 * 3600,
    "jti": "0f8fad5b-d9cb-469f-a165-70867728950e",
    "scope": "read:items write:items",
}

_HASH_NAMES = {"256": "sha256", "384": "sha384", "512": "sha512"}
_HASH_CLASSES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


# -- key material, shared by every implementation ----------------------------------------


@dataclass(frozen=True)
class Material:
    """One algorithm's keys, in the raw forms each library is handed (pre-loaded, once)."""

    alg: str
    secret: bytes | None = None
    private: PrivateKey | None = None
    public: PublicKey | None = None

    @property
    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        assert self.private is not None
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_pem(self) -> bytes:
        """The public key as SubjectPublicKeyInfo PEM."""
        assert self.public is not None
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


_RSA_CACHE: list[rsa.RSAPrivateKey] = []


def make_material(alg: str) -> Material:
    """Create fresh keys for ``alg``: HMAC secrets as long as the hash, RSA 2048, P-256."""
    if alg.startswith("HS"):
        # A secret as long as the hash output: no peer warns about a short key.
        return Material(alg, secret=bytes(range(int(alg[2:]) // 8)))
    private: PrivateKey
    if alg[:2] in ("RS", "PS"):
        if not _RSA_CACHE:  # RS256 and PS256 share one 2048-bit key.
            _RSA_CACHE.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        private = _RSA_CACHE[0]
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise SystemExit(f"unsupported algorithm {alg!r}; choose from {', '.join(ALL_ALGS)}")
    return Material(alg, private=private, public=private.public_key())


# -- implementations ----------------------------------------------------------------------


@dataclass
class Impl:
    """One implementation: how it signs the claims and how it verifies a token."""

    name: str
    sign: Signer
    verify: Verifier
    checks_claims: bool = True
    notes: list[str] = field(default_factory=list)


def tokenward_impl(m: Material) -> Impl:
    """tokenward, with the claim rules every peer gets: iss, aud, exp and iat required."""
    if m.secret is not None:
        key = Key.from_secret(m.secret, alg=m.alg)
    else:
        # from_pem without kid: the header is {"alg", "typ"}, like every peer's.
        key = Key.from_pem(m.private_pem, alg=m.alg)
    public = key if m.secret is not None else key.public_key()
    # functools.partial adds no Python frame: the timed call is jwt.encode/decode itself.
    sign: Signer = partial(tw_jwt.encode, key=key, alg=m.alg)
    verify: Verifier = partial(
        tw_jwt.decode,
        key=public,
        algorithms=[m.alg],
        issuer=ISSUER,
        audience=AUDIENCE,
        # iss and aud are already required by issuer=/audience=; listed for symmetry.
        require=REQUIRED,
    )
    return Impl(TOKENWARD, sign, verify)


def pyjwt_impl(m: Material) -> Impl:
    """PyJWT: cryptography key objects are passed as they are (no per-call PEM parsing)."""
    import jwt as pyjwt

    sign_key: Any = m.secret if m.secret is not None else m.private
    verify_key: Any = m.secret if m.secret is not None else m.public
    sign: Signer = partial(pyjwt.encode, key=sign_key, algorithm=m.alg)
    # PyJWT checks exp, nbf, iat (also refuses a future iat), iss and aud by default;
    # "require" makes the four claims mandatory.
    verify: Verifier = partial(
        pyjwt.decode,
        key=verify_key,
        algorithms=[m.alg],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": list(REQUIRED)},
    )
    return Impl("pyjwt", sign, verify)


def joserfc_impl(m: Material) -> Impl:
    """joserfc: decode verifies the signature only; a JWTClaimsRegistry validates claims."""
    from joserfc import jwt as jrfc_jwt
    from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

    notes: list[str] = []
    alg = m.alg
    if alg == "EdDSA":
        # joserfc emits a SecurityWarning on every use of "EdDSA" (deprecated by RFC 9864)
        # and recommends the fully specified "Ed25519": same curve, same signature bytes.
        alg = "Ed25519"
        notes.append('signs/verifies with alg "Ed25519" (RFC 9864 name; joserfc warns on "EdDSA")')
    sign_key: OctKey | RSAKey | ECKey | OKPKey
    verify_key: OctKey | RSAKey | ECKey | OKPKey
    if m.secret is not None:
        sign_key = verify_key = OctKey.import_key(m.secret)
    elif isinstance(m.private, rsa.RSAPrivateKey):
        sign_key, verify_key = RSAKey.import_key(m.private_pem), RSAKey.import_key(m.public_pem)
    elif isinstance(m.private, ec.EllipticCurvePrivateKey):
        sign_key, verify_key = ECKey.import_key(m.private_pem), ECKey.import_key(m.public_pem)
    else:
        sign_key, verify_key = OKPKey.import_key(m.private_pem), OKPKey.import_key(m.public_pem)
    algorithms = [alg]
    header = {"alg": alg}
    registry = jrfc_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
        iat={"essential": True},
    )
    encode = jrfc_jwt.encode
    decode = jrfc_jwt.decode
    validate = registry.validate

    def sign(claims: Claims) -> str:
        return encode(header, claims, sign_key, algorithms=algorithms)

    def verify(token: str) -> Claims:
        claims = decode(token, verify_key, algorithms=algorithms).claims
        validate(claims)  # exp, nbf, iat checked when present; iss/aud values.
        return claims

    return Impl("joserfc", sign, verify, notes=notes)


def authlib_impl(m: Material) -> Impl:
    """authlib.jose: JWTClaims.validate() checks the claims decode() returns."""
    with warnings.catch_warnings(record=True):
        # authlib.jose warns (with an "always" filter it installs) that it is deprecated
        # in favour of joserfc; recording swallows that one import-time warning.
        from authlib.jose import ECKey, JsonWebToken, OctKey, OKPKey, RSAKey

    key_cls: Any
    if m.secret is not None:
        sign_key = verify_key = OctKey.import_key(m.secret)
    else:
        if isinstance(m.private, rsa.RSAPrivateKey):
            key_cls = RSAKey
        elif isinstance(m.private, ec.EllipticCurvePrivateKey):
            key_cls = ECKey
        else:
            key_cls = OKPKey
        sign_key, verify_key = key_cls.import_key(m.private), key_cls.import_key(m.public)
    jwt = JsonWebToken([m.alg])
    header = {"alg": m.alg}
    options = {
        "iss": {"essential": True, "value": ISSUER},
        "aud": {"essential": True, "value": AUDIENCE},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
    encode = jwt.encode
    decode = jwt.decode

    def sign(claims: Claims) -> str:
        token: bytes = encode(header, claims, sign_key)
        return token.decode("ascii")

    def verify(token: str) -> Claims:
        claims = decode(token, verify_key, claims_options=options)
        # validate() checks the essentials, iss, aud, exp, nbf and iat (type, and
        # refuses one in the future).
        claims.validate()
        validated: Claims = claims  # JWTClaims is a dict subclass; no copy is timed.
        return validated

    return Impl("authlib", sign, verify)


def python_jose_impl(m: Material) -> Impl | None:
    """python-jose (cryptography backend); it has neither PS256 nor EdDSA."""
    from jose import jwk as jose_jwk
    from jose import jwt as jose_jwt

    if m.alg.startswith("PS") or m.alg == "EdDSA":
        return None
    if m.secret is not None:
        sign_key = verify_key = jose_jwk.construct(m.secret, m.alg)
    else:
        sign_key = jose_jwk.construct(m.private_pem, m.alg)
        verify_key = jose_jwk.construct(m.public_pem, m.alg)
    sign: Signer = partial(jose_jwt.encode, key=sign_key, algorithm=m.alg)
    # python-jose checks exp, nbf, iss and aud; for iat it checks the type only and has
    # no option to refuse an iat in the future.
    verify: Verifier = partial(
        jose_jwt.decode,
        key=verify_key,
        algorithms=[m.alg],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={f"require_{name}": True for name in REQUIRED},
    )
    return Impl("python-jose", sign, verify)


# -- the floor ----------------------------------------------------------------------------
# The raw parts with no checks whatsoever: no size or alphabet check, no header
# validation, no allow-list, no claim check. Everything is inlined in one function
# (no helper frames) and bound to closure variables, so it is the cheapest plain-Python
# way to do the work every JWT codec must do.

# bytes.translate is a plain 256-entry table lookup; str.translate with a dict table (the
# str.maketrans kind) looks each distinct character up in a dict on every call and costs
# several times more, so the floor works on the token's bytes (as base64's
# urlsafe_b64decode does internally).
_TO_STD = bytes.maketrans(b"-_", b"+/")
_FROM_STD = bytes.maketrans(b"+/", b"-_")
_PAD = (b"", b"", b"==", b"=")
# A prebuilt compact encoder: json.dumps(separators=...) would build one per call.
_DUMPS = json.JSONEncoder(separators=(",", ":")).encode

RawVerify = Callable[[bytes, bytes], bool]
RawSign = Callable[[bytes], bytes]


def _raw_primitives(m: Material) -> tuple[RawVerify, RawSign]:
    """The bare cryptographic calls for ``m.alg``: ``(verify(msg, sig), sign(msg))``."""
    family, size = m.alg[:2], m.alg[2:]
    if family == "HS":
        assert m.secret is not None
        secret, name = m.secret, _HASH_NAMES[size]
        digest, same = hmac.digest, hmac.compare_digest

        def hs_verify(msg: bytes, sig: bytes) -> bool:
            return same(digest(secret, msg, name), sig)

        return hs_verify, partial(digest, secret, digest=name)
    if family in ("RS", "PS"):
        assert isinstance(m.private, rsa.RSAPrivateKey)
        assert isinstance(m.public, rsa.RSAPublicKey)
        hash_cls = _HASH_CLASSES[_HASH_NAMES[size]]
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if family == "RS"
            else padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_cls().digest_size)
        )
        hash_obj = hash_cls()
        rsa_check, rsa_sign = m.public.verify, m.private.sign

        def rsa_verify(msg: bytes, sig: bytes) -> bool:
            rsa_check(sig, msg, pad, hash_obj)  # raises InvalidSignature
            return True

        def rsa_sign_raw(msg: bytes) -> bytes:
            return rsa_sign(msg, pad, hash_obj)

        return rsa_verify, rsa_sign_raw
    if family == "ES":
        assert isinstance(m.private, ec.EllipticCurvePrivateKey)
        assert isinstance(m.public, ec.EllipticCurvePublicKey)
        scheme = ec.ECDSA(hashes.SHA256())
        # tokenward signs with RFC 6979 deterministic nonces; the floor makes the same
        # cryptography call (about 1.2x a random-nonce signature), so the ratio measures
        # tokenward's own overhead. Peers sign with random nonces.
        sign_scheme = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
        ec_check, ec_sign = m.public.verify, m.private.sign
        from_bytes = int.from_bytes

        def es_verify(msg: bytes, sig: bytes) -> bool:
            # cryptography only takes DER: R||S must be re-encoded (part of the floor).
            der = encode_dss_signature(from_bytes(sig[:32], "big"), from_bytes(sig[32:], "big"))
            ec_check(der, msg, scheme)
            return True

        def es_sign(msg: bytes) -> bytes:
            r, s = decode_dss_signature(ec_sign(msg, sign_scheme))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        return es_verify, es_sign
    assert isinstance(m.private, ed25519.Ed25519PrivateKey)
    assert isinstance(m.public, ed25519.Ed25519PublicKey)
    ed_check = m.public.verify

    def ed_verify(msg: bytes, sig: bytes) -> bool:
        ed_check(sig, msg)
        return True

    return ed_verify, m.private.sign


def floor_impl(m: Material) -> Impl:
    """The floor: split, base64url, json and the raw primitive, with no checks at all."""
    raw_verify, raw_sign = _raw_primitives(m)
    a2b, b2a, loads = binascii.a2b_base64, binascii.b2a_base64, json.loads
    to_std, from_std, pads, dumps = _TO_STD, _FROM_STD, _PAD, _DUMPS
    header = {"alg": m.alg, "typ": "JWT"}

    def verify(token: str) -> Claims:
        signing_input, _, s64 = token.encode().rpartition(b".")
        h64, p64 = signing_input.split(b".")
        loads(a2b(h64.translate(to_std) + pads[len(h64) & 3]))
        claims: Claims = loads(a2b(p64.translate(to_std) + pads[len(p64) & 3]))
        signature = a2b(s64.translate(to_std) + pads[len(s64) & 3])
        if not raw_verify(signing_input, signature):
            raise ValueError("bad signature")
        return claims

    def sign(claims: Claims) -> str:
        h64 = b2a(dumps(header).encode(), newline=False).translate(from_std).rstrip(b"=")
        p64 = b2a(dumps(claims).encode(), newline=False).translate(from_std).rstrip(b"=")
        signing_input = h64 + b"." + p64
        s64 = b2a(raw_sign(signing_input), newline=False).translate(from_std).rstrip(b"=")
        return (signing_input + b"." + s64).decode()

    return Impl(FLOOR, sign, verify, checks_claims=False)


BUILDERS: dict[str, Callable[[Material], Impl | None]] = {
    FLOOR: floor_impl,
    TOKENWARD: tokenward_impl,
    "pyjwt": pyjwt_impl,
    "joserfc": joserfc_impl,
    "authlib": authlib_impl,
    "python-jose": python_jose_impl,
}


# -- sanity checks ------------------------------------------------------------------------


def _rejects(impl: Impl, token: str) -> bool:
    try:
        impl.verify(token)
    except Exception:  # noqa: BLE001 - every library has its own exception hierarchy
        return True
    return False


def _tamper(token: str) -> str:
    # Flip one base64url character in the middle of the signature.
    head, _, sig = token.rpartition(".")
    i = len(sig) // 2
    return f"{head}.{sig[:i]}{'A' if sig[i] != 'A' else 'B'}{sig[i + 1 :]}"


def reference_verifier(m: Material) -> Verifier:
    """tokenward's verifier used to cross-check every token, peers' included.

    For EdDSA it also accepts RFC 9864's "Ed25519" name, which joserfc signs with.
    """
    if m.alg != "EdDSA":
        return tokenward_impl(m).verify
    return partial(
        tw_jwt.decode,
        key=Key.from_pem(m.public_pem),  # unbound: usable with "EdDSA" and "Ed25519"
        algorithms=["EdDSA", "Ed25519"],
        issuer=ISSUER,
        audience=AUDIENCE,
        require=REQUIRED,
    )


def sanity_check(impl: Impl, reference: Verifier) -> tuple[str, list[str]]:
    """Check ``impl`` once; return its own token and problems (empty when all is well).

    Its token must verify (by itself and by ``reference``) to exactly CLAIMS; its
    verifier must refuse a bad signature and, when it checks claims, wrong ``aud``,
    wrong ``iss``, an expired token and missing ``exp``/``iat``.
    """
    problems: list[str] = []
    token = impl.sign(dict(CLAIMS))
    got = impl.verify(token)
    if got != CLAIMS:
        problems.append(f"own token decodes to {got!r}, not the expected claims")
    try:
        if reference(token) != CLAIMS:
            problems.append("its token decodes to other claims under tokenward")
    except Exception as exc:  # noqa: BLE001 - report, do not crash
        problems.append(f"tokenward refuses its token: {exc!r}")
    if not _rejects(impl, _tamper(token)):
        problems.append("accepts a bad signature")
    if impl.checks_claims:
        bad: dict[str, Claims] = {
            "a wrong audience": {**CLAIMS, "aud": "https://other.example.com"},
            "a wrong issuer": {**CLAIMS, "iss": "https://evil.example.com"},
            "an expired token": {**CLAIMS, "iat": NOW - 7200, "exp": NOW - 3600},
            "a token without exp": {k: v for k, v in CLAIMS.items() if k != "exp"},
            "a token without iat": {k: v for k, v in CLAIMS.items() if k != "iat"},
        }
        problems += [
            f"accepts {what}"
            for what, claims in bad.items()
            if not _rejects(impl, impl.sign(claims))
        ]
    return token, problems


def future_iat_note(impl: Impl) -> str | None:
    """Informational: whether ``impl`` refuses an ``iat`` an hour in the future."""
    if not impl.checks_claims:
        return None
    token = impl.sign({**CLAIMS, "iat": NOW + 3600})
    return None if _rejects(impl, token) else "accepts an iat in the future (not checked)"


# -- timing -------------------------------------------------------------------------------


def time_batch(fn: Callable[[], object], n: int) -> tuple[int, int]:
    """Run ``fn`` ``n`` times with the GC off; return elapsed ``(wall, cpu)`` nanoseconds.

    Wall time is ``time.perf_counter_ns``; CPU time is ``time.thread_time_ns``, the time
    this thread actually ran, which leaves out the time it waited for a CPU while other
    processes had it (on an oversubscribed machine wall time mostly measures the queue).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        cpu_start = time.thread_time_ns()
        start = time.perf_counter_ns()
        for _ in repeat(None, n):
            fn()
        wall = time.perf_counter_ns() - start
        cpu = time.thread_time_ns() - cpu_start
    finally:
        if was_enabled:
            gc.enable()
    return wall, cpu


def calibrate(fn: Callable[[], object], target_ns: int) -> int:
    """Find a batch size N so that one batch takes about ``target_ns`` of CPU time."""
    n = 1
    while True:
        elapsed = time_batch(fn, n)[1]
        if elapsed >= target_ns // 8 or n >= 1 << 22:
            return max(1, round(n * target_ns / max(elapsed, 1)))
        n *= 4


CLOCKS = ("wall", "cpu")


@dataclass
class Series:
    """Timings of one implementation for one (algorithm, operation), per repetition.

    Both clocks are recorded for every batch; ``clock`` picks the one the statistics
    use (:meth:`on` gives the same samples seen through the other clock).
    """

    impl: str
    batch: int
    wall_ns: list[float] = field(default_factory=list)
    cpu_ns: list[float] = field(default_factory=list)
    clock: str = "wall"

    def on(self, clock: str) -> Series:
        """The same samples, with statistics taken on ``clock``."""
        return Series(self.impl, self.batch, self.wall_ns, self.cpu_ns, clock)

    @property
    def per_call_ns(self) -> list[float]:
        """Per-call nanoseconds of each repetition on the selected clock."""
        return self.wall_ns if self.clock == "wall" else self.cpu_ns

    @property
    def median_us(self) -> float:
        """Median over repetitions of the per-call time, in microseconds."""
        return statistics.median(self.per_call_ns) / 1000

    def quantile_us(self, q: float) -> float:
        """Interpolated quantile ``q`` of the per-call time, in microseconds."""
        data = sorted(self.per_call_ns)
        pos = q * (len(data) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(data) - 1)
        return (data[lo] + (data[hi] - data[lo]) * (pos - lo)) / 1000

    def paired_ratio(self, base: Series) -> float:
        """Median over repetitions of this / ``base``, each pair timed in the same round.

        Both batches of a pair ran within one round-robin round, so slow phases of the
        machine that last longer than a round cancel out of the ratio.
        """
        other = base.on(self.clock).per_call_ns
        return statistics.median(a / b for a, b in zip(self.per_call_ns, other, strict=True))


def run_group(
    calls: dict[str, Callable[[], object]], reps: int, target_ns: int, clock: str
) -> dict[str, Series]:
    """Time every callable in ``calls``, interleaved round-robin, ``reps`` times."""
    names = list(calls)
    for fn in calls.values():  # warm-up: caches, lazy imports, branch predictors
        time_batch(fn, 20)
    series = {name: Series(name, calibrate(calls[name], target_ns), clock=clock) for name in names}
    for rep in range(reps):
        gc.collect()
        # Round-robin, starting one further along each repetition.
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            s = series[name]
            wall, cpu = time_batch(calls[name], s.batch)
            s.wall_ns.append(wall / s.batch)
            s.cpu_ns.append(cpu / s.batch)
    return series


# -- reporting ----------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Versions of Python, OpenSSL and every distribution involved."""
    from cryptography.hazmat.backends.openssl.backend import backend

    found = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "openssl": backend.openssl_version_text(),
    }
    for dist in ("tokenward", "cryptography", "PyJWT", "joserfc", "Authlib", "python-jose"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "not installed"
    found["codec source"] = codec_fingerprint()
    return found


def codec_fingerprint() -> str:
    """A short hash of tokenward.jose's source, to tie figures to the code they measured."""
    import hashlib

    import tokenward.jose

    root = Path(tokenward.jose.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"sha256:{digest.hexdigest()[:12]} ({root})"


@dataclass
class Target:
    """One PASS/FAIL line."""

    label: str
    value: float
    limit: float
    at_least: bool = False
    paired: float | None = None
    other: str = ""

    @property
    def passed(self) -> bool:
        """Whether the measured value meets the limit."""
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def line(self) -> str:
        """The printed line: verdict, label, value, target."""
        sign = ">=" if self.at_least else "<="
        verdict = "PASS" if self.passed else "FAIL"
        paired = f"; paired {self.paired:.2f}x" if self.paired is not None else ""
        other = f"; {self.other}" if self.other else ""
        return (
            f"{verdict}  {self.label}: {self.value:.2f}x"
            f" (target {sign} {self.limit:g}x{paired}{other})"
        )


def targets_for(alg: str, op: str, series: dict[str, Series]) -> list[Target]:
    """The targets that apply to one (alg, op) group, judged on the series' clock."""
    if TOKENWARD not in series or FLOOR not in series:
        return []
    tw, floor = series[TOKENWARD], series[FLOOR]
    clock = tw.clock
    alt = "cpu" if clock == "wall" else "wall"
    hmac_alg = alg.startswith("HS")
    limit = (1.4 if hmac_alg else 1.15) if op == "verify" else (1.5 if hmac_alg else 1.1)
    out = [
        Target(
            f"{alg} {op}, tokenward / floor [{clock}]",
            tw.median_us / floor.median_us,
            limit,
            paired=tw.paired_ratio(floor),
            other=f"{alt} {tw.on(alt).median_us / floor.on(alt).median_us:.2f}x",
        )
    ]
    peers = [s for name, s in series.items() if name in PEERS]
    if op == "verify" and hmac_alg and peers:
        best = min(peers, key=lambda s: s.median_us)
        best_alt = min((s.on(alt) for s in peers), key=lambda s: s.median_us)
        out.append(
            Target(
                f"{alg} verify, fastest peer ({best.impl}) / tokenward [{clock}]",
                best.median_us / tw.median_us,
                4.0,
                at_least=True,
                paired=best.paired_ratio(tw),
                other=f"{alt} {best_alt.median_us / tw.on(alt).median_us:.2f}x ({best_alt.impl})",
            )
        )
    return out


def print_table(
    alg: str, op: str, series: dict[str, Series], reps: int, notes: dict[str, list[str]]
) -> None:
    """Print one (alg, op) table: median, spread, ratio to floor, peer/tokenward.

    ``x floor`` is the ratio of medians, ``paired`` the median of per-round ratios; the
    last two columns give the median and the ratio of medians on the other clock.
    """
    floor_series = series.get(FLOOR)
    clock = next(iter(series.values())).clock if series else "wall"
    alt = "cpu" if clock == "wall" else "wall"
    peers = [s for name, s in series.items() if name in PEERS]
    best = min(peers, key=lambda s: s.median_us) if peers else None
    nan = float("nan")
    print(f"\n{alg} {op}  ({reps} interleaved reps; median per call; clock: {clock})")
    print(
        f"  {'impl':<12} {'median us':>10} {'p25..p75 us':>17} {'x floor':>8} {'paired':>7}"
        f" {alt + ' us':>9} {'x floor':>8}  notes"
    )
    for name, s in series.items():
        spread = f"{s.quantile_us(0.25):.2f}..{s.quantile_us(0.75):.2f}"
        x_floor = s.median_us / floor_series.median_us if floor_series else nan
        paired = s.paired_ratio(floor_series) if floor_series else nan
        s_alt = s.on(alt)
        alt_x = s_alt.median_us / floor_series.on(alt).median_us if floor_series else nan
        extra = list(notes.get(name, []))
        if name == TOKENWARD and best is not None:
            extra.insert(
                0, f"fastest peer ({best.impl}) / tokenward = {best.median_us / s.median_us:.2f}x"
            )
        print(
            f"  {name:<12} {s.median_us:>10.2f} {spread:>17} {x_floor:>7.2f}x {paired:>6.2f}x"
            f" {s_alt.median_us:>9.2f} {alt_x:>7.2f}x  {'; '.join(extra)}".rstrip()
        )


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="few short reps (a smoke test)")
    parser.add_argument(
        "--algs",
        default=",".join(ALL_ALGS),
        help=f"comma-separated algorithms (default: {','.join(ALL_ALGS)})",
    )
    parser.add_argument("--json", metavar="OUT", type=Path, help="write every figure to OUT")
    parser.add_argument(
        "--reps", type=int, help="repetitions per implementation (default 31; quick 5)"
    )
    parser.add_argument(
        "--batch-ms", type=float, help="target batch duration (default 20; quick 3)"
    )
    parser.add_argument(
        "--clock",
        choices=CLOCKS,
        default="wall",
        help="clock for the tables and targets: wall (perf_counter_ns, the default) or cpu"
        " (thread_time_ns; use it when the machine is oversubscribed); both are recorded",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target FAILs")
    return parser.parse_args(argv)


def prepare(
    alg: str, failed_sanity: list[str]
) -> tuple[dict[str, Impl], dict[str, str], dict[str, list[str]]]:
    """Build every implementation for ``alg`` and sanity-check it.

    Returns the implementations, the token each one will verify (only for those that
    passed the sanity check; the others are not timed) and per-implementation notes.
    """
    material = make_material(alg)
    impls: dict[str, Impl] = {}
    notes: dict[str, list[str]] = {}
    for name, build in BUILDERS.items():
        impl = build(material)
        if impl is None:
            print(f"\n[{alg}] {name}: not supported, skipped")
            continue
        impls[name] = impl
    reference = reference_verifier(material)
    tokens: dict[str, str] = {}
    for name, impl in impls.items():
        token, problems = sanity_check(impl, reference)
        note = future_iat_note(impl)
        notes[name] = impl.notes + ([note] if note else [])
        if problems:
            failed_sanity.append(f"{alg} {name}: {'; '.join(problems)}")
            print(f"\n[{alg}] {name}: SANITY CHECK FAILED ({'; '.join(problems)}); not timed")
            continue
        tokens[name] = token
    print(
        f"\n[{alg}] sanity: {', '.join(tokens)} decode their own token to the expected claims"
        " (cross-checked by tokenward) and refuse a bad signature; all but the floor refuse"
        " wrong aud, wrong iss, expired, no exp, no iat"
    )
    return impls, tokens, notes


def result_rows(
    alg: str, op: str, series: dict[str, Series], tokens: dict[str, str]
) -> list[dict[str, Any]]:
    """The JSON records of one (alg, op) group: statistics on both clocks, raw samples."""
    rows: list[dict[str, Any]] = []
    for s in series.values():
        row: dict[str, Any] = {
            "alg": alg,
            "op": op,
            "impl": s.impl,
            "batch": s.batch,
            "token_length": len(tokens[s.impl]),
        }
        for clock in CLOCKS:
            c = s.on(clock)
            floor = series[FLOOR].on(clock) if FLOOR in series else None
            row[clock] = {
                "median_us": c.median_us,
                "p25_us": c.quantile_us(0.25),
                "p75_us": c.quantile_us(0.75),
                "min_us": min(c.per_call_ns) / 1000,
                "x_floor": c.median_us / floor.median_us if floor else None,
                "paired_x_floor": c.paired_ratio(floor) if floor else None,
                "per_call_us": [ns / 1000 for ns in c.per_call_ns],
            }
        rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the process exit code."""
    args = parse_args(argv)
    algs = [a.strip() for a in args.algs.split(",") if a.strip()]
    reps = args.reps or (5 if args.quick else 31)
    batch_ms = args.batch_ms or (3.0 if args.quick else 20.0)
    target_ns = int(batch_ms * 1e6)

    info = versions()
    print("tokenward codec benchmark")
    for name, version in info.items():
        print(f"  {name:<13} {version}")
    print(f"  {'cpus':<13} {_cpu_count()}")
    print(f"  {'load avg':<13} {_load()}")
    print(
        f"  {'method':<13} {reps} interleaved reps x batch ~{batch_ms:g} ms CPU, GC off,"
        f" median; clock for tables and targets: {args.clock}"
    )

    report: dict[str, Any] = {
        "versions": info,
        "method": {"reps": reps, "batch_ms": batch_ms, "quick": args.quick, "clock": args.clock},
        "results": [],
        "targets": [],
    }
    targets: list[Target] = []
    failed_sanity: list[str] = []
    wall_total = cpu_total = 0.0
    for alg in algs:
        impls, tokens, notes = prepare(alg, failed_sanity)
        for op in OPS:
            calls: dict[str, Callable[[], object]] = {}
            for name, token in tokens.items():
                impl = impls[name]
                calls[name] = (
                    partial(impl.sign, CLAIMS) if op == "sign" else partial(impl.verify, token)
                )
            series = run_group(calls, reps, target_ns, args.clock)
            print_table(alg, op, series, reps, notes if op == "verify" else {})
            group_targets = targets_for(alg, op, series)
            targets += group_targets
            report["results"] += result_rows(alg, op, series, tokens)
            wall_total += sum(sum(s.wall_ns) * s.batch for s in series.values())
            cpu_total += sum(sum(s.cpu_ns) * s.batch for s in series.values())

    print(f"\nload avg at end: {_load()}")
    share = cpu_total / wall_total if wall_total else 1.0
    report["method"]["cpu_share"] = share
    print(f"CPU share: the timed batches ran on a CPU {share:.0%} of their wall time")
    if share < 0.9 and args.clock == "wall":
        print(
            "WARNING: the machine is oversubscribed; wall-clock figures include time spent"
            " waiting for a CPU. Rerun with --clock cpu (both clocks are in every table)."
        )
    print("\nTargets  (x = ratio of medians; paired = median of per-round ratios)")
    for target in targets:
        print(f"  {target.line()}")
        report["targets"].append(
            {
                "label": target.label,
                "value": target.value,
                "limit": target.limit,
                "passed": target.passed,
                "paired": target.paired,
            }
        )
    for problem in failed_sanity:
        print(f"  SANITY {problem}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    if failed_sanity:
        return 2
    if args.strict and not all(t.passed for t in targets):
        return 1
    return 0


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _cpu_count() -> str:
    import os

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{usable} usable of {os.cpu_count()}"


if __name__ == "__main__":
    sys.exit(main())
