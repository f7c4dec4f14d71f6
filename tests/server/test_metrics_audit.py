"""GET /metrics (Prometheus text) and the JSON-lines audit log, which never holds secrets."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from starlette.applications import Starlette

from tests.server.conftest import (
    ADMIN_PASSWORD,
    CLIENT_SECRET,
    PASSWORD,
    basic,
    bearer,
    login,
    refresh,
    state_of,
)
from tokenward.server import JSONLinesFormatter, configure_logging, create_app
from tokenward.server._metrics import Counter
from tokenward.testing import FrozenClock


def samples(text: str) -> dict[str, float]:
    """Sample lines of a Prometheus text document, by ``name{labels}``."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


async def test_metrics_count_what_happened(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    pair = await login(http)
    form = {"grant_type": "password", "username": "ada", "password": "wrong!!!"}
    form["client_id"] = "web"
    await http.post("/oauth/token", data=form)
    await refresh(http, pair["refresh_token"])
    clock.advance(11)
    await refresh(http, pair["refresh_token"])  # reuse: the session is revoked
    await http.get("/userinfo", headers=bearer("not-a-token"))
    await http.post("/oauth/introspect", data={"token": "x"}, auth=basic(secret="wrong"))

    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    values = samples(response.text)
    assert values['tokenward_logins_total{result="success"}'] == 1
    assert values['tokenward_logins_total{result="failure"}'] == 1
    assert values['tokenward_refreshes_total{result="success"}'] == 1
    assert values['tokenward_refreshes_total{result="reused"}'] == 1
    assert values["tokenward_refresh_reuse_detected_total"] == 1
    assert values['tokenward_revocations_total{kind="session",cause="reuse"}'] == 1
    assert values['tokenward_verification_failures_total{code="malformed_token"}'] == 1
    assert values["tokenward_client_auth_failures_total"] == 1
    assert values["tokenward_store_unavailable_total"] == 0
    assert "# TYPE tokenward_logins_total counter" in response.text


def test_counters_escape_label_values_and_check_arity() -> None:
    counter = Counter("c_total", "Help.", ("code",))
    counter.inc('a"b\\c\nd')
    assert 'c_total{code="a\\"b\\\\c\\nd"} 1' in counter.render()
    with pytest.raises(ValueError, match="labels"):
        counter.inc()


def test_two_apps_do_not_share_counters(app: Starlette) -> None:
    other = create_app(state_of(app).settings)
    state_of(app).metrics.logins.inc("success")
    assert state_of(other).metrics.logins.get("success") == 0


def test_the_formatter_writes_one_json_object_per_line() -> None:
    stream = io.StringIO()
    handler = configure_logging("DEBUG", stream)
    try:
        logging.getLogger("tokenward.audit").warning("login_failed", extra={"sub": "u-1"})
        try:
            raise RuntimeError("detail that stays out")  # noqa: TRY301
        except RuntimeError:
            logging.getLogger("tokenward.server").exception("boom")
        assert configure_logging("INFO", stream) is not handler  # replaced, not duplicated
    finally:
        logging.getLogger("tokenward").removeHandler(handler)
        for extra in list(logging.getLogger("tokenward").handlers):
            logging.getLogger("tokenward").removeHandler(extra)
        logging.getLogger("tokenward").setLevel(logging.NOTSET)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "login_failed"
    assert first["sub"] == "u-1"
    assert first["level"] == "WARNING"
    assert first["logger"] == "tokenward.audit"
    assert first["ts"].endswith("Z")
    assert second["exc_type"] == "RuntimeError"
    assert "detail that stays out" not in stream.getvalue()


async def test_no_secret_reaches_the_logs_during_a_full_flow(
    http: httpx.AsyncClient, app: Starlette, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: list[str] = [PASSWORD, ADMIN_PASSWORD, CLIENT_SECRET]
    pair = await login(http)
    secrets += [pair["access_token"], pair["refresh_token"]]
    second = (await refresh(http, pair["refresh_token"])).json()
    secrets += [second["access_token"], second["refresh_token"]]
    await refresh(http, pair["refresh_token"])  # replay within grace
    clock.advance(11)
    await refresh(http, pair["refresh_token"])  # reuse detected
    typed_in_username = "hunter2-typed-into-the-username-field"
    secrets.append(typed_in_username)
    form = {"grant_type": "password", "username": typed_in_username, "password": "x" * 9}
    await http.post("/oauth/token", data={**form, "client_id": "web"})
    admin = await login(http, "root", ADMIN_PASSWORD)
    secrets += [admin["access_token"], admin["refresh_token"]]
    new_password = "the password of grace hopper"
    secrets.append(new_password)
    body = {"username": "grace", "password": new_password}
    await http.post("/admin/users", json=body, headers=bearer(admin["access_token"]))
    await http.post(
        "/admin/users/grace/password",
        json={"password": new_password + "2"},
        headers=bearer(admin["access_token"]),
    )
    secrets.append(new_password + "2")
    third = await login(http)
    secrets += [third["access_token"], third["refresh_token"]]
    await http.post("/oauth/introspect", data={"token": third["access_token"]}, auth=basic())
    await http.post("/oauth/introspect", data={"token": "x"}, auth=basic(secret="bad-secret-xyz"))
    secrets.append("bad-secret-xyz")
    cookie = await http.post(
        "/cookie/login",
        data={"username": "ada", "password": PASSWORD, "client_id": "web"},
        headers={"X-CSRF-Token": "1"},
    )
    secrets += [cookie.json()["access_token"], cookie.json()["csrf_token"]]
    secrets.append(http.cookies["tw_refresh"])
    await http.post("/cookie/logout", headers={"X-CSRF-Token": http.cookies["tw_csrf"]})
    await http.post("/oauth/revoke", data={"token": third["refresh_token"], "client_id": "web"})
    await http.post("/logout/all", headers=bearer(admin["access_token"]))
    for record in await state_of(app).store.list_keys():
        secrets.append(json.loads(record.material)["d"])
    for user in await state_of(app).store.list_users():
        secrets.append(user.password_hash)

    formatter = JSONLinesFormatter()
    logged = "\n".join(formatter.format(r) + repr(r.args) for r in caplog.records)
    events = {r.getMessage() for r in caplog.records if r.name == "tokenward.audit"}
    assert {
        "login_succeeded",
        "login_rejected",
        "refresh_reuse_detected",
        "token_revoked",
    } <= events
    assert {"admin_user_created", "admin_password_set", "client_auth_failed", "logout"} <= events
    for secret in secrets:
        assert secret not in logged
        if secret.count(".") == 2:
            # Nor a token's signature alone (headers and payloads repeat across tokens).
            assert secret.rsplit(".", 1)[1] not in logged
