"""The runnable examples: imported and driven in process, and one run as a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from examples import fastapi_app, flask_app

from tokenward.errors import ConfigurationError
from tokenward.service import Argon2Parameters, PasswordHasher
from tokenward.testing import FrozenClock

ROOT = Path(__file__).resolve().parents[2]
CHEAP = PasswordHasher(Argon2Parameters(time_cost=1, memory_cost=8, parallelism=1))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def asgi_client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_fastapi_example_demo() -> None:
    demo = await fastapi_app.demo_setup(clock=FrozenClock(), hasher=CHEAP)
    app = fastapi_app.create_app(
        demo.service.verifier, token_url=fastapi_app.DEMO_TOKEN_PATH, users=demo.users
    )
    async with asgi_client(app) as client:
        assert (await client.get("/health")).json() == {"ok": True}
        assert (await client.get("/items")).status_code == 401
        response = await client.get("/items", headers=auth(demo.access_token))
        assert response.json() == {
            "items": ["first item"],
            "for": demo.service.verifier.verify(demo.access_token).sub,
        }
        response = await client.post(
            "/items", params={"name": "second"}, headers=auth(demo.access_token)
        )
        assert response.status_code == 201
        # The docs' login dialog: the password grant at the token URL in the OpenAPI document.
        document = (await client.get("/openapi.json")).json()
        flow = document["components"]["securitySchemes"]["tokenward"]["flows"]["password"]
        assert flow["tokenUrl"] == "/demo/token"
        form = {
            "grant_type": "password",
            "username": "demo",
            "password": demo.password,
            "scope": "read",
        }
        login = await client.post("/demo/token", data=form)
        token = login.json()["access_token"]
        assert (await client.get("/me", headers=auth(token))).json()["scopes"] == ["read"]
        # Read-only token: adding is refused with the scope it lacks.
        response = await client.post("/items", params={"name": "x"}, headers=auth(token))
        assert response.status_code == 403
        assert 'scope="write"' in response.headers["www-authenticate"]
        assert login.headers["cache-control"] == "no-store"  # RFC 6749 sec. 5.1.
        form["password"] = "wrong"
        assert (await client.post("/demo/token", data=form)).status_code == 400


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"scope": "delete"}, 400, "invalid_scope"),
        ({"password": "wrong"}, 400, "invalid_grant"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"password": None}, 400, "invalid_request"),
        ({"grant_type": None}, 400, "invalid_request"),
    ],
    ids=["unknown-scope", "wrong-password", "other-grant", "no-password", "no-grant-type"],
)
async def test_fastapi_example_demo_token_errors_are_rfc6749(
    change: dict[str, str | None], status: int, error: str
) -> None:
    demo = await fastapi_app.demo_setup(clock=FrozenClock(), hasher=CHEAP)
    app = fastapi_app.create_app(
        demo.service.verifier, token_url=fastapi_app.DEMO_TOKEN_PATH, users=demo.users
    )
    form = {"grant_type": "password", "username": "demo", "password": demo.password, **change}
    async with asgi_client(app) as client:
        data = {name: value for name, value in form.items() if value is not None}
        response = await client.post("/demo/token", data=data)
    assert response.status_code == status
    assert response.json() == {"error": error}  # RFC 6749 sec. 5.2.
    assert response.headers["cache-control"] == "no-store"


async def test_fastapi_example_demo_token_refuses_repeated_parameters() -> None:
    demo = await fastapi_app.demo_setup(clock=FrozenClock(), hasher=CHEAP)
    app = fastapi_app.create_app(
        demo.service.verifier, token_url=fastapi_app.DEMO_TOKEN_PATH, users=demo.users
    )
    body = f"grant_type=password&username=demo&password={demo.password}&scope=read&scope=write"
    async with asgi_client(app) as client:
        response = await client.post(
            "/demo/token",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert (response.status_code, response.json()) == (400, {"error": "invalid_request"})


def test_examples_say_at_start_up_when_httpx_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # URL mode without httpx: the FastAPI example answered 500 to every request, the
    # Flask one waited 30 s at start-up before blaming the key source.
    monkeypatch.setitem(sys.modules, "httpx", None)  # As if it were not installed.
    url = "https://auth.example/.well-known/jwks.json"
    verifier = fastapi_app.verifier_from_env(url)
    with pytest.raises(ConfigurationError, match=r"tokenward\[client\]"):
        fastapi_app.create_app(verifier, token_url="https://auth.example/oauth/token")
    with pytest.raises(ConfigurationError, match=r"tokenward\[client\]"):
        flask_app.verifier_from_env(url)


async def test_fastapi_example_with_a_jwks_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = await fastapi_app.demo_setup(hasher=CHEAP)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(demo.service.keyring.jwks()))
    monkeypatch.setenv("TOKENWARD_ISSUER", fastapi_app.DEMO_ISSUER)
    monkeypatch.setenv("TOKENWARD_AUDIENCE", fastapi_app.DEMO_AUDIENCE)
    verifier = fastapi_app.verifier_from_env(str(jwks))
    app = fastapi_app.create_app(verifier, token_url="https://auth.example/oauth/token")
    async with asgi_client(app) as client:
        response = await client.get("/me", headers=auth(demo.access_token))
        assert response.json()["sid"] == demo.service.verifier.verify(demo.access_token).sid
        assert (await client.post("/demo/token")).status_code in (404, 405)


async def test_flask_example_demo() -> None:
    service, token = await flask_app.demo_setup(clock=FrozenClock())
    client = flask_app.create_app(service.verifier).test_client()
    assert client.get("/items").status_code == 401
    assert client.get("/items", headers=auth(token)).get_json()["items"] == ["first item"]
    assert client.post("/items?name=b", headers=auth(token)).status_code == 201
    assert client.get("/me", headers=auth(token)).get_json()["sub"] == "demo"


async def test_flask_example_with_a_jwks_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same app over a JWKS file, as a separate resource server would run it (on the
    # wall clock: the verifier built from the environment uses the system clock).
    service, token = await flask_app.demo_setup()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(service.keyring.jwks()))
    monkeypatch.setenv("TOKENWARD_ISSUER", flask_app.DEMO_ISSUER)
    verifier, refresher = flask_app.verifier_from_env(str(jwks))
    assert refresher is None
    _, foreign = await flask_app.demo_setup()  # Another key ring.
    client = flask_app.create_app(verifier).test_client()
    assert client.get("/me", headers=auth(token)).get_json()["sub"] == "demo"
    assert client.get("/me", headers=auth(foreign)).status_code == 401


def test_fastapi_example_runs_as_a_real_server() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}
    env["PORT"] = "0"
    process = subprocess.Popen(  # noqa: S603 (this interpreter, a file of this repository)
        [sys.executable, str(ROOT / "examples" / "fastapi_app.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.strip())
            if line.startswith("try:"):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(60), f"the example did not start: {lines}"
        banner = next(line for line in lines if line.startswith("tokenward FastAPI example on"))
        base = banner.split(" on ")[1].split(" ")[0]
        token = next(line.split(": ", 1)[1] for line in lines if line.startswith("access token:"))
        assert base.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/items", headers=auth(token)).status_code == 200
            response = client.get("/items")
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == 'Bearer realm="tokenward"'
            assert client.get("/items", headers=auth(token + "x")).status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
