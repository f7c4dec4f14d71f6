"""Token storages: the 0600 file, atomic replacement, symlink refusal, persistence."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.conftest import ACCESS_LIFETIME, Server, SyncServer
from tokenward.client import (
    FileTokenStorage,
    LoginRequiredError,
    MemoryTokenStorage,
    StoredToken,
    TokenEndpointError,
    TokenStorageError,
)

TOKEN = StoredToken("aaa.bbb.ccc", "ddd.eee.fff", 1_800_000_000.0, 1_800_000_900.0, "read")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("permissive_umask")
def test_the_file_is_created_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    FileTokenStorage(path).save(TOKEN)
    assert mode_of(path) == 0o600
    assert FileTokenStorage(path).load() == TOKEN


@pytest.mark.usefixtures("permissive_umask")
def test_a_missing_directory_is_created_0700(tmp_path: Path) -> None:
    path = tmp_path / "config" / "app" / "tokens.json"
    FileTokenStorage(path).save(TOKEN)
    assert mode_of(path.parent) == 0o700
    assert mode_of(path) == 0o600


def test_save_replaces_the_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    storage = FileTokenStorage(path)
    storage.save(TOKEN)
    inode = path.stat().st_ino
    newer = StoredToken("xxx.yyy.zzz", "uuu.vvv.www", 1_800_000_100.0, 1_800_001_000.0)
    storage.save(newer)
    # A new file renamed over the old one (a reader holding the old one sees it whole),
    # and no temporary file left behind.
    assert path.stat().st_ino != inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.json"]
    assert mode_of(path) == 0o600
    assert storage.load() == newer


def test_the_file_is_the_documented_json(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    FileTokenStorage(path).save(TOKEN)
    assert json.loads(path.read_text()) == {
        "version": 1,
        "access_token": "aaa.bbb.ccc",
        "refresh_token": "ddd.eee.fff",
        "issued_at": 1_800_000_000.0,
        "expires_at": 1_800_000_900.0,
        "scope": "read",
    }


def test_a_missing_file_loads_as_nothing(tmp_path: Path) -> None:
    assert FileTokenStorage(tmp_path / "absent.json").load() is None


def test_clear_deletes_the_file(tmp_path: Path) -> None:
    storage = FileTokenStorage(tmp_path / "tokens.json")
    storage.save(TOKEN)
    storage.clear()
    assert storage.load() is None
    storage.clear()  # nothing there: no error


def test_a_symlink_is_refused_on_load(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    FileTokenStorage(target).save(TOKEN)
    link = tmp_path / "tokens.json"
    link.symlink_to(target)
    with pytest.raises(TokenStorageError, match="symbolic link") as caught:
        FileTokenStorage(link).load()
    assert caught.value.code == "token_storage_error"


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_a_symlink_is_refused_on_save_and_its_target_untouched(
    tmp_path: Path, dangling: bool
) -> None:
    target = tmp_path / "victim"
    if not dangling:
        target.write_text("precious")
    link = tmp_path / "tokens.json"
    link.symlink_to(target)
    with pytest.raises(TokenStorageError, match="symbolic link"):
        FileTokenStorage(link).save(TOKEN)
    assert link.is_symlink()
    if dangling:
        assert not target.exists()
    else:
        assert target.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["tokens.json", *(
        [] if dangling else ["victim"])])  # fmt: skip


def test_clear_removes_a_symlink_not_its_target(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("precious")
    link = tmp_path / "tokens.json"
    link.symlink_to(target)
    FileTokenStorage(link).clear()
    assert not link.is_symlink()
    assert target.read_text() == "precious"


def test_a_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    FileTokenStorage(path).save(TOKEN)
    path.chmod(0o644)
    with pytest.raises(TokenStorageError, match="chmod 600"):
        FileTokenStorage(path).load()


def test_a_directory_at_the_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TokenStorageError, match="not a regular file"):
        FileTokenStorage(tmp_path).load()


def test_a_fifo_at_the_path_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    os.mkfifo(path, 0o600)
    with pytest.raises(TokenStorageError, match="not a regular file"):
        FileTokenStorage(path).load()


@pytest.mark.parametrize(
    "content",
    [
        b"not json at all aaa.bbb.ccc",
        b"\xff\xfe",
        b'["aaa.bbb.ccc"]',
        b'{"version": 2, "access_token": "aaa.bbb.ccc"}',
        b'{"version": 1, "access_token": "", "refresh_token": null, "issued_at": 1}',
        b'{"version": 1, "access_token": "aaa.bbb.ccc", "refresh_token": 5, "issued_at": 1}',
        b'{"version": 1, "access_token": "aaa.bbb.ccc", "issued_at": true, "expires_at": null}',
        b'{"version": 1, "access_token": "aaa.bbb.ccc", "issued_at": 1, "expires_at": "soon"}',
        b'{"version": 1, "access_token": "aaa.bbb.ccc", "issued_at": 1, "scope": 3}',
        b'{"version": 1, "access_token": "aaa.bbb.ccc", "issued_at": NaN}',
        b" " * (64 * 1024 + 1),
    ],
    ids=["garbage", "not-utf8", "array", "version", "empty-access", "refresh-type",
         "bool-time", "string-expiry", "scope-type", "nan", "too-large"],
)  # fmt: skip
def test_a_file_that_is_not_a_token_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "tokens.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(content)
    with pytest.raises(TokenStorageError) as caught:
        FileTokenStorage(path).load()
    assert "aaa.bbb.ccc" not in str(caught.value)  # contents never echoed


def test_stored_token_repr_leaves_the_tokens_out() -> None:
    text = repr(TOKEN)
    assert "aaa.bbb.ccc" not in text
    assert "ddd.eee.fff" not in text
    assert "expires_at=1800000900.0" in text
    assert repr(FileTokenStorage("state/x.json")) == "FileTokenStorage('state/x.json')"


def test_memory_storage_round_trip() -> None:
    storage = MemoryTokenStorage()
    assert storage.load() is None
    storage.save(TOKEN)
    assert storage.load() is TOKEN
    storage.clear()
    assert storage.load() is None


async def test_tokens_persist_across_auth_instances(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    async with server.client(server.auth(storage=FileTokenStorage(path))) as http:
        assert (await http.get("/userinfo")).status_code == 200
    assert mode_of(path) == 0o600
    first = FileTokenStorage(path).load()
    assert first is not None
    # A new process, say: no credentials, only the file. No login, no refresh.
    later = server.auth(username=None, password=None, storage=FileTokenStorage(path))
    async with server.client(later) as http:
        response = await http.get("/userinfo")
        assert response.request.headers["Authorization"] == f"Bearer {first.access_token}"
        assert server.transport.token_requests == 1
        # Its expiry came along: past it, the stored refresh token is used and rotated.
        server.clock.advance(ACCESS_LIFETIME)
        assert (await http.get("/userinfo")).status_code == 200
    assert server.transport.token_requests == 2
    rotated = FileTokenStorage(path).load()
    assert rotated is not None
    assert rotated.refresh_token != first.refresh_token
    # And a third instance continues from the rotated token (no reuse, no revocation).
    third = server.auth(username=None, password=None, storage=FileTokenStorage(path))
    async with server.client(third) as http:
        server.clock.advance(ACCESS_LIFETIME)
        assert (await http.get("/userinfo")).status_code == 200
    assert server.metrics.refreshes.get("success") == 2
    assert server.metrics.reuse_detected.get() == 0


async def test_a_token_without_expiry_is_used_until_refused(server: Server) -> None:
    answer = await server.raw_login()
    token = StoredToken(answer["access_token"], answer["refresh_token"], server.clock.now(), None)
    auth = server.auth(username=None, password=None, storage=MemoryTokenStorage(token))
    async with server.client(auth) as http:
        assert (await http.get("/userinfo")).status_code == 200
        server.clock.advance(ACCESS_LIFETIME + 1)
        # No proactive refresh (the expiry is unknown): the 401 triggers it.
        response = await http.get("/userinfo")
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401, 200]


async def test_a_refused_refresh_token_clears_the_file(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    seed = (await server.raw_login())["refresh_token"]
    storage = FileTokenStorage(path)
    auth = server.auth(username=None, password=None, refresh_token=seed, storage=storage)
    async with server.client(auth) as http:
        await http.get("/userinfo")
        assert path.exists()
        assert (await http.post("/logout")).status_code == 204
        with pytest.raises(LoginRequiredError):
            await http.get("/userinfo")
    assert not path.exists()


class BrokenStorage(MemoryTokenStorage):
    """A storage whose saves fail while ``full`` is set, as on a full disk, and whose
    clears fail while ``undeletable`` is set, as on a read-only file system (both set);
    it keeps the tokens it could not save, for the test to compare."""

    def __init__(self) -> None:
        super().__init__()
        self.full = False
        self.undeletable = False
        self.unsaved: list[StoredToken] = []

    def save(self, token: StoredToken) -> None:
        if self.full:
            self.unsaved.append(token)
            raise TokenStorageError("cannot write tokens.json: No space left on device")
        super().save(token)

    def clear(self) -> None:
        if self.undeletable:
            raise TokenStorageError("cannot delete tokens.json: Read-only file system")
        super().clear()


async def test_a_failed_save_keeps_the_rotated_tokens_in_use(server: Server) -> None:
    # The server has rotated the refresh token when the save fails. A client that dropped
    # the new one would present the superseded one at its next refresh, past the 10 s
    # grace, and the server would take that for reuse and revoke the session.
    storage = BrokenStorage()
    async with server.client(server.auth(storage=storage)) as http:
        await http.get("/userinfo")
        server.clock.advance(ACCESS_LIFETIME)
        storage.full = True
        with pytest.raises(TokenStorageError, match="No space left"):
            await http.get("/userinfo")  # refreshed at the server, not saved
        [rotated] = storage.unsaved
        response = await http.get("/userinfo")  # the new token, no second refresh
        assert response.request.headers["Authorization"] == f"Bearer {rotated.access_token}"
        assert server.transport.token_requests == 2
        storage.full = False
        server.clock.advance(ACCESS_LIFETIME)  # past the expiry and the reuse grace
        assert (await http.get("/userinfo")).status_code == 200
    assert server.metrics.refreshes.get("success") == 2
    assert server.metrics.reuse_detected.get() == 0
    assert server.metrics.logins.get("success") == 1
    saved = storage.load()
    assert saved is not None
    assert saved.refresh_token not in (None, rotated.refresh_token)


def test_a_failed_save_keeps_the_rotated_tokens_in_use_sync(sync_server: SyncServer) -> None:
    server = sync_server.server
    storage = BrokenStorage()
    with sync_server.client(server.sync_auth(storage=storage)) as http:
        http.get("/userinfo")
        server.clock.advance(ACCESS_LIFETIME)
        storage.full = True
        with pytest.raises(TokenStorageError, match="No space left"):
            http.get("/userinfo")
        [rotated] = storage.unsaved
        response = http.get("/userinfo")
        assert response.request.headers["Authorization"] == f"Bearer {rotated.access_token}"
        assert server.transport.token_requests == 2
        storage.full = False
        server.clock.advance(ACCESS_LIFETIME)
        assert http.get("/userinfo").status_code == 200
    assert server.metrics.refreshes.get("success") == 2
    assert server.metrics.reuse_detected.get() == 0
    assert server.metrics.logins.get("success") == 1


@pytest.mark.parametrize("full", [False, True], ids=["clear-fails", "clear-and-save-fail"])
async def test_a_refused_refresh_token_is_forgotten_when_the_storage_cannot_be_cleared(
    server: Server, full: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # Kept in memory, the refused token would be sent again at every renewal, refused
    # again, and the client would never log in again while the storage fails.
    storage = BrokenStorage()
    async with server.client(server.auth(storage=storage)) as http:
        await http.get("/userinfo")
        refused = storage.load()
        assert refused is not None
        assert (await http.post("/logout")).status_code == 204  # the session ends
        storage.undeletable, storage.full = True, full
        # 401, the refresh refused, the clear failed: the login still happens, and the
        # storage's error is raised after it (a failed save's, chained from the clear's).
        with pytest.raises(TokenStorageError) as caught:
            await http.get("/userinfo")
        if full:
            assert "No space left" in str(caught.value)
            assert "Read-only" in str(caught.value.__cause__)
        else:
            assert "Read-only" in str(caught.value)
        assert server.transport.token_requests == 3  # login, refused refresh, login
        assert [r.getMessage() for r in caplog.records if "not be cleared" in r.getMessage()] == [
            "the token storage could not be cleared: cannot delete tokens.json: "
            "Read-only file system"
        ]
        response = await http.get("/userinfo")  # the new login's token, as it is
        assert response.status_code == 200
        assert response.request.headers["Authorization"] != f"Bearer {refused.access_token}"
        assert server.transport.token_requests == 3
        storage.undeletable = storage.full = False
        server.clock.advance(ACCESS_LIFETIME)
        assert (await http.get("/userinfo")).status_code == 200
    assert server.metrics.logins.get("success") == 2
    assert server.metrics.refreshes.get("success") == 1
    saved = storage.load()
    assert saved is not None
    assert saved.refresh_token != refused.refresh_token


def test_a_refused_refresh_token_is_forgotten_when_the_storage_cannot_be_cleared_sync(
    sync_server: SyncServer,
) -> None:
    server = sync_server.server
    storage = BrokenStorage()
    with sync_server.client(server.sync_auth(storage=storage)) as http:
        first = http.get("/userinfo")
        assert http.post("/logout").status_code == 204
        storage.undeletable = storage.full = True
        with pytest.raises(TokenStorageError, match="No space left") as caught:
            http.get("/userinfo")
        assert "Read-only" in str(caught.value.__cause__)
        response = http.get("/userinfo")
        assert response.status_code == 200
        assert response.request.headers["Authorization"] != first.request.headers["Authorization"]
        assert server.transport.token_requests == 3
    assert server.metrics.logins.get("success") == 2


async def test_a_refused_refresh_token_without_credentials_is_forgotten_all_the_same(
    server: Server,
) -> None:
    seed = (await server.raw_login())["refresh_token"]
    storage = BrokenStorage()
    auth = server.auth(username=None, password=None, refresh_token=seed, storage=storage)
    async with server.client(auth) as http:
        await http.get("/userinfo")
        assert (await http.post("/logout")).status_code == 204
        storage.undeletable = True
        with pytest.raises(LoginRequiredError, match="refused") as caught:
            await http.get("/userinfo")
        assert isinstance(caught.value.__cause__, TokenStorageError)
        with pytest.raises(LoginRequiredError, match="no usable token"):
            await http.get("/userinfo")  # the refused token is not sent again
    assert server.transport.token_requests == 3  # the raw login, the seed's, the refused


async def test_logout_revokes_the_session_when_the_storage_cannot_be_cleared(
    server: Server,
) -> None:
    storage = BrokenStorage()
    auth = server.auth(storage=storage)
    async with server.client(auth) as http:
        first = await http.get("/userinfo")
        held = storage.load()
        assert held is not None
        assert held.refresh_token is not None
        storage.undeletable = True
        with pytest.raises(TokenStorageError, match="Read-only"):
            await auth.logout(http)  # raised after the revocation, not instead of it
        assert server.transport.paths["/oauth/revoke"] == 1
        assert (await server.raw_refresh(held.refresh_token)).status_code == 400
        refused = await http.get("/userinfo", auth=None, headers=first.request.headers)
        assert refused.status_code == 401
        # Forgotten in memory: the next request logs in again (and saves over the file).
        assert storage.load() == held
        response = await http.get("/userinfo")
        assert response.status_code == 200
        assert response.request.headers["Authorization"] != first.request.headers["Authorization"]
    assert server.metrics.logins.get("success") == 2
    assert storage.load() not in (None, held)


def test_logout_revokes_the_session_when_the_storage_cannot_be_cleared_sync(
    sync_server: SyncServer,
) -> None:
    server = sync_server.server
    storage = BrokenStorage()
    auth = server.sync_auth(storage=storage)
    with sync_server.client(auth) as http:
        first = http.get("/userinfo")
        storage.undeletable = True
        server.store.cut = True  # the revocation fails too: its error, chained
        with pytest.raises(TokenEndpointError) as caught:
            auth.logout(http)
        assert caught.value.status == 503
        assert isinstance(caught.value.__cause__, TokenStorageError)
        server.store.cut = False
        second = http.get("/userinfo")  # forgotten in memory: a new login
        assert second.request.headers["Authorization"] != first.request.headers["Authorization"]
        with pytest.raises(TokenStorageError, match="Read-only"):
            auth.logout(http)
        assert server.transport.paths["/oauth/revoke"] == 2
        refused = http.get("/userinfo", auth=None, headers=second.request.headers)
        assert refused.status_code == 401
    assert server.metrics.logins.get("success") == 2


async def test_logout_failing_at_the_storage_and_the_server_raises_both(server: Server) -> None:
    storage = BrokenStorage()
    auth = server.auth(storage=storage)
    async with server.client(auth) as http:
        await http.get("/userinfo")
        storage.undeletable = True
        server.store.cut = True
        with pytest.raises(TokenEndpointError) as caught:
            await auth.logout(http)
        assert (caught.value.status, caught.value.error) == (503, "temporarily_unavailable")
        assert isinstance(caught.value.__cause__, TokenStorageError)
        assert server.transport.paths["/oauth/revoke"] == 1
