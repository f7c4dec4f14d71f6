"""Replay the public conformance vectors in ../shared/vectors (semantics in its README)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tokenward.errors import TokenwardError
from tokenward.jose import Key, jws, jwt
from tokenward.jose._b64 import b64u_decode

VECTORS = Path(
    os.environ.get("TOKENWARD_VECTORS", Path(__file__).resolve().parents[3] / "shared" / "vectors")
)
FILES = ("rfc_misc.json", "rfc7520.json", "wycheproof_jws.json", "wycheproof_jwk.json")


def _cases() -> list[Any]:
    if not VECTORS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no vectors at {VECTORS}"))]
    cases = []
    for name in FILES:
        for case in json.loads((VECTORS / name).read_text()):
            cases.append(pytest.param(case, id=case["id"]))
    return cases


def _run(case: dict[str, Any]) -> Any:
    key = Key.from_jwk(case["key"])
    options = case.get("options", {})
    if case["mode"] == "jws":
        return jws.verify(case["token"], key, algorithms=case["algorithms"])
    return jwt.decode(
        case["token"],
        key,
        algorithms=case["algorithms"],
        now=options.get("now"),
        leeway=options.get("leeway", 0),
        audience=options.get("audience"),
        issuer=options.get("issuer"),
        require=options.get("require", ()),
        typ=options.get("typ"),
    )


@pytest.mark.parametrize("case", _cases())
def test_vector(case: dict[str, Any]) -> None:
    if case["expect"] == "valid":
        result = _run(case)
        if case["mode"] == "jws":
            assert result == b64u_decode(case["payload_b64u"])
        else:
            assert result == case["claims"]
    else:
        with pytest.raises(TokenwardError):
            _run(case)


def test_vectors_are_all_replayed() -> None:
    if not VECTORS.is_dir():
        pytest.skip(f"no vectors at {VECTORS}")
    total = sum(len(json.loads((VECTORS / name).read_text())) for name in FILES)
    assert total == 14 + 18 + 391 + 20
