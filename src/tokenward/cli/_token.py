"""``tokenward token``: encode, inspect and verify JWTs from the terminal.

``verify`` goes through :func:`tokenward.jose.jwt.decode`, so it applies every check a
service would: the allow-list (``--alg`` is required, RFC 8725 sec. 3.1), the key's
constraints, and the claims (``exp``, ``nbf``, ``iat``, ``iss``, ``aud``, ``typ``,
required claims). ``inspect`` is the only way to look inside a token without checking
it, and says so on stderr every time.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from tokenward.cli._args import duration, non_negative_seconds, unix_time
from tokenward.cli._commands import EXIT_OK, Subparsers, add_command, add_group
from tokenward.cli._io import (
    STDIN,
    UsageError,
    note,
    parse_json_object,
    read_text,
    read_token,
    write_json,
    write_line,
)
from tokenward.cli._keyfiles import load_key, load_key_set
from tokenward.jose import ALGORITHMS, Key, KeySet, jwt

__all__ = ["register"]

_ALGS = sorted(ALGORITHMS)
_POSITIONAL_HELP = "the token (default: read from stdin, surrounding whitespace removed)"


def register(commands: Subparsers) -> None:
    """Add the ``token`` group and its commands to the ``tokenward`` parser."""
    actions = add_group(
        commands,
        "token",
        summary="encode, inspect and verify tokens",
        description="Encode (sign), inspect (without verifying) and verify JWTs.",
    )
    _register_encode(actions)
    _register_inspect(actions)
    _register_verify(actions)


def _register_encode(actions: Subparsers) -> None:
    parser = add_command(
        actions,
        "encode",
        _encode,
        summary="sign claims as a JWT",
        description=(
            "Sign a JWT with a private JWK and print it. Claims come from --claims, then\n"
            "the flags override or add to them. iat is set to now unless --claims has\n"
            "one; exp is set to now + --exp-in when given."
        ),
        examples=(
            "  tokenward token encode --key signing.jwk --sub ada --aud api --exp-in 15m\n"
            '  tokenward token encode --key signing.jwk --claims \'{"scope": "read"}\'\n'
            "  tokenward token encode --key signing.jwk --claims @claims.json --typ at+jwt"
        ),
    )
    parser.add_argument("--key", required=True, metavar="FILE", help="private JWK file")
    parser.add_argument(
        "--alg",
        choices=_ALGS,
        metavar="ALG",
        help="signing algorithm (default: the key's alg; required if the key has none)",
    )
    parser.add_argument("--typ", default="JWT", help="header typ (default: JWT)")
    parser.add_argument("--kid", help="header kid (default: the key's kid; must agree with it)")
    parser.add_argument(
        "--claims",
        metavar="JSON",
        help="claims as a JSON object, or @FILE to read them from FILE (@- for stdin)",
    )
    parser.add_argument("--sub", help="subject claim")
    parser.add_argument("--iss", help="issuer claim")
    parser.add_argument(
        "--aud",
        action="append",
        metavar="AUD",
        help="audience claim; repeat for several (then aud is a list)",
    )
    parser.add_argument(
        "--exp-in",
        type=duration,
        metavar="DURATION",
        help="set exp to now plus DURATION: seconds, or 15m, 1h, 2d, 1w",
    )
    parser.add_argument(
        "--now",
        type=unix_time,
        metavar="UNIX",
        help="the time to issue at, in Unix seconds (default: the system clock)",
    )


def _register_inspect(actions: Subparsers) -> None:
    parser = add_command(
        actions,
        "inspect",
        _inspect,
        summary="show a token's header and claims WITHOUT verifying it",
        description=(
            "Decode a token's header and claims WITHOUT checking its signature or claims,\n"
            "for debugging. The output says verified: false; never trust it."
        ),
        examples="  tokenward token inspect eyJhbGciOi...\n  pbpaste | tokenward token inspect",
    )
    parser.add_argument("token", nargs="?", metavar="TOKEN", help=_POSITIONAL_HELP)


def _register_verify(actions: Subparsers) -> None:
    parser = add_command(
        actions,
        "verify",
        _verify,
        summary="verify a token and print its claims",
        description=(
            "Verify a token's signature and claims and print the claims as JSON.\n"
            "Exit status 0 if the token is valid, 1 if it is refused (with one\n"
            "'error: <code>: <message>' line on stderr), 2 for usage errors."
        ),
        examples=(
            "  tokenward token verify --key signing.pub.jwk --alg ES256 --aud api TOKEN\n"
            "  echo TOKEN | tokenward token verify --jwks keys.jwks --alg ES256 --alg EdDSA"
        ),
    )
    parser.add_argument("token", nargs="?", metavar="TOKEN", help=_POSITIONAL_HELP)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--key", metavar="FILE", help="JWK file (public, private or HMAC)")
    source.add_argument("--jwks", metavar="FILE", help="JWKS file; the token's kid picks the key")
    parser.add_argument(
        "--alg",
        dest="algs",
        action="append",
        required=True,
        choices=_ALGS,
        metavar="ALG",
        help="an accepted algorithm; repeat for several (required: there is no default)",
    )
    parser.add_argument(
        "--aud", action="append", metavar="AUD", help="accepted audience; repeat for several"
    )
    parser.add_argument(
        "--iss", action="append", metavar="ISS", help="accepted issuer; repeat for several"
    )
    parser.add_argument(
        "--leeway",
        type=non_negative_seconds,
        default=0,
        metavar="SECONDS",
        help="clock skew allowed for exp, nbf and iat (at most 300; default 0)",
    )
    parser.add_argument("--typ", help="required header typ, such as at+jwt")
    parser.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="CLAIM[,CLAIM...]",
        help="claims that must be present; repeat or separate with commas",
    )
    parser.add_argument(
        "--now",
        type=unix_time,
        metavar="UNIX",
        help="check the token as of this Unix time (default: the system clock)",
    )


# -- handlers -------------------------------------------------------------------------


def _encode(args: argparse.Namespace) -> int:
    alg: str | None = args.alg
    kid: str | None = args.kid
    audiences: list[str] | None = args.aud
    exp_in: int | None = args.exp_in
    now: int | float = args.now if args.now is not None else int(time.time())
    key_path: str = args.key

    key = load_key(key_path, alg=alg)
    if not key.is_private:
        raise UsageError(f"key file {key_path!r} holds a public key; signing needs the private key")
    if key.alg is None and alg is None:
        raise UsageError(f"key file {key_path!r} names no alg; pass --alg")
    if kid is not None and key.kid is not None and kid != key.kid:
        # A token whose kid names another key can never verify against this one.
        raise UsageError("--kid differs from the kid in the key file")

    claims = _claims(args.claims)
    claims.setdefault("iat", now)
    for name in ("sub", "iss"):
        value: str | None = getattr(args, name)
        if value is not None:
            claims[name] = value
    if audiences:
        claims["aud"] = audiences[0] if len(audiences) == 1 else list(audiences)
    if exp_in is not None:
        claims["exp"] = now + exp_in

    headers = {"kid": kid} if kid is not None else None
    write_line(jwt.encode(claims, key, alg=alg, typ=args.typ or None, headers=headers))
    return EXIT_OK


def _claims(option: str | None) -> dict[str, Any]:
    if option is None:
        return {}
    if option.startswith("@"):
        path = option[1:] or STDIN
        return parse_json_object(read_text(path, what="claims file"), what="claims")
    return parse_json_object(option, what="--claims")


def _inspect(args: argparse.Namespace) -> int:
    unverified = jwt.inspect_unverified(read_token(args.token))
    note("warning: this token was NOT verified: its signature and claims were not checked")
    write_json({"header": unverified.header, "claims": unverified.claims, "verified": False})
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    algorithms: list[str] = args.algs
    requirements: list[str] = args.require
    require = [name for item in requirements for name in item.split(",") if name]
    # Load the key first: a bad key file is a usage error even before a token arrives.
    key: Key | KeySet = load_key(args.key) if args.key is not None else load_key_set(args.jwks)
    token = read_token(args.token)
    claims = jwt.decode(
        token,
        key,
        algorithms=algorithms,
        issuer=args.iss,
        audience=args.aud,
        leeway=args.leeway,
        typ=args.typ,
        require=require,
        now=args.now,
    )
    write_json(claims)
    return EXIT_OK
