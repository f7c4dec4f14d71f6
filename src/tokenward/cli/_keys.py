"""``tokenward keys``: generate signing keys and derive their public halves.

The server's key ring (``keys rotate``, ``keys list``) joins this group from
:mod:`tokenward.cli._keyring`, which works on the server's store rather than on files.

Private keys leave this module in exactly one place, the output of ``keys generate``,
which is what that command is for; ``keys public`` refuses HMAC keys, which have no
public half, rather than print the secret.
"""

from __future__ import annotations

import argparse
import json

from tokenward.cli import _keyring
from tokenward.cli._commands import EXIT_OK, Subparsers, add_command, add_group
from tokenward.cli._io import UsageError, note, write_json, write_private_file
from tokenward.cli._keyfiles import is_jwks, read_key_document
from tokenward.jose import ALGORITHMS, Key, KeySet

__all__ = ["register"]

_ALGS = sorted(ALGORITHMS)


def register(commands: Subparsers) -> None:
    """Add the ``keys`` group and its commands to the ``tokenward`` parser."""
    actions = add_group(
        commands,
        "keys",
        summary="generate key files; rotate and list the server's signing keys",
        description=(
            "Generate signing keys (private JWKs) and derive public JWKs and JWKS;\n"
            "rotate and list the auth server's signing keys in its store."
        ),
    )

    generate = add_command(
        actions,
        "generate",
        _generate,
        summary="generate a new private key as a JWK",
        description=(
            "Generate a private key bound to one algorithm and print it as a JWK, or\n"
            "write it to a new file readable only by its owner (mode 0600).\n"
            "The kid defaults to the key's RFC 7638 thumbprint."
        ),
        examples=(
            "  tokenward keys generate --alg ES256 --out signing.jwk\n"
            "  tokenward keys generate --alg HS256 --kid hmac-2026 > secret.jwk"
        ),
    )
    generate.add_argument(
        "--alg",
        required=True,
        choices=_ALGS,
        metavar="ALG",
        help=f"the algorithm the key is for: {', '.join(_ALGS)}",
    )
    generate.add_argument("--kid", help="key ID (default: the RFC 7638 thumbprint)")
    generate.add_argument(
        "--out", metavar="FILE", help="write the key to FILE with mode 0600 instead of stdout"
    )
    generate.add_argument(
        "--force", action="store_true", help="replace FILE if it exists (with --out)"
    )
    generate.add_argument(
        "--rsa-bits",
        type=int,
        metavar="BITS",
        help="RSA modulus size for RS*/PS* keys (default 2048)",
    )

    public = add_command(
        actions,
        "public",
        _public,
        summary="print the public JWK (or JWKS) of a key file",
        description=(
            "Print the public part of a JWK, or of every key in a JWKS, for publishing\n"
            "or for verifiers. HMAC keys have no public part and are refused."
        ),
        examples=(
            "  tokenward keys public signing.jwk > signing.pub.jwk\n"
            "  tokenward keys public keys.jwks\n"
            "  cat signing.jwk | tokenward keys public -"
        ),
    )
    public.add_argument("file", metavar="FILE", help="JWK or JWKS file, or - for stdin")

    _keyring.register(actions)


def _generate(args: argparse.Namespace) -> int:
    alg: str = args.alg
    kid: str | None = args.kid
    out: str | None = args.out
    rsa_bits: int | None = args.rsa_bits
    if args.force and out is None:
        raise UsageError("--force only applies with --out")
    if rsa_bits is not None and ALGORITHMS[alg].kty != "RSA":
        raise UsageError(f"--rsa-bits only applies to RSA algorithms, not {alg}")
    if kid is not None and not kid:
        raise UsageError("--kid must not be empty")
    if rsa_bits is None:
        key = Key.generate(alg, kid=kid)
    else:
        key = Key.generate(alg, kid=kid, rsa_bits=rsa_bits)
    if out is None:
        write_json(key.to_jwk(private=True))
        return EXIT_OK
    text = json.dumps(key.to_jwk(private=True), indent=2) + "\n"
    write_private_file(out, text, force=bool(args.force))
    note(f"wrote a private {alg} key (kid {key.kid}) to {out} with mode 0600")
    return EXIT_OK


def _public(args: argparse.Namespace) -> int:
    path: str = args.file
    document = read_key_document(path)
    if is_jwks(document):
        write_json(KeySet.from_jwks(document).public().to_jwks())
    else:
        write_json(Key.from_jwk(document).public_key().to_jwk())
    return EXIT_OK
