"""Load keys and key sets from JWK and JWKS files named on the command line.

Files hold JSON: one JWK (RFC 7517 sec. 4) or a JWKS (``{"keys": [...]}``, sec. 5), as
``tokenward keys generate`` writes them. The loaders say which option fits when a file
holds the other kind, and their errors never quote the file's contents.
"""

from __future__ import annotations

from typing import Any

from tokenward.cli._io import UsageError, parse_json_object, read_text
from tokenward.errors import InvalidKeyError
from tokenward.jose import Key, KeySet

__all__ = ["is_jwks", "load_key", "load_key_set", "read_key_document"]


def read_key_document(path: str) -> dict[str, Any]:
    """Read a JWK or JWKS file (``-`` for stdin) as a JSON object."""
    text = read_text(path, what="key file")
    return parse_json_object(text, what=f"key file {path!r}", error=InvalidKeyError)


def is_jwks(document: dict[str, Any]) -> bool:
    """True for a JWKS document, which is the only kind with a ``keys`` member."""
    return "keys" in document


def load_key(path: str, *, alg: str | None = None) -> Key:
    """Load the single JWK in ``path``; ``alg`` binds an unbound key (and must agree)."""
    document = read_key_document(path)
    if is_jwks(document):
        raise UsageError(f"key file {path!r} holds a JWKS; pass it with --jwks")
    return Key.from_jwk(document, alg=alg)


def load_key_set(path: str) -> KeySet:
    """Load the JWKS in ``path``; tokens are then matched to keys by their ``kid``."""
    document = read_key_document(path)
    if not is_jwks(document):
        raise UsageError(f"key file {path!r} holds a single JWK; pass it with --key")
    return KeySet.from_jwks(document)
