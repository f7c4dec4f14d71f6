"""schemathesis against /openapi.json: no 5xx, and every response matches the document.

schemathesis runs the app (and its lifespan) in its own thread through its ASGI client.
Each generated request carries a fresh admin token, so the bearer and admin operations
are exercised past authentication (a generated ``/logout`` may end that session; the
next case logs in again).

Checks: no server error; status codes, content types, headers and bodies as documented;
invalid data refused. Not ``positive_data_acceptance``: a request can match the schema
and still be refused by the protocol (a refresh token that was never issued, cookie
mode without its cookie, a form parameter sent twice), and RFC 6749 says 400 for those.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.python import asgi
from starlette.applications import Starlette

from tests.server.conftest import ADMIN_PASSWORD, PASSWORD, make_settings
from tokenward.server import create_app
from tokenward.service import Argon2Parameters, PasswordHasher
from tokenward.stores import MemoryStore, UserRecord
from tokenward.testing import FrozenClock

ADMIN = "schemathesis-admin-7f3a"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


def _user(username: str, password: str, *, admin: bool, scopes: tuple[str, ...] = ()) -> UserRecord:
    hasher = PasswordHasher(Argon2Parameters(time_cost=1, memory_cost=8, parallelism=1))
    return UserRecord(
        sub="u-" + username, username=username, password_hash=hasher.hash(password),
        created_at=0.0, updated_at=0.0, scopes=scopes, admin=admin,
    )  # fmt: skip


def _app() -> Starlette:
    store = MemoryStore()
    # MemoryStore calls never await, so filling it before the app's loop exists is safe.
    for record in (
        _user(ADMIN, ADMIN_PASSWORD, admin=True),
        _user("ada", PASSWORD, admin=False, scopes=("read",)),
    ):
        store._users[record.username] = record
    # Generous throttling: generated logins with wrong passwords must not lock the admin out.
    return create_app(
        replace(make_settings(registration=True), throttle_per_account=10_000),
        store=store,
        clock=FrozenClock(time.time()),
    )


# Loaded from the running app's /openapi.json (schemathesis starts the lifespan, in its
# own thread, when the module is collected, and stops it at exit).
APP = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def admin_token(app: Starlette) -> str:
    with asgi.get_client(app) as client:  # type: ignore[arg-type]
        response = client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": ADMIN, "password": ADMIN_PASSWORD,
                  "client_id": "web"},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_server_keeps_the_promises_of_its_openapi_document(
    case: schemathesis.Case[Any],
) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_token(APP)}"}, checks=CHECKS)
