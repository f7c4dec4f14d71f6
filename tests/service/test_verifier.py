"""The resource-server Verifier: full checks, the verified-token cache, scopes, deny list."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from tokenward.errors import (
    AlgorithmNotAllowedError,
    BadSignatureError,
    ClaimError,
    ConfigurationError,
    ExpiredTokenError,
    InvalidTokenError,
    KeyNotFoundError,
    MalformedTokenError,
    MissingClaimError,
    TokenwardError,
)
from tokenward.jose import Key, KeySet, jwt
from tokenward.service import (
    AccessClaims,
    DenyList,
    InsufficientScopeError,
    KeyRingKeys,
    SessionRevokedTokenError,
    StaticKeys,
    TokenPolicy,
    TokenService,
    Verifier,
    WrongTokenTypeError,
)
from tokenward.stores.base import RevocationEvent, RevocationKind
from tokenward.stores.memory import MemoryStore
from tokenward.testing import FrozenClock

ISSUER = "https://auth.test"
AUDIENCE = "api"
NOW = 1_800_000_000


def mint(key: Key, *, typ: str = "at+jwt", **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER, "sub": "ada", "aud": AUDIENCE, "iat": NOW, "nbf": NOW,
        "exp": NOW + 900, "jti": "j-" + str(overrides.get("sid", "s1")), "sid": "s1",
        "scope": "read write", "token_type": "access", "client_id": "web",
    }  # fmt: skip
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, typ=typ)


@pytest.fixture
def key() -> Key:
    return Key.generate("ES256", kid="k1")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def verifier(key: Key, clock: FrozenClock) -> Verifier:
    return Verifier(KeySet([key.public_key()]), issuer=ISSUER, audience=AUDIENCE, clock=clock)


def session_revoked(sid: str, seq: int = 1) -> RevocationEvent:
    return RevocationEvent(seq, RevocationKind.SESSION, NOW, NOW + 900, sid=sid)


# -- full verification ----------------------------------------------------------------------


def test_verify_returns_typed_claims(verifier: Verifier, key: Key) -> None:
    claims = verifier.verify(mint(key))
    assert (claims.sub, claims.sid, claims.client_id) == ("ada", "s1", "web")
    assert claims.scopes == {"read", "write"}
    assert (claims.iat, claims.exp) == (NOW, NOW + 900)
    assert claims.claims["iss"] == ISSUER


def test_verified_claims_are_a_frozen_access_claims_like_one_built_directly(
    verifier: Verifier, key: Key
) -> None:
    claims = verifier.verify(mint(key, sid=7, iat=NOW - 0.5, client_id=["x"]))
    assert type(claims) is AccessClaims
    built = AccessClaims(
        sub="ada", sid="7", scopes=frozenset({"read", "write"}), client_id=None, jti="j-7",
        iat=NOW - 1, exp=NOW + 900, claims=claims.claims,
    )  # fmt: skip
    assert claims == built
    assert repr(claims) == repr(built)
    assert (type(claims.sid), type(claims.iat)) == (str, int)
    with pytest.raises(dataclasses.FrozenInstanceError):
        claims.sub = "eve"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del claims.scopes


async def test_token_from_token_service_verifies_with_published_jwks(clock: FrozenClock) -> None:
    store = MemoryStore()
    service = await TokenService.create(
        store, TokenPolicy(issuer=ISSUER, audience=AUDIENCE), clock=clock
    )
    pair = await service.issue("ada", scope="read")
    published = StaticKeys(KeySet.from_jwks(service.keyring.jwks()))
    remote = Verifier(published, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    assert remote.verify(pair.access_token, scopes=["read"]).sid == pair.sid


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param({"iss": "https://evil.test"}, ClaimError, id="wrong-issuer"),
        pytest.param({"aud": "other-api"}, ClaimError, id="wrong-audience"),
        pytest.param({"exp": NOW}, ExpiredTokenError, id="expired"),
        pytest.param({"sid": None}, MissingClaimError, id="no-sid"),
        pytest.param({"jti": None}, MissingClaimError, id="no-jti"),
        pytest.param({"scope": ["read"]}, MissingClaimError, id="scope-not-a-string"),
    ],
)
def test_claims_are_checked(
    verifier: Verifier, key: Key, overrides: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        verifier.verify(mint(key, **overrides))


def test_refresh_typed_token_is_wrong_type(verifier: Verifier, key: Key) -> None:
    with pytest.raises(WrongTokenTypeError) as caught:
        verifier.verify(mint(key, typ="rt+jwt", token_type="refresh"))
    assert caught.value.code == "wrong_token_type"


def test_at_jwt_with_refresh_token_type_is_wrong_type(verifier: Verifier, key: Key) -> None:
    with pytest.raises(WrongTokenTypeError):
        verifier.verify(mint(key, token_type="refresh"))


async def test_refresh_token_from_service_is_wrong_type(clock: FrozenClock) -> None:
    service = await TokenService.create(
        MemoryStore(), TokenPolicy(issuer=ISSUER, audience=AUDIENCE), clock=clock
    )
    pair = await service.issue("ada")
    verifier = Verifier(KeyRingKeys(service.keyring), issuer=ISSUER, audience=AUDIENCE, clock=clock)
    with pytest.raises(WrongTokenTypeError):
        verifier.verify(pair.refresh_token)


def test_token_signed_by_another_key_with_same_kid_is_refused(verifier: Verifier) -> None:
    forger = Key.generate("ES256", kid="k1")
    with pytest.raises(BadSignatureError):
        verifier.verify(mint(forger))


def test_unknown_kid_is_refused(verifier: Verifier) -> None:
    with pytest.raises(KeyNotFoundError):
        verifier.verify(mint(Key.generate("ES256", kid="k2")))


def test_algorithm_outside_explicit_allow_list_is_refused(key: Key, clock: FrozenClock) -> None:
    verifier = Verifier(
        KeySet([key.public_key()]), issuer=ISSUER, audience=AUDIENCE, clock=clock,
        algorithms=["EdDSA"],
    )  # fmt: skip
    with pytest.raises(AlgorithmNotAllowedError):
        verifier.verify(mint(key))


def test_empty_key_set_refuses_with_key_not_found(clock: FrozenClock, key: Key) -> None:
    verifier = Verifier(KeySet([]), issuer=ISSUER, audience=AUDIENCE, clock=clock)
    with pytest.raises(KeyNotFoundError):
        verifier.verify(mint(key))


@pytest.mark.parametrize("token", [None, 42, ["a.b.c"]], ids=["none", "int", "list"])
def test_non_string_token_is_malformed(verifier: Verifier, token: Any) -> None:
    with pytest.raises(MalformedTokenError):
        verifier.verify(token)


def test_leeway_accepts_just_expired_token(key: Key, clock: FrozenClock) -> None:
    verifier = Verifier(
        KeySet([key.public_key()]), issuer=ISSUER, audience=AUDIENCE, clock=clock, leeway=5
    )
    clock.set(NOW + 904)
    assert verifier.verify(mint(key)).sub == "ada"


def test_configuration_is_checked(key: Key) -> None:
    keys = KeySet([key.public_key()])
    with pytest.raises(ConfigurationError):
        Verifier(keys, issuer="", audience=AUDIENCE)
    with pytest.raises(ConfigurationError):
        Verifier(keys, issuer=ISSUER, audience=AUDIENCE, algorithms=[])
    with pytest.raises(ConfigurationError):
        Verifier(keys, issuer=ISSUER, audience=AUDIENCE, cache_size=-1)
    with pytest.raises(ConfigurationError):
        Verifier(keys, issuer=ISSUER, audience=AUDIENCE, leeway=-1)


# -- the verified-token cache ------------------------------------------------------------------


def test_thousand_verifies_of_one_token_cost_one_signature_verification(
    verifier: Verifier, key: Key, clock: FrozenClock
) -> None:
    token = mint(key)
    for _ in range(1000):
        assert verifier.verify(token).sub == "ada"
        clock.advance(0.5)
    assert verifier.stats.signature_verifications == 1
    assert verifier.stats.cache_hits == 999


def test_cached_token_is_refused_at_exp(verifier: Verifier, key: Key, clock: FrozenClock) -> None:
    token = mint(key)
    verifier.verify(token)
    clock.set(NOW + 899.999)
    verifier.verify(token)
    clock.set(NOW + 900)
    with pytest.raises(ExpiredTokenError) as caught:
        verifier.verify(token)
    assert caught.value.claim == "exp"
    assert verifier.cached_tokens == 0  # dropped at expiry
    assert verifier.stats.signature_verifications == 1


def test_cached_token_expiry_honours_leeway(key: Key, clock: FrozenClock) -> None:
    verifier = Verifier(
        KeySet([key.public_key()]), issuer=ISSUER, audience=AUDIENCE, clock=clock, leeway=5
    )
    token = mint(key)
    verifier.verify(token)
    clock.set(NOW + 904.5)
    verifier.verify(token)
    clock.set(NOW + 905)
    with pytest.raises(ExpiredTokenError):
        verifier.verify(token)


def test_revoked_session_cached_token_refused_at_once(
    verifier: Verifier, key: Key, clock: FrozenClock
) -> None:
    token = mint(key, sid="s1")
    other = mint(key, sid="s2")
    verifier.verify(token)
    verifier.verify(other)
    verifier.deny.apply(session_revoked("s1"))
    with pytest.raises(SessionRevokedTokenError) as caught:
        verifier.verify(token)
    assert caught.value.code == "token_revoked"
    assert verifier.verify(other).sid == "s2"
    # Refusing a revoked cached token costs no signature verification either.
    for _ in range(10):
        with pytest.raises(SessionRevokedTokenError):
            verifier.verify(token)
    assert verifier.stats.signature_verifications == 2


def test_revoked_user_and_revoke_all_apply_to_cached_tokens(
    verifier: Verifier, key: Key, clock: FrozenClock
) -> None:
    ada = mint(key, sid="s1", sub="ada")
    bob = mint(key, sid="s2", sub="bob")
    verifier.verify(ada)
    verifier.verify(bob)
    clock.advance(60)
    verifier.deny.apply(RevocationEvent(1, RevocationKind.USER, NOW + 60, NOW + 960, sub="ada"))
    with pytest.raises(SessionRevokedTokenError):
        verifier.verify(ada)
    assert verifier.verify(bob).sub == "bob"
    verifier.deny.apply(RevocationEvent(2, RevocationKind.ALL, NOW + 60, NOW + 960))
    with pytest.raises(SessionRevokedTokenError):
        verifier.verify(bob)


def test_revoked_token_seen_first_after_revocation_is_refused(verifier: Verifier, key: Key) -> None:
    verifier.deny.apply(session_revoked("s1"))
    with pytest.raises(SessionRevokedTokenError):
        verifier.verify(mint(key, sid="s1"))


def test_refused_tokens_are_not_cached(verifier: Verifier) -> None:
    forged = mint(Key.generate("ES256", kid="k1"))
    for _ in range(3):
        with pytest.raises(BadSignatureError):
            verifier.verify(forged)
    assert verifier.cached_tokens == 0
    assert verifier.stats.signature_verifications == 3


def test_cache_is_bounded(key: Key, clock: FrozenClock) -> None:
    verifier = Verifier(
        KeySet([key.public_key()]), issuer=ISSUER, audience=AUDIENCE, clock=clock, cache_size=64
    )
    tokens = [mint(key, sid=f"s{i}") for i in range(300)]
    for token in tokens:
        verifier.verify(token)
        assert verifier.cached_tokens <= 64
    assert verifier.stats.cache_evictions >= 300 - 64
    # The newest token is still cached, the oldest is not.
    verifier.verify(tokens[-1])
    assert verifier.stats.cache_hits == 1
    verifier.verify(tokens[0])
    assert verifier.stats.signature_verifications == 301


def test_a_flood_of_tokens_seen_once_does_not_push_out_a_token_in_use(
    key: Key, clock: FrozenClock
) -> None:
    # Eviction gives a used token a second chance: a client sending its token between
    # hundreds of tokens each seen once keeps it cached (first-in-first-out would drop
    # it after 64 insertions and verify it again every time it came back).
    verifier = Verifier(
        KeySet([key.public_key()]), issuer=ISSUER, audience=AUDIENCE, clock=clock, cache_size=64
    )
    hot = mint(key, sid="hot")
    verifier.verify(hot)
    flood = [mint(key, sid=f"once{i}") for i in range(400)]
    for i, token in enumerate(flood):
        verifier.verify(token)
        if i % 16 == 0:
            verifier.verify(hot)
        assert verifier.cached_tokens <= 64
    assert verifier.stats.signature_verifications == 1 + len(flood)
    assert verifier.stats.cache_hits == 25
    assert verifier.stats.cache_evictions >= len(flood) + 1 - 64
    assert len(verifier._used) <= verifier.cached_tokens
    # A token of the flood is evicted first: the oldest ones are gone.
    verifier.verify(flood[0])
    assert verifier.stats.signature_verifications == 2 + len(flood)


def test_full_cache_evicts_expired_entries_before_live_ones(key: Key, clock: FrozenClock) -> None:
    verifier = Verifier(
        KeySet([key.public_key()]), issuer=ISSUER, audience=AUDIENCE, clock=clock, cache_size=8
    )
    short = [mint(key, sid=f"short{i}", exp=NOW + 10) for i in range(4)]
    long = [mint(key, sid=f"long{i}") for i in range(4)]
    for token in short + long:
        verifier.verify(token)
    assert verifier.cached_tokens == 8
    clock.advance(10)
    verifier.verify(mint(key, sid="new"))
    assert verifier.stats.cache_evictions == 0
    for token in long:
        verifier.verify(token)
    assert verifier.stats.signature_verifications == 9  # the long-lived ones were kept


def test_expired_entries_are_swept_on_later_insertions(key: Key, clock: FrozenClock) -> None:
    verifier = Verifier(KeySet([key.public_key()]), issuer=ISSUER, audience=AUDIENCE, clock=clock)
    for i in range(50):
        verifier.verify(mint(key, sid=f"s{i}", exp=NOW + 30))
    clock.advance(120)
    verifier.verify(mint(key, sid="late", iat=NOW + 120, nbf=NOW + 120, exp=NOW + 1000))
    assert verifier.cached_tokens == 1


def test_cache_size_zero_disables_the_cache(key: Key, clock: FrozenClock) -> None:
    verifier = Verifier(
        KeySet([key.public_key()]), issuer=ISSUER, audience=AUDIENCE, clock=clock, cache_size=0
    )
    token = mint(key)
    for _ in range(3):
        verifier.verify(token)
    assert verifier.stats.signature_verifications == 3
    assert verifier.cached_tokens == 0


class SwappableKeys:
    """A KeySource whose set the test replaces, as a JWKS refetch or a rotation would."""

    def __init__(self, keys: KeySet) -> None:
        self.key_set = keys

    async def ensure_fresh(self) -> None:
        return None

    async def refresh_for_unknown_kid(self) -> bool:
        return False


def test_key_removed_from_set_stops_cached_tokens_at_once(key: Key, clock: FrozenClock) -> None:
    source = SwappableKeys(KeySet([key.public_key()]))
    verifier = Verifier(source, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    token = mint(key)
    verifier.verify(token)
    verifier.verify(token)
    source.key_set = KeySet([Key.generate("ES256", kid="k2").public_key()])
    with pytest.raises(KeyNotFoundError):
        verifier.verify(token)


def test_default_algorithms_follow_the_key_set(clock: FrozenClock) -> None:
    es = Key.generate("ES256", kid="es")
    ed = Key.generate("EdDSA", kid="ed")
    source = SwappableKeys(KeySet([es.public_key()]))
    verifier = Verifier(source, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    assert verifier.verify(mint(es)).sub == "ada"
    source.key_set = KeySet([es.public_key(), ed.public_key()])
    assert verifier.verify(mint(ed)).sub == "ada"


# -- scopes --------------------------------------------------------------------------------


def test_required_scopes_present(verifier: Verifier, key: Key) -> None:
    token = mint(key, scope="read write")
    assert verifier.verify(token, scopes=["read"]).sub == "ada"
    assert verifier.verify(token, scopes=("read", "write")).sub == "ada"
    assert verifier.verify(token, scopes="write read").sub == "ada"


@pytest.mark.parametrize("cached", [False, True], ids=["first-use", "cached"])
def test_missing_scope_is_insufficient_scope(verifier: Verifier, key: Key, cached: bool) -> None:
    token = mint(key, scope="read")
    if cached:
        verifier.verify(token)
    with pytest.raises(InsufficientScopeError) as caught:
        verifier.verify(token, scopes=["read", "admin", "write"])
    error = caught.value
    assert error.code == "insufficient_scope"
    assert error.missing == {"admin", "write"}
    assert error.required == {"read", "admin", "write"}
    assert isinstance(error, TokenwardError)
    assert not isinstance(error, InvalidTokenError)


def test_scope_string_is_not_split_into_letters(verifier: Verifier, key: Key) -> None:
    # "ad" as a string means the one scope "ad", never the scopes "a" and "d".
    with pytest.raises(InsufficientScopeError):
        verifier.verify(mint(key, scope="a d"), scopes="ad")


def test_scope_failure_still_counts_as_verified(verifier: Verifier, key: Key) -> None:
    token = mint(key, scope="read")
    with pytest.raises(InsufficientScopeError):
        verifier.verify(token, scopes=["admin"])
    assert verifier.verify(token, scopes=["read"]).sub == "ada"
    assert verifier.stats.signature_verifications == 1


# -- the token service delegates to a Verifier ------------------------------------------------


async def test_token_service_verifies_through_its_verifier(clock: FrozenClock) -> None:
    service = await TokenService.create(
        MemoryStore(), TokenPolicy(issuer=ISSUER, audience=AUDIENCE), clock=clock
    )
    pair = await service.issue("ada", scope="read")
    for _ in range(100):
        service.verify_access(pair.access_token)
    assert service.verifier.stats.signature_verifications == 1
    assert service.verifier.deny is service.deny
    await service.revoke_session(pair.sid)
    with pytest.raises(SessionRevokedTokenError):
        service.verify_access(pair.access_token)


async def test_token_service_rotation_keeps_old_tokens_and_accepts_new(clock: FrozenClock) -> None:
    service = await TokenService.create(
        MemoryStore(), TokenPolicy(issuer=ISSUER, audience=AUDIENCE), clock=clock
    )
    before = await service.issue("ada")
    service.verify_access(before.access_token)
    await service.keyring.rotate()
    after = await service.issue("ada")
    assert service.verify_access(after.access_token).sub == "ada"
    assert service.verify_access(before.access_token).sub == "ada"


def test_deny_list_shared_with_verifier(key: Key, clock: FrozenClock) -> None:
    deny = DenyList()
    verifier = Verifier(
        KeySet([key.public_key()]), issuer=ISSUER, audience=AUDIENCE, clock=clock, deny=deny
    )
    deny.apply(session_revoked("s1"))
    with pytest.raises(SessionRevokedTokenError):
        verifier.verify(mint(key))


# -- the documentation's examples run ----------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs"
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        pytest.param("verifier.md", "ada ", id="verifier"),
        pytest.param("revocation.md", "refused: token_revoked", id="revocation"),
    ],
)
def test_doc_examples_run(page: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    # ``python`` blocks are complete programs; ``py`` blocks are fragments, not run.
    blocks = _PYTHON_BLOCK.findall((DOCS / page).read_text())
    assert blocks
    for block in blocks:
        exec(compile(block, f"docs/{page}", "exec"), {"__name__": "__doc_example__"})  # noqa: S102
    assert expected in capsys.readouterr().out
