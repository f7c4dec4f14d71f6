"""Where the client keeps its tokens: the :class:`TokenStorage` protocol and two storages.

* :class:`MemoryTokenStorage`: for the life of the process (the default).
* :class:`FileTokenStorage`: a JSON file that survives restarts, for command-line tools
  and daemons. It is written with mode 0600 through a temporary file in the same
  directory and an atomic rename, so a reader never sees half a file and no other user
  can read it; a symbolic link at the path is refused, not followed (someone who can
  plant a link must not be able to make the client write its tokens elsewhere or read
  tokens from a file of their choice). A file that other users can read or that belongs
  to someone else is refused too, as ``ssh`` refuses such private keys.

A storage is called under the auth's lock, once per login or refresh (never per
request), so it needs no locking of its own. One storage serves one auth object: two
processes refreshing through one file would each rotate the refresh token, and the
second rotation would be reuse.

Nothing here logs, and :class:`StoredToken`'s ``repr`` leaves the tokens out.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeGuard

from tokenward.client._errors import TokenStorageError

__all__ = ["FileTokenStorage", "MemoryTokenStorage", "StoredToken", "TokenStorage"]

_FORMAT_VERSION = 1
_MAX_FILE_SIZE = 64 * 1024
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


@dataclass(frozen=True, slots=True)
class StoredToken:
    """What the client keeps between requests.

    ``issued_at`` and ``expires_at`` are Unix times (the wall clock, so that they mean
    the same thing after a restart); ``issued_at`` is when the token request was sent,
    ``expires_at`` that plus the server's ``expires_in`` (None when the server gave no
    lifetime: the token is then used until a request is refused with 401).
    """

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    issued_at: float
    expires_at: float | None
    scope: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object a :class:`FileTokenStorage` writes."""
        return {
            "version": _FORMAT_VERSION,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "scope": self.scope,
        }

    @classmethod
    def from_json(cls, document: object) -> StoredToken:
        """Read :meth:`to_json`'s output back; :class:`TokenStorageError` if it is not that.

        >>> token = StoredToken("a.b.c", "d.e.f", 1800000000.0, 1800000900.0, "read")
        >>> StoredToken.from_json(token.to_json()) == token
        True
        """
        if not isinstance(document, dict) or document.get("version") != _FORMAT_VERSION:
            raise TokenStorageError("not a tokenward token file (unknown format)")
        access, refresh = document.get("access_token"), document.get("refresh_token")
        issued, expires = document.get("issued_at"), document.get("expires_at")
        scope = document.get("scope")
        if (
            not isinstance(access, str)
            or not access
            or not (refresh is None or (isinstance(refresh, str) and refresh))
            or not _is_time(issued)
            or not (expires is None or _is_time(expires))
            or not (scope is None or isinstance(scope, str))
        ):
            raise TokenStorageError("the token file has missing or mistyped members")
        return cls(
            access, refresh, float(issued), None if expires is None else float(expires), scope
        )


def _is_time(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class TokenStorage(Protocol):
    """Keeps the client's current tokens. Implement it to use a keyring, a database...

    ``load`` returns None when nothing is stored; ``clear`` forgets the tokens (after the
    server refused the refresh token, or at logout). A storage that cannot do what is
    asked raises :class:`TokenStorageError`: the client then goes on from the tokens it
    holds in memory and raises the error after (docs/client.md, "Token storage").
    """

    def load(self) -> StoredToken | None:
        """The stored token, or None."""
        ...

    def save(self, token: StoredToken) -> None:
        """Replace the stored token."""
        ...

    def clear(self) -> None:
        """Forget the stored token (no error if there is none)."""
        ...


class MemoryTokenStorage:
    """Tokens in memory, for the life of the process.

    >>> storage = MemoryTokenStorage()
    >>> storage.load() is None
    True
    """

    __slots__ = ("_token",)

    def __init__(self, token: StoredToken | None = None) -> None:
        self._token = token

    def load(self) -> StoredToken | None:
        """The stored token, or None."""
        return self._token

    def save(self, token: StoredToken) -> None:
        """Replace the stored token."""
        self._token = token

    def clear(self) -> None:
        """Forget the stored token."""
        self._token = None


class FileTokenStorage:
    """Tokens in a JSON file with mode 0600, replaced atomically (POSIX systems).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tokens.json"
    >>> storage = FileTokenStorage(path)
    >>> storage.save(StoredToken("a.b.c", "d.e.f", 1800000000.0, 1800000900.0))
    >>> oct(path.stat().st_mode & 0o777), storage.load() is not None
    ('0o600', True)

    A missing parent directory is created with mode 0700; ``~`` is expanded.
    """

    __slots__ = ("_path",)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path).expanduser()

    @property
    def path(self) -> Path:
        """The token file."""
        return self._path

    def __repr__(self) -> str:
        return f"FileTokenStorage({str(self._path)!r})"

    def load(self) -> StoredToken | None:
        """The stored token, None if the file does not exist; or :class:`TokenStorageError`."""
        try:
            # O_NONBLOCK: a FIFO planted at the path must not hang the client.
            fd = os.open(self._path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error("read", exc) from None
        try:
            self._check(os.fstat(fd))
            data = _read_at_most(fd, _MAX_FILE_SIZE + 1)
        finally:
            os.close(fd)
        if len(data) > _MAX_FILE_SIZE:
            raise TokenStorageError(f"{self._path} is too large to be a token file")
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise TokenStorageError(f"{self._path} is not valid JSON") from None
        return StoredToken.from_json(document)

    def save(self, token: StoredToken) -> None:
        """Write ``token`` to a new 0600 file next to the target, then rename it over."""
        self._refuse_link()
        directory = self._path.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error("create the directory of", exc) from None
        temporary = directory / f".{self._path.name}.{secrets.token_hex(8)}.tmp"
        data = json.dumps(token.to_json(), separators=(",", ":")).encode()
        try:
            # O_EXCL: the name is fresh and random; a file or link already there is an
            # error, never something to write through.
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
            fd = os.open(temporary, flags, 0o600)
        except OSError as exc:
            raise self._error("write", exc) from None
        try:
            with os.fdopen(fd, "wb") as file:
                if hasattr(os, "fchmod"):
                    os.fchmod(file.fileno(), 0o600)  # whatever the umask did
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            # rename(2) replaces a link at the target rather than following it; the check
            # above refuses one anyway, so a planted link is reported, not silently undone.
            os.replace(temporary, self._path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise self._error("write", exc) from None
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_directory(directory)

    def clear(self) -> None:
        """Delete the file (a symbolic link is removed, its target left alone)."""
        try:
            self._path.unlink(missing_ok=True)
        except OSError as exc:
            raise self._error("delete", exc) from None

    def _check(self, info: os.stat_result) -> None:
        if not stat.S_ISREG(info.st_mode):
            raise TokenStorageError(f"{self._path} is not a regular file")
        if info.st_mode & 0o077:
            raise TokenStorageError(
                f"{self._path} is accessible by other users "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {self._path}"
            )
        if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
            raise TokenStorageError(f"{self._path} belongs to another user")

    def _refuse_link(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISLNK(os.lstat(self._path).st_mode):
                raise TokenStorageError(f"{self._path} is a symbolic link; refusing to follow it")

    def _error(self, action: str, exc: OSError) -> TokenStorageError:
        if exc.errno == errno.ELOOP:
            return TokenStorageError(f"{self._path} is a symbolic link; refusing to follow it")
        return TokenStorageError(f"cannot {action} {self._path}: {exc.strerror}")


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit and (chunk := os.read(fd, limit - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _fsync_directory(directory: Path) -> None:
    # Make the rename durable; not every platform can open a directory, which is fine.
    try:
        fd = os.open(directory, os.O_RDONLY | _O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
